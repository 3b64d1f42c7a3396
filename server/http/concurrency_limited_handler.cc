#include "server/http/concurrency_limited_handler.h"

#include <string_view>
#include <utility>

#include "server/http/discarding_exchange.h"

namespace spillway {

// Holds one slot for the life of a request's stream; forwards everything.
class SlotExchange final : public Exchange {
 public:
  SlotExchange(ConcurrencyLimitedHandler* owner, std::shared_ptr<Exchange> inner)
      : owner_(owner), inner_(std::move(inner)) {}
  // A session always closes its streams; this only covers one torn down without.
  ~SlotExchange() override { ReleaseOnce(); }

  absl::Status OnBodyData(std::string_view data) override {
    return inner_->OnBodyData(data);
  }
  void OnBodyEnd() override { inner_->OnBodyEnd(); }
  void OnStreamClosed() override {
    ReleaseOnce();
    inner_->OnStreamClosed();
  }

 private:
  void ReleaseOnce() {
    if (released_) return;
    released_ = true;
    owner_->Release();
  }

  ConcurrencyLimitedHandler* const owner_;
  const std::shared_ptr<Exchange> inner_;
  bool released_ = false;
};

ConcurrencyLimitedHandler::ConcurrencyLimitedHandler(RequestHandler* inner,
                                                     int64_t max_in_flight,
                                                     MetricsRegistry* metrics)
    : inner_(inner),
      max_in_flight_(max_in_flight),
      rejected_(metrics->GetCounter(
          "spillway_uploads_rejected_total",
          "Requests refused with 503 because of MAX_CONCURRENT_UPLOADS.")) {}

std::shared_ptr<Exchange> ConcurrencyLimitedHandler::Start(RequestHead head,
                                                           Responder* responder,
                                                           EventLoop* loop) {
  // Optimistic increment: two loops racing for the last slot cannot both win.
  if (in_flight_.fetch_add(1, std::memory_order_relaxed) >= max_in_flight_) {
    Release();
    rejected_->Increment();
    HttpResponse response = HttpResponse::Error(503, "too many concurrent uploads");
    response.headers.emplace_back("retry-after", "1");
    responder->Respond(std::move(response));
    return std::make_shared<DiscardingExchange>();
  }
  std::shared_ptr<Exchange> inner = inner_->Start(std::move(head), responder, loop);
  if (inner == nullptr) {
    Release();
    return nullptr;
  }
  return std::make_shared<SlotExchange>(this, std::move(inner));
}

}  // namespace spillway
