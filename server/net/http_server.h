// HttpServer: the listening side of spillwayd: a LoopGroup, and on each loop a
// SO_REUSEPORT Listener and the ConnectionRegistry of the connections it accepted.
// Protocol work is delegated to the SessionFactory.
//
// Lifecycle: Create() binds (port 0: the first listener picks an ephemeral port and
// the others bind the same one) -> Start() runs the loops -> BeginDrain() closes the
// listeners and drains every connection -> Stop() stops and joins the loops and
// closes whatever is left.
// Ownership: owns loops, listeners and connections; `factory` and `metrics` are not
// owned and outlive the server.
// Threading: the lifecycle methods are called from one controlling thread (main);
// they reach the loops through EventLoop::Post.
#ifndef SPILLWAY_SERVER_NET_HTTP_SERVER_H_
#define SPILLWAY_SERVER_NET_HTTP_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/admin/metrics.h"
#include "server/net/connection.h"
#include "server/net/connection_registry.h"
#include "server/net/listener.h"
#include "server/net/loop_group.h"
#include "server/net/session_factory.h"

namespace spillway {

class HttpServer {
 public:
  struct Options {
    std::string listen_address = "0.0.0.0";
    uint16_t port = 8080;
    size_t event_loops = 0;  // 0: one per core
    // Open client connections over all loops; beyond it, 503 and close.
    int64_t max_connections = 10000;
    Connection::Options connection;
  };

  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(const Options& options,
                                                            SessionFactory* factory,
                                                            MetricsRegistry* metrics);
  ~HttpServer();  // Stop()s if still running.

  void Start();
  // Stops accepting and asks every connection to finish and close. Returns at once.
  void BeginDrain();
  // Open connections over all loops (approximate while loops run).
  size_t open_connections() const;
  void Stop();

  uint16_t port() const { return port_; }
  LoopGroup* loops() { return loops_.get(); }

 private:
  HttpServer() = default;

  // Open connections over all loops (MAX_CONNECTIONS); the registries share it.
  // Declared before them: they give their slots back when destroyed.
  std::atomic<int64_t> open_total_{0};
  std::unique_ptr<LoopGroup> loops_;
  // Index i belongs to loops_->loop(i); touched on that loop once started.
  std::vector<std::unique_ptr<ConnectionRegistry>> registries_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  uint16_t port_ = 0;
  bool running_ = false;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_HTTP_SERVER_H_
