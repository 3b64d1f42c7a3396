#include "server/net/tls_context.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace spillway {
namespace {

// ALPN wire format: length-prefixed names, in the server's order of preference.
constexpr unsigned char kAlpnProtocols[] = "\x02h2\x08http/1.1";

// OpenSSL's reasons for the failure just reported, oldest first, then clears them.
std::string OpenSslErrors() {
  std::string out;
  while (const unsigned long error = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(error, text, sizeof(text));
    absl::StrAppend(&out, out.empty() ? "" : "; ", text);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_length,
               const unsigned char* offered, unsigned int offered_length, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kAlpnProtocols,
                            sizeof(kAlpnProtocols) - 1, offered,
                            offered_length) != OPENSSL_NPN_NEGOTIATED) {
    // Nothing in common: go on without ALPN; the first bytes pick the protocol.
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::Load(std::string_view cert_file,
                                                             std::string_view key_file,
                                                             MetricsRegistry* metrics) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, CtxDeleter> ctx(SSL_CTX_new(TLS_server_method()));
  if (ctx == nullptr) {
    return absl::InternalError(absl::StrCat("SSL_CTX_new: ", OpenSslErrors()));
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                     SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Partial writes and a moving buffer: Connection retries from its own output
  // buffer, which it may compact. Idle connections give their record buffers back.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx.get(), "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
    return absl::InternalError(absl::StrCat("TLS 1.2 cipher list: ", OpenSslErrors()));
  }
  const std::string cert(cert_file);
  const std::string key(key_file);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot load the TLS certificate chain \"", cert, "\" (PEM): ", OpenSslErrors()));
  }
  // Also checks the key against the certificate loaded above.
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat(
          "the TLS private key \"", key, "\" does not match the certificate \"", cert, "\""));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot load the TLS private key \"", key, "\" (PEM): ", OpenSslErrors()));
  }
  SSL_CTX_set_alpn_select_cb(ctx.get(), SelectAlpn, nullptr);
  Counter* handshake_failures = metrics->GetCounter(
      "spillway_tls_handshake_failures_total",
      "TLS handshakes on the HTTP port that failed (a client that is not TLS, or "
      "that shares no protocol version or cipher with the server).");
  return std::unique_ptr<TlsContext>(new TlsContext(ctx.release(), handshake_failures));
}

absl::StatusOr<std::unique_ptr<TlsStream>> TlsContext::NewStream(int fd) const {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx_.get());
  if (ssl == nullptr) return absl::InternalError(absl::StrCat("SSL_new: ", OpenSslErrors()));
  auto stream = std::make_unique<TlsStream>(ssl, handshake_failures_);
  if (SSL_set_fd(ssl, fd) != 1) {
    return absl::InternalError(absl::StrCat("SSL_set_fd: ", OpenSslErrors()));
  }
  SSL_set_accept_state(ssl);
  return stream;
}

}  // namespace spillway
