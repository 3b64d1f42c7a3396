// ProtocolSession: the protocol spoken on one connection (HTTP/1.1 or HTTP/2). The
// Connection owns the socket and its buffers and feeds the session; the session never
// touches the fd. Loop thread only.
//
// Connection (server/net/connection.h) owns its session through a unique_ptr and
// offers it the ConnectionIo below.
#ifndef SPILLWAY_SERVER_NET_PROTOCOL_SESSION_H_
#define SPILLWAY_SERVER_NET_PROTOCOL_SESSION_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace spillway {

class EventLoop;
class ProtocolSession;

// What a session may ask of its connection. Implemented by Connection.
class ConnectionIo {
 public:
  virtual ~ConnectionIo() = default;
  // Queues bytes for the socket. The connection writes what it can at once and keeps
  // the rest; above the high watermark write_blocked() turns true and the session
  // should stop producing until OnWritable().
  virtual void Write(std::string_view bytes) = 0;
  virtual bool write_blocked() const = 0;
  // Counted: reading resumes when every PauseReading has had its ResumeReading.
  virtual void PauseReading() = 0;
  virtual void ResumeReading() = 0;
  // Closes after queued bytes are written (graceful) or at once.
  virtual void CloseAfterWrite() = 0;
  virtual void CloseNow() = 0;
  // Swaps in a new session (h2c Upgrade). The caller is destroyed after the current
  // callback returns, not during it.
  virtual void ReplaceSession(std::unique_ptr<ProtocolSession> next) = 0;
  virtual EventLoop* loop() = 0;
  virtual const std::string& remote_address() const = 0;
  // The session has no use for fewer than `bytes` more input bytes (the rest of a
  // Content-Length body): the connection may leave them in the socket until about a
  // read's worth has arrived, instead of waking for every segment of a client that
  // writes in small pieces. 0: wake for any byte (the default).
  virtual void ExpectInput(uint64_t bytes) {}
  // Bytes that arrived but are not read yet (held back by ExpectInput): a session
  // deciding that its peer went idle asks first.
  virtual size_t UnreadBytes() const { return 0; }
  // The connection speaks TLS (h2c Upgrade is for cleartext only, RFC 9113 §3.1).
  virtual bool secure() const { return false; }
};

class ProtocolSession {
 public:
  virtual ~ProtocolSession() = default;
  // Bytes read from the socket. Returns how many were consumed; unconsumed bytes stay
  // buffered and are offered again (after ResumeReading, or with the next read). An
  // error closes the connection at once.
  virtual absl::StatusOr<size_t> OnRead(std::string_view data) = 0;
  // Where the connection may read the next input instead of its own buffer, then
  // pass it to OnRead() as it lies (a Content-Length body read straight into a
  // stream's chunk; Exchange::BodyBuffer). Asked only when no input is buffered, on
  // the loop, outside any session call. OnRead() should take all of such input; what
  // it leaves is copied into the connection's buffer, so the room must then still be
  // valid when OnRead() returns. Empty: the connection's buffer.
  virtual std::span<char> InputBuffer() { return {}; }
  // The write buffer fell below its low watermark: produce more output if any.
  virtual void OnWritable() = 0;
  // The peer closed its sending side (EOF) and the session has been offered every byte
  // before it, and was not paused: no more input will come. True: the session still
  // answers the requests it received whole, then closes (CloseAfterWrite), as a client
  // that half-closes after its request (`nc -N`) expects. False: the connection
  // closes now (nothing to answer, or a request cut short).
  virtual bool OnInputEnd() { return false; }
  // The connection closed (at once, or after a graceful close); the session releases
  // its streams (telling their Exchanges) and is destroyed after this returns.
  virtual void OnClose() = 0;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_PROTOCOL_SESSION_H_
