#include "server/admin/admin_handler.h"

#include <utility>

#include "server/http/discarding_exchange.h"

namespace spillway {
namespace {

HttpResponse Text(int status, std::string body,
                  std::string content_type = "text/plain; charset=utf-8") {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("content-type", std::move(content_type));
  response.headers.emplace_back("cache-control", "no-store");
  response.body = std::move(body);
  return response;
}

}  // namespace

std::vector<std::string> AdminHandler::Paths() {
  return {"/healthz", "/readyz", "/metrics"};
}

std::shared_ptr<Exchange> AdminHandler::Start(RequestHead head,
                                              Responder* responder, EventLoop* loop) {
  if (head.path == "/healthz") {
    responder->Respond(Text(200, "ok\n"));
  } else if (head.path == "/readyz") {
    if (draining_->load(std::memory_order_relaxed)) {
      responder->Respond(Text(503, "draining\n"));
    } else {
      responder->Respond(Text(200, "ready\n"));
    }
  } else if (head.path == "/metrics") {
    responder->Respond(
        Text(200, metrics_->Render(), "text/plain; version=0.0.4; charset=utf-8"));
  } else {
    responder->Respond(HttpResponse::Error(404, "not found"));
  }
  return std::make_shared<DiscardingExchange>();
}

}  // namespace spillway
