#include "server/net/http_server.h"

#include <utility>

#include "server/common/status_macros.h"

namespace spillway {

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(const Options& options,
                                                               SessionFactory* factory,
                                                               MetricsRegistry* metrics) {
  std::unique_ptr<HttpServer> server(new HttpServer());
  ASSIGN_OR_RETURN(server->loops_, LoopGroup::Create(options.event_loops));
  if (options.port != 0) {
    RETURN_IF_ERROR(Listener::CheckPortFree(options.listen_address, options.port));
  }
  uint16_t port = options.port;
  for (size_t i = 0; i < server->loops_->size(); ++i) {
    EventLoop* loop = server->loops_->loop(i);
    auto registry = std::make_unique<ConnectionRegistry>(
        loop, factory, options.connection, metrics,
        ConnectionRegistry::Limits{&server->open_total_, options.max_connections});
    ConnectionRegistry* raw = registry.get();
    ASSIGN_OR_RETURN(
        std::unique_ptr<Listener> listener,
        Listener::Create(loop, options.listen_address, port,
                         [raw](UniqueFd fd, std::string remote) {
                           raw->Accept(std::move(fd), std::move(remote));
                         }));
    // Port 0: every later listener joins the port the first one got.
    port = listener->port();
    // The loops do not run yet, so watching from this thread is safe.
    RETURN_IF_ERROR(listener->Start());
    server->registries_.push_back(std::move(registry));
    server->listeners_.push_back(std::move(listener));
  }
  server->port_ = port;
  return server;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Start() {
  running_ = true;
  loops_->Start();
}

void HttpServer::BeginDrain() {
  for (size_t i = 0; i < loops_->size(); ++i) {
    Listener* listener = listeners_[i].get();
    ConnectionRegistry* registry = registries_[i].get();
    loops_->loop(i)->Post([listener, registry] {
      listener->Close();
      registry->DrainAll();
    });
  }
}

size_t HttpServer::open_connections() const {
  size_t total = 0;
  for (const auto& registry : registries_) total += registry->size();
  return total;
}

void HttpServer::Stop() {
  if (loops_ == nullptr) return;
  if (running_) {
    loops_->Stop();
    loops_->Join();
    running_ = false;
  }
  // The loop threads are gone: tearing down from this thread is safe. Connections
  // unwatch their loop, so they go before it.
  listeners_.clear();
  registries_.clear();
  loops_.reset();
}

}  // namespace spillway
