#include "server/http/http1_session.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/string_view_compat.h"
#include "server/net/event_loop.h"

namespace spillway {

// One request on the connection and its Responder.
class Http1Stream final : public Responder {
 public:
  Http1Stream(Http1Session* session, RequestHead head, bool keep_alive)
      : session_(session), head_(std::move(head)), keep_alive_(keep_alive) {}

  // Responder.
  void Respond(HttpResponse response) override {
    if (closed_ || response_.has_value()) return;
    response_ = std::move(response);
    session_->OnResponded(this);
  }
  void PauseBody() override {
    if (closed_) return;
    ++pauses_;
    session_->PauseBody(this);
  }
  void ResumeBody() override {
    if (closed_ || pauses_ == 0) return;
    --pauses_;
    session_->ResumeBody(this);
  }
  void ConsumeBody(size_t) override {}  // TCP flow control is the socket itself

 private:
  friend class Http1Session;

  Http1Session* const session_;
  RequestHead head_;  // until the handler takes it (StartRequest)
  std::shared_ptr<Exchange> exchange_;  // null for a parse-error response
  bool keep_alive_;
  bool head_request_ = false;  // a HEAD request: the response goes without its body
  bool expect_continue_ = false;
  bool continue_sent_ = false;
  std::optional<HttpResponse> response_;
  bool response_written_ = false;
  bool http10_ = false;          // an HTTP/1.0 request (keep-alive must be explicit)
  bool has_body_ = false;        // Content-Length > 0 or chunked
  bool body_done_ = false;       // the whole body was read, or abandoned
  bool body_abandoned_ = false;  // responded (or refused) before the body ended
  int pauses_ = 0;               // PauseBody calls not yet resumed
  bool closed_ = false;
};

namespace {

constexpr std::string_view k100Continue = "HTTP/1.1 100 Continue\r\n\r\n";

// Response headers the session writes itself; the handler's copies are dropped.
bool IsFramingHeader(std::string_view name) {
  return name == "content-length" || name == "transfer-encoding" ||
         name == "connection" || name == "keep-alive";
}

std::string SerializeResponse(const HttpResponse& response, bool head_request,
                              bool close, bool http10_keep_alive) {
  const char* reason = http_status_str(static_cast<http_status>(response.status));
  // One allocation for the whole response: room for the fixed lines, every header
  // and the body.
  size_t size = 96 + response.body.size();
  for (const auto& [name, value] : response.headers) {
    size += name.size() + value.size() + 4;
  }
  std::string out;
  out.reserve(size);
  absl::StrAppend(&out, "HTTP/1.1 ", response.status, " ", reason, "\r\n");
  for (const auto& [name, value] : response.headers) {
    if (IsFramingHeader(name)) continue;
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  const bool no_body = response.status == 204 || response.status == 304 ||
                       (response.status >= 100 && response.status < 200);
  if (!no_body) absl::StrAppend(&out, "content-length: ", response.body.size(), "\r\n");
  if (close) {
    out += "connection: close\r\n";
  } else if (http10_keep_alive) {
    out += "connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head_request && !no_body) out += response.body;
  return out;
}

Http1Options NormalizeTimeouts(Http1Options options) {
  options.header_timeout = TimeoutOrInfinite(options.header_timeout);
  options.idle_timeout = TimeoutOrInfinite(options.idle_timeout);
  options.body_timeout = TimeoutOrInfinite(options.body_timeout);
  return options;
}

bool HasToken(std::string_view list, std::string_view token) {
  for (absl::string_view item : absl::StrSplit(AbslView(list), ',')) {
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(item), AbslView(token))) {
      return true;
    }
  }
  return false;
}

}  // namespace

// libhttp-parser calls these; each finds the session and calls one method.
struct Http1Callbacks {
  static Http1Session* Session(http_parser* parser) {
    return static_cast<Http1Session*>(parser->data);
  }
  static int MessageBegin(http_parser* p) { return Session(p)->OnMessageBegin(); }
  static int Url(http_parser* p, const char* at, size_t n) {
    return Session(p)->OnUrl({at, n});
  }
  static int HeaderField(http_parser* p, const char* at, size_t n) {
    return Session(p)->OnHeaderField({at, n});
  }
  static int HeaderValue(http_parser* p, const char* at, size_t n) {
    return Session(p)->OnHeaderValue({at, n});
  }
  static int HeadersComplete(http_parser* p) { return Session(p)->OnHeadersComplete(); }
  static int Body(http_parser* p, const char* at, size_t n) {
    return Session(p)->OnBody({at, n});
  }
  static int MessageComplete(http_parser* p) { return Session(p)->OnMessageComplete(); }

