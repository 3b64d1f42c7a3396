#include "server/grpc/ingest_service.h"

#include <optional>
#include <utility>

#include "server/grpc/consume_reactor.h"
#include "server/grpc/grpc_metrics.h"

namespace spillway {

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* IngestService::Consume(
    grpc::CallbackServerContext* context) {
  return new ConsumeReactor(options_.dispatcher, context);
}

namespace {

// An Upload call refused before anything is read: past MAX_CONCURRENT_UPLOADS, as an
// HTTP upload gets 503, or while draining, as the HTTP listeners are closed then.
class RefusedUploadReactor final : public grpc::ServerReadReactor<v1::UploadRequest> {
 public:
  explicit RefusedUploadReactor(const grpc::Status& status) {
    GrpcMetrics::CountUploadRpc(status.error_code());
    Finish(status);
  }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerReadReactor<v1::UploadRequest>* IngestService::Upload(
    grpc::CallbackServerContext* context, v1::Reply* response) {
  if (draining_.load(std::memory_order_relaxed)) {
    return new RefusedUploadReactor(grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        "the server is draining (SIGTERM): retry with another replica"));
  }
  std::optional<UploadSlot> slot;
  if (options_.slots != nullptr) {
    slot = options_.slots->Take();
    if (!slot.has_value()) {
      return new RefusedUploadReactor(
          grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       "too many concurrent uploads (MAX_CONCURRENT_UPLOADS)"));
    }
  }
  return new UploadReactor(context, response, &options_, std::move(slot));
}

}  // namespace spillway
