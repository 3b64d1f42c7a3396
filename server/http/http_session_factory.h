// HttpSessionFactory: creates the HTTP/1.1 and HTTP/2 sessions of new connections
// (SessionFactory), wiring the h2c Upgrade from HTTP/1.1 to HTTP/2, and drains them.
//
// Ownership: `handler` is not owned and outlives the factory and its sessions.
// Threading: thread-safe (no mutable state); shared by all loops.
#ifndef SPILLWAY_SERVER_HTTP_HTTP_SESSION_FACTORY_H_
#define SPILLWAY_SERVER_HTTP_HTTP_SESSION_FACTORY_H_

#include <memory>

#include "server/http/exchange.h"
#include "server/http/http1_session.h"
#include "server/http/http2_session.h"
#include "server/net/session_factory.h"

namespace spillway {

class HttpSessionFactory final : public SessionFactory {
 public:
  HttpSessionFactory(RequestHandler* handler, const Http1Options& http1,
                     const Http2Options& http2)
      : handler_(handler), http1_(http1), http2_(http2) {}

  absl::StatusOr<std::unique_ptr<ProtocolSession>> CreateHttp1(ConnectionIo* io) override;
  absl::StatusOr<std::unique_ptr<ProtocolSession>> CreateHttp2(ConnectionIo* io) override;
  void Drain(ProtocolSession* session) override;

 private:
  RequestHandler* const handler_;  // not owned
  const Http1Options http1_;
  const Http2Options http2_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_HTTP_SESSION_FACTORY_H_
