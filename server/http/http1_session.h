// Http1Session: HTTP/1.1 on one connection, on libhttp-parser.
//
// Requests are parsed one at a time; each gets an Http1Stream (its Responder) and an
// Exchange from the RequestHandler once its headers are complete. Pipelined requests
// are parsed while earlier ones wait for their responses (up to `max_pipelined`
// queued), and responses go out strictly in request order. A stream is closed
// (Exchange::OnStreamClosed) once its response is written and its body fully read.
//
// Rules chosen here (DESIGN.md §4):
// - Request smuggling shapes, and heads a proxy in front could read otherwise, are
//   rejected with 400 and the connection closes: Content-Length with
//   Transfer-Encoding, Transfer-Encoding lines that together are not just "chunked",
//   Transfer-Encoding in HTTP/1.0, duplicate Content-Length (libhttp-parser refuses
//   any duplicate, equal or not), whitespace between a field name and its colon (RFC
//   9112 §5.1; libhttp-parser would still frame the body by such a field), obs-fold
//   and a CR without LF (ScanHead), a missing or repeated Host (HTTP/1.1), two
//   Content-Types, control bytes in the target, a malformed chunked body and every
//   other parser error; an HTTP major version other than 1 is 505. libhttp-parser
//   reads heads only: chunked bodies are decoded by ChunkedDecoder, strictly
//   (libhttp-parser, as Debian builds it, is lenient about the CRLFs around chunks).
// - Header bytes (request line + fields) above `max_header_bytes`: 431, then close.
// - `Expect: 100-continue`: the handler's Start() runs first; if it already responded
//   (say 413 from Content-Length) that final response is sent instead of 100.
// - A response sent while the request body is still arriving (early reply, early
//   error): the session stops delivering the body, stops reading, sends the response
//   with "connection: close" and closes. Simplest correct choice: reading and
//   discarding an unbounded rest of body is not worth it, and the lingering close of
//   Connection lets the client see the response.
// - Timeouts (one WakeupTimer owned by the session, on the connection's loop; its
//   callback runs on the loop thread outside any session call). The session stores
//   when the current phase began or last progressed and checks on wake-up:
//     header: first byte of a request to the end of its head  -> 408, close;
//     body:   no body byte while one is expected              -> 408, close
//             (the request's Exchange sees OnStreamClosed);
//     idle:   nothing in flight and no request begun          -> close quietly.
//   No clock runs while the wait is ours: a body paused by its Exchange
//   (PauseBody), a 100 Continue not sent yet, reading paused for pipelining or a
//   full write buffer, or requests waiting for their handler's response.
// - `Upgrade: h2c` on a body-less request (with HTTP2-Settings): handed to `upgrade`
//   (which creates the HTTP/2 session and writes the 101); any failure, or earlier
//   pipelined requests still pending, serves the request over HTTP/1.1 instead.
//
// Ownership: owned by the Connection; `io` and `handler` are not owned and outlive
// it. Streams are owned by the session; Exchanges are shared with the handler.
// Threading: loop thread only.
// Re-entrancy: Responder calls never write and never call an Exchange directly: inside
// a session call the output is flushed when it unwinds; outside (a posted task) the
// flush is posted to the loop.
#ifndef SPILLWAY_SERVER_HTTP_HTTP1_SESSION_H_
#define SPILLWAY_SERVER_HTTP_HTTP1_SESSION_H_

#include <http_parser.h>

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/http/chunked_decoder.h"
#include "server/http/exchange.h"
#include "server/http/http_response.h"
#include "server/http/request_head.h"
#include "server/net/protocol_session.h"
#include "server/net/wakeup_timer.h"

namespace spillway {

class Http1Stream;

struct Http1Options {
  // Request line plus header fields, in bytes; beyond it: 431.
  size_t max_header_bytes = 16 * 1024;
  // Requests parsed ahead of their responses; beyond it the socket is not read.
  size_t max_pipelined = 16;
  // When set and true, every response closes its connection (drain).
  const std::atomic<bool>* draining = nullptr;
  // Timeouts (see the top of this file). InfiniteDuration (the default here) turns
  // one off; spillwayd sets them from HEADER_TIMEOUT, IDLE_TIMEOUT and BODY_TIMEOUT.
  absl::Duration header_timeout = absl::InfiniteDuration();
  absl::Duration idle_timeout = absl::InfiniteDuration();
  absl::Duration body_timeout = absl::InfiniteDuration();
};

// Creates the HTTP/2 session for an h2c Upgrade (see Http2Session::CreateFromUpgrade).
using H2cUpgrade = std::function<absl::StatusOr<std::unique_ptr<ProtocolSession>>(
    ConnectionIo* io, std::string_view http2_settings, const RequestHead& head)>;

class Http1Session final : public ProtocolSession {
 public:
  Http1Session(ConnectionIo* io, RequestHandler* handler, const Http1Options& options,
               H2cUpgrade upgrade = nullptr);
  ~Http1Session() override;

  Http1Session(const Http1Session&) = delete;
  Http1Session& operator=(const Http1Session&) = delete;

  // ProtocolSession.
  absl::StatusOr<size_t> OnRead(std::string_view data) override;
  // The exchange's BodyBuffer() while a Content-Length body flows unhindered, cut to
  // the bytes still to come but the last (so no byte of a next request lands there,
  // and all of it is consumed: see the .cc).
  std::span<char> InputBuffer() override;
  void OnWritable() override;
  // A half-closed client: the requests received whole are answered, the last with
  // "connection: close"; a request cut short (head or body) can never complete, so
  // the connection closes at once and its Exchange sees OnStreamClosed.
  bool OnInputEnd() override;
  void OnClose() override;

