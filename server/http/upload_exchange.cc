#include "server/http/upload_exchange.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/admin/metrics.h"
#include "server/common/utf8.h"
#include "server/common/string_view_compat.h"
#include "server/dispatch/buffered_upload_source.h"
#include "server/net/event_loop.h"
#include "server/upload/multipart_parser.h"

namespace spillway {
namespace {

class UploadHandler final : public RequestHandler {
 public:
  explicit UploadHandler(UploadHandlerOptions options) : options_(std::move(options)) {}

  std::shared_ptr<Exchange> Start(RequestHead head, Responder* responder,
                                  EventLoop* loop) override {
    auto exchange = std::make_shared<UploadExchange>(&options_, responder, loop);
    exchange->Begin(std::move(head));
    return exchange;
  }

 private:
  const UploadHandlerOptions options_;
};

RequestInfo RequestInfoFromHead(RequestHead&& head) {
  RequestInfo info;
  info.protocol = std::move(head.protocol);
  info.method = std::move(head.method);
  info.path = std::move(head.path);
  info.query = std::move(head.query);
  info.headers = std::move(head.headers);
  info.remote_address = std::move(head.remote_address);
  info.content_type = std::move(head.content_type);
  info.content_length = head.content_length;
  return info;
}

struct UploadMetrics {
  Counter* memory_bytes;
  Counter* spill_bytes;
  Counter* stream_bytes;
};

// Looked up once: the registry's lookups take its mutex.
const UploadMetrics& Metrics() {
  static const UploadMetrics metrics = [] {
    MetricsRegistry& registry = MetricsRegistry::Global();
    constexpr std::string_view kBytesName = "spillway_upload_bytes_received_total";
    constexpr std::string_view kBytesHelp =
        "Upload body bytes received, by mode (memory, spill, stream).";
    return UploadMetrics{
        registry.GetCounter(kBytesName, kBytesHelp, Labels({{"mode", "memory"}})),
        registry.GetCounter(kBytesName, kBytesHelp, Labels({{"mode", "spill"}})),
        registry.GetCounter(kBytesName, kBytesHelp, Labels({{"mode", "stream"}}))};
  }();
  return metrics;
}

// Request metadata reaches gRPC consumers in proto3 strings, which must be UTF-8
// (see utf8.h); HTTP allows other bytes in header values, so this is checked here.
absl::Status CheckMetadataIsUtf8(const RequestHead& head) {
  if (!IsValidUtf8(head.path) || !IsValidUtf8(head.query)) {
    return absl::InvalidArgumentError("the request target is not valid UTF-8");
  }
  for (const auto& [name, value] : head.headers) {
    if (!IsValidUtf8(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("header \"", name, "\" is not valid UTF-8"));
    }
  }
  return absl::OkStatus();
}

// Framing is the session's business, whatever the consumer put in its reply.
bool IsHopByHop(std::string_view name) {
  return name == "connection" || name == "content-length" ||
         name == "transfer-encoding" || name == "keep-alive" || name == "upgrade" ||
         name == "te" || name == "trailer" || name == "proxy-connection";
}

}  // namespace

std::unique_ptr<RequestHandler> MakeUploadHandler(UploadHandlerOptions options) {
  Metrics();  // registered now, so that /metrics shows them (at 0) before any upload
  return std::make_unique<UploadHandler>(std::move(options));
}

UploadExchange::UploadExchange(const UploadHandlerOptions* options,
                               Responder* responder, EventLoop* loop)
    : options_(options), responder_(responder), loop_(loop) {}

UploadExchange::~UploadExchange() {
  if (stream_ != nullptr) stream_->Detach();
}

void UploadExchange::Begin(RequestHead head) {
  if (head.method != "POST" && head.method != "PUT") {
    HttpResponse response = HttpResponse::Error(405, "uploads are POST or PUT");
    response.headers.emplace_back("allow", "POST, PUT");
    Respond(std::move(response));
    return;
  }
  if (absl::Status status = CheckMetadataIsUtf8(head); !status.ok()) {
    RespondError(status);
    return;
  }
  const std::optional<uint64_t> content_length = head.content_length;
  request_ = RequestInfoFromHead(std::move(head));
  const UploadSettings& settings = options_->settings;
  // A raw body is one file: a declared length over FILE_UPLOAD_MAX_SIZE is refused
  // now, before the body is sent (Expect: 100-continue gets this instead of 100).
  if (content_length.has_value() && settings.file_upload_max_size != 0 &&
      *content_length > settings.file_upload_max_size) {
    absl::StatusOr<std::optional<std::string>> boundary =
        MultipartParser::BoundaryIfMultipart(request_.content_type);
    if (boundary.ok() && !boundary->has_value()) {
      RespondError(absl::ResourceExhaustedError(absl::StrCat(
          "the body of ", *content_length, " bytes exceeds the maximum file size of ",
          settings.file_upload_max_size, " bytes")));
      return;
    }
  }
  if (content_length.has_value() && *content_length > settings.max_body_size) {
    if (!options_->stream_mode) {
      RespondError(absl::ResourceExhaustedError(absl::StrCat(
          "the body of ", *content_length, " bytes exceeds MAX_BODY_SIZE (",
          settings.max_body_size, " bytes) and stream mode is off")));
      return;
    }
    StartStreaming();
    return;
  }
  UploadAssemblerOptions assembler_options =
      UploadAssemblerOptions::FromSettings(settings, options_->temp_dir);
  assembler_options.multipart = options_->multipart;
  assembler_options.file.spill_budget = options_->spill_budget;
  // The assembler keeps the request from here on (one copy less per upload); a
  // switch to stream mode takes it back (SwitchToStream).
  absl::StatusOr<std::unique_ptr<UploadAssembler>> assembler =
      UploadAssembler::Create(std::move(request_), assembler_options);
  if (!assembler.ok()) {
    RespondError(assembler.status());
    return;
  }
  assembler_ = *std::move(assembler);
}

void UploadExchange::StartStreaming(std::unique_ptr<MultipartParser> continued_parser,
                                    uint64_t bytes_before) {
  StreamUploadOptions stream_options;
  stream_options.chunk_size = options_->settings.stream_body_chunk_size;
  stream_options.max_file_size = options_->settings.file_upload_max_size;
  stream_options.checksum = options_->settings.file_upload_checksum;
  stream_options.multipart = options_->multipart;
  absl::StatusOr<std::shared_ptr<StreamUploadSource>> source =
      StreamUploadSource::Create(request_, stream_options, this,
                                 std::move(continued_parser), bytes_before);
  if (!source.ok()) {
    RespondError(source.status());
    return;
  }
  stream_ = *std::move(source);
  state_ = State::kStreaming;
  Submit(stream_);
}

std::span<char> UploadExchange::BodyBuffer() {
  return state_ == State::kStreaming ? stream_->FeedSpace() : std::span<char>();
}

absl::Status UploadExchange::OnBodyData(std::string_view data) {
  switch (state_) {
    case State::kReceiving: {
      if (absl::Status status = assembler_->Append(data); !status.ok()) {
        RespondError(status);
        return status;
      }
      // Absorbed: its bytes now live in the assembler (memory or temp file).
      responder_->ConsumeBody(data.size());
      if (!assembler_->request().content_length.has_value() &&
          assembler_->bytes_received() > options_->settings.max_body_size) {
        if (!options_->stream_mode) {
          absl::Status status = absl::ResourceExhaustedError(absl::StrCat(
              "a body of unknown length grew past MAX_BODY_SIZE (",
              options_->settings.max_body_size, " bytes) and stream mode is off"));
          RespondError(status);
          return status;
        }
        return SwitchToStream();
      }
      return absl::OkStatus();
    }
    case State::kStreaming: {
      if (absl::Status status = stream_->Feed(data); !status.ok()) {
        RespondError(status);
        return status;
      }
      Metrics().stream_bytes->Increment(data.size());
      // The bytes are in the stream's queue, the one bounded place where they wait;
      // its watermarks (Pause/Resume) are what holds the uploader back. Giving the
      // window back here, not when the consumer takes a chunk, keeps a chunk larger
      // than the HTTP/2 window from stalling the stream.
      responder_->ConsumeBody(data.size());
      return absl::OkStatus();
    }
    case State::kReplaying:
      // Held, but the session may still hand over bytes it had already read.
      held_tail_.append(data);
      responder_->ConsumeBody(data.size());
      return absl::OkStatus();
    case State::kDispatched:
      return absl::FailedPreconditionError("body data after its end");
    case State::kResponded:
    case State::kClosed:
      break;
  }
  return absl::FailedPreconditionError("the upload was already answered");
}

void UploadExchange::OnBodyEnd() {
  if (state_ == State::kReplaying) {
    end_after_replay_ = true;
    return;
  }
  if (state_ == State::kStreaming) {
    if (absl::Status status = stream_->Finish(); !status.ok()) RespondError(status);
    return;
  }
  if (state_ != State::kReceiving) return;
  absl::StatusOr<BufferedUpload> upload = assembler_->Finish();
  assembler_.reset();
  if (!upload.ok()) {
    RespondError(upload.status());
    return;
  }
  (upload->mode() == UploadMode::kSpill ? Metrics().spill_bytes : Metrics().memory_bytes)
      ->Increment(upload->total_bytes);
  state_ = State::kDispatched;
  Submit(std::make_shared<BufferedUploadSource>(*std::move(upload)));
}

absl::Status UploadExchange::SwitchToStream() {
  absl::StatusOr<UploadAssembler::Handover> handover = assembler_->HandOver();
  assembler_.reset();
  if (!handover.ok()) {
    RespondError(handover.status());
    return handover.status();
  }
  BufferedUpload& received = handover->received;
  request_ = std::move(received.request);
  // Counted now: a multipart body's replay hands on parts, not these raw bytes.
  Metrics().stream_bytes->Increment(received.total_bytes);
  // A raw body's bytes are fed again, and counted by the stream as they are.
  const uint64_t parsed_bytes = received.raw ? 0 : received.total_bytes;
  replay_.emplace(std::move(received), handover->last_part_open,
                  options_->settings.stream_body_chunk_size);
  StartStreaming(std::move(handover->parser), parsed_bytes);
  if (state_ != State::kStreaming) return absl::FailedPreconditionError("responded");
  state_ = State::kReplaying;
  // Held until the first part has been replayed; the stream's own watermarks pause
  // and resume the replay meanwhile.
  responder_->PauseBody();
  PumpReplay();
  return absl::OkStatus();
}

void UploadExchange::PumpReplay() {
  while (state_ == State::kReplaying && !stream_paused_) {
    absl::StatusOr<bool> done = replay_->Step(*stream_);
    if (!done.ok()) {
      RespondError(done.status());
      return;
    }
    if (!*done) continue;
    replay_.reset();
    state_ = State::kStreaming;
    absl::Status status = absl::OkStatus();
    if (!held_tail_.empty()) {
      Metrics().stream_bytes->Increment(held_tail_.size());
      status = stream_->Feed(std::exchange(held_tail_, ""));
    }
    if (status.ok() && end_after_replay_) status = stream_->Finish();
    if (!status.ok()) {
      RespondError(status);
      return;
    }
    responder_->ResumeBody();
  }
}

void UploadExchange::Submit(std::shared_ptr<UploadSource> source) {
  std::weak_ptr<UploadExchange> weak = weak_from_this();
  EventLoop* loop = loop_;
  upload_ = options_->dispatcher->Submit(
      std::move(source), [weak, loop](ConsumerReply reply) mutable {
        // Any thread: only post. The exchange may be gone by the time it runs.
        loop->Post([weak = std::move(weak), reply = std::move(reply)]() mutable {
          if (std::shared_ptr<UploadExchange> self = weak.lock()) {
            self->OnDispatcherReply(std::move(reply));
          }
        });
      });
}

void UploadExchange::OnDispatcherReply(ConsumerReply reply) {
  HttpResponse response;
  response.status = reply.status;
  response.headers.reserve(reply.headers.size() + 1);
  for (auto& [name, value] : reply.headers) {
    if (!IsHopByHop(name)) response.headers.emplace_back(std::move(name), std::move(value));
  }
  if (!upload_.upload_id().empty()) {
    response.headers.emplace_back("x-upload-id", upload_.upload_id());
  }
  response.body = std::move(reply.body);
  Respond(std::move(response));
}

void UploadExchange::Respond(HttpResponse response) {
  if (state_ == State::kResponded || state_ == State::kClosed || responder_ == nullptr) {
    return;
  }
  state_ = State::kResponded;
  assembler_.reset();
  replay_.reset();
  responder_->Respond(std::move(response));
}

void UploadExchange::RespondError(const absl::Status& status) {
  // The uploader is told at once; a consumer already holding a streamed upload gets
  // RequestAborted.
  upload_.Cancel(StdView(status.message()));
  Respond(HttpResponse::Error(HttpStatusFromStatus(status), StdView(status.message())));
}

void UploadExchange::OnStreamClosed() {
  state_ = State::kClosed;
  responder_ = nullptr;
  // A half-received upload's memory and temp files go now; a dispatched one leaves
  // the queue, or its consumer sees RequestAborted. (Cancel is a no-op once answered.)
  assembler_.reset();
  replay_.reset();
  upload_.Cancel("the uploader went away");
  if (stream_ != nullptr) stream_->Detach();
}

void UploadExchange::Pause() {
  stream_paused_ = true;
  if (responder_ != nullptr) responder_->PauseBody();
}

void UploadExchange::Resume() {
  loop_->Post([weak = weak_from_this()] {
    std::shared_ptr<UploadExchange> self = weak.lock();
    if (self == nullptr || self->responder_ == nullptr) return;
    if (self->state_ != State::kStreaming && self->state_ != State::kReplaying) return;
    self->stream_paused_ = false;
    self->responder_->ResumeBody();
    if (self->state_ == State::kReplaying) self->PumpReplay();
  });
}

}  // namespace spillway
