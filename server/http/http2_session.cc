// The only file that knows nghttp2's callbacks. Each trampoline casts user_data to the
// Http2Session, calls one method, and returns its nghttp2 code. nghttp2 error codes
// and absl::Status meet here, in ToStatus() and the RST_STREAM/GOAWAY codes chosen
// below, and nowhere else.
//
// Nothing here sends or receives from inside an nghttp2 callback: callbacks only
// submit (queue) frames; output is pulled with nghttp2_session_mem_send() in Flush(),
// which runs when the outermost session entry point unwinds.
#include "server/http/http2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/common/string_view_compat.h"
#include "server/http/http2_stream.h"
#include "server/net/event_loop.h"

namespace spillway {
namespace {

// Bytes gathered from nghttp2_session_mem_send() before one ConnectionIo::Write, so
// that many small frames become one socket write.
constexpr size_t kWriteBatch = 64 * 1024;
// The most a session keeps of that buffer's capacity between flushes.
constexpr size_t kRetainedWriteBatch = 16 * 1024;

constexpr std::string_view kSwitchingProtocols =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: h2c\r\n\r\n";

absl::Status ToStatus(int nghttp2_error, std::string_view what) {
  const std::string message =
      absl::StrCat(AbslView(what), ": ", nghttp2_strerror(nghttp2_error));
  switch (nghttp2_error) {
    case NGHTTP2_ERR_NOMEM:
      return absl::ResourceExhaustedError(message);
    case NGHTTP2_ERR_INVALID_ARGUMENT:
    case NGHTTP2_ERR_PROTO:
    case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
      return absl::InvalidArgumentError(message);
    case NGHTTP2_ERR_FLOODED:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Connection-specific header fields are forbidden in HTTP/2 (RFC 9113 §8.2.2); a
// response carrying one would be malformed for the client.
bool IsConnectionSpecific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade";
}

bool StatusHasBody(int status) {
  return status >= 200 && status != 204 && status != 304;
}

nghttp2_nv MakeNv(const std::string& name, const std::string& value) {
  return nghttp2_nv{
      reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
      value.size(), NGHTTP2_NV_FLAG_NONE};
}

Http2Options NormalizeTimeouts(Http2Options options) {
  options.header_timeout = TimeoutOrInfinite(options.header_timeout);
  options.idle_timeout = TimeoutOrInfinite(options.idle_timeout);
  options.body_timeout = TimeoutOrInfinite(options.body_timeout);
  options.send_timeout = TimeoutOrInfinite(options.send_timeout);
  return options;
}

struct OptionDeleter {
  void operator()(nghttp2_option* option) const { nghttp2_option_del(option); }
};
struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks* callbacks) const {
    nghttp2_session_callbacks_del(callbacks);
  }
};

// The HTTP2-Settings payload of an h2c Upgrade, checked as RFC 9113 §6.5.2 checks a
// SETTINGS frame. nghttp2_session_upgrade2 takes any payload and answers a forbidden
// value with a GOAWAY, after the 101 would be out and stream 1 started; checked here,
// such a request is served over HTTP/1.1 instead, as any declined upgrade is.
absl::Status CheckUpgradeSettings(std::string_view payload, size_t max_entries) {
  if (payload.size() % 6 != 0) {
    return absl::InvalidArgumentError("HTTP2-Settings is not a SETTINGS payload");
  }
  if (payload.size() / 6 > max_entries) {
    return absl::InvalidArgumentError("HTTP2-Settings has too many entries");
  }
  for (size_t at = 0; at < payload.size(); at += 6) {
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(payload[at + i]); };
    const uint16_t id = static_cast<uint16_t>(byte(0) << 8 | byte(1));
    const uint32_t value = uint32_t{byte(2)} << 24 | uint32_t{byte(3)} << 16 |
                           uint32_t{byte(4)} << 8 | uint32_t{byte(5)};
    bool valid = true;
    switch (id) {
      case NGHTTP2_SETTINGS_ENABLE_PUSH:
      case NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL:
      case NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES:
        valid = value <= 1;
        break;
      case NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE:
        valid = value <= static_cast<uint32_t>(NGHTTP2_MAX_WINDOW_SIZE);
        break;
      case NGHTTP2_SETTINGS_MAX_FRAME_SIZE:
        valid = value >= (1u << 14) && value < (1u << 24);  // §6.5.2's bounds
        break;
      default:
        break;  // other values are all allowed; unknown settings are ignored
    }
    if (!valid) {
      return absl::InvalidArgumentError(
          absl::StrCat("HTTP2-Settings: setting ", id, " has the invalid value ", value));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// The trampolines: cast, call one method, return. Static members of a friend struct
// so that they can reach the session's private methods.
struct Http2Callbacks {
  static Http2Session* Self(void* user_data) {
    return static_cast<Http2Session*>(user_data);
  }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame,
                            void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;  // trailers: their fields are ignored
    }
    return Self(user_data)->OnBeginHeaders(frame->hd.stream_id);
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame,
                      const uint8_t* name, size_t name_len, const uint8_t* value,
                      size_t value_len, uint8_t /*flags*/, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;
    }
    return Self(user_data)->OnHeader(
        frame->hd.stream_id,
        std::string_view(reinterpret_cast<const char*>(name), name_len),
        std::string_view(reinterpret_cast<const char*>(value), value_len));
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame,
                         void* user_data) {
    Http2Session* self = Self(user_data);
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          return self->OnHeadersComplete(frame->hd.stream_id, end_stream);
        }
        // Trailers: only their END_STREAM matters.
        return end_stream ? self->OnBodyEnded(frame->hd.stream_id) : 0;
      case NGHTTP2_DATA:
        return end_stream ? self->OnBodyEnded(frame->hd.stream_id) : 0;
      case NGHTTP2_RST_STREAM:
        return self->OnRstStream(frame->hd.stream_id);
      default:
        return 0;
    }
  }

  static int OnInvalidFrameRecv(nghttp2_session*, const nghttp2_frame* frame,
                                int /*lib_error_code*/, void* user_data) {
    return Self(user_data)->OnInvalidFrame(frame->hd.stream_id);
  }

  static int OnDataChunkRecv(nghttp2_session*, uint8_t /*flags*/, int32_t stream_id,
                             const uint8_t* data, size_t len, void* user_data) {
    return Self(user_data)->OnDataChunk(
        stream_id, std::string_view(reinterpret_cast<const char*>(data), len));
  }

  static int OnFrameSend(nghttp2_session*, const nghttp2_frame* frame,
                         void* user_data) {
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      return Self(user_data)->OnEndStreamSent(frame->hd.stream_id);
    }
    return 0;
  }

  // May destroy the stream's Http2Stream (not the session).
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data) {
    return Self(user_data)->OnStreamClose(stream_id, error_code);
  }

  static ssize_t ReadResponseBody(nghttp2_session*, int32_t stream_id, uint8_t* buf,
                                  size_t length, uint32_t* data_flags,
                                  nghttp2_data_source* /*source*/, void* user_data) {
    return Self(user_data)->ReadResponseBody(stream_id, buf, length, data_flags);
  }

  // Built once for the process; nghttp2 copies the table into each session.
  static const nghttp2_session_callbacks* Table() {
    static const nghttp2_session_callbacks* const table = []() -> nghttp2_session_callbacks* {
      nghttp2_session_callbacks* callbacks = nullptr;
      if (nghttp2_session_callbacks_new(&callbacks) != 0) return callbacks;
      nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks,
                                                              &OnBeginHeaders);
      nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
      nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrameRecv);
      nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
          callbacks, &OnInvalidFrameRecv);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks,
                                                                &OnDataChunkRecv);
      nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &OnFrameSend);
      nghttp2_session_callbacks_set_on_stream_close_callback(callbacks,
                                                             &OnStreamClose);
      return callbacks;
    }();
    return table;
  }
};

