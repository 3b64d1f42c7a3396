// GrpcMetrics: the gRPC front end's metrics in MetricsRegistry::Global(), looked up
// once: Consume streams attached, deliveries by outcome, chunk bytes delivered, and
// Upload RPCs by gRPC code (its name: OK, CANCELLED, ...). The pointers stay valid
// for the process's lifetime.
// Threading: the metrics are atomics; Get() is thread-safe.
#ifndef SPILLWAY_SERVER_GRPC_GRPC_METRICS_H_
#define SPILLWAY_SERVER_GRPC_GRPC_METRICS_H_

#include <grpcpp/support/status.h>

#include "server/admin/metrics.h"

namespace spillway {

struct GrpcMetrics {
  Gauge* consumers_attached;
  // Deliveries a Consume stream took, by how they ended for that stream.
  Counter* deliveries_replied;  // the consumer sent its Reply
  Counter* deliveries_failed;   // the stream broke first (redelivered or 502)
  Counter* deliveries_aborted;  // RequestAborted: timed out or the uploader went away
  Counter* bytes_delivered;     // Chunk bytes whose write completed

  static const GrpcMetrics& Get();
  // Counts one finished Upload RPC, labelled with its code's name.
  static void CountUploadRpc(grpc::StatusCode code);
  // Creates every family at start-up, so that /metrics shows them at 0 before the
  // first consumer or Upload call (a dashboard or alert then sees 0, not nothing).
  static void Register();

 private:
  static Counter* UploadRpcs(grpc::StatusCode code);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_GRPC_METRICS_H_