  static const http_parser_settings& Table() {
    static const http_parser_settings table = [] {
      http_parser_settings s;
      http_parser_settings_init(&s);
      s.on_message_begin = &MessageBegin;
      s.on_url = &Url;
      s.on_header_field = &HeaderField;
      s.on_header_value = &HeaderValue;
      s.on_headers_complete = &HeadersComplete;
      s.on_body = &Body;
      s.on_message_complete = &MessageComplete;
      return s;
    }();
    return table;
  }
};

Http1Session::Http1Session(ConnectionIo* io, RequestHandler* handler,
                           const Http1Options& options, H2cUpgrade upgrade)
    : io_(io),
      handler_(handler),
      options_(NormalizeTimeouts(options)),
      upgrade_(std::move(upgrade)),
      alive_(std::make_shared<Http1Session*>(this)) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  if (options_.draining != nullptr && options_.draining->load()) draining_ = true;
  if (io_->loop() != nullptr &&
      (options_.header_timeout != absl::InfiniteDuration() ||
       options_.idle_timeout != absl::InfiniteDuration() ||
       options_.body_timeout != absl::InfiniteDuration())) {
    timer_ = std::make_unique<WakeupTimer>(io_->loop(), [this] { OnTimer(); });
    idle_since_ = Now();
    ArmTimer();
  }
}

Http1Session::~Http1Session() {
  // Normally OnClose() already closed every stream; after an h2c Upgrade the streams
  // are done (the upgraded request belongs to HTTP/2).
  if (!closed_) OnClose();
}

absl::StatusOr<size_t> Http1Session::OnRead(std::string_view data) {
  if (closed_ || replaced_) return data.size();
  ++depth_;
  size_t total = 0;
  while (total < data.size() && !stop_parsing_ && !pipeline_paused_ && !write_paused_ &&
         (current_ == nullptr || current_->pauses_ == 0)) {
    if (chunked_.has_value()) {
      const size_t used = FeedChunked(data.substr(total));
      total += used;
      if (used == 0) break;  // needs more bytes
      continue;
    }
    executing_ = data.substr(total);
    if (head_scan_active_) ScanHead(executing_);
    const size_t n = http_parser_execute(&parser_, &Http1Callbacks::Table(),
                                         executing_.data(), executing_.size());
    total += n;
    const http_errno error = HTTP_PARSER_ERRNO(&parser_);
    if (error == HPE_PAUSED) {
      // A callback asked us to stop here (body paused, pipeline full, early reply).
      http_parser_pause(&parser_, 0);
      continue;
    }
    if (error != HPE_OK) {
      if (error_status_ != 0) {
        FailParse(error_status_,
                  error_message_ != nullptr  ? error_message_
                  : error_status_ == 431 ? "request header too large"
                                         : "malformed request");
      } else if (error == HPE_HEADER_OVERFLOW) {
        FailParse(431, "request header too large");
      } else {
        FailParse(400, absl::StrCat("malformed request: ", http_errno_name(error)));
      }
      break;
    }
    if (parser_.upgrade && stopped_after_upgrade_) {
      // libhttp-parser stops after an Upgrade request: the rest is another protocol.
      stopped_after_upgrade_ = false;
      if (TryH2cUpgrade()) {
        total = std::min(total, data.size());
        break;
      }
      // Not switching: go on reading HTTP/1.1 from a fresh parser state.
      http_parser_init(&parser_, HTTP_REQUEST);
      parser_.data = this;
      continue;
    }
    if (n == 0) break;
  }
  if (--depth_ == 0) {
    Flush();
    UpdateExpectedInput();
  }
  return total;
}

