#include "server/net/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/string_view_compat.h"
#include "server/common/status_macros.h"

namespace spillway {
namespace {

absl::Status ErrnoError(std::string_view what, const std::string& address, uint16_t port) {
  return absl::UnavailableError(
      absl::StrCat(AbslView(what), " ", address, ":", port, ": ", std::strerror(errno)));
}

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

absl::StatusOr<SocketAddress> ParseAddress(const std::string& address, uint16_t port) {
  SocketAddress out;
  auto* in = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (::inet_pton(AF_INET, address.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    out.length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    out.length = sizeof(sockaddr_in6);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", address, "\" is not an IPv4 or IPv6 literal"));
  }
  return out;
}

std::string FormatPeer(const sockaddr_storage& peer) {
  char text[INET6_ADDRSTRLEN] = {};
  if (peer.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&peer);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    return absl::StrCat(text, ":", ntohs(in->sin_port));
  }
  if (peer.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&peer);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    return absl::StrCat("[", text, "]:", ntohs(in6->sin6_port));
  }
  return "unknown";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Listener>> Listener::Create(EventLoop* loop,
                                                           const std::string& address,
                                                           uint16_t port,
                                                           AcceptCallback on_accept) {
  ASSIGN_OR_RETURN(const SocketAddress addr, ParseAddress(address, port));
  UniqueFd fd(
      ::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError("socket", address, port);
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return ErrnoError("setsockopt", address, port);
  }
  if (::bind(fd.get(), addr.get(), addr.length) != 0) return ErrnoError("bind", address, port);
  if (::listen(fd.get(), SOMAXCONN) != 0) return ErrnoError("listen", address, port);

  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    return ErrnoError("getsockname", address, port);
  }
  const uint16_t bound_port =
      ntohs(bound.ss_family == AF_INET
                ? reinterpret_cast<const sockaddr_in*>(&bound)->sin_port
                : reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
  return std::unique_ptr<Listener>(
      new Listener(loop, std::move(fd), bound_port, std::move(on_accept)));
}

absl::Status Listener::CheckPortFree(const std::string& address, uint16_t port) {
  ASSIGN_OR_RETURN(const SocketAddress addr, ParseAddress(address, port));
  UniqueFd probe(::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return ErrnoError("socket", address, port);
  // SO_REUSEADDR only: connections of an earlier run in TIME_WAIT do not count, a
  // listener does, with SO_REUSEPORT or without.
  const int one = 1;
  if (::setsockopt(probe.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return ErrnoError("setsockopt", address, port);
  }
  if (::bind(probe.get(), addr.get(), addr.length) != 0) {
    if (errno == EADDRINUSE) {
      return absl::UnavailableError(absl::StrCat(
          "port ", port, " on ", address,
          " is already in use (another spillwayd, or another program, listens on it)"));
    }
    return ErrnoError("bind", address, port);
  }
  return absl::OkStatus();
}

Listener::~Listener() { Close(); }

absl::Status Listener::Start() {
  RETURN_IF_ERROR(loop_->Watch(fd_.get(), EPOLLIN, this));
  watching_ = true;
  return absl::OkStatus();
}

void Listener::Close() {
  if (retry_timer_ != 0) {
    loop_->CancelTimer(retry_timer_);
    retry_timer_ = 0;
  }
  if (watching_) {
    loop_->Unwatch(fd_.get());
    watching_ = false;
  }
  fd_.reset();
}

void Listener::OnIoEvent(uint32_t events) {
  // Accept everything pending: epoll is level-triggered, but one wake-up per
  // connection would cost a syscall each under load.
  while (fd_) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof(peer);
    int raw = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (raw < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: the pending connection stays in the backlog and epoll
        // would report it again at once. Stop watching for a moment instead of
        // spinning; closing connections frees descriptors meanwhile.
        std::fprintf(stderr, "{\"event\":\"accept_error\",\"error\":\"%s\"}\n",
                     std::strerror(errno));
        loop_->Unwatch(fd_.get());
        watching_ = false;
        retry_timer_ = loop_->AddTimer(absl::Milliseconds(100), [this] {
          retry_timer_ = 0;
          if (fd_ && Start().ok()) OnIoEvent(EPOLLIN);
        });
      }
      return;  // EAGAIN: drained
    }
    UniqueFd conn(raw);
    const int one = 1;
    // Small responses and HTTP/2 frames must not wait for Nagle's algorithm.
    ::setsockopt(conn.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    on_accept_(std::move(conn), FormatPeer(peer));
  }
}

}  // namespace spillway
