#include "server/dispatch/stream_upload_source.h"

#include <cstring>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/common/string_view_compat.h"
#include "server/upload/multipart_error.h"

namespace spillway {

// An UploadEvent that owns its bytes, as it waits in the queue.
struct StreamUploadSource::Event {
  enum class Kind { kNone, kField, kFileStarted, kChunk, kFileFinished, kFinished,
                    kAborted };
  Kind kind = Kind::kNone;
  std::string a, b, c;  // see View()
  std::optional<uint64_t> size;
  uint64_t number = 0;  // chunk offset, file size or total bytes
  ChecksumKind checksum_kind = ChecksumKind::kNone;  // file started and finished

  size_t bytes() const { return a.size() + b.size() + c.size(); }
  bool last() const { return kind == Kind::kFinished || kind == Kind::kAborted; }

  // Non-const: a ChunkEvent lends out its buffer (upload_event.h).
  UploadEvent View() {
    switch (kind) {
      case Kind::kField:
        return FieldEvent{a, b};
      case Kind::kFileStarted: {
        FileStartedEvent event;
        event.field_name = a;
        event.filename = b;
        event.content_type = c;
        event.size = size;
        event.in_memory = false;
        event.mode = UploadMode::kStream;
        event.checksum_kind = checksum_kind;
        return event;
      }
      case Kind::kChunk:
        return ChunkEvent{a, number, &a};
      case Kind::kFileFinished:
        return FileFinishedEvent{number, checksum_kind, a};
      case Kind::kFinished:
        return RequestFinishedEvent{number};
      case Kind::kNone:
      case Kind::kAborted:
        break;
    }
    return RequestAbortedEvent{a};
  }
};

class StreamUploadSource::Cursor final : public EventCursor {
 public:
  explicit Cursor(std::shared_ptr<StreamUploadSource> source)
      : source_(std::move(source)) {}
  ~Cursor() override {
    // A consumer that lets go while waiting gets no callback afterwards, unless the
    // producer had already taken it (then it runs once more, on the producer's thread).
    MutexLock lock(&source_->mu_);
    source_->pending_ = nullptr;
  }
  void Next(Delivery::NextCallback callback) override {
    source_->CursorNext(std::move(callback));
  }

