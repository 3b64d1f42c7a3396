#include "server/http/router.h"

#include <algorithm>
#include <utility>

namespace spillway {

std::shared_ptr<Exchange> Router::Start(RequestHead head, Responder* responder,
                                        EventLoop* loop) {
  const bool admin_method = head.method == "GET" || head.method == "HEAD";
  if (admin_method &&
      std::find(admin_paths_.begin(), admin_paths_.end(), head.path) != admin_paths_.end()) {
    return admin_->Start(std::move(head), responder, loop);
  }
  return upload_->Start(std::move(head), responder, loop);
}

}  // namespace spillway
