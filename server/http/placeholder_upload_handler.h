// PlaceholderUploadHandler: answers every upload with 503 until the upload pipeline's
// handler replaces it in main.cc. Stateless; thread-safe.
#ifndef SPILLWAY_SERVER_HTTP_PLACEHOLDER_UPLOAD_HANDLER_H_
#define SPILLWAY_SERVER_HTTP_PLACEHOLDER_UPLOAD_HANDLER_H_

#include <memory>

#include "server/http/exchange.h"

namespace spillway {

class PlaceholderUploadHandler final : public RequestHandler {
 public:
  std::shared_ptr<Exchange> Start(const RequestHead& head, Responder* responder,
                                  EventLoop* loop) override;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_PLACEHOLDER_UPLOAD_HANDLER_H_