void Http2Session::SessionDeleter::operator()(nghttp2_session* session) const {
  nghttp2_session_del(session);
}

// --- Creation ------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Http2Session>> Http2Session::Create(
    ConnectionIo* io, RequestHandler* handler, const Http2Options& options) {
  std::unique_ptr<Http2Session> session(new Http2Session(io, handler, options));
  if (absl::Status status = session->Init(); !status.ok()) return status;
  // The server preface (SETTINGS) goes out at once; the client's may still be on
  // its way.
  ++session->depth_;
  session->Flush();
  --session->depth_;
  return session;
}

absl::StatusOr<std::unique_ptr<Http2Session>> Http2Session::CreateFromUpgrade(
    ConnectionIo* io, RequestHandler* handler, const Http2Options& options,
    std::string_view http2_settings, const RequestHead& head) {
  std::unique_ptr<Http2Session> session(new Http2Session(io, handler, options));
  if (absl::Status status = session->Init(); !status.ok()) return status;
  if (absl::Status status = session->InitUpgrade(http2_settings, head); !status.ok()) {
    return status;
  }
  return session;
}

Http2Session::Http2Session(ConnectionIo* io, RequestHandler* handler,
                           const Http2Options& options)
    : io_(io),
      handler_(handler),
      options_(NormalizeTimeouts(options)),
      alive_(std::make_shared<Http2Session*>(this)),
      reset_tokens_(options.reset_burst) {
  if (io_->loop() != nullptr && (options_.header_timeout != absl::InfiniteDuration() ||
                                 options_.idle_timeout != absl::InfiniteDuration() ||
                                 options_.body_timeout != absl::InfiniteDuration() ||
                                 options_.send_timeout != absl::InfiniteDuration())) {
    timer_ = std::make_unique<WakeupTimer>(io_->loop(), [this] { OnTimer(); });
    idle_since_ = Now();
    WakeBy(idle_since_ + options_.idle_timeout);
  }
}

