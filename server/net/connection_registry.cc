#include "server/net/connection_registry.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace spillway {

ConnectionRegistry::ConnectionRegistry(EventLoop* loop, SessionFactory* factory,
                                       const Connection::Options& options,
                                       MetricsRegistry* metrics, Limits limits)
    : loop_(loop),
      factory_(factory),
      options_(options),
      open_gauge_(metrics->GetGauge("spillway_connections_open",
                                    "Client connections currently open.")),
      accepted_counter_(metrics->GetCounter("spillway_connections_total",
                                            "Client connections accepted.")),
      rejected_counter_(metrics->GetCounter(
          "spillway_connections_rejected_total",
          "Client connections refused with 503 because of MAX_CONNECTIONS.")),
      limits_(limits) {}

ConnectionRegistry::~ConnectionRegistry() {
  open_gauge_->Add(-static_cast<int64_t>(connections_.size()));
  ReleaseSlots(static_cast<int64_t>(connections_.size()));
}

bool ConnectionRegistry::TakeSlot() {
  if (limits_.open_total == nullptr) return true;
  // Optimistic increment: two loops racing for the last slot cannot both win.
  if (limits_.open_total->fetch_add(1, std::memory_order_relaxed) <
      limits_.max_connections) {
    return true;
  }
  limits_.open_total->fetch_sub(1, std::memory_order_relaxed);
  return false;
}

void ConnectionRegistry::ReleaseSlots(int64_t n) {
  if (limits_.open_total != nullptr && n > 0) {
    limits_.open_total->fetch_sub(n, std::memory_order_relaxed);
  }
}

void ConnectionRegistry::Reject(UniqueFd fd, std::string remote_address) {
  rejected_counter_->Increment();
  // Over TLS the 503 would first cost a handshake, the wrong spend under overload:
  // the connection is just closed.
  if (options_.tls != nullptr) return;
  auto connection = std::make_shared<Connection>(
      loop_, std::move(fd), std::move(remote_address), factory_, options_,
      [this](Connection* closed) {
        loop_->Post([this, closed] { rejected_.erase(closed); });
      });
  if (!connection->Start().ok()) return;
  static const std::string* const kServiceUnavailable = [] {
    const std::string body = "{\"error\":\"too many connections\",\"status\":503}\n";
    return new std::string(absl::StrCat(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n"
        "content-type: application/json\r\ncontent-length: ",
        body.size(), "\r\nconnection: close\r\n\r\n", body));
  }();
  Connection* raw = connection.get();
  rejected_.emplace(raw, std::move(connection));
  // The first bytes of a new socket always fit its send buffer.
  raw->Write(*kServiceUnavailable);
  raw->CloseAfterWrite();
}

void ConnectionRegistry::Accept(UniqueFd fd, std::string remote_address) {
  if (!TakeSlot()) {
    Reject(std::move(fd), std::move(remote_address));
    return;
  }
  auto connection = std::make_shared<Connection>(
      loop_, std::move(fd), std::move(remote_address), factory_, options_,
      [this](Connection* closed) { OnClosed(closed); });
  if (!connection->Start().ok()) {  // fd closes with the connection
    ReleaseSlots(1);
    return;
  }
  accepted_counter_->Increment();
  open_gauge_->Add(1);
  Connection* raw = connection.get();
  connections_.emplace(raw, std::move(connection));
  count_.store(connections_.size(), std::memory_order_relaxed);
  // Accepted after the drain began (the listener closes on the same loop, so only
  // if the backlog was being emptied): serve what comes, then close.
  if (draining_) raw->Drain();
}

void ConnectionRegistry::DrainAll() {
  draining_ = true;
  // Drain may close a connection, which only posts its removal; iterating a copy
  // keeps this safe whatever the connection does.
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [raw, connection] : connections_) all.push_back(connection);
  for (auto& connection : all) connection->Drain();
}

void ConnectionRegistry::CloseAll() {
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [raw, connection] : connections_) all.push_back(connection);
  for (auto& [raw, connection] : rejected_) all.push_back(connection);
  for (auto& connection : all) connection->CloseNow();
}

void ConnectionRegistry::OnClosed(Connection* connection) {
  // Still inside the connection's own code: destroy it from a task.
  loop_->Post([this, connection] {
    if (connections_.erase(connection) > 0) {
      open_gauge_->Add(-1);
      ReleaseSlots(1);
      count_.store(connections_.size(), std::memory_order_relaxed);
    }
  });
}

}  // namespace spillway
