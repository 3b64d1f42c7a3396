#include "server/http/instrumented_handler.h"

#include <chrono>
#include <cstdio>
#include <span>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/dispatch/json_escape.h"
#include "server/net/event_loop.h"

namespace spillway {

// The Exchange the session holds: forwards to the inner Exchange, and is also the
// Responder the inner handler sees, so it learns the status and size on the way out.
class InstrumentedExchange final : public Exchange, public Responder {
 public:
  InstrumentedExchange(InstrumentedHandler* owner, const RequestHead& head,
                       Responder* responder)
      : owner_(owner),
        head_{head.protocol, head.method, head.path, head.remote_address},
        responder_(responder),
        started_(std::chrono::steady_clock::now()) {}

  void set_inner(std::shared_ptr<Exchange> inner) { inner_ = std::move(inner); }

  // Exchange.
  absl::Status OnBodyData(std::string_view data) override {
    bytes_in_ += data.size();
    return inner_ != nullptr ? inner_->OnBodyData(data) : absl::OkStatus();
  }
  std::span<char> BodyBuffer() override {
    return inner_ != nullptr ? inner_->BodyBuffer() : std::span<char>();
  }
  void OnBodyEnd() override {
    if (inner_ != nullptr) inner_->OnBodyEnd();
  }
  void OnSessionResponded(const HttpResponse& response) override {
    if (status_ != 0) return;
    status_ = response.status;
    bytes_out_ = response.body.size();
  }
  void OnStreamClosed() override {
    if (closed_) return;
    closed_ = true;
    responder_ = nullptr;
    if (inner_ != nullptr) inner_->OnStreamClosed();
    owner_->Finish(head_, status_ == 0 ? 499 : status_, bytes_out_, bytes_in_,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                 started_)
                       .count());
  }

  // Responder.
  void Respond(HttpResponse response) override {
    if (responder_ == nullptr || status_ != 0) return;
    status_ = response.status;
    bytes_out_ = response.body.size();
    responder_->Respond(std::move(response));
  }
  void PauseBody() override {
    if (responder_ != nullptr) responder_->PauseBody();
  }
  void ResumeBody() override {
    if (responder_ != nullptr) responder_->ResumeBody();
  }
  void ConsumeBody(size_t bytes) override {
    if (responder_ != nullptr) responder_->ConsumeBody(bytes);
  }

 private:
  InstrumentedHandler* const owner_;
  const InstrumentedHandler::LoggedHead head_;
  Responder* responder_;  // the session's; null once the stream closed
  std::shared_ptr<Exchange> inner_;
  // Monotonic: a duration must not jump with the wall clock (and reading it costs
  // half of absl::Now()).
  const std::chrono::steady_clock::time_point started_;
  int status_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t bytes_in_ = 0;
  bool closed_ = false;
};

InstrumentedHandler::InstrumentedHandler(RequestHandler* inner, MetricsRegistry* metrics,
                                         bool access_log)
    : inner_(inner),
      metrics_(metrics),
      access_log_(access_log),
      in_flight_(metrics->GetGauge("spillway_requests_in_flight",
                                   "Requests started and not yet finished.")),
      duration_(metrics->GetHistogram("spillway_request_duration_seconds",
                                      "From request headers to stream close.",
                                      DefaultLatencyBuckets())) {}

std::shared_ptr<Exchange> InstrumentedHandler::Start(RequestHead head,
                                                     Responder* responder,
                                                     EventLoop* loop) {
  in_flight_->Add(1);
  auto exchange = std::make_shared<InstrumentedExchange>(this, head, responder);
  exchange->set_inner(inner_->Start(std::move(head), exchange.get(), loop));
  return exchange;
}

Counter* InstrumentedHandler::RequestsCounter(const std::string& protocol, int status) {
  const int row = protocol == "HTTP/1.1" ? 0 : protocol == "HTTP/2" ? 1 : -1;
  const bool cached = row >= 0 && status >= kMinStatus && status <= kMaxStatus;
  if (cached) {
    Counter* counter = requests_by_status_[row][status - kMinStatus].load(
        std::memory_order_acquire);
    if (counter != nullptr) return counter;
  }
  // Label values are bounded: the protocols and the statuses Spillway sends.
  Counter* counter = metrics_->GetCounter(
      "spillway_requests_total", "Requests by protocol and final status.",
      Labels({{"protocol", protocol}, {"status", std::to_string(status)}}));
  // The registry returns the same counter to every caller, so racing stores agree.
  if (cached) {
    requests_by_status_[row][status - kMinStatus].store(counter, std::memory_order_release);
  }
  return counter;
}

void InstrumentedHandler::OnRejected(const RequestHead& head, const HttpResponse& response,
                                     absl::Duration elapsed) {
  // A path from a head that broke MAX_HEADER_BYTES may be that long: the log keeps
  // its start.
  constexpr size_t kMaxLoggedPath = 1024;
  Record({head.protocol, head.method, head.path.substr(0, kMaxLoggedPath),
          head.remote_address},
         response.status, response.body.size(), 0, absl::ToDoubleSeconds(elapsed));
}

void InstrumentedHandler::Finish(const LoggedHead& head, int status, uint64_t bytes_out,
                                 uint64_t bytes_in, double seconds) {
  in_flight_->Add(-1);
  duration_->Observe(seconds);
  Record(head, status, bytes_out, bytes_in, seconds);
}

void InstrumentedHandler::Record(const LoggedHead& head, int status, uint64_t bytes_out,
                                 uint64_t bytes_in, double seconds) {
  RequestsCounter(head.protocol, status)->Increment();
  if (!access_log_) return;
  std::string line = "{\"event\":\"access\",\"method\":";
  AppendJsonString(head.method, &line);
  line += ",\"path\":";
  AppendJsonString(head.path, &line);
  line += ",\"protocol\":";
  AppendJsonString(head.protocol, &line);
  absl::StrAppend(&line, ",\"status\":", status, ",\"bytes\":", bytes_out,
                  ",\"bytes_in\":", bytes_in, ",\"duration_ms\":",
                  absl::StrFormat("%.3f", seconds * 1000), ",\"remote\":");
  AppendJsonString(head.remote_address, &line);
  line += "}\n";
  // One fwrite per line: stdio locks the stream, so lines from several loops never
  // interleave. Flushed at once so that a log collector sees requests as they end.
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

}  // namespace spillway
