// Listener: one SO_REUSEPORT listening socket watched by one EventLoop. Every loop has
// its own Listener on the same address and port, so the kernel spreads new
// connections over the loops and no accept lock is needed.
//
// Ownership: owns its socket; `on_accept` receives ownership of each accepted fd.
// Threading: Create() from any thread; everything else, including destruction, on
// the listener's loop thread (Start/Close post nothing themselves).
#ifndef SPILLWAY_SERVER_NET_LISTENER_H_
#define SPILLWAY_SERVER_NET_LISTENER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/common/unique_fd.h"
#include "server/net/event_loop.h"

namespace spillway {

class Listener : public IoHandler {
 public:
  // Called on the loop thread for each accepted connection: a non-blocking,
  // close-on-exec socket with TCP_NODELAY, and the peer as "ip:port".
  using AcceptCallback = std::function<void(UniqueFd fd, std::string remote_address)>;

  // Binds and listens (IPv4 or IPv6 literal `address`). `port` 0 picks an ephemeral
  // port; port() then tells which, so the other loops can bind the same one.
  static absl::StatusOr<std::unique_ptr<Listener>> Create(EventLoop* loop,
                                                          const std::string& address,
                                                          uint16_t port,
                                                          AcceptCallback on_accept);
  ~Listener() override;

  // Fails if something already listens on `port` (not 0). The listeners bind with
  // SO_REUSEPORT so that each loop has its own, but that would also let a second
  // spillwayd of the same user share the port and silently take half the
  // connections; a probe bound without it sees any listener.
  static absl::Status CheckPortFree(const std::string& address, uint16_t port);

  // Starts watching for connections. Loop thread.
  absl::Status Start();
  // Stops accepting and closes the socket (drain). Loop thread; idempotent.
  void Close();

  uint16_t port() const { return port_; }

  void OnIoEvent(uint32_t events) override;

 private:
  Listener(EventLoop* loop, UniqueFd fd, uint16_t port, AcceptCallback on_accept)
      : loop_(loop), fd_(std::move(fd)), port_(port), on_accept_(std::move(on_accept)) {}

  EventLoop* const loop_;  // not owned
  UniqueFd fd_;
  const uint16_t port_;
  AcceptCallback on_accept_;
  bool watching_ = false;
  EventLoop::TimerId retry_timer_ = 0;  // set while backing off after EMFILE
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_LISTENER_H_
