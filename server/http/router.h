// Router: the RequestHandler the sessions call. GET and HEAD on the admin paths
// (/healthz, /readyz, /metrics) go to the admin handler; everything else goes to the
// upload handler.
//
// Ownership: both handlers are not owned and outlive the router.
// Threading: thread-safe (no mutable state).
#ifndef SPILLWAY_SERVER_HTTP_ROUTER_H_
#define SPILLWAY_SERVER_HTTP_ROUTER_H_

#include <memory>
#include <string>
#include <vector>

#include "server/http/exchange.h"

namespace spillway {

class Router final : public RequestHandler {
 public:
  Router(RequestHandler* admin, std::vector<std::string> admin_paths,
         RequestHandler* upload)
      : admin_(admin), admin_paths_(std::move(admin_paths)), upload_(upload) {}

  std::shared_ptr<Exchange> Start(RequestHead head, Responder* responder,
                                  EventLoop* loop) override;

 private:
  RequestHandler* const admin_;   // not owned
  const std::vector<std::string> admin_paths_;
  RequestHandler* const upload_;  // not owned
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_ROUTER_H_