bool Http1Session::InCountedBody() const {
  const Http1Stream* s = current_;
  return !closed_ && !replaced_ && !in_head_ && s != nullptr && s->has_body_ &&
         !s->body_done_ && !s->body_abandoned_ && !chunked_.has_value();
}

void Http1Session::UpdateExpectedInput() {
  io_->ExpectInput(InCountedBody() ? parser_.content_length : 0);
}

std::span<char> Http1Session::InputBuffer() {
  if (!InCountedBody() || stop_parsing_ || pipeline_paused_ || write_paused_ ||
      current_->pauses_ > 0 || current_->exchange_ == nullptr) {
    return {};
  }
  // Not the body's last byte: libhttp-parser, paused right at a body's end (a full
  // stream queue), leaves that byte unconsumed and completes the message when it is
  // offered again, and by then its room may have gone to the consumer. Every byte
  // before it is consumed when offered, so in-place input is never left over.
  const std::span<char> room = current_->exchange_->BodyBuffer();
  return room.first(std::min<uint64_t>(room.size(), parser_.content_length - 1));
}

int Http1Session::OnMessageBegin() {
  in_head_ = true;
  head_started_ = Now();
  url_.clear();
  headers_.clear();
  last_was_value_ = false;
  header_bytes_ = 0;
  pending_upgrade_ = false;
  return 0;
}

bool Http1Session::CountHeaderBytes(size_t n) {
  header_bytes_ += n;
  if (header_bytes_ <= options_.max_header_bytes) return true;
  error_status_ = 431;
  return false;
}

int Http1Session::Refuse(int status, const char* message) {
  error_status_ = status;
  error_message_ = message;
  return -1;
}

void Http1Session::ScanHead(std::string_view bytes) {
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  while (p < end) {
    if (!head_scan_after_cr_ && !head_scan_after_lf_) {
      // Inside a line only CR and LF matter: skip to the first of them (two memchr
      // calls per line instead of a branch per byte).
      const char* lf = static_cast<const char*>(std::memchr(p, '\n', end - p));
      const char* line_end = lf != nullptr ? lf : end;
      const char* cr = static_cast<const char*>(std::memchr(p, '\r', line_end - p));
      p = cr != nullptr ? cr : line_end;
      if (p == end) return;
    }
    const char c = *p++;
    if (head_scan_after_cr_) {
      head_scan_after_cr_ = false;
      if (c != '\n') {
        head_fault_ = "malformed request: CR without LF in the head";
        head_scan_active_ = false;
        return;
      }
      if (head_scan_blank_line_) {  // CRLF CRLF: the head ends here
        head_scan_active_ = false;
        return;
      }
      head_scan_after_lf_ = true;
      continue;
    }
    if (c == '\r') {
      head_scan_after_cr_ = true;
      head_scan_blank_line_ = head_scan_after_lf_;
      head_scan_after_lf_ = false;
      continue;
    }
    if (head_scan_after_lf_) {
      if (c == ' ' || c == '\t') {
        head_fault_ = "malformed request: obsolete line folding";
        head_scan_active_ = false;
        return;
      }
      if (c == '\n') {  // a bare-LF empty line: the head ends here
        head_scan_active_ = false;
        return;
      }
    }
    head_scan_after_lf_ = c == '\n';
  }
}

int Http1Session::OnUrl(std::string_view data) {
  if (url_.empty()) {
    // The first piece of a head: scan it from here, ahead of the parser, to the end
    // of these bytes (OnRead scans the next ones while the head lasts).
    head_scan_active_ = true;
    head_scan_after_lf_ = false;
    head_scan_after_cr_ = false;
    head_fault_ = nullptr;
    const char* end = executing_.data() + executing_.size();
    if (data.data() >= executing_.data() && data.data() < end) {
      ScanHead(std::string_view(data.data(), static_cast<size_t>(end - data.data())));
    }
  }
  // The request line's method, spaces and version count too (roughly 16 bytes).
  if (!CountHeaderBytes(data.size() + (url_.empty() ? 16 : 0))) return -1;
  url_.append(data);
  return 0;
}

