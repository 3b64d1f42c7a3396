// Connection: one accepted TCP socket on one EventLoop. It owns the fd, a read buffer
// and a write buffer, picks the protocol from the first bytes (the HTTP/2 client
// preface, or else HTTP/1.1), and feeds a ProtocolSession (it is that session's
// ConnectionIo).
//
// Buffers: the read buffer (read_buffer.h: read() fills it without zero-filling
// first) holds at most `max_read_buffer` unconsumed bytes (beyond that the socket is
// not read); the write buffer has a high watermark above which
// write_blocked() is true, and the session is told OnWritable() once it drains below
// the low watermark (high / 2). Reading pauses are counted (PauseReading/
// ResumeReading pairs), so independent pausers never resume each other. While the
// session expects a long Content-Length body (ExpectInput), SO_RCVLOWAT makes the
// socket readable only once a read's worth has arrived: a client writing 16 KiB at a
// time then costs one wake-up per 64 KiB, not four; and a body of 512 KiB or more is
// read 256 KiB at a time (bulk_read_chunk). While nothing is buffered, the session may
// offer its own room for the next read (ProtocolSession::InputBuffer: a streamed
// body's chunk), which then skips the read buffer and a copy.
//
// Closing: CloseAfterWrite() flushes, shuts down the write side, then reads and
// discards for a short linger period so that the peer gets the final response
// instead of a reset caused by unread request bytes. CloseNow() closes at once. A
// peer's EOF (a half-close) closes at once too, unless the session, once it has all
// the input, still has whole requests to answer (ProtocolSession::OnInputEnd). In
// both, the session's OnClose() runs exactly once, then the session is destroyed,
// and the ConnectionRegistry is told (it destroys the Connection later, from a task).
//
// TLS (Options::tls): the socket is read and written through a TlsStream, whose
// handshake runs in the first reads; ALPN, when the client offers it, picks the
// protocol instead of the first bytes. Two things epoll cannot see are handled here:
// decrypted input OpenSSL still holds once a read stopped (read again from a posted
// task, or when the session has room again), and the handshake's need to write
// during a read or to read during a write (the epoll mask follows it).
//
// Timeouts: until its first bytes choose a protocol, the connection itself closes
// it after `first_bytes_timeout` (one loop timer, owned here, cancelled once a session
// exists). From then on the session owns the header, idle and body timeouts.
//
// Ownership: owned by a ConnectionRegistry through shared_ptr (tasks posted to the
// loop hold weak_ptrs). The session is owned through unique_ptr. `loop` and `factory`
// are not owned and outlive the connection.
// Threading: loop thread only.
// Re-entrancy: the session is never destroyed while one of its methods is on the
// stack: destruction and session replacement happen when the connection's own
// callback unwinds, or in a posted task.
#ifndef SPILLWAY_SERVER_NET_CONNECTION_H_
#define SPILLWAY_SERVER_NET_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "server/common/unique_fd.h"
#include "server/net/event_loop.h"
#include "server/net/protocol_session.h"
#include "server/net/read_buffer.h"
#include "server/net/session_factory.h"
#include "server/net/tls_context.h"
#include "server/net/tls_stream.h"

