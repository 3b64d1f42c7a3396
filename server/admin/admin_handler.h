// AdminHandler: the operational endpoints on the HTTP port (DESIGN.md §4).
//   GET /healthz  200 "ok" while the process runs.
//   GET /readyz   200 "ready", or 503 "draining" once SIGTERM began the drain.
//   GET /metrics  the MetricsRegistry in Prometheus text format.
// Anything else it is given: 404. Bodies are ignored.
//
// Ownership: `metrics` and `draining` are not owned and outlive the handler.
// Threading: thread-safe; Start() runs on any loop.
#ifndef SPILLWAY_SERVER_ADMIN_ADMIN_HANDLER_H_
#define SPILLWAY_SERVER_ADMIN_ADMIN_HANDLER_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "server/admin/metrics.h"
#include "server/http/exchange.h"

namespace spillway {

class AdminHandler final : public RequestHandler {
 public:
  AdminHandler(MetricsRegistry* metrics, const std::atomic<bool>* draining)
      : metrics_(metrics), draining_(draining) {}

  // The paths this handler serves, for the Router.
  static std::vector<std::string> Paths();

  std::shared_ptr<Exchange> Start(RequestHead head, Responder* responder,
                                  EventLoop* loop) override;

 private:
  MetricsRegistry* const metrics_;          // not owned
  const std::atomic<bool>* const draining_;  // not owned
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_ADMIN_ADMIN_HANDLER_H_