Http2Session::~Http2Session() { ReleaseStreams(); }

absl::Status Http2Session::Init() {
  const nghttp2_session_callbacks* callbacks = Http2Callbacks::Table();
  if (callbacks == nullptr) return absl::ResourceExhaustedError("nghttp2 callbacks");

  nghttp2_option* raw_option = nullptr;
  if (int rv = nghttp2_option_new(&raw_option); rv != 0) {
    return ToStatus(rv, "nghttp2_option_new");
  }
  std::unique_ptr<nghttp2_option, OptionDeleter> option(raw_option);
  // Windows reopen only as exchanges hand bytes on (Responder::ConsumeBody).
  nghttp2_option_set_no_auto_window_update(option.get(), 1);
  // We keep no priority tree; closed streams need not linger for it.
  nghttp2_option_set_no_closed_streams(option.get(), 1);
  // Response headers are sent without HPACK's dynamic table. Every response carries
  // a value of its own (x-upload-id; consumers add more), and nghttp2 keeps the
  // entries of one name on one hash chain that it walks for every header it encodes:
  // with the table full of upload ids that walk took ~8% of the server's CPU on small
  // uploads. The cost is a few bytes per response.
  nghttp2_option_set_max_deflate_dynamic_table_size(option.get(), 0);
  nghttp2_option_set_max_outbound_ack(option.get(), options_.max_outbound_ack);
  nghttp2_option_set_max_settings(option.get(), options_.max_settings);
  nghttp2_option_set_max_continuations(option.get(), options_.max_continuations);
  // nghttp2's own rapid-reset limiter (GOAWAY INTERNAL_ERROR) only as a backstop:
  // ours below is stricter and answers ENHANCE_YOUR_CALM.
  nghttp2_option_set_stream_reset_rate_limit(option.get(),
                                             uint64_t{options_.reset_burst} * 2,
                                             uint64_t{options_.reset_rate_per_second} * 2);

  nghttp2_session* raw = nullptr;
  if (int rv = nghttp2_session_server_new2(&raw, callbacks, this, option.get());
      rv != 0) {
    return ToStatus(rv, "nghttp2_session_server_new2");
  }
  session_.reset(raw);

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
       static_cast<uint32_t>(options_.stream_window_size)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options_.max_header_list_size},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  if (int rv = nghttp2_submit_settings(session_.get(), NGHTTP2_FLAG_NONE, settings,
                                       std::size(settings));
      rv != 0) {
    return ToStatus(rv, "nghttp2_submit_settings");
  }
  if (options_.connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    if (int rv = nghttp2_session_set_local_window_size(
            session_.get(), NGHTTP2_FLAG_NONE, 0, options_.connection_window_size);
        rv != 0) {
      return ToStatus(rv, "nghttp2_session_set_local_window_size");
    }
  }
  return absl::OkStatus();
}

absl::Status Http2Session::InitUpgrade(std::string_view http2_settings,
                                       const RequestHead& head) {
  if ((head.content_length.has_value() && *head.content_length > 0) ||
      head.Header("transfer-encoding").has_value()) {
    return absl::FailedPreconditionError(
        "h2c upgrade of a request with a body; serve it over HTTP/1.1");
  }
  std::string payload;
  if (!absl::WebSafeBase64Unescape(AbslView(http2_settings), &payload)) {
    return absl::InvalidArgumentError("HTTP2-Settings is not base64url");
  }
  RETURN_IF_ERROR(CheckUpgradeSettings(payload, options_.max_settings));
  const bool head_request = head.method == "HEAD";
  if (int rv = nghttp2_session_upgrade2(session_.get(),
                                        reinterpret_cast<const uint8_t*>(payload.data()),
                                        payload.size(), head_request, nullptr);
      rv != 0) {
    return ToStatus(rv, "nghttp2_session_upgrade2");
  }

  // Committed: from here on the connection speaks HTTP/2.
  io_->Write(kSwitchingProtocols);
  ++depth_;
  auto stream = std::make_unique<Http2Stream>(this, 1);
  Http2Stream* s = stream.get();
  streams_.emplace(1, std::move(stream));
  s->head_ = head;
  s->head_.protocol = "HTTP/2";
  s->head_.remote_address = io_->remote_address();
  s->head_request_ = head_request;
  // The upgraded request is half-closed (remote): its (empty) body has ended.
  s->body_ = Http2Stream::BodyState::kEnded;
  StartExchange(s, /*end_stream=*/true);
  Flush();
  --depth_;
  return absl::OkStatus();
}

