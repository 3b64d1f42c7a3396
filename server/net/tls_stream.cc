#include "server/net/tls_stream.h"

#include <openssl/err.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace spillway {

template <typename Io>
ssize_t TlsStream::Transfer(Io io, size_t size, int other_direction, bool* wants_other) {
  *wants_other = false;
  if (failed_) {
    errno = EPROTO;
    return -1;
  }
  ERR_clear_error();
  const int n = io(static_cast<int>(std::min<size_t>(size, INT_MAX)));
  if (n > 0) {
    established_ = true;
    return n;
  }
  const int socket_errno = errno;
  const int error = SSL_get_error(ssl_.get(), n);
  switch (error) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      *wants_other = error == other_direction;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      // close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a plain EOF: HTTP's own
      // framing tells a whole request from a cut one, as on a plain socket.
      return 0;
    default:
      return Fail(error, socket_errno);
  }
}

ssize_t TlsStream::Read(char* buffer, size_t size) {
  return Transfer([&](int n) { return SSL_read(ssl_.get(), buffer, n); }, size,
                  SSL_ERROR_WANT_WRITE, &read_wants_write_);
}

ssize_t TlsStream::Write(const char* data, size_t size) {
  return Transfer([&](int n) { return SSL_write(ssl_.get(), data, n); }, size,
                  SSL_ERROR_WANT_READ, &write_wants_read_);
}

ssize_t TlsStream::Fail(int ssl_error, int socket_errno) {
  failed_ = true;
  // Not a refused renegotiation (SSL_is_init_finished() is false again then): only
  // a connection that never carried a byte failed its handshake.
  if (!established_ && handshake_failures_ != nullptr) {
    handshake_failures_->Increment();
  }
  ERR_clear_error();
  // A socket error keeps its errno (EPIPE, ECONNRESET); anything else is the
  // protocol's failure.
  errno = ssl_error == SSL_ERROR_SYSCALL && socket_errno != 0 ? socket_errno : EPROTO;
  return -1;
}

void TlsStream::Shutdown() {
  if (failed_ || !SSL_is_init_finished(ssl_.get())) return;
  ERR_clear_error();
  // One attempt: 0 means close_notify went out (the peer's is not awaited), < 0
  // that the socket would block; either way the connection goes on closing.
  SSL_shutdown(ssl_.get());
  ERR_clear_error();
}

std::string_view TlsStream::alpn() const {
  const unsigned char* protocol = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_.get(), &protocol, &length);
  if (protocol == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(protocol), length);
}

}  // namespace spillway
