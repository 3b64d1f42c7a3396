// ConcurrencyLimitedHandler: holds HTTP uploads to MAX_CONCURRENT_UPLOADS (DESIGN.md
// §4) through the UploadSlots that gRPC Upload calls share. The Router puts it in
// front of the upload handler only, so /healthz, /readyz and /metrics always answer.
//
// A request takes a slot in Start() and gives it back when its stream closes
// (Exchange::OnStreamClosed), whatever the outcome. Without a slot the request is
// answered at once with 503 and Retry-After, its body is dropped, and the inner
// handler never sees it.
//
// Ownership: `inner` and `slots` are not owned and outlive the handler and every
// Exchange it returns.
// Threading: thread-safe (UploadSlots is); each Exchange is loop-thread only.
#ifndef SPILLWAY_SERVER_HTTP_CONCURRENCY_LIMITED_HANDLER_H_
#define SPILLWAY_SERVER_HTTP_CONCURRENCY_LIMITED_HANDLER_H_

#include <memory>

#include "server/dispatch/upload_slots.h"
#include "server/http/exchange.h"

namespace spillway {

class ConcurrencyLimitedHandler final : public RequestHandler {
 public:
  ConcurrencyLimitedHandler(RequestHandler* inner, UploadSlots* slots)
      : inner_(inner), slots_(slots) {}

  std::shared_ptr<Exchange> Start(RequestHead head, Responder* responder,
                                  EventLoop* loop) override;

 private:
  RequestHandler* const inner_;  // not owned
  UploadSlots* const slots_;     // not owned
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_CONCURRENCY_LIMITED_HANDLER_H_