// --- ProtocolSession -----------------------------------------------------------

absl::StatusOr<size_t> Http2Session::OnRead(std::string_view data) {
  if (closing_) return data.size();  // going away: nothing more is parsed
  if (io_->write_blocked()) {
    // The client is not reading what we send (responses, ACKs): stop reading it
    // until it does, so that its requests cannot pile up output without bound.
    if (!reading_paused_) {
      reading_paused_ = true;
      io_->PauseReading();
    }
    return 0;
  }

  ++depth_;
  // Streams may be destroyed in here (OnStreamClose); the session never is.
  const ssize_t rv = nghttp2_session_mem_recv(
      session_.get(), reinterpret_cast<const uint8_t*>(data.data()), data.size());
  if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
    // Too many ACKs queued (SETTINGS/PING flood), or CONTINUATION frames past the
    // cap: say why, then go. (nghttp2 reports both as fatal without a GOAWAY.)
    nghttp2_session_terminate_session(session_.get(), NGHTTP2_ENHANCE_YOUR_CALM);
    Flush();
    --depth_;
    Close(/*graceful=*/true);
    return data.size();
  }
  if (rv < 0) {
    // Fatal (bad client magic, callback failure, out of memory): protocol errors
    // that deserve a GOAWAY are handled inside nghttp2 and do not come here.
    --depth_;
    closing_ = true;
    return ToStatus(static_cast<int>(rv), "nghttp2_session_mem_recv");
  }
  Flush();
  --depth_;
  return static_cast<size_t>(rv);
}

void Http2Session::OnWritable() {
  if (closing_) return;
  ++depth_;
  Flush();
  --depth_;
  if (reading_paused_ && !closing_ && !io_->write_blocked()) {
    reading_paused_ = false;
    // The clients could not send while we did not read: their clocks start over.
    for (auto& [id, stream] : streams_) Touch(stream.get());
    io_->ResumeReading();  // last: the connection may offer buffered input now
  }
}

void Http2Session::OnClose() {
  closing_ = true;
  ReleaseStreams();
}

void Http2Session::StartDrain() {
  if (closing_ || draining_) return;
  draining_ = true;
  ++depth_;
  // Streams up to the last one we processed finish; later ones are refused. nghttp2
  // stops wanting to read once the GOAWAY is out and no stream is left, and Flush()
  // then closes the connection.
  nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_.get()),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  Flush();
  --depth_;
}

// --- Requests --------------------------------------------------------------------

int Http2Session::OnBeginHeaders(int32_t stream_id) {
  auto stream = std::make_unique<Http2Stream>(this, stream_id);
  stream->head_.protocol = "HTTP/2";
  stream->head_.remote_address = io_->remote_address();
  Http2Stream* s = stream.get();
  streams_.insert_or_assign(stream_id, std::move(stream));
  Touch(s);
  return 0;
}

int Http2Session::OnHeader(int32_t stream_id, std::string_view name,
                           std::string_view value) {
  Http2Stream* s = FindStream(stream_id);
  if (s == nullptr || s->header_too_large_) return 0;
  // Enforce our SETTINGS_MAX_HEADER_LIST_SIZE ourselves (nghttp2 only advertises
  // it) and cap the field count, which bounds tiny-field CONTINUATION floods too.
  s->header_bytes_ += name.size() + value.size() + 32;
  ++s->header_fields_;
  if (s->header_bytes_ > options_.max_header_list_size ||
      s->header_fields_ > options_.max_header_fields) {
    s->header_too_large_ = true;
    // The request is refused: free what it holds but what the access log shows
    // (the pseudo-headers come first, so method and path are in).
    s->head_.headers = {};
    s->head_.query = {};
    s->head_.content_type = {};
    s->authority_ = {};
    return 0;
  }
  RequestHead& head = s->head_;
  if (!name.empty() && name.front() == ':') {
    // nghttp2 has validated the pseudo-headers (HTTP messaging is on): a request
    // without :method/:path/:scheme never reaches OnHeadersComplete.
    if (name == ":method") {
      head.method = value;
    } else if (name == ":path") {
      const size_t q = value.find('?');
      head.path = value.substr(0, q);
      head.query = q == std::string_view::npos ? "" : value.substr(q + 1);
    } else if (name == ":authority") {
      s->authority_ = value;
    }
    return 0;
  }
  if (name == "content-length") {
    uint64_t length = 0;
    if (absl::SimpleAtoi(AbslView(value), &length)) head.content_length = length;
  } else if (name == "content-type") {
    head.content_type = value;
  } else if (name == "cookie") {
    // HTTP/2 may split cookies into crumbs (RFC 9113 §8.2.3); rejoin them so the
    // head looks as it would over HTTP/1.1.
    for (auto& [key, existing] : head.headers) {
      if (key == "cookie") {
        absl::StrAppend(&existing, "; ", AbslView(value));
        return 0;
      }
    }
  }
  if (head.headers.capacity() == 0) head.headers.reserve(16);  // one allocation for most
  head.headers.emplace_back(name, value);
  return 0;
}

