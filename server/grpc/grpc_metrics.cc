#include "server/grpc/grpc_metrics.h"

#include <string>

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

void GrpcMetrics::CountUploadRpc(grpc::StatusCode code) {
  MetricsRegistry::Global()
      .GetCounter("spillway_grpc_upload_rpcs_total",
                  "Finished gRPC Upload RPCs, by gRPC status code.",
                  Labels({{"code", std::to_string(static_cast<int>(code))}}))
      ->Increment();
}

}  // namespace spillway
