// Conversions between Spillway's own types and the ingest.proto messages, and the one
// place absl::Status becomes grpc::Status. Free functions, no state; safe from any
// thread.
#ifndef SPILLWAY_SERVER_GRPC_PROTO_CONVERSIONS_H_
#define SPILLWAY_SERVER_GRPC_PROTO_CONVERSIONS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "server/dispatch/consumer_reply.h"
#include "server/dispatch/upload_event.h"
#include "server/upload/upload_mode.h"
#include "spillway/v1/ingest.pb.h"

namespace spillway {

v1::Mode ToProtoMode(UploadMode mode);

// Fills `out` (cleared first) with `event`, copying every byte it views: the event's
// views may die at the consumer's next call on its Delivery, the message must live
// until its write completes. A streamed chunk's buffer is copied too, not taken; the
// Consume stream encodes chunks without protobuf (server_message_encoder.h).
void ToServerMessage(const UploadEvent& event, v1::ServerMessage* out);

ConsumerReply FromProtoReply(const v1::Reply& reply);
void ToProtoReply(const ConsumerReply& reply, v1::Reply* out);

// absl and gRPC share the canonical codes; the message is kept.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_PROTO_CONVERSIONS_H_