int Http2Session::OnHeadersComplete(int32_t stream_id, bool end_stream) {
  Http2Stream* s = FindStream(stream_id);
  if (s == nullptr) return 0;
  s->head_done_ = true;
  // Marked before Start so that a response from inside Start does not treat the
  // (absent) body as still arriving.
  if (end_stream) s->body_ = Http2Stream::BodyState::kEnded;
  if (s->header_too_large_) {
    // 431 from the session itself: no handler sees a request it could not read.
    HttpResponse response = HttpResponse::Error(431, "request header fields too large");
    // Refused as its header block ends, which (CONTINUATION floods aside) is as it
    // begins: no time worth logging.
    handler_->OnRejected(s->head_, response, absl::ZeroDuration());
    s->Respond(std::move(response));
    return 0;
  }
  RequestHead& head = s->head_;
  if (!s->authority_.empty() && !head.Header("host").has_value()) {
    head.headers.emplace_back("host", std::move(s->authority_));
  }
  s->head_request_ = head.method == "HEAD";
  StartExchange(s, end_stream);
  Touch(s);  // the body clock starts now, if a body is expected
  return 0;
}

void Http2Session::StartExchange(Http2Stream* s, bool end_stream) {
  s->exchange_ = handler_->Start(std::move(s->head_), s, io_->loop());
  s->head_ = RequestHead{};  // moved from: the handler has it
  if (end_stream && s->exchange_ != nullptr) s->exchange_->OnBodyEnd();
}

int Http2Session::OnDataChunk(int32_t stream_id, std::string_view data) {
  Http2Stream* s = FindStream(stream_id);
  // Progress: a later deadline, so no timer work (WakeupTimer checks lazily).
  if (s != nullptr) s->progress_at_ = Now();
  if (s == nullptr || s->closed_ || s->exchange_ == nullptr ||
      s->body_ != Http2Stream::BodyState::kReceiving) {
    // Nobody wants these bytes: give both windows back at once.
    Consume(stream_id, data.size());
    if (s != nullptr && s->body_ == Http2Stream::BodyState::kDiscarding) {
      s->discarded_ += data.size();
      MaybeResetDiscarding(s);
    }
    return 0;
  }
  s->unconsumed_ += data.size();
  absl::Status status = s->exchange_->OnBodyData(data);
  if (!status.ok() && s->body_ == Http2Stream::BodyState::kReceiving) {
    // The exchange wants no more; it should have responded already, but a stream
    // must never be left without an answer.
    if (!s->responded_) {
      s->Respond(HttpResponse::Error(HttpStatusFromStatus(status), StdView(status.message())));
    } else {
      DiscardBody(s);
    }
  }
  return 0;
}

int Http2Session::OnBodyEnded(int32_t stream_id) {
  Http2Stream* s = FindStream(stream_id);
  if (s == nullptr || s->body_ != Http2Stream::BodyState::kReceiving) return 0;
  s->body_ = Http2Stream::BodyState::kEnded;
  if (s->exchange_ != nullptr) s->exchange_->OnBodyEnd();
  return 0;
}

int Http2Session::OnRstStream(int32_t /*stream_id*/) {
  // The stream itself is released in OnStreamClose, which nghttp2 calls next.
  if (ChargeReset()) {
    nghttp2_session_terminate_session(session_.get(), NGHTTP2_ENHANCE_YOUR_CALM);
  }
  return 0;
}

int Http2Session::OnInvalidFrame(int32_t /*stream_id*/) {
  // Client-provoked stream errors make the server reset streams on its behalf
  // ("MadeYouReset"); they draw from the same budget as the client's own resets.
  if (ChargeReset()) {
    nghttp2_session_terminate_session(session_.get(), NGHTTP2_ENHANCE_YOUR_CALM);
  }
  return 0;
}

int Http2Session::OnEndStreamSent(int32_t stream_id) {
  Http2Stream* s = FindStream(stream_id);
  if (s == nullptr) return 0;
  s->response_sent_ = true;
  MaybeResetDiscarding(s);
  Touch(s);  // a client still sending after the response gets the body timeout
  return 0;
}

