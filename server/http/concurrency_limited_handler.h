// ConcurrencyLimitedHandler: caps how many requests its inner handler has in flight
// at once (MAX_CONCURRENT_UPLOADS, DESIGN.md §4). The Router puts it in front of the
// upload handler only, so /healthz, /readyz and /metrics always answer.
//
// A request takes a slot in Start() and gives it back when its stream closes
// (Exchange::OnStreamClosed), whatever the outcome. Beyond `max_in_flight` the
// request is answered at once with 503 and Retry-After, its body is dropped, and
// spillway_uploads_rejected_total counts it; the inner handler never sees it.
//
// Ownership: `inner` and `metrics` are not owned and outlive the handler and every
// Exchange it returns.
// Threading: thread-safe (one atomic shared by all loops); each Exchange is
// loop-thread only.
#ifndef SPILLWAY_SERVER_HTTP_CONCURRENCY_LIMITED_HANDLER_H_
#define SPILLWAY_SERVER_HTTP_CONCURRENCY_LIMITED_HANDLER_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "server/admin/metrics.h"
#include "server/http/exchange.h"

namespace spillway {

class ConcurrencyLimitedHandler final : public RequestHandler {
 public:
  ConcurrencyLimitedHandler(RequestHandler* inner, int64_t max_in_flight,
                            MetricsRegistry* metrics);

  std::shared_ptr<Exchange> Start(RequestHead head, Responder* responder,
                                  EventLoop* loop) override;

  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

 private:
  friend class SlotExchange;
  void Release() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  RequestHandler* const inner_;  // not owned
  const int64_t max_in_flight_;
  Counter* const rejected_;
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_CONCURRENCY_LIMITED_HANDLER_H_
