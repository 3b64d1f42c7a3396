#include "server/grpc/grpc_metrics.h"

#include <string>

#include "absl/status/status.h"

namespace spillway {
namespace {

Counter* Deliveries(MetricsRegistry& registry, std::string_view outcome) {
  return registry.GetCounter("spillway_grpc_deliveries_total",
                             "Deliveries taken by gRPC Consume streams, by outcome.",
                             Labels({{"outcome", outcome}}));
}

GrpcMetrics Make() {
  MetricsRegistry& registry = MetricsRegistry::Global();
  GrpcMetrics metrics;
  metrics.consumers_attached = registry.GetGauge(
      "spillway_grpc_consumers_attached", "gRPC Consume streams currently attached.");
  metrics.deliveries_replied = Deliveries(registry, "replied");
  metrics.deliveries_failed = Deliveries(registry, "failed");
  metrics.deliveries_aborted = Deliveries(registry, "aborted");
  metrics.bytes_delivered = registry.GetCounter(
      "spillway_grpc_delivered_bytes_total",
      "Chunk bytes written to gRPC Consume streams.");
  return metrics;
}

}  // namespace

const GrpcMetrics& GrpcMetrics::Get() {
  static const GrpcMetrics* const metrics = new GrpcMetrics(Make());
  return *metrics;
}

Counter* GrpcMetrics::UploadRpcs(grpc::StatusCode code) {
  // gRPC's codes are absl's, number for number: "OK", "RESOURCE_EXHAUSTED", ...
  return MetricsRegistry::Global().GetCounter(
      "spillway_grpc_upload_rpcs_total", "Finished gRPC Upload RPCs, by gRPC status code.",
      Labels({{"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}}));
}

void GrpcMetrics::CountUploadRpc(grpc::StatusCode code) { UploadRpcs(code)->Increment(); }

void GrpcMetrics::Register() {
  Get();
  UploadRpcs(grpc::StatusCode::OK);
}

}  // namespace spillway