void Http2Session::MaybeResetDiscarding(Http2Stream* s) {
  // A complete response went out before the request body ended. Past the discard
  // budget, ask the client to stop sending without calling it an error (RFC 9113
  // §8.1); within it, keep reading so that clients that mishandle the reset still
  // finish and see the response.
  const uint64_t budget = options_.max_discard_after_response;
  if (!s->response_sent_ || s->reset_sent_) return;
  if (budget > 0 && s->discarded_ < budget && !s->timed_out_) return;
  if (nghttp2_session_get_stream_remote_close(session_.get(), s->id()) != 0) return;
  s->reset_sent_ = true;
  nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, s->id(), NGHTTP2_NO_ERROR);
}

int Http2Session::OnStreamClose(int32_t stream_id, uint32_t /*error_code*/) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return 0;
  std::unique_ptr<Http2Stream> stream = std::move(it->second);
  streams_.erase(it);
  stream->closed_ = true;
  // Bytes the exchange never consumed still hold the connection window.
  if (stream->unconsumed_ > 0) {
    nghttp2_session_consume_connection(session_.get(), stream->unconsumed_);
    stream->unconsumed_ = 0;
  }
  if (stream->exchange_ != nullptr) stream->exchange_->OnStreamClosed();
  if (streams_.empty() && timer_ != nullptr) {
    idle_since_ = Now();
    WakeBy(idle_since_ + options_.idle_timeout);
  }
  return 0;
  // `stream` (the Responder) is destroyed here; the exchange was told above.
}

// --- Responses -------------------------------------------------------------------

void Http2Session::SubmitResponse(Http2Stream* s) {
  if (s->body_ == Http2Stream::BodyState::kReceiving) DiscardBody(s);
  HttpResponse& response = *s->response_;
  if (response.status < 200 || response.status > 999) response.status = 500;

  const std::string status = std::to_string(response.status);
  const bool has_body = StatusHasBody(response.status);
  std::vector<std::string> names;  // lower-cased copies, alive until submit returns
  names.reserve(response.headers.size());
  std::vector<nghttp2_nv> nva;
  nva.reserve(response.headers.size() + 2);
  static const std::string kStatus = ":status";
  static const std::string kContentLength = "content-length";
  nva.push_back(MakeNv(kStatus, status));
  bool has_content_length = false;
  for (const auto& [name, value] : response.headers) {
    std::string& lower = names.emplace_back(absl::AsciiStrToLower(name));
    if (lower.empty() || lower.front() == ':' || IsConnectionSpecific(lower)) continue;
    if (lower == kContentLength) has_content_length = true;
    nva.push_back(MakeNv(lower, value));
  }
  const std::string length = std::to_string(response.body.size());
  if (has_body && !has_content_length) nva.push_back(MakeNv(kContentLength, length));

  nghttp2_data_provider provider{};
  provider.read_callback = &Http2Callbacks::ReadResponseBody;
  const bool send_body = has_body && !s->head_request_ && !response.body.empty();
  if (!send_body) response.body.clear();
  // nghttp2 copies the header fields; the body is read later from s->response_.
  s->response_progress_at_ = Now();
  const int rv = nghttp2_submit_response(session_.get(), s->id(), nva.data(),
                                         nva.size(), send_body ? &provider : nullptr);
  if (rv != 0) {
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, s->id(),
                              NGHTTP2_INTERNAL_ERROR);
    return;
  }
  // Checked a send timeout from now, whether the client's window opens or not.
  if (send_body) WakeBy(s->response_progress_at_ + options_.send_timeout);
}

