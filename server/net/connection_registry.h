// ConnectionRegistry: owns the Connections of one EventLoop, from accept to close, and
// reaches all of them at once for drain and shutdown.
//
// Connection limit (MAX_CONNECTIONS): the count is per process, shared by the
// registries of all loops through one atomic owned by HttpServer. A connection
// accepted beyond it is answered at once with an HTTP/1.1 503 and Retry-After and
// closed gracefully (the Connection's lingering close, so the client reads the 503
// instead of a reset); it is counted in spillway_connections_rejected_total, not as
// open, and does not take a slot while it lingers. On a TLS port it is closed without
// an answer (a 503 would first cost a handshake).
//
// Ownership: owns each Connection (shared_ptr, so posted tasks can hold weak_ptrs);
// a closed connection is destroyed from a posted task, after its callbacks unwound.
// `loop`, `factory` and the metric pointers are not owned and outlive the registry.
// Threading: loop thread only, except size() (atomic, for the drain's progress).
#ifndef SPILLWAY_SERVER_NET_CONNECTION_REGISTRY_H_
#define SPILLWAY_SERVER_NET_CONNECTION_REGISTRY_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "server/admin/metrics.h"
#include "server/common/unique_fd.h"
#include "server/net/connection.h"
#include "server/net/event_loop.h"
#include "server/net/session_factory.h"

namespace spillway {

class ConnectionRegistry {
 public:
  struct Limits {
    // Shared by every loop's registry; not owned. Null: no limit.
    std::atomic<int64_t>* open_total = nullptr;
    int64_t max_connections = 10000;
  };

  ConnectionRegistry(EventLoop* loop, SessionFactory* factory,
                     const Connection::Options& options, MetricsRegistry* metrics,
                     Limits limits);
  ~ConnectionRegistry();

  ConnectionRegistry(const ConnectionRegistry&) = delete;
  ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;

  // Takes an accepted socket (Listener's callback).
  void Accept(UniqueFd fd, std::string remote_address);
  // Every connection finishes what it has in flight and closes.
  void DrainAll();
  // Every connection closes now.
  void CloseAll();

  size_t size() const { return count_.load(std::memory_order_relaxed); }

 private:
  void OnClosed(Connection* connection);
  // Takes a connection slot; false when the process is at MAX_CONNECTIONS.
  bool TakeSlot();
  void ReleaseSlots(int64_t n);
  void Reject(UniqueFd fd, std::string remote_address);

  EventLoop* const loop_;
  SessionFactory* const factory_;
  const Connection::Options options_;
  Gauge* const open_gauge_;
  Counter* const accepted_counter_;
  Counter* const rejected_counter_;
  const Limits limits_;
  bool draining_ = false;
  absl::flat_hash_map<Connection*, std::shared_ptr<Connection>> connections_;
  // Rejected connections while their 503 is flushed and they linger; no slot.
  absl::flat_hash_map<Connection*, std::shared_ptr<Connection>> rejected_;
  std::atomic<size_t> count_{0};
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_CONNECTION_REGISTRY_H_
