// Http2Session: the server side of one HTTP/2 connection (h2c with prior knowledge,
// h2c via Upgrade, h2 over TLS after ALPN), on nghttp2's C API.
//
// ---------------------------------------------------------------------------------
// How the connection creates one (the API other files rely on):
//
//   // Prior knowledge / ALPN "h2": the first bytes OnRead sees are the client
//   // preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); feed them in, unconsumed.
//   absl::StatusOr<std::unique_ptr<Http2Session>> Http2Session::Create(
//       ConnectionIo* io, RequestHandler* handler, const Http2Options& options);
//
//   // h2c Upgrade (RFC 7540 §3.2), called by the HTTP/1.1 session once it has the
//   // complete head of a request carrying "Upgrade: h2c", "Connection: Upgrade,
//   // HTTP2-Settings" and one "HTTP2-Settings" header:
//   absl::StatusOr<std::unique_ptr<Http2Session>> Http2Session::CreateFromUpgrade(
//       ConnectionIo* io, RequestHandler* handler, const Http2Options& options,
//       std::string_view http2_settings,  // the header's value, base64url, as received
//       const RequestHead& head);         // the upgraded request (becomes stream 1)
//
//   On success it has already written "HTTP/1.1 101 Switching Protocols" and the
//   server preface (SETTINGS) through `io`, and started stream 1 with `head` (the
//   handler's Start() ran, the request body is already ended); the caller then hands
//   it over with io->ReplaceSession(std::move(session)) and stops reading as HTTP/1.1.
//   Bytes after the request's head (the client's preface) belong to the new session.
//   On error (kInvalidArgument: bad HTTP2-Settings; kFailedPrecondition: the request
//   has a body) nothing was written: the caller ignores the Upgrade header and serves
//   the request over HTTP/1.1, which RFC 7230 §6.7 allows.
//   Only requests WITHOUT a body may be upgraded (no Content-Length > 0, no
//   Transfer-Encoding): in h2c Upgrade the body would have to arrive as HTTP/1.1 bytes
//   before the 101, which this session does not take. curl --http2 sends POST bodies
//   with the Upgrade header; those simply stay on HTTP/1.1.
// ---------------------------------------------------------------------------------
//
// Per request, the session calls RequestHandler::Start() when the request's headers
// are complete (END_HEADERS, trailers ignored), feeds DATA to the Exchange with
// OnBodyData(), calls OnBodyEnd() at END_STREAM and OnStreamClosed() when the stream
// closes (either way). Each stream is an Http2Stream, the Exchange's Responder.
//
// Flow control: automatic window updates are off. A stream's window reopens only by
// the bytes its Exchange hands on (Responder::ConsumeBody), and not while the stream
// is paused (Responder::PauseBody, counted); the connection window reopens as bytes
// are consumed, paused or not, so one slow upload never stalls the others. Bytes of
// streams that were reset, closed or answered early are consumed (discarded) at once.
//
// Early responses (before the body ended): the response goes out at once; the rest of
// the body is discarded up to Http2Options::max_discard_after_response, then the
// stream is reset with NO_ERROR.
//
// Hardening: SETTINGS_MAX_CONCURRENT_STREAMS, a header list size and field count cap
// (431 response), and the known floods end the connection with GOAWAY
// (ENHANCE_YOUR_CALM): rapid reset (a token bucket over client RST_STREAMs and
// client-caused stream errors), CONTINUATION (nghttp2's cap on CONTINUATION frames per
// header block, plus the header caps), SETTINGS (entries per frame) and PING/SETTINGS
// ACK floods (queued outbound ACKs).
//
// Timeouts (one WakeupTimer owned by the session, on the connection's loop; its
// callback runs on the loop thread outside any session call). Each stream stores
// when it last made progress; the session checks on wake-up:
//   header: a header block begun and not ended in time -> GOAWAY(ENHANCE_YOUR_CALM)
//           (until END_HEADERS no other frame can arrive: the connection is stuck);
//   body:   no DATA while a body is expected -> 408, then RST_STREAM(NO_ERROR) once
//           it is out (the Exchange sees OnStreamClosed); a stream still sending
//           after an early response -> RST_STREAM(NO_ERROR);
//   idle:   no stream open -> GOAWAY(NO_ERROR) and close.
//   send:   a response whose DATA the client's window (stream or connection) has
//           held back, with none taken for the send timeout -> RST_STREAM(CANCEL).
//           Otherwise a client that never opens its window would keep the stream,
//           and its upload slot, forever.
// No clock runs while the wait is ours: a stream paused by its Exchange (PauseBody),
// a stream or connection window we have not reopened, reading paused because the
// client does not read. Progress (DATA, ConsumeBody, ResumeBody) restarts a stream's
// clock.
//
// Ownership: the Connection owns the session (unique_ptr via ProtocolSession); the
// session owns its nghttp2_session and its streams; `io` and `handler` are non-owning
// and must outlive the session. Exchanges are shared with whatever the handler posts
// work to; the session drops its reference when the stream closes.
//
// Threading: loop thread only, like everything on a connection.
//
// Re-entrancy: Responder calls (Respond, Pause/Resume/ConsumeBody) never send and
// never call back into any Exchange: from inside the session (OnRead, OnWritable) the
// output is flushed when that call unwinds; from outside (a task posted to the loop)
// the flush is posted as one task to the loop.
#ifndef SPILLWAY_SERVER_HTTP_HTTP2_SESSION_H_
#define SPILLWAY_SERVER_HTTP_HTTP2_SESSION_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/http/exchange.h"
#include "server/http/request_head.h"
#include "server/net/protocol_session.h"
#include "server/net/wakeup_timer.h"