int Http1Session::OnHeaderField(std::string_view data) {
  // ": " and CRLF of each field count too.
  if (!CountHeaderBytes(data.size() + (last_was_value_ || headers_.empty() ? 4 : 0))) {
    return -1;
  }
  // libhttp-parser (non-strict) lets spaces into a field name and still frames the
  // body by "Transfer-Encoding :" or "Content-Length :", while the name we would keep
  // ("transfer-encoding ") escapes the smuggling checks and leaves the head saying "no
  // body". RFC 9112 §5.1: whitespace before the colon is a 400.
  if (data.find(' ') != std::string_view::npos) {
    return Refuse(400, "malformed request: whitespace in a header field name");
  }
  if (headers_.capacity() == 0) headers_.reserve(16);  // one allocation for most heads
  if (last_was_value_ || headers_.empty()) headers_.emplace_back();
  last_was_value_ = false;
  headers_.back().first.append(data);
  return 0;
}

int Http1Session::OnHeaderValue(std::string_view data) {
  if (!CountHeaderBytes(data.size())) return -1;
  last_was_value_ = true;
  headers_.back().second.append(data);
  return 0;
}

int Http1Session::OnHeadersComplete() {
  in_head_ = false;
  last_body_at_ = Now();
  RequestHead head;
  head.protocol = "HTTP/1.1";
  head.method = http_method_str(static_cast<http_method>(parser_.method));
  head.remote_address = io_->remote_address();
  std::string_view target = url_;
  if (!target.empty() && target[0] != '/' && target != "*") {
    // absolute-form ("http://host/path?q"): keep the path and query only.
    if (size_t scheme = target.find("://"); scheme != std::string_view::npos) {
      size_t slash = target.find('/', scheme + 3);
      target = slash == std::string_view::npos ? "/" : target.substr(slash);
    }
  }
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    head.path = std::string(target.substr(0, q));
    head.query = std::string(target.substr(q + 1));
  } else {
    head.path = std::string(target);
  }

  // libhttp-parser (as Debian builds it, not strict) lets a tab or control byte into
  // the target; another parser in front could split the line there.
  for (const char c : url_) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7F) {
      return Refuse(400, "malformed request: control character in the request target");
    }
  }
  if (parser_.http_major != 1) return Refuse(505, "HTTP version not supported");
  // RFC 9112 §5.2 allows a 400 for obs-fold (§2.2: must, for whitespace before the
  // first field); §2.2 a 400 for a bare CR.
  if (head_fault_ != nullptr) return Refuse(400, head_fault_);

  int content_lengths = 0;
  int hosts = 0;
  int content_types = 0;
  bool has_transfer_encoding = false;
  std::string transfer_encoding;
  for (auto& [name, value] : headers_) {
    absl::AsciiStrToLower(&name);
    // Optional whitespace around values is not part of them. Stripped in place: most
    // values have none, and a copy would allocate for every value over 15 bytes.
    const absl::string_view stripped = absl::StripAsciiWhitespace(value);
    if (stripped.size() != value.size()) {
      value.erase(static_cast<size_t>(stripped.data() + stripped.size() - value.data()));
      value.erase(0, static_cast<size_t>(stripped.data() - value.data()));
    }
    if (name == "content-length") ++content_lengths;
    if (name == "host") ++hosts;
    if (name == "transfer-encoding") {
      has_transfer_encoding = true;
      // Every line counts: "gzip" then "chunked" is the list "gzip, chunked".
      if (!transfer_encoding.empty()) transfer_encoding += ", ";
      absl::StrAppend(&transfer_encoding, absl::AsciiStrToLower(value));
    }
    if (name == "content-type" && ++content_types == 1) head.content_type = value;
  }
  // Smuggling shapes (RFC 9112 §6.3): both framings, or a coding we cannot frame.
  if (has_transfer_encoding && content_lengths > 0) {
    return Refuse(400, "malformed request: both Content-Length and Transfer-Encoding");
  }
  if (has_transfer_encoding && transfer_encoding != "chunked") {
    return Refuse(400, "malformed request: a Transfer-Encoding other than chunked");
  }
  // RFC 9112 §6.1: in HTTP/1.0, Transfer-Encoding is faulty framing.
  if (has_transfer_encoding && parser_.http_minor == 0) {
    return Refuse(400, "malformed request: Transfer-Encoding in an HTTP/1.0 request");
  }
  if (content_lengths > 1) {  // libhttp-parser normally refuses these itself
    return Refuse(400, "malformed request: Content-Length given twice");
  }
  // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one before.
  if (hosts > 1) return Refuse(400, "malformed request: Host given twice");
  if (hosts == 0 && parser_.http_minor >= 1) {
    return Refuse(400, "malformed request: an HTTP/1.1 request needs a Host header");
  }
  // Which one would decide whether the body is parsed as multipart is anyone's guess.
  if (content_types > 1) return Refuse(400, "malformed request: Content-Type given twice");
  if (!has_transfer_encoding) {
    head.content_length = content_lengths > 0 ? parser_.content_length : 0;
  }
  head.headers = std::move(headers_);
  headers_.clear();

  const bool keep_alive = http_should_keep_alive(&parser_) != 0 && !draining_;
  auto stream = std::make_unique<Http1Stream>(this, std::move(head), keep_alive);
  Http1Stream* raw = stream.get();
  raw->head_request_ = raw->head_.method == "HEAD";
  raw->expect_continue_ =
      parser_.http_major == 1 && parser_.http_minor >= 1 &&
      absl::EqualsIgnoreCase(AbslView(raw->head_.Header("expect").value_or("")),
                             "100-continue");
  raw->http10_ = parser_.http_major == 1 && parser_.http_minor == 0;
  raw->has_body_ = has_transfer_encoding || raw->head_.content_length.value_or(0) > 0;
  streams_.push_back(std::move(stream));
  current_ = raw;

  // h2c Upgrade (RFC 7540 §3.2) on a request without a body: decided once the parser
  // stops after this message (OnRead), where the switch can happen.
  const RequestHead& h = raw->head_;
  if (upgrade_ != nullptr && parser_.upgrade && !has_transfer_encoding &&
      h.content_length.value_or(0) == 0 &&
      HasToken(h.Header("upgrade").value_or(""), "h2c") &&
      HasToken(h.Header("connection").value_or(""), "http2-settings") &&
      std::count_if(h.headers.begin(), h.headers.end(), [](const auto& header) {
        return header.first == "http2-settings";
      }) == 1) {  // RFC 9113 §3.2: exactly one
    pending_upgrade_ = true;
    return 0;  // Start() runs in TryH2cUpgrade (by HTTP/2, or here if not switching)
  }
  StartRequest(raw);
  if (has_transfer_encoding) {
    // The parser takes the head only: 1 = "no body", so it reports the message
    // complete right after it, where OnMessageComplete hands over to the decoder.
    chunked_.emplace(options_.max_header_bytes);
    return 1;
  }
  return 0;
}

