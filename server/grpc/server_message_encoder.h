// ServerMessageEncoder: turns UploadEvents into the wire form of v1::ServerMessage,
// as the grpc::ByteBuffers the raw Consume method writes (ingest_service.h). Consume
// is registered raw so that a streamed chunk's bytes reach gRPC without a copy: the
// typed method would serialize them into gRPC's own slices (a memmove of every byte,
// ~9% of the server's CPU when a large upload streams to a gRPC consumer).
//
// A Chunk is encoded by hand, offset first and data last, so that the data can be a
// slice of its own:
//  - stream mode (ChunkEvent::buffer set): the chunk's std::string is taken (the
//    event's buffer is left empty, so the source allocates a fresh one for a later
//    chunk) and becomes a slice that owns it; gRPC frees it when the bytes have gone
//    out, on whichever thread drops the last reference, possibly after OnWriteDone.
//  - otherwise (views of a buffered upload): the bytes are copied once, into one
//    slice with the header.
// Every other event goes through ToServerMessage and protobuf serialization.
//
// Ownership: holds the scratch message other events are built in, reused so that its
// strings keep their capacity; the ByteBuffers it fills own (or share) their slices.
// Threading: not thread-safe; one per stream, used by whoever holds the stream's lock.
#ifndef SPILLWAY_SERVER_GRPC_SERVER_MESSAGE_ENCODER_H_
#define SPILLWAY_SERVER_GRPC_SERVER_MESSAGE_ENCODER_H_

#include <grpcpp/support/byte_buffer.h>

#include "absl/status/status.h"
#include "server/dispatch/upload_event.h"
#include "spillway/v1/ingest.pb.h"

namespace spillway {

class ServerMessageEncoder {
 public:
  // Replaces `out` with `event` as a serialized v1::ServerMessage. Like
  // ToServerMessage, nothing in `out` depends on the event's views afterwards; a
  // streamed chunk's buffer is taken (see above), so the event's `data` must not be
  // read after this. Fails (kInternal) only if protobuf cannot serialize the message.
  absl::Status Encode(const UploadEvent& event, grpc::ByteBuffer* out);

 private:
  v1::ServerMessage scratch_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_SERVER_MESSAGE_ENCODER_H_
