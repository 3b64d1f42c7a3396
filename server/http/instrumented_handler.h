// InstrumentedHandler: wraps the RequestHandler the sessions call and observes every
// request from Start() to OnStreamClosed(), whatever the protocol:
//   - one JSON access-log line per request on stdout (method, path, protocol, status,
//     bytes, bytes_in, duration_ms, remote);
//   - metrics: spillway_requests_total{protocol,status}, the
//     spillway_request_duration_seconds histogram, spillway_requests_in_flight;
//   - the in-flight count the drain waits for.
// A request that ended without a response (the client went away) is logged and
// counted with status 499, as nginx does. A request the session refused before any
// handler saw it (a head over MAX_HEADER_BYTES, malformed or too slow) comes through
// OnRejected and is logged and counted with the status the session sent.
//
// Ownership: `inner` and `metrics` are not owned and outlive the handler and every
// Exchange it returns.
// Threading: thread-safe; each Exchange is loop-thread only.
#ifndef SPILLWAY_SERVER_HTTP_INSTRUMENTED_HANDLER_H_
#define SPILLWAY_SERVER_HTTP_INSTRUMENTED_HANDLER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "server/admin/metrics.h"
#include "server/http/exchange.h"

namespace spillway {

class InstrumentedHandler final : public RequestHandler {
 public:
  InstrumentedHandler(RequestHandler* inner, MetricsRegistry* metrics, bool access_log);

  std::shared_ptr<Exchange> Start(RequestHead head, Responder* responder,
                                  EventLoop* loop) override;
  // Logged and counted like any request, with the response's size and the time since
  // its first byte; the duration histogram and the in-flight gauge leave it out (it
  // never started).
  void OnRejected(const RequestHead& head, const HttpResponse& response,
                  absl::Duration elapsed) override;

  // Requests started and not yet closed.
  int64_t in_flight() const { return in_flight_->value(); }

 private:
  friend class InstrumentedExchange;
  // What the access log keeps of a request: a copy of the whole head (every header)
  // would cost several allocations per request.
  struct LoggedHead {
    std::string protocol;
    std::string method;
    std::string path;
    std::string remote_address;
  };
  void Finish(const LoggedHead& head, int status, uint64_t bytes_out, uint64_t bytes_in,
              double seconds);
  void Record(const LoggedHead& head, int status, uint64_t bytes_out, uint64_t bytes_in,
              double seconds);
  Counter* RequestsCounter(const std::string& protocol, int status);

  RequestHandler* const inner_;      // not owned
  MetricsRegistry* const metrics_;   // not owned
  const bool access_log_;
  Gauge* const in_flight_;
  Histogram* const duration_;
  // spillway_requests_total by HTTP/1.1 or HTTP/2 and status 100..599, filled on
  // first use: the registry lookup (a lock and a label string) leaves the
  // per-request path. Other protocols go to the registry.
  static constexpr int kMinStatus = 100;
  static constexpr int kMaxStatus = 599;
  std::array<std::array<std::atomic<Counter*>, kMaxStatus - kMinStatus + 1>, 2>
      requests_by_status_{};
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_INSTRUMENTED_HANDLER_H_
