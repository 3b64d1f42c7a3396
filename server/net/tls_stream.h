// TlsStream: one accepted connection's TLS session (an OpenSSL SSL in server mode on
// the connection's socket), with read(2)/send(2)-like calls so that Connection drives
// it exactly as it drives the plain socket. The handshake runs inside the first Read()
// calls; until it is done they report EAGAIN.
//
// What the plain socket does not have, and Connection must mind:
// - Bytes OpenSSL has decrypted but not handed out (has_pending_input()), when a
//   Read() had less room than a record: epoll does not see them, so whoever stops
//   reading with them pending must come back without waiting for the socket.
// - A Read() that needs the socket writable (read_wants_write()), or a Write() that
//   needs it readable (write_wants_read()): the handshake's own messages. Retry the
//   call when the socket is ready that way.
//
// OpenSSL writes with write(2), without MSG_NOSIGNAL: the process must ignore
// SIGPIPE (spillwayd's main does) or a peer gone mid-write would kill it.
//
// Ownership: owns its SSL (which holds a reference to the SSL_CTX); not the fd.
// Threading: the connection's loop thread only.
#ifndef SPILLWAY_SERVER_NET_TLS_STREAM_H_
#define SPILLWAY_SERVER_NET_TLS_STREAM_H_

#include <openssl/ssl.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string_view>

#include "server/admin/metrics.h"

namespace spillway {

class TlsStream {
 public:
  // Takes ownership of `ssl`, already bound to its socket in accept state.
  // `handshake_failures` (may be null) counts handshakes that fail.
  TlsStream(SSL* ssl, Counter* handshake_failures)
      : ssl_(ssl), handshake_failures_(handshake_failures) {}

  // > 0: bytes read; 0: the peer ended the stream (close_notify, or a plain EOF);
  // -1 with errno: EAGAIN (wait for the socket; see read_wants_write()), or a
  // failure (EPROTO for a TLS error such as a failed handshake).
  ssize_t Read(char* buffer, size_t size);
  // > 0: bytes taken (may be fewer than `size`); -1 with errno: EAGAIN (see
  // write_wants_read()) or a failure. After EAGAIN, call again with the same bytes
  // first (more may follow them; the buffer may move).
  ssize_t Write(const char* data, size_t size);
  // Sends close_notify if the session is healthy and the socket takes it; does not
  // wait for the peer's.
  void Shutdown();

  // Decrypted bytes waiting inside OpenSSL. (Not SSL_has_pending(): it also counts
  // a record still arriving, which only the socket can complete.)
  bool has_pending_input() const { return SSL_pending(ssl_.get()) > 0; }
  bool read_wants_write() const { return read_wants_write_; }
  bool write_wants_read() const { return write_wants_read_; }
  // The protocol ALPN chose ("h2", "http/1.1"), or empty if the client offered none.
  std::string_view alpn() const;

 private:
  struct SslDeleter {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };
  // SSL_read or SSL_write (`io`, given the byte count) as read(2)/send(2) would
  // answer; `*wants_other` tells whether it waits on the socket's `other_direction`
  // (SSL_ERROR_WANT_WRITE for a read, SSL_ERROR_WANT_READ for a write).
  template <typename Io>
  ssize_t Transfer(Io io, size_t size, int other_direction, bool* wants_other);
  // A fatal SSL_get_error() `ssl_error`: sets errno (the socket's own for a socket
  // error, else EPROTO), counts a failed handshake, returns -1.
  ssize_t Fail(int ssl_error, int socket_errno);

  std::unique_ptr<SSL, SslDeleter> ssl_;
  Counter* const handshake_failures_;
  bool read_wants_write_ = false;
  bool write_wants_read_ = false;
  bool established_ = false;  // a byte went through: the handshake is done
  bool failed_ = false;  // a fatal error: no more I/O, no close_notify
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_TLS_STREAM_H_