  // Drain: requests in flight finish, each response closes the connection, and an
  // idle connection closes now.
  void StartDrain();

 private:
  friend class Http1Stream;
  friend struct Http1Callbacks;  // libhttp-parser trampolines, in the .cc

  // libhttp-parser callbacks; non-zero fails the parse.
  int OnMessageBegin();
  int OnUrl(std::string_view data);
  int OnHeaderField(std::string_view data);
  int OnHeaderValue(std::string_view data);
  int OnHeadersComplete();
  int OnBody(std::string_view data);
  int OnMessageComplete();

  // The request body's bytes, from libhttp-parser or ChunkedDecoder, to the exchange.
  void DeliverBody(std::string_view data);
  // The request's body has ended (or it had none): tells the exchange, then decides
  // whether to read on (keep-alive, pipelining limits).
  void FinishMessage(Http1Stream* stream);
  // Feeds a chunked body to `chunked_`; returns the bytes used. Stops early at a
  // pause, an error or the body's end (then libhttp-parser reads the next head).
  size_t FeedChunked(std::string_view data);
  // Whether body delivery must stop for now (a pause, or parsing stopped).
  bool BodyHeld() const;

  // Called by Http1Stream.
  void OnResponded(Http1Stream* stream);
  void PauseBody(Http1Stream* stream);
  void ResumeBody(Http1Stream* stream);

  // Timeouts.
  enum class Wait { kNone, kHeader, kBody, kIdle };
  // What the session waits for from the client now, and until when.
  Wait CurrentWait(absl::Time* deadline) const;
  // Whether a Content-Length body is being read (libhttp-parser counts it down in
  // parser_.content_length).
  bool InCountedBody() const;
  // Tells the connection how much body is still to come (ConnectionIo::ExpectInput).
  void UpdateExpectedInput();
  void ArmTimer();
  void OnTimer();
  absl::Time Now() const;

  bool CountHeaderBytes(size_t n);
  // Scans `bytes`, the head's (from its target on), up to the head's end for what
  // libhttp-parser (not strict) accepts and a proxy in front may read otherwise: a
  // line that starts with SP or HTAB (obs-fold, or whitespace before the first field),
  // which it joins to the field before; a CR not followed by LF, which it takes for
  // one (even for the head's last). Sets head_fault_; OnHeadersComplete refuses.
  void ScanHead(std::string_view bytes);
  // Fails the parse from a callback: answers `status` with `message` (a literal), then
  // closes. Returns the callback's error value.
  int Refuse(int status, const char* message);
  void StartRequest(Http1Stream* stream);
  bool TryH2cUpgrade();
  void FailParse(int status, std::string_view message);
  // Stops parsing for good: the connection closes after the queued responses.
  void StopParsing();
  // Writes every response that is next in order, closes finished streams.
  void Flush();
  void RequestFlush();
  void CloseStream(Http1Stream* stream);

  ConnectionIo* const io_;         // not owned
  RequestHandler* const handler_;  // not owned
  const Http1Options options_;
  H2cUpgrade upgrade_;

  http_parser parser_;
  // The current request's chunked body, while it is being read.
  std::optional<ChunkedDecoder> chunked_;
  std::deque<std::unique_ptr<Http1Stream>> streams_;  // in request order
  Http1Stream* current_ = nullptr;  // the request being parsed (the last stream)

  // Head of the request being parsed, until OnHeadersComplete.
  std::string url_;
  std::vector<std::pair<std::string, std::string>> headers_;
  bool last_was_value_ = false;
  // The bytes handed to http_parser_execute now.
  std::string_view executing_;
  // ScanHead's state: scanning the head's bytes (ahead of the parser) for what
  // libhttp-parser lets through; `head_fault_` is why the head is refused (a literal).
  bool head_scan_active_ = false;
  bool head_scan_after_lf_ = false;
  bool head_scan_after_cr_ = false;
  bool head_scan_blank_line_ = false;  // the CR seen starts a line: the head's end
  const char* head_fault_ = nullptr;
  size_t header_bytes_ = 0;
  bool pending_upgrade_ = false;  // current request is an h2c Upgrade candidate
  // The parser completed a message carrying Upgrade, so it stopped after it. Its
  // `upgrade` bit alone is set from the headers on, also while a POST's body is still
  // arriving, when the parser has not stopped and must not be reset.
  bool stopped_after_upgrade_ = false;

  // Set by a callback that fails the parse on purpose: the status and, if not the
  // default, the message (a literal) to answer with.
  int error_status_ = 0;
  const char* error_message_ = nullptr;
  bool stop_parsing_ = false;
  bool pipeline_paused_ = false;  // we hold a PauseReading: too many queued
  bool write_paused_ = false;     // we hold a PauseReading: output is backed up
  bool draining_ = false;
  bool close_written_ = false;  // a "connection: close" response went out
  bool closed_ = false;
  bool replaced_ = false;  // handed over to HTTP/2
  int depth_ = 0;          // session calls on the stack
  bool flush_posted_ = false;

  // Timeout bookkeeping (loop clock). `timer_` is null when every timeout is off.
  std::unique_ptr<WakeupTimer> timer_;
  bool in_head_ = false;           // a request's head is being parsed
  absl::Time head_started_;        // its first byte
  absl::Time last_body_at_;        // last body byte, or when the body was allowed
  absl::Time idle_since_;          // when the last stream finished

  // Liveness token for posted flushes.
  std::shared_ptr<Http1Session*> alive_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_HTTP1_SESSION_H_