void Http1Session::StartRequest(Http1Stream* stream) {
  ++depth_;
  // The handler keeps the head (moved, not copied); what the stream still needs of
  // it (head_request_, keep_alive_) is taken already.
  stream->exchange_ = handler_->Start(std::move(stream->head_), stream, io_->loop());
  --depth_;
  if (stream->exchange_ == nullptr && !stream->response_.has_value()) {
    stream->Respond(HttpResponse::Error(500, "no handler for the request"));
  }
}

int Http1Session::OnBody(std::string_view data) {
  DeliverBody(data);
  if (BodyHeld()) http_parser_pause(&parser_, 1);
  return 0;
}

void Http1Session::DeliverBody(std::string_view data) {
  Http1Stream* stream = current_;
  last_body_at_ = Now();
  if (stream == nullptr || stream->body_abandoned_ || stream->exchange_ == nullptr) {
    return;
  }
  ++depth_;
  absl::Status status = stream->exchange_->OnBodyData(data);
  --depth_;
  if (!status.ok() && !stream->body_abandoned_) {
    // The exchange wants no more body (and has responded, or will).
    stream->body_abandoned_ = true;
    stream->body_done_ = true;
    stream->keep_alive_ = false;
    StopParsing();
  }
}

bool Http1Session::BodyHeld() const {
  return stop_parsing_ || (current_ != nullptr && current_->pauses_ > 0);
}