// nghttp2's opaque handle; only http2_session.cc includes <nghttp2/nghttp2.h>.
struct nghttp2_session;

namespace spillway {

class Http2Stream;

struct Http2Options {
  // SETTINGS_MAX_CONCURRENT_STREAMS. A stream beyond it is refused (REFUSED_STREAM)
  // until the client has acknowledged it; after that nghttp2 makes exceeding it a
  // connection error (GOAWAY PROTOCOL_ERROR), though RFC 9113 §5.1.2 asks for a
  // stream error: a client that does so broke the protocol it had acknowledged.
  uint32_t max_concurrent_streams = 100;
  // SETTINGS_MAX_HEADER_LIST_SIZE, enforced (RFC 7541 sizes: name + value + 32 per
  // field) together with a cap on the number of fields: beyond either, the request
  // gets 431 and its body is discarded.
  uint32_t max_header_list_size = 16 * 1024;
  uint32_t max_header_fields = 128;
  // SETTINGS_INITIAL_WINDOW_SIZE: how far a stream's uploader may run ahead of its
  // consumer. The connection window is larger so that several streams progress.
  int32_t stream_window_size = 1 << 20;       // 1 MiB
  int32_t connection_window_size = 16 << 20;  // 16 MiB
  // Rapid reset: RST_STREAMs from the client (and stream errors it provokes) draw
  // tokens from a bucket of `reset_burst` refilled at `reset_rate_per_second`; an
  // empty bucket ends the connection with GOAWAY(ENHANCE_YOUR_CALM).
  uint32_t reset_burst = 100;
  uint32_t reset_rate_per_second = 10;
  // A response sent while the request body is still arriving: the rest of the body
  // is read and dropped (windows kept open) up to this many bytes, so that clients
  // which cannot take an early RST_STREAM (curl 7.88 loses the response) finish
  // their upload and see it; beyond it, RST_STREAM(NO_ERROR) (RFC 9113 §8.1).
  // 0: reset as soon as the response is out.
  uint64_t max_discard_after_response = 4 << 20;  // 4 MiB
  // Flood caps handed to nghttp2 (each ends the connection when crossed).
  size_t max_outbound_ack = 1000;  // queued SETTINGS/PING ACKs not yet written
  size_t max_settings = 32;        // entries per SETTINGS frame
  size_t max_continuations = 8;    // CONTINUATION frames per header block
  // Timeouts (see the top of this file). InfiniteDuration (the default here) turns
  // one off; spillwayd sets them from HEADER_TIMEOUT, IDLE_TIMEOUT and BODY_TIMEOUT.
  absl::Duration header_timeout = absl::InfiniteDuration();
  absl::Duration idle_timeout = absl::InfiniteDuration();
  absl::Duration body_timeout = absl::InfiniteDuration();
  // SEND_TIMEOUT for one response held back by the client's flow-control window (a
  // full socket is the connection's own SEND_TIMEOUT).
  absl::Duration send_timeout = absl::InfiniteDuration();
};

class Http2Session final : public ProtocolSession {
 public:
  // See the top of this file.
  static absl::StatusOr<std::unique_ptr<Http2Session>> Create(
      ConnectionIo* io, RequestHandler* handler, const Http2Options& options);
  static absl::StatusOr<std::unique_ptr<Http2Session>> CreateFromUpgrade(
      ConnectionIo* io, RequestHandler* handler, const Http2Options& options,
      std::string_view http2_settings, const RequestHead& head);

  ~Http2Session() override;
  Http2Session(const Http2Session&) = delete;
  Http2Session& operator=(const Http2Session&) = delete;

  // ProtocolSession.
  absl::StatusOr<size_t> OnRead(std::string_view data) override;
  void OnWritable() override;
  void OnClose() override;

  // Graceful drain (SIGTERM): GOAWAY with the last stream id seen; streams already
  // open finish, new ones are refused, and the connection closes when none is left.
  void StartDrain();

  size_t open_streams() const { return streams_.size(); }