namespace spillway {

class Connection final : public ConnectionIo,
                         public IoHandler,
                         public std::enable_shared_from_this<Connection> {
 public:
  struct Options {
    size_t write_high_watermark = 1 << 20;  // low watermark is half of it
    size_t read_chunk = 64 * 1024;          // bytes asked of one read()
    // ...while a long body is expected (ExpectInput): a quarter of the syscalls and
    // wake-ups, and each read's bytes go on (to a spill file, a stream chunk) as one
    // larger slice. Only such connections grow their buffer this far.
    size_t bulk_read_chunk = 256 * 1024;
    size_t max_read_buffer = 256 * 1024;    // unconsumed bytes kept before not reading
    absl::Duration linger = absl::Seconds(2);
    // From accept to the bytes that choose HTTP/1.1 or HTTP/2 (HEADER_TIMEOUT).
    absl::Duration first_bytes_timeout = absl::Seconds(10);
    // Output waiting with no byte taken by the peer for this long closes the
    // connection (SEND_TIMEOUT): a client that stopped reading would otherwise hold
    // it, and its pending responses, forever. Zero or infinite turns it off.
    absl::Duration send_timeout = absl::Seconds(60);
    // Set: the port speaks TLS (not owned; outlives the connection). The handshake
    // runs before the first bytes, within first_bytes_timeout; ALPN's choice, when
    // made, decides the protocol instead of the first bytes.
    const TlsContext* tls = nullptr;
  };
  // Called once, on the loop thread, when the connection has closed.
  using ClosedCallback = std::function<void(Connection*)>;

  Connection(EventLoop* loop, UniqueFd fd, std::string remote_address,
             SessionFactory* factory, const Options& options, ClosedCallback on_closed);
  ~Connection() override;

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts watching the socket.
  absl::Status Start();
  // Drain (SIGTERM): the session finishes its in-flight requests and closes; a
  // connection that has not chosen a protocol yet closes at once.
  void Drain();

  // ConnectionIo.
  void Write(std::string_view bytes) override;
  bool write_blocked() const override;
  void PauseReading() override;
  void ResumeReading() override;
  void CloseAfterWrite() override;
  void CloseNow() override;
  void ReplaceSession(std::unique_ptr<ProtocolSession> next) override;
  EventLoop* loop() override { return loop_; }
  const std::string& remote_address() const override { return remote_address_; }
  // While a body has at least two bulk_read_chunks to come, reads of that size and
  // SO_RCVLOWAT at one; else, with two read_chunks to come, SO_RCVLOWAT at one of
  // those. Over TLS the reads only: no low-water mark.
  void ExpectInput(uint64_t bytes) override;
  size_t UnreadBytes() const override;
  bool secure() const override { return tls_ != nullptr; }

  // IoHandler.
  void OnIoEvent(uint32_t events) override;

 private:
  // Counts the connection's own callbacks on the stack; the outermost one, when it
  // unwinds, applies what was deferred (session replacement, re-processing input,
  // finalizing a close).
  class Scope;

  size_t pending_output() const { return out_.size() - out_pos_; }
  void ReadFromSocket();
  struct Offered {
    size_t consumed;        // bytes the session took
    bool session_replaced;  // an h2c Upgrade swapped in its successor
  };
  // Offers `data` to the session; nullopt if that failed and closed the connection.
  std::optional<Offered> Offer(std::string_view data);
  // Offers input read into the session's InputBuffer() to the session; what it
  // leaves goes into `in_`.
  void OfferInPlace(std::string_view data);
  void ProcessInput();
  // After the peer's EOF, once the session has taken what it will of the input:
  // asks it whether it still answers (ProtocolSession::OnInputEnd), else closes.
  void EndInputIfConsumed();
  bool ChooseSession();  // false: not enough bytes yet, or failed (closed)
  // SEND_TIMEOUT: armed when output starts waiting; on expiry, closes the
  // connection if the peer took nothing since, else re-arms from its last progress.
  void ArmSendTimer(absl::Duration delay);
  void OnSendTimer();
  void FlushOutput();
  // The socket, or the TLS stream over it when the port speaks TLS: read(2)/send(2)
  // results and errno.
  ssize_t ReadSome(char* buffer, size_t size);
  ssize_t SendSome(const char* data, size_t size);
  // Decrypted TLS input that epoll cannot report.
  bool tls_input_pending() const { return tls_ != nullptr && tls_->has_pending_input(); }
  // The session may be offered more input now (what UpdateInterest asks epoll for).
  bool CanReadInput() const;
  void StartLinger();
  void UpdateInterest();
  void AfterCallbacks();
  void PostProcessInput();
  void Finalize();

  EventLoop* const loop_;  // not owned
  UniqueFd fd_;
  std::unique_ptr<TlsStream> tls_;  // over fd_ when options_.tls is set
  const std::string remote_address_;
  SessionFactory* const factory_;  // not owned
  const Options options_;
  ClosedCallback on_closed_;

  std::unique_ptr<ProtocolSession> session_;
  std::unique_ptr<ProtocolSession> next_session_;  // ReplaceSession, applied on unwind

  ReadBuffer in_;  // unconsumed input, offered to the session again until taken
  std::string out_;  // write buffer; bytes before out_pos_ are written
  size_t out_pos_ = 0;

  uint32_t interest_ = 0;  // the epoll mask currently registered
  bool watching_ = false;
  int pause_count_ = 0;
  int receive_low_water_ = 1;  // SO_RCVLOWAT as set on the socket
  size_t read_size_;  // bytes asked of the next read(); see ExpectInput
  bool eof_ = false;                // the peer closed its side
  bool input_ended_ = false;        // the session was told (OnInputEnd)
  bool write_was_blocked_ = false;  // OnWritable owed when below low watermark
  bool close_after_write_ = false;
  bool lingering_ = false;
  bool closed_ = false;             // CloseNow ran; Finalize pending or done
  bool finalized_ = false;
  bool process_posted_ = false;
  bool reprocess_ = false;  // input to offer again when the callback unwinds
  int depth_ = 0;
  EventLoop::TimerId linger_timer_ = 0;
  EventLoop::TimerId first_bytes_timer_ = 0;  // armed from Start() to ChooseSession()
  EventLoop::TimerId send_timer_ = 0;  // armed while output waits (SEND_TIMEOUT)
  absl::Time last_send_progress_;      // when the peer last took output bytes
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_CONNECTION_H_
