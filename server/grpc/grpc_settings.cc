#include "server/grpc/grpc_settings.h"

#include <algorithm>
#include <array>

#include "server/common/status_macros.h"

namespace spillway {
namespace {

constexpr SettingSpec kGrpcPort = {
    "GRPC_PORT", "50051",
    "port of the gRPC Ingest service (Consume, Upload), health and reflection; 0 "
    "picks a free port, printed at start-up"};

constexpr std::array<SettingSpec, 1> kSpecs = {kGrpcPort};

}  // namespace

size_t GrpcSettings::MaxMessageSize(uint64_t chunk_size) {
  constexpr uint64_t kEnvelope = 64 * 1024;
  constexpr uint64_t kFloor = 4 * 1024 * 1024;
  return static_cast<size_t>(std::max(kFloor, chunk_size + kEnvelope));
}

absl::Span<const SettingSpec> GrpcSettings::Specs() { return kSpecs; }

absl::StatusOr<GrpcSettings> GrpcSettings::FromSource(SettingsSource& source) {
  GrpcSettings settings;
  ASSIGN_OR_RETURN(int64_t port, source.GetInteger(kGrpcPort, 0, 65535));
  settings.grpc_port = static_cast<uint16_t>(port);
  return settings;
}

}  // namespace spillway