size_t Http1Session::FeedChunked(std::string_view data) {
  last_body_at_ = Now();
  size_t used = 0;
  while (used < data.size() && !BodyHeld()) {
    const ChunkedDecoder::Step step = chunked_->Decode(data.substr(used));
    used += step.consumed;
    if (chunked_->error() != nullptr) {
      const char* why = chunked_->error();
      chunked_.reset();
      FailParse(400, absl::StrCat("malformed chunked body: ", why));
      return used;
    }
    if (!step.data.empty()) DeliverBody(step.data);
    if (chunked_->done()) {
      chunked_.reset();
      // The parser was told "no body" and waits at a message boundary; a fresh state
      // forgets that head's Upgrade/CONNECT flags.
      http_parser_init(&parser_, HTTP_REQUEST);
      parser_.data = this;
      Http1Stream* stream = current_;
      current_ = nullptr;
      if (stream != nullptr) FinishMessage(stream);
      return used;
    }
    if (step.consumed == 0) break;
  }
  return used;
}

int Http1Session::OnMessageComplete() {
  if (chunked_.has_value()) {
    // Only the head was parsed: the body is the decoder's (OnRead feeds it).
    http_parser_pause(&parser_, 1);
    return 0;
  }
  stopped_after_upgrade_ = parser_.upgrade != 0;
  Http1Stream* stream = current_;
  current_ = nullptr;
  if (stream == nullptr) return 0;
  if (pending_upgrade_) {
    // The parser stops right after this; OnRead decides (TryH2cUpgrade).
    current_ = stream;
    return 0;
  }
  FinishMessage(stream);
  if (stop_parsing_ || pipeline_paused_ || write_paused_) http_parser_pause(&parser_, 1);
  return 0;
}

void Http1Session::FinishMessage(Http1Stream* stream) {
  if (!stream->body_abandoned_) {
    stream->body_done_ = true;
    if (stream->exchange_ != nullptr) {
      ++depth_;
      stream->exchange_->OnBodyEnd();
      --depth_;
    }
  }
  if (!stream->keep_alive_) {
    StopParsing();  // nothing after this request is read
  } else if (streams_.size() >= options_.max_pipelined && !pipeline_paused_) {
    pipeline_paused_ = true;
    io_->PauseReading();
  } else if (io_->write_blocked() && !write_paused_) {
    // The client pipelines without reading our responses: stop reading it.
    write_paused_ = true;
    io_->PauseReading();
  }
}

bool Http1Session::TryH2cUpgrade() {
  if (!pending_upgrade_ || current_ == nullptr) return false;
  pending_upgrade_ = false;
  Http1Stream* stream = current_;
  current_ = nullptr;
  // Only when no earlier pipelined response is pending (order), and it works.
  if (streams_.size() == 1 && upgrade_ != nullptr) {
    absl::StatusOr<std::unique_ptr<ProtocolSession>> next = upgrade_(
        io_, stream->head_.Header("http2-settings").value_or(""), stream->head_);
    if (next.ok()) {
      streams_.clear();  // the request is HTTP/2's stream 1 now
      replaced_ = true;
      stop_parsing_ = true;
      io_->ReplaceSession(std::move(*next));
      return true;
    }
  }
  // Serve it over HTTP/1.1, as if there had been no Upgrade header.
  StartRequest(stream);
  stream->body_done_ = true;
  if (stream->exchange_ != nullptr) {
    ++depth_;
    stream->exchange_->OnBodyEnd();
    --depth_;
  }
  if (!stream->keep_alive_) StopParsing();
  return false;
}