 private:
  const std::shared_ptr<StreamUploadSource> source_;
};

absl::StatusOr<std::shared_ptr<StreamUploadSource>> StreamUploadSource::Create(
    RequestInfo request, const StreamUploadOptions& options, StreamFlow* flow,
    std::unique_ptr<MultipartParser> continued_parser, uint64_t bytes_before) {
  std::unique_ptr<MultipartParser> parser = std::move(continued_parser);
  if (parser == nullptr) {
    ASSIGN_OR_RETURN(std::optional<std::string> boundary,
                     MultipartParser::BoundaryIfMultipart(request.content_type));
    if (boundary.has_value()) {
      parser = std::make_unique<MultipartParser>(*boundary, options.multipart, nullptr);
    }
  }
  std::shared_ptr<StreamUploadSource> source(new StreamUploadSource(
      std::move(request), options, flow, std::move(parser), bytes_before));
  {
    MutexLock lock(&source->mu_);
    source->paused_ = true;  // until a consumer has it: see OpenCursor
  }
  if (flow != nullptr) flow->Pause();
  return source;
}

StreamUploadSource::StreamUploadSource(RequestInfo request,
                                       const StreamUploadOptions& options,
                                       StreamFlow* flow,
                                       std::unique_ptr<MultipartParser> parser,
                                       uint64_t bytes_before)
    : request_(std::move(request)),
      options_(options),
      parser_(std::move(parser)),
      total_bytes_(bytes_before),
      flow_(flow),
      current_(std::make_unique<Event>()) {
  if (parser_ != nullptr) {
    parser_->set_handler(static_cast<MultipartParser::Handler*>(this));
  }
}

StreamUploadSource::~StreamUploadSource() = default;

std::unique_ptr<EventCursor> StreamUploadSource::OpenCursor(const CursorOptions&) {
  {
    MutexLock lock(&mu_);
    // A consumer has the upload: the body may come (if the queue has room).
    MaybeResumeLocked();
  }
  // One cursor per attempt, and a source that is not replayable gets one attempt; the
  // chunk size was fixed at creation.
  return std::make_unique<Cursor>(shared_from_this());
}

void StreamUploadSource::MaybeResumeLocked() {
  if (!paused_ || queued_bytes_ > low_watermark()) return;
  paused_ = false;
  // Under mu_ so that it cannot race Detach(); Resume() only posts.
  if (flow_ != nullptr) flow_->Resume();
}

void StreamUploadSource::Detach() {
  MutexLock lock(&mu_);
  flow_ = nullptr;
}

size_t StreamUploadSource::queued_bytes() const {
  MutexLock lock(&mu_);
  return queued_bytes_;
}

void StreamUploadSource::Abort(std::string_view reason) {
  Delivery::NextCallback callback;
  {
    MutexLock lock(&mu_);
    if (abort_reason_.has_value()) return;
    abort_reason_ = std::string(reason);
    // Nobody will read them: free the chunks now. The body is not resumed: whoever
    // aborted is answering the uploader, which ends the body anyway.
    queue_.clear();
    queued_bytes_ = 0;
    if (pending_ == nullptr) return;
    callback = std::move(pending_);
    pending_ = nullptr;
    *current_ = Event{Event::Kind::kAborted, *abort_reason_, "", "", {}, 0, {}};
  }
  std::move(callback)(current_->View());
}

void StreamUploadSource::CursorNext(Delivery::NextCallback callback) {
  bool after_last = false;
  {
    MutexLock lock(&mu_);
    if (current_->last()) {
      after_last = true;
    } else if (abort_reason_.has_value()) {
      *current_ = Event{Event::Kind::kAborted, *abort_reason_, "", "", {}, 0, {}};
    } else if (!queue_.empty()) {
      // The consumer is done with the chunk it held (Next() says so).
      RecycleCurrentLocked();
      *current_ = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= current_->bytes();
      MaybeResumeLocked();
    } else {
      // Done with the chunk it held, too: the producer may reuse it meanwhile.
      RecycleCurrentLocked();
      current_->kind = Event::Kind::kNone;
      pending_ = std::move(callback);
      return;
    }
  }
  if (after_last) {
    std::move(callback)(absl::FailedPreconditionError("Next() after the last event"));
    return;
  }
  // current_ is only rewritten by the next Next(), which the consumer has not made.
  std::move(callback)(current_->View());
}

void StreamUploadSource::Push(Event event) {
  Delivery::NextCallback callback;
  {
    MutexLock lock(&mu_);
    if (abort_reason_.has_value()) return;
    if (pending_ != nullptr) {
      // The consumer is waiting: hand the event over directly.
      callback = std::move(pending_);
      pending_ = nullptr;
      *current_ = std::move(event);  // current_ was recycled when the Next() came
    } else {
      queued_bytes_ += event.bytes();
      queue_.push_back(std::move(event));
      if (!paused_ && queued_bytes_ >= high_watermark()) {
        paused_ = true;
        if (flow_ != nullptr) flow_->Pause();
      }
      return;
    }
  }
  std::move(callback)(current_->View());
}

absl::Status StreamUploadSource::CheckProducer(absl::Status status) {
  if (status.ok()) return status;
  // No Abort() here: the producer answers this error and cancels the upload
  // (UploadHandle::Cancel), which aborts the source. Aborting first would let the
  // consumer let go and the dispatcher answer 502 before the producer's own answer.
  producer_status_ = status;
  return status;
}

absl::Status StreamUploadSource::Feed(std::string_view data) {
  RETURN_IF_ERROR(producer_status_);
  total_bytes_ += data.size();
  if (parser_ != nullptr) return CheckProducer(parser_->Feed(data));
  if (!raw_started_) {
    raw_started_ = true;
    BeginFile("", "", request_.content_type, request_.content_length);
  }
  return CheckProducer(FileData(data));
}

absl::Status StreamUploadSource::ReplayPartBegin(const PartHeaders& headers) {
  RETURN_IF_ERROR(producer_status_);
  return CheckProducer(OnPartBegin(headers));
}

absl::Status StreamUploadSource::ReplayPartData(std::string_view data) {
  RETURN_IF_ERROR(producer_status_);
  return CheckProducer(OnPartData(data));
}

absl::Status StreamUploadSource::ReplayPartEnd() {
  RETURN_IF_ERROR(producer_status_);
  return CheckProducer(OnPartEnd());
}

absl::Status StreamUploadSource::Finish() {
  RETURN_IF_ERROR(producer_status_);
  if (parser_ != nullptr) {
    RETURN_IF_ERROR(CheckProducer(parser_->Finish()));
  } else {
    if (!raw_started_) {
      raw_started_ = true;
      BeginFile("", "", request_.content_type, request_.content_length);
    }
    EndFile();
  }
  Event finished;
  finished.kind = Event::Kind::kFinished;
  finished.number = total_bytes_;
  Push(std::move(finished));
  producer_status_ = absl::FailedPreconditionError("Finish() already called");
  return absl::OkStatus();
}

void StreamUploadSource::BeginFile(std::string field_name, std::string filename,
                                   std::string content_type,
                                   std::optional<uint64_t> size) {
  in_file_ = true;
  file_offset_ = 0;
  file_size_ = 0;
  chunk_fill_ = 0;
  checksum_ = Checksum::Create(options_.checksum);
  Event event;
  event.kind = Event::Kind::kFileStarted;
  event.a = std::move(field_name);
  event.b = std::move(filename);
  event.c = std::move(content_type);
  event.size = size;
  event.checksum_kind = options_.checksum;
  Push(std::move(event));
}

absl::Status StreamUploadSource::FileData(std::string_view data) {
  if (options_.max_file_size != 0 && data.size() > options_.max_file_size - file_size_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "a file exceeds the maximum file size of ", options_.max_file_size, " bytes"));
  }
  checksum_.Update(data);
  file_size_ += data.size();
  while (!data.empty()) {
    // No buffer yet, or it went out with the last chunk.
    if (chunk_.empty()) chunk_ = TakeChunkBuffer();
    const size_t take = std::min(data.size(), chunk_.size() - chunk_fill_);
    char* const at = chunk_.data() + chunk_fill_;
    // Bytes read into FeedSpace() already lie where they belong.
    if (data.data() != at) std::memcpy(at, data.data(), take);
    data.remove_prefix(take);
    chunk_fill_ += take;
    if (chunk_fill_ == chunk_.size()) FlushChunk();
  }
  return absl::OkStatus();
}

