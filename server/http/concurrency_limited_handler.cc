#include "server/http/concurrency_limited_handler.h"

#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "server/http/discarding_exchange.h"

namespace spillway {

// Holds one slot for the life of a request's stream; forwards everything.
class SlotExchange final : public Exchange {
 public:
  SlotExchange(UploadSlot slot, std::shared_ptr<Exchange> inner)
      : slot_(std::move(slot)), inner_(std::move(inner)) {}

  absl::Status OnBodyData(std::string_view data) override {
    return inner_->OnBodyData(data);
  }
  std::span<char> BodyBuffer() override { return inner_->BodyBuffer(); }
  void OnBodyEnd() override { inner_->OnBodyEnd(); }
  void OnStreamClosed() override {
    slot_.Give();  // a session always closes its streams; else the destructor gives it
    inner_->OnStreamClosed();
  }

 private:
  UploadSlot slot_;
  const std::shared_ptr<Exchange> inner_;
};

std::shared_ptr<Exchange> ConcurrencyLimitedHandler::Start(RequestHead head,
                                                           Responder* responder,
                                                           EventLoop* loop) {
  std::optional<UploadSlot> slot = slots_->Take();
  if (!slot.has_value()) {
    HttpResponse response = HttpResponse::Error(503, "too many concurrent uploads");
    response.headers.emplace_back("retry-after", "1");
    responder->Respond(std::move(response));
    return std::make_shared<DiscardingExchange>();
  }
  std::shared_ptr<Exchange> inner = inner_->Start(std::move(head), responder, loop);
  if (inner == nullptr) return nullptr;  // the slot goes with it
  return std::make_shared<SlotExchange>(*std::move(slot), std::move(inner));
}

}  // namespace spillway
