// ServerMessageEncoder: turns UploadEvents into the wire form of v1::ServerMessage,
// as the grpc::ByteBuffers the raw Consume method writes (ingest_service.h). Consume
// is registered raw so that a streamed chunk's bytes reach gRPC without a copy: the
// typed method would serialize them into gRPC's own slices (a memmove of every byte,
// ~9% of the server's CPU when a large upload streams to a gRPC consumer).
//
// A Chunk is encoded by hand, offset first and data last, so that the data can be a
// slice of its own:
//  - stream mode (ChunkEvent::buffer set): the chunk's std::string is taken and
//    becomes a slice that owns it. When gRPC drops the slice (the bytes have gone
//    out; on whichever thread lets go last, possibly after OnWriteDone) the string
//    goes to the encoder's ChunkBufferPool, and the next streamed chunk's event gets
//    it in exchange for its own, so the source recycles it as it would have.
//  - otherwise (views of a buffered upload): the bytes are copied once, into one
//    slice with the header.
// Every other event goes through ToServerMessage and protobuf serialization.
//
// Ownership: holds the scratch message other events are built in, reused so that its
// strings keep their capacity, and shares its ChunkBufferPool with the slices it made;
// the ByteBuffers it fills own (or share) their slices.
// Threading: not thread-safe; one per stream, used by whoever holds the stream's lock.
#ifndef SPILLWAY_SERVER_GRPC_SERVER_MESSAGE_ENCODER_H_
#define SPILLWAY_SERVER_GRPC_SERVER_MESSAGE_ENCODER_H_

#include <grpcpp/support/byte_buffer.h>

#include <memory>

#include "absl/status/status.h"
#include "server/dispatch/upload_event.h"
#include "server/grpc/chunk_buffer_pool.h"
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
  // One write is in flight per stream, and its slice may be dropped a little after
  // OnWriteDone: two buffers cover that.
  std::shared_ptr<ChunkBufferPool> chunk_buffers_ = ChunkBufferPool::Create(2);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_SERVER_MESSAGE_ENCODER_H_