std::span<char> StreamUploadSource::FeedSpace() {
  // A multipart body's bytes go through the parser, which keeps what may be a
  // boundary: only a raw body lands in its chunk as read.
  if (parser_ != nullptr || !raw_started_ || !producer_status_.ok()) return {};
  if (chunk_.empty()) chunk_ = TakeChunkBuffer();
  return std::span<char>(chunk_).subspan(chunk_fill_);
}

void StreamUploadSource::FlushChunk() {
  if (chunk_fill_ == 0) return;
  Event event;
  event.kind = Event::Kind::kChunk;
  event.number = file_offset_;
  file_offset_ += chunk_fill_;
  chunk_.resize(chunk_fill_);  // shrinking writes nothing
  event.a = std::move(chunk_);
  Push(std::move(event));
  chunk_ = std::string();  // FileData() takes a buffer when more bytes come
  chunk_fill_ = 0;
}

void StreamUploadSource::RecycleCurrentLocked() {
  if (current_->kind != Event::Kind::kChunk) return;
  std::string& buffer = current_->a;
  if (buffer.capacity() < options_.chunk_size ||
      free_chunks_.size() >= high_watermark() / options_.chunk_size) {
    return;  // the free list is full: this one is freed with the event
  }
  // Its bytes stay: TakeChunkBuffer() would only have to write them over again.
  free_chunks_.push_back(std::move(buffer));
}

std::string StreamUploadSource::TakeChunkBuffer() {
  std::string buffer;
  {
    MutexLock lock(&mu_);
    if (!free_chunks_.empty()) {
      buffer = std::move(free_chunks_.back());
      free_chunks_.pop_back();
    }
  }
  // A recycled buffer is normally a chunk long already; only a fresh one, or a
  // file's shorter last chunk, is zero-filled here.
  buffer.resize(options_.chunk_size);
  return buffer;
}

void StreamUploadSource::EndFile() {
  FlushChunk();
  in_file_ = false;
  Event event;
  event.kind = Event::Kind::kFileFinished;
  event.number = file_size_;
  event.checksum_kind = options_.checksum;
  event.a = checksum_.FinishHex();
  Push(std::move(event));
}

absl::Status StreamUploadSource::OnPartBegin(const PartHeaders& headers) {
  if (headers.is_file()) {
    BeginFile(headers.name, *headers.filename, headers.content_type, std::nullopt);
  } else {
    field_name_ = headers.name;
    field_value_.clear();
  }
  return absl::OkStatus();
}

absl::Status StreamUploadSource::OnPartData(std::string_view data) {
  if (in_file_) return FileData(data);
  field_value_.append(data);  // bounded by the parser's max_field_size
  return absl::OkStatus();
}

absl::Status StreamUploadSource::OnPartEnd() {
  if (in_file_) {
    EndFile();
  } else {
    Event event;
    event.kind = Event::Kind::kField;
    event.a = std::move(field_name_);
    event.b = std::move(field_value_);
    field_name_.clear();
    field_value_.clear();
    Push(std::move(event));
  }
  return absl::OkStatus();
}

absl::Status StreamUploadSource::OnBodyEnd() { return absl::OkStatus(); }

}  // namespace spillway