void Http1Session::FailParse(int status, std::string_view message) {
  HttpResponse response = HttpResponse::Error(status, message);
  if (current_ == nullptr) {
    // No handler has this request (its head is what failed): the session answers
    // it, and says so for the access log and the metrics.
    RequestHead head;
    head.protocol = "HTTP/1.1";
    if (!url_.empty()) {  // the request line got as far as its target
      head.method = http_method_str(static_cast<http_method>(parser_.method));
      head.path = url_.substr(0, url_.find('?'));
    }
    head.remote_address = io_->remote_address();
    handler_->OnRejected(head, response,
                         in_head_ ? Now() - head_started_ : absl::ZeroDuration());
  }
  in_head_ = false;
  if (Http1Stream* stream = current_; stream != nullptr) {
    // The request whose body broke the parse ends here, unanswered by its handler.
    current_ = nullptr;
    if (!stream->response_written_) {
      if (stream->exchange_ != nullptr) stream->exchange_->OnSessionResponded(response);
      std::unique_ptr<Http1Stream> owned = std::move(streams_.back());
      streams_.pop_back();
      CloseStream(owned.get());
    } else {
      stream->body_done_ = true;
    }
  }
  auto error = std::make_unique<Http1Stream>(this, RequestHead{}, /*keep_alive=*/false);
  error->body_done_ = true;
  error->response_ = std::move(response);
  streams_.push_back(std::move(error));
  StopParsing();
}

void Http1Session::StopParsing() {
  if (stop_parsing_) return;
  stop_parsing_ = true;
  io_->PauseReading();  // held until the connection closes
}

void Http1Session::OnResponded(Http1Stream* stream) {
  if (!stream->body_done_ && stream->has_body_) {
    // Early response: no more body for this request, and nothing after it.
    stream->body_abandoned_ = true;
    stream->body_done_ = true;
    stream->keep_alive_ = false;
    StopParsing();
    if (depth_ > 0) http_parser_pause(&parser_, 1);
  }
  RequestFlush();
}

void Http1Session::PauseBody(Http1Stream* stream) {
  io_->PauseReading();
  // Inside a body callback: stop the parser right after it.
  if (depth_ > 0 && stream == current_) http_parser_pause(&parser_, 1);
}

void Http1Session::ResumeBody(Http1Stream* stream) {
  // The uploader may send again: its body clock starts over.
  if (stream == current_ && stream->pauses_ == 0) last_body_at_ = Now();
  io_->ResumeReading();
  if (stream->expect_continue_ && !stream->continue_sent_) RequestFlush();  // its 100
  ArmTimer();
}

void Http1Session::RequestFlush() {
  if (closed_) return;
  if (depth_ > 0) return;  // the outermost session call flushes when it unwinds
  if (flush_posted_) return;
  flush_posted_ = true;
  io_->loop()->Post([weak = std::weak_ptr<Http1Session*>(alive_)] {
    auto alive = weak.lock();
    if (alive == nullptr) return;
    Http1Session* self = *alive;
    self->flush_posted_ = false;
    self->Flush();
  });
}

void Http1Session::Flush() {
  if (closed_ || replaced_) return;
  ++depth_;
  while (!streams_.empty()) {
    Http1Stream* stream = streams_.front().get();
    if (!stream->response_.has_value()) {
      // Not while its exchange holds the body (a stream with no consumer yet): the
      // consumer may still answer first, and the client need not send it at all.
      if (stream->expect_continue_ && !stream->continue_sent_ && !stream->body_done_ &&
          stream->pauses_ == 0) {
        stream->continue_sent_ = true;
        last_body_at_ = Now();  // the client sends its body only from here
        io_->Write(k100Continue);
      }
      break;
    }
    if (!stream->response_written_) {
      if (close_written_) break;  // the connection ends with an earlier response
      stream->response_written_ = true;
      const bool close = !stream->keep_alive_ || draining_;
      io_->Write(SerializeResponse(*stream->response_, stream->head_request_,
                                   close, !close && stream->http10_));
      if (close) {
        close_written_ = true;
        StopParsing();
        io_->CloseAfterWrite();
      }
    }
    if (!stream->body_done_) break;  // the body is still being read (keep-alive)
    std::unique_ptr<Http1Stream> done = std::move(streams_.front());
    streams_.pop_front();
    if (current_ == done.get()) current_ = nullptr;
    if (streams_.empty()) idle_since_ = Now();
    CloseStream(done.get());
  }
  --depth_;
  if (pipeline_paused_ && streams_.size() < options_.max_pipelined) {
    pipeline_paused_ = false;
    io_->ResumeReading();
  }
  if (draining_ && streams_.empty() && !stop_parsing_) {
    StopParsing();
    io_->CloseAfterWrite();
  }
  ArmTimer();
}

// --- Timeouts --------------------------------------------------------------------

