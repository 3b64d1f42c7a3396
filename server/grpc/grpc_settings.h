// GrpcSettings: the gRPC front end's settings (DESIGN.md §2): the port the Ingest,
// Health and reflection services listen on, and the message size limit derived from
// STREAM_BODY_CHUNK_SIZE. Read once at start-up from a SettingsSource, then a plain
// value shared read-only.
#ifndef SPILLWAY_SERVER_GRPC_GRPC_SETTINGS_H_
#define SPILLWAY_SERVER_GRPC_GRPC_SETTINGS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "server/common/settings_source.h"

namespace spillway {

struct GrpcSettings {
  uint16_t grpc_port = 50051;  // 0: an ephemeral port, printed at start-up

  // The largest gRPC message sent or received: a chunk of `chunk_size` bytes plus
  // room for its envelope, and never under gRPC's usual 4 MiB.
  static size_t MaxMessageSize(uint64_t chunk_size);

  static absl::Span<const SettingSpec> Specs();
  static absl::StatusOr<GrpcSettings> FromSource(SettingsSource& source);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_GRPC_SETTINGS_H_
