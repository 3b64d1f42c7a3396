#include "server/grpc/ingest_service.h"

#include <optional>
#include <utility>

#include "server/grpc/consume_reactor.h"

namespace spillway {

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* IngestService::Consume(
    grpc::CallbackServerContext* context) {
  return new ConsumeReactor(options_.dispatcher, context);
}

namespace {

// An Upload call past MAX_CONCURRENT_UPLOADS: refused before anything is read, as an
// HTTP upload gets 503.
class RefusedUploadReactor final : public grpc::ServerReadReactor<v1::UploadRequest> {
 public:
  RefusedUploadReactor() {
    Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many concurrent uploads (MAX_CONCURRENT_UPLOADS)"));
  }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerReadReactor<v1::UploadRequest>* IngestService::Upload(
    grpc::CallbackServerContext* context, v1::Reply* response) {
  std::optional<UploadSlot> slot;
  if (options_.slots != nullptr) {
    slot = options_.slots->Take();
    if (!slot.has_value()) return new RefusedUploadReactor();
  }
  return new UploadReactor(context, response, &options_, std::move(slot));
}

}  // namespace spillway
