// TlsContext: the HTTP port's TLS configuration (DESIGN.md §4: "h2 over TLS with ALPN
// when a certificate is configured"), one OpenSSL SSL_CTX loaded at start-up from a
// PEM certificate chain and its private key. ALPN picks "h2" when the client offers
// it, else "http/1.1"; TLS 1.2 is the oldest version, and its cipher suites are the
// ECDHE AEAD ones HTTP/2 allows (RFC 9113 §9.2.2); TLS 1.3 keeps OpenSSL's suites.
// Renegotiation is refused, so after the handshake a write never waits for a read.
//
// Ownership: owns the SSL_CTX; every TlsStream it creates holds its own reference to
// it (OpenSSL counts them), and `handshake_failures` belongs to the metrics registry.
// Threading: immutable after Load(); NewStream() may be called from any loop thread
// at once (SSL_new on a configured SSL_CTX is thread-safe).
#ifndef SPILLWAY_SERVER_NET_TLS_CONTEXT_H_
#define SPILLWAY_SERVER_NET_TLS_CONTEXT_H_

#include <openssl/ssl.h>

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "server/admin/metrics.h"
#include "server/net/tls_stream.h"

namespace spillway {

class TlsContext {
 public:
  // Errors name the file and OpenSSL's reason (unreadable file, not PEM, key not
  // matching the certificate).
  static absl::StatusOr<std::unique_ptr<TlsContext>> Load(std::string_view cert_file,
                                                          std::string_view key_file,
                                                          MetricsRegistry* metrics);

  // A server-side TLS stream over the connected, non-blocking socket `fd` (not owned;
  // it must outlive the stream).
  absl::StatusOr<std::unique_ptr<TlsStream>> NewStream(int fd) const;

 private:
  struct CtxDeleter {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
  };
  TlsContext(SSL_CTX* ctx, Counter* handshake_failures)
      : ctx_(ctx), handshake_failures_(handshake_failures) {}

  std::unique_ptr<SSL_CTX, CtxDeleter> ctx_;
  Counter* const handshake_failures_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_TLS_CONTEXT_H_
