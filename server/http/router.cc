#include "server/http/router.h"

#include <algorithm>

namespace spillway {

std::shared_ptr<Exchange> Router::Start(const RequestHead& head, Responder* responder,
                                        EventLoop* loop) {
  const bool admin_method = head.method == "GET" || head.method == "HEAD";
  if (admin_method &&
      std::find(admin_paths_.begin(), admin_paths_.end(), head.path) != admin_paths_.end()) {
    return admin_->Start(head, responder, loop);
  }
  return upload_->Start(head, responder, loop);
}

}  // namespace spillway