 private:
  friend class Http2Stream;
  friend struct Http2Callbacks;  // the nghttp2 trampolines, in the .cc

  struct SessionDeleter {
    void operator()(nghttp2_session* session) const;
  };

  Http2Session(ConnectionIo* io, RequestHandler* handler, const Http2Options& options);
  absl::Status Init();
  absl::Status InitUpgrade(std::string_view http2_settings, const RequestHead& head);

  // nghttp2 callbacks, one method each (called by the trampolines in the .cc).
  // Each returns 0 or an nghttp2 error code.
  int OnBeginHeaders(int32_t stream_id);
  int OnHeader(int32_t stream_id, std::string_view name, std::string_view value);
  int OnHeadersComplete(int32_t stream_id, bool end_stream);
  int OnDataChunk(int32_t stream_id, std::string_view data);
  int OnBodyEnded(int32_t stream_id);
  int OnRstStream(int32_t stream_id);
  int OnInvalidFrame(int32_t stream_id);
  int OnEndStreamSent(int32_t stream_id);
  // Tells the exchange and destroys the Http2Stream.
  int OnStreamClose(int32_t stream_id, uint32_t error_code);
  // Copies up to `length` response body bytes of `stream_id` into `buf`.
  ssize_t ReadResponseBody(int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags);

  // RequestHandler::Start for a stream whose headers are complete.
  void StartExchange(Http2Stream* stream, bool end_stream);

  // Called by Http2Stream (Responder) and the callbacks above.
  void SubmitResponse(Http2Stream* stream);
  void Consume(int32_t stream_id, size_t bytes);  // stream and connection
  void ConsumeStream(int32_t stream_id, size_t bytes);
  void ConsumeConnection(size_t bytes);
  // Gives back a stream's delivered-but-unconsumed and withheld bytes; later DATA
  // is consumed on arrival.
  void DiscardBody(Http2Stream* stream);
  // RST_STREAM(NO_ERROR) for a stream whose response is out and whose discard budget
  // is spent (or zero) while the client is still sending.
  void MaybeResetDiscarding(Http2Stream* stream);

  // Rapid-reset accounting: true when the client is over its budget.
  bool ChargeReset();

  // Timeouts. A stream made progress (or may again, after a pause of ours).
  void Touch(Http2Stream* stream);
  // What a stream waits for from its client, hence what its deadline ends.
  enum class StreamWait {
    kNone,      // nothing, or it waits on us (InfiniteFuture)
    kHeader,    // the rest of its header block
    kBody,      // more of its body
    kDiscard,   // the end of a body nobody wants, after an early response
    kResponse,  // room in its window for the rest of its response
  };
  absl::Time StreamDeadline(const Http2Stream& stream, StreamWait* wait) const;
  // The client's windows (stream or connection) hold back DATA of `stream_id`.
  bool SendWindowClosed(int32_t stream_id) const;
  void WakeBy(absl::Time deadline);
  void OnTimer();
  absl::Time Now() const;

  // Pulls frames from nghttp2 into io_ while the socket keeps up; closes the
  // connection when nghttp2 has nothing left to read or write.
  void Flush();
  // Flush now if no session call is on the stack, else when it unwinds; from outside
  // the session, posted to the loop (coalesced).
  void RequestFlush();
  void Close(bool graceful);
  Http2Stream* FindStream(int32_t stream_id);
  // Closes every stream and tells its exchange (connection gone).
  void ReleaseStreams();

  ConnectionIo* const io_;         // not owned
  RequestHandler* const handler_;  // not owned
  const Http2Options options_;
  std::unique_ptr<nghttp2_session, SessionDeleter> session_;
  absl::flat_hash_map<int32_t, std::unique_ptr<Http2Stream>> streams_;

  // Depth of session entry points on the stack (OnRead, OnWritable, Flush, posted
  // flush): Responder calls made at depth > 0 leave the flush to the outermost one.
  int depth_ = 0;
  bool flush_posted_ = false;
  // Flush()'s gathering buffer, kept between flushes while small so that answering a
  // small request allocates nothing for it.
  std::string write_batch_;
  bool reading_paused_ = false;  // we paused reading because the socket was full
  bool closing_ = false;         // CloseAfterWrite/CloseNow already asked
  bool draining_ = false;        // StartDrain sent GOAWAY
  bool fatal_ = false;           // nghttp2 reported a fatal error: close at once
  // Timeouts; `timer_` is null when every timeout is off.
  std::unique_ptr<WakeupTimer> timer_;
  absl::Time idle_since_;  // when the last stream closed (or the session began)

  // Liveness token for tasks posted to the loop: they hold a weak_ptr.
  std::shared_ptr<Http2Session*> alive_;

  // Rapid-reset token bucket.
  double reset_tokens_;
  absl::Time reset_refilled_at_ = absl::InfinitePast();
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_HTTP2_SESSION_H_