ssize_t Http2Session::ReadResponseBody(int32_t stream_id, uint8_t* buf, size_t length,
                                       uint32_t* data_flags) {
  Http2Stream* s = FindStream(stream_id);
  if (s == nullptr || !s->response_.has_value()) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets just this stream
  }
  const std::string& body = s->response_->body;
  const size_t n = std::min(length, body.size() - s->response_offset_);
  std::memcpy(buf, body.data() + s->response_offset_, n);
  s->response_offset_ += n;
  if (n > 0) s->response_progress_at_ = Now();
  if (s->response_offset_ == body.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

// --- Flow control ----------------------------------------------------------------

void Http2Session::Consume(int32_t stream_id, size_t bytes) {
  if (bytes == 0 || !session_) return;
  if (nghttp2_is_fatal(nghttp2_session_consume(session_.get(), stream_id, bytes))) {
    fatal_ = true;
  }
}

void Http2Session::ConsumeStream(int32_t stream_id, size_t bytes) {
  if (bytes == 0 || !session_) return;
  if (nghttp2_is_fatal(
          nghttp2_session_consume_stream(session_.get(), stream_id, bytes))) {
    fatal_ = true;
  }
}

void Http2Session::ConsumeConnection(size_t bytes) {
  if (bytes == 0 || !session_) return;
  if (nghttp2_is_fatal(nghttp2_session_consume_connection(session_.get(), bytes))) {
    fatal_ = true;
  }
}

void Http2Session::DiscardBody(Http2Stream* s) {
  s->body_ = Http2Stream::BodyState::kDiscarding;
  Touch(s);
  // Whatever the exchange still holds, and whatever the pause held back, is given
  // back now, so a stream we stopped listening to never pins the connection window.
  Consume(s->id(), std::exchange(s->unconsumed_, 0));
  ConsumeStream(s->id(), std::exchange(s->withheld_, 0));
}

// --- Floods and closing ----------------------------------------------------------

bool Http2Session::ChargeReset() {
  EventLoop* loop = io_->loop();
  const absl::Time now = loop != nullptr ? loop->now() : absl::Now();
  if (reset_refilled_at_ != absl::InfinitePast() && now > reset_refilled_at_) {
    reset_tokens_ =
        std::min<double>(options_.reset_burst,
                         reset_tokens_ + absl::ToDoubleSeconds(now - reset_refilled_at_) *
                                             options_.reset_rate_per_second);
  }
  reset_refilled_at_ = now;
  if (reset_tokens_ < 1) return true;
  reset_tokens_ -= 1;
  return false;
}

void Http2Session::Close(bool graceful) {
  if (closing_) return;
  closing_ = true;
  if (graceful) {
    io_->CloseAfterWrite();
  } else {
    io_->CloseNow();
  }
}

void Http2Session::Flush() {
  if (closing_ || !session_) return;
  if (fatal_) {
    Close(/*graceful=*/false);
    return;
  }
  std::string& batch = write_batch_;
  while (!io_->write_blocked()) {
    // Gather frames into one write; nghttp2's pointer is valid until the next call,
    // hence the copy.
    bool more = true;
    while (batch.size() < kWriteBatch) {
      const uint8_t* data = nullptr;
      // Streams may be destroyed in here (OnStreamClose after their last frame).
      const ssize_t n = nghttp2_session_mem_send(session_.get(), &data);
      if (n < 0) {
        fatal_ = true;
        more = false;
        break;
      }
      if (n == 0) {
        more = false;
        break;
      }
      batch.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (!batch.empty()) io_->Write(batch);
    batch.clear();
    if (!more) break;
  }
  if (batch.capacity() > kRetainedWriteBatch) std::string().swap(batch);
  if (fatal_) {
    Close(/*graceful=*/false);
    return;
  }
  // Both sides done (GOAWAY exchanged or sent after a flood, no stream left).
  if (nghttp2_session_want_read(session_.get()) == 0 &&
      nghttp2_session_want_write(session_.get()) == 0) {
    Close(/*graceful=*/true);
  }
}

void Http2Session::RequestFlush() {
  // Inside the session (a callback, OnRead, OnWritable): the outermost call flushes
  // as it unwinds.
  if (depth_ > 0 || closing_ || flush_posted_) return;
  EventLoop* loop = io_->loop();
  if (loop == nullptr) {
    // No loop to defer to (only in tests without one): flush now.
    ++depth_;
    Flush();
    --depth_;
    return;
  }
  // From outside (an exchange answering from a posted task): flushing here could
  // close streams and call back into exchanges from inside their own Respond, so
  // defer it to one task of its own. The task holds only a weak token.
  flush_posted_ = true;
  loop->Post([token = std::weak_ptr<Http2Session*>(alive_)]() {
    std::shared_ptr<Http2Session*> self = token.lock();
    if (self == nullptr) return;  // the session is gone
    Http2Session* session = *self;
    session->flush_posted_ = false;
    session->OnWritable();
  });
}

// --- Timeouts --------------------------------------------------------------------

absl::Time Http2Session::Now() const {
  EventLoop* loop = io_->loop();
  return loop != nullptr ? loop->now() : absl::Now();
}

void Http2Session::Touch(Http2Stream* s) {
  if (timer_ == nullptr) return;
  s->progress_at_ = Now();
  StreamWait wait;
  WakeBy(StreamDeadline(*s, &wait));
}

void Http2Session::WakeBy(absl::Time deadline) {
  if (timer_ != nullptr) timer_->WakeBy(deadline);
}

absl::Time Http2Session::StreamDeadline(const Http2Stream& s, StreamWait* wait) const {
  *wait = StreamWait::kNone;
  if (s.closed_) return absl::InfiniteFuture();
  if (!s.head_done_) {
    *wait = StreamWait::kHeader;
    return s.progress_at_ + options_.header_timeout;
  }
  if (s.responded_ && !s.response_sent_ && !s.response_->body.empty()) {
    // OnTimer tells a window the client keeps shut from DATA that is on its way.
    *wait = StreamWait::kResponse;
    return s.response_progress_at_ + options_.send_timeout;
  }
  const int32_t id = s.id();
  switch (s.body_) {
    case Http2Stream::BodyState::kEnded:
      return absl::InfiniteFuture();  // waiting for the handler, whose timeouts apply
    case Http2Stream::BodyState::kDiscarding:
      // An early response is out and the client goes on sending, slowly or not at
      // all: it gets the body timeout before the stream is reset.
      if (!s.response_sent_ || s.reset_sent_ ||
          nghttp2_session_get_stream_remote_close(session_.get(), id) != 0) {
        return absl::InfiniteFuture();
      }
      *wait = StreamWait::kDiscard;
      return s.progress_at_ + options_.body_timeout;
    case Http2Stream::BodyState::kReceiving:
      break;
  }
  // Waiting on us: paused for backpressure, or a window we have not reopened.
  if (s.exchange_ == nullptr || s.pause_count_ > 0 ||
      nghttp2_session_get_stream_local_window_size(session_.get(), id) <= 0 ||
      nghttp2_session_get_local_window_size(session_.get()) <= 0) {
    return absl::InfiniteFuture();
  }
  *wait = StreamWait::kBody;
  return s.progress_at_ + options_.body_timeout;
}

bool Http2Session::SendWindowClosed(int32_t stream_id) const {
  return nghttp2_session_get_stream_remote_window_size(session_.get(), stream_id) <= 0 ||
         nghttp2_session_get_remote_window_size(session_.get()) <= 0;
}

void Http2Session::OnTimer() {
  // Reading paused by us: nobody is late. OnWritable restarts the clocks.
  if (closing_ || !session_ || reading_paused_) return;
  const absl::Time now = Now();
  absl::Time next = absl::InfiniteFuture();
  ++depth_;
  if (streams_.empty()) {
    const absl::Time idle_deadline = idle_since_ + options_.idle_timeout;
    if (idle_deadline <= now) {
      // Nothing in flight to lose: GOAWAY, then Flush() closes once it is out.
      nghttp2_session_terminate_session(session_.get(), NGHTTP2_NO_ERROR);
    } else {
      next = idle_deadline;
    }
  }
  // Acting on a stream never destroys one here (frames are only queued), so
  // iterating while acting is safe.
  for (auto& [id, stream] : streams_) {
    Http2Stream* s = stream.get();
    StreamWait wait;
    const absl::Time deadline = StreamDeadline(*s, &wait);
    if (deadline > now) {
      next = std::min(next, deadline);
      continue;
    }
    switch (wait) {
      case StreamWait::kNone:
        break;
      case StreamWait::kHeader:
        // A header block never finished: no other frame may come on this connection.
        nghttp2_session_terminate_session(session_.get(), NGHTTP2_ENHANCE_YOUR_CALM);
        break;
      case StreamWait::kDiscard:
        s->reset_sent_ = true;
        nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, id,
                                  NGHTTP2_NO_ERROR);
        break;
      case StreamWait::kResponse:
        if (SendWindowClosed(id)) {
          nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
          break;
        }
        // Its DATA is waiting for the socket (the connection's send timeout) or its
        // turn: look again later.
        s->response_progress_at_ = now;
        next = std::min(next, now + options_.send_timeout);
        break;
      case StreamWait::kBody:
        // The body stalled: answer 408 (which stops delivering the body), then reset
        // the stream once the response is out (MaybeResetDiscarding).
        s->timed_out_ = true;
        HttpResponse response = HttpResponse::Error(408, "request body timeout");
        if (!s->responded_ && s->exchange_ != nullptr) {
          s->exchange_->OnSessionResponded(response);
        }
        s->Respond(std::move(response));
        break;
    }
    if (wait == StreamWait::kHeader) break;
  }
  Flush();
  --depth_;
  WakeBy(next);
}

Http2Stream* Http2Session::FindStream(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void Http2Session::ReleaseStreams() {
  // Move them out first: an exchange told here may touch other Responders, which
  // must all already be closed (no-ops).
  absl::flat_hash_map<int32_t, std::unique_ptr<Http2Stream>> streams;
  streams.swap(streams_);
  for (auto& [id, stream] : streams) stream->closed_ = true;
  for (auto& [id, stream] : streams) {
    if (stream->exchange_ != nullptr) stream->exchange_->OnStreamClosed();
  }
  // All streams are destroyed here.
}

}  // namespace spillway