absl::Time Http1Session::Now() const {
  EventLoop* loop = io_->loop();
  return loop != nullptr ? loop->now() : absl::Now();
}

Http1Session::Wait Http1Session::CurrentWait(absl::Time* deadline) const {
  *deadline = absl::InfiniteFuture();
  // Closing, or reading paused by us (pipeline full, client not reading): nothing is
  // expected from the client until we resume.
  if (closed_ || replaced_ || stop_parsing_ || pipeline_paused_ || write_paused_) {
    return Wait::kNone;
  }
  if (in_head_) {
    *deadline = head_started_ + options_.header_timeout;
    return Wait::kHeader;
  }
  if (const Http1Stream* s = current_;
      s != nullptr && s->has_body_ && !s->body_done_ && !s->body_abandoned_) {
    // Paused by its Exchange (backpressure), or the client waits for our 100
    // Continue: the wait is ours, not the uploader's.
    if (s->pauses_ > 0 || (s->expect_continue_ && !s->continue_sent_)) {
      return Wait::kNone;
    }
    *deadline = last_body_at_ + options_.body_timeout;
    return Wait::kBody;
  }
  if (streams_.empty()) {
    *deadline = idle_since_ + options_.idle_timeout;
    return Wait::kIdle;
  }
  return Wait::kNone;  // requests wait for their handler, whose own timeouts apply
}

void Http1Session::ArmTimer() {
  if (timer_ == nullptr) return;
  absl::Time deadline;
  CurrentWait(&deadline);
  timer_->WakeBy(deadline);  // cheap when a wake-up is already armed earlier
}

void Http1Session::OnTimer() {
  absl::Time deadline;
  const Wait wait = CurrentWait(&deadline);
  if (wait == Wait::kNone) return;  // re-armed when a wait begins
  if (deadline > Now()) {
    timer_->WakeBy(deadline);  // the deadline moved on since the timer was armed
    return;
  }
  switch (wait) {
    case Wait::kHeader:
      FailParse(408, "request header timeout");
      break;
    case Wait::kBody:
      if (io_->UnreadBytes() > 0) {
        // Not idle: its bytes wait in the socket below the low-water mark
        // (ExpectInput). Read them now; the body goes on.
        io_->ExpectInput(0);
        last_body_at_ = Now();
        ArmTimer();
        return;
      }
      // The request's Exchange sees OnStreamClosed (and drops what it received).
      FailParse(408, "request body timeout");
      break;
    case Wait::kIdle:
      StopParsing();
      io_->CloseAfterWrite();
      break;
    case Wait::kNone:
      break;
  }
  Flush();
}

void Http1Session::CloseStream(Http1Stream* stream) {
  if (stream->closed_) return;
  stream->closed_ = true;
  // Give back the reading pauses this stream still holds.
  for (; stream->pauses_ > 0; --stream->pauses_) io_->ResumeReading();
  if (stream->exchange_ != nullptr) {
    ++depth_;
    stream->exchange_->OnStreamClosed();
    --depth_;
  }
}

void Http1Session::OnWritable() {
  if (write_paused_) {
    write_paused_ = false;
    io_->ResumeReading();
  }
  Flush();
}

bool Http1Session::OnInputEnd() {
  if (closed_ || replaced_ || streams_.empty()) return false;
  if (in_head_ || current_ != nullptr || chunked_.has_value()) return false;  // cut short
  // Every queued stream has its whole request and no response written yet (one
  // written with its body done leaves the queue).
  streams_.back()->keep_alive_ = false;
  StopParsing();
  return true;
}

void Http1Session::OnClose() {
  if (closed_) return;
  closed_ = true;
  current_ = nullptr;
  std::deque<std::unique_ptr<Http1Stream>> streams = std::move(streams_);
  streams_.clear();
  for (auto& stream : streams) {
    if (stream->closed_) continue;
    stream->closed_ = true;
    if (stream->exchange_ != nullptr) stream->exchange_->OnStreamClosed();
  }
}

void Http1Session::StartDrain() {
  draining_ = true;
  if (closed_ || replaced_) return;
  if (streams_.empty()) {
    StopParsing();
    io_->CloseAfterWrite();
  }
}

}  // namespace spillway
