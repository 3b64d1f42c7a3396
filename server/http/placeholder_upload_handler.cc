#include "server/http/placeholder_upload_handler.h"

#include "server/http/discarding_exchange.h"

namespace spillway {

std::shared_ptr<Exchange> PlaceholderUploadHandler::Start(const RequestHead& head,
                                                          Responder* responder,
                                                          EventLoop* loop) {
  HttpResponse response = HttpResponse::Error(503, "upload pipeline not available");
  response.headers.emplace_back("retry-after", "10");
  responder->Respond(std::move(response));
  return std::make_shared<DiscardingExchange>();
}

}  // namespace spillway
