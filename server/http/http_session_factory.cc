#include "server/http/http_session_factory.h"

#include <utility>

namespace spillway {

absl::StatusOr<std::unique_ptr<ProtocolSession>> HttpSessionFactory::CreateHttp1(
    ConnectionIo* io) {
  // h2c is cleartext only (RFC 9113 §3.1): over TLS, Upgrade: h2c is ignored and the
  // request served over HTTP/1.1; ALPN is how TLS clients get HTTP/2.
  if (io->secure()) return std::make_unique<Http1Session>(io, handler_, http1_);
  H2cUpgrade upgrade = [this](ConnectionIo* io, std::string_view http2_settings,
                              const RequestHead& head)
      -> absl::StatusOr<std::unique_ptr<ProtocolSession>> {
    absl::StatusOr<std::unique_ptr<Http2Session>> session =
        Http2Session::CreateFromUpgrade(io, handler_, http2_, http2_settings, head);
    if (!session.ok()) return session.status();
    return std::unique_ptr<ProtocolSession>(std::move(*session));
  };
  return std::make_unique<Http1Session>(io, handler_, http1_, std::move(upgrade));
}

absl::StatusOr<std::unique_ptr<ProtocolSession>> HttpSessionFactory::CreateHttp2(
    ConnectionIo* io) {
  absl::StatusOr<std::unique_ptr<Http2Session>> session =
      Http2Session::Create(io, handler_, http2_);
  if (!session.ok()) return session.status();
  return std::unique_ptr<ProtocolSession>(std::move(*session));
}

void HttpSessionFactory::Drain(ProtocolSession* session) {
  // Only this factory's two session types reach here.
  if (auto* http1 = dynamic_cast<Http1Session*>(session)) {
    http1->StartDrain();
  } else if (auto* http2 = dynamic_cast<Http2Session*>(session)) {
    http2->StartDrain();
  }
}

}  // namespace spillway
