#include "server/grpc/upload_reactor.h"

#include <chrono>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/common/string_view_compat.h"
#include "server/dispatch/buffered_upload_source.h"
#include "server/grpc/grpc_metrics.h"
#include "server/grpc/proto_conversions.h"
#include "server/grpc/upload_part_limits.h"

namespace spillway {
namespace {

// A file that declares more than FILE_UPLOAD_MAX_SIZE (0: unlimited) is refused
// before any of its bytes are read, in buffered and stream mode alike.
absl::Status CheckDeclaredSize(const v1::FileHeader& header, uint64_t max_size) {
  if (!header.has_size() || max_size == 0 || header.size() <= max_size) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("file \"", header.filename(), "\" declares ", header.size(),
                   " bytes, over FILE_UPLOAD_MAX_SIZE (", max_size, ")"));
}

}  // namespace

UploadReactor::UploadReactor(grpc::CallbackServerContext* context, v1::Reply* response,
                             const UploadRpcOptions* options,
                             std::optional<UploadSlot> slot)
    : context_(context),
      response_(response),
      options_(options),
      slot_(std::move(slot)),
      link_(std::make_shared<Link>()) {
  {
    MutexLock lock(&link_->mu);
    link_->reactor = this;
  }
  ReadNext();
  if (options_->body_timeout > absl::ZeroDuration() &&
      options_->body_timeout != absl::InfiniteDuration()) {
    MutexLock lock(&mu_);
    ArmIdleAlarmLocked(absl::Now() + options_->body_timeout);
  }
}

void UploadReactor::OnReadDone(bool ok) {
  {
    MutexLock lock(&mu_);
    reading_ = false;
  }
  if (!ok) {
    // The client half-closed (the upload is complete) or the call died.
    if (context_->IsCancelled()) {
      Fail(absl::CancelledError("the gRPC uploader cancelled"));
      return;
    }
    if (declared_total_.has_value() && bytes_sent_ != *declared_total_) {
      FailReading(absl::InvalidArgumentError(absl::StrCat(
          "the upload declared total_size ", *declared_total_, " but sent ", bytes_sent_,
          " bytes")));
      return;
    }
    if (stream_ != nullptr) {
      absl::Status status = EndStreamFile();
      if (status.ok()) status = stream_->Feed(framer_->Close());
      if (status.ok()) status = stream_->Finish();
      if (!status.ok()) Fail(status);
      return;  // the answer comes through the dispatcher
    }
    Submit();
    return;
  }
  if (absl::Status status = Handle(in_); !status.ok()) {
    FailReading(status);
    return;
  }
  if (OverMaxBodySize()) {
    // Reads start again once the prefix is in the stream (PumpReplay).
    if (absl::Status status = SwitchToStream(); !status.ok()) Fail(status);
    return;
  }
  ReadNext();
}

void UploadReactor::ReadNext() {
  MutexLock lock(&mu_);
  if (finished_) return;  // answered early, failed or cancelled
  if (paused_) {
    read_parked_ = true;
    return;
  }
  StartReadLocked();
}

void UploadReactor::StartReadLocked() {
  reading_ = true;
  reading_since_ = absl::Now();
  StartRead(&in_);
}

void UploadReactor::Pause() {
  MutexLock lock(&mu_);
  paused_ = true;
}

void UploadReactor::Resume() {
  MutexLock lock(&mu_);
  paused_ = false;
  if (finished_) return;
  if (replaying_) {
    // Not on this thread: it holds the source's lock, which Feed() takes.
    if (!pumping_) {
      pumping_ = true;
      ScheduleReplayLocked();
    }
    return;
  }
  if (read_parked_) {
    read_parked_ = false;
    StartReadLocked();
  }
}

void UploadReactor::FailReading(const absl::Status& status) {
  // Before the client hears of the failure: temp files live until the upload is
  // answered, no longer (and a client that looks at once finds none).
  current_file_ = nullptr;
  upload_ = BufferedUpload();
  Fail(status);
}

void UploadReactor::Fail(const absl::Status& status) {
  UploadHandle handle;
  {
    MutexLock lock(&mu_);
    handle = std::move(handle_);
  }
  // The consumer, if any, gets RequestAborted; the answer callback does not run.
  handle.Cancel(StdView(status.message()));
  FinishOnce(ToGrpcStatus(status), nullptr);
}

absl::Status UploadReactor::Handle(const v1::UploadRequest& request) {
  if (request.kind_case() == v1::UploadRequest::kStart) {
    if (started_) return absl::InvalidArgumentError("UploadStart sent twice");
    return HandleStart(request.start());
  }
  if (!started_) {
    return absl::InvalidArgumentError("the first message must be UploadStart");
  }
  // A declared total is held to, or a client could declare a small one (buffered)
  // and send without bound.
  bytes_sent_ += request.has_field() ? request.field().value().size()
                 : request.has_chunk() ? request.chunk().data().size()
                                       : 0;
  if (declared_total_.has_value() && bytes_sent_ > *declared_total_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the upload is larger than its declared total_size ", *declared_total_));
  }
  if (stream_ != nullptr) return HandleStreamed(request);
  switch (request.kind_case()) {
    case v1::UploadRequest::kField: {
      if (absl::Status status = EndFile(); !status.ok()) return status;
      RETURN_IF_ERROR(BeginPart(request));
      upload_.order.push_back({false, upload_.fields.size()});
      upload_.fields.push_back({request.field().name(), request.field().value()});
      return absl::OkStatus();
    }
    case v1::UploadRequest::kFile: {
      if (absl::Status status = EndFile(); !status.ok()) return status;
      RETURN_IF_ERROR(BeginPart(request));
      const v1::FileHeader& header = request.file();
      RETURN_IF_ERROR(CheckDeclaredSize(header, options_->file.max_size));
      auto file = std::make_unique<UploadedFile>(header.field_name(), header.filename(),
                                                 header.content_type(), options_->file);
      current_file_ = file.get();
      declared_size_ =
          header.has_size() ? std::optional<uint64_t>(header.size()) : std::nullopt;
      upload_.order.push_back({true, upload_.files.size()});
      upload_.files.push_back(std::move(file));
      return absl::OkStatus();
    }
    case v1::UploadRequest::kChunk: {
      if (current_file_ == nullptr) {
        return absl::InvalidArgumentError("a Chunk before any FileHeader");
      }
      const v1::Chunk& chunk = request.chunk();
      if (chunk.offset() != 0 && chunk.offset() != current_file_->size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("chunk offset ", chunk.offset(), " but ",
                         current_file_->size(), " bytes of the file were sent"));
      }
      if (declared_size_.has_value() &&
          current_file_->size() + chunk.data().size() > *declared_size_) {
        return absl::InvalidArgumentError(
            absl::StrCat("file \"", current_file_->filename(), "\" is larger than its "
                         "declared size ", *declared_size_));
      }
      return current_file_->Append(chunk.data());
    }
    default:
      return absl::InvalidArgumentError("UploadRequest without a kind");
  }
}

absl::Status UploadReactor::BeginPart(const v1::UploadRequest& request) {
  // Refused before it is kept: no part past a limit takes memory.
  RETURN_IF_ERROR(
      CheckPartLimits(request, upload_.order.size(), options_->stream.multipart));
  metadata_bytes_ += PartMetadataBytes(request);
  return absl::OkStatus();
}

absl::Status UploadReactor::HandleStart(const v1::UploadStart& start) {
  started_ = true;
  RequestInfo& request = upload_.request;
  request.protocol = "gRPC";
  request.method = "POST";
  std::string_view path = start.path();
  if (const size_t q = path.find('?'); q != std::string_view::npos) {
    request.query = std::string(path.substr(q + 1));
    path = path.substr(0, q);
  }
  if (!path.empty() && path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("upload path \"", AbslView(path), "\" does not start with '/'"));
  }
  request.path = path.empty() ? "/" : std::string(path);
  for (const v1::Header& header : start.headers()) {
    request.headers.emplace_back(absl::AsciiStrToLower(header.name()), header.value());
  }
  request.remote_address = context_->peer();
  // Fields and files, as a multipart/form-data body would carry them.
  request.content_type = "multipart/form-data";
  if (start.has_total_size()) declared_total_ = start.total_size();
  if (declared_total_.has_value() && *declared_total_ > options_->max_body_size) {
    return StartStream(request);
  }
  return absl::OkStatus();
}

absl::Status UploadReactor::StartStream(RequestInfo request) {
  framer_.emplace();
  request.content_type = framer_->content_type();
  ASSIGN_OR_RETURN(stream_, StreamUploadSource::Create(std::move(request),
                                                       options_->stream, this));
  Dispatch(stream_);  // at once: the bytes flow as the consumer takes them
  return absl::OkStatus();
}

bool UploadReactor::OverMaxBodySize() const {
  // A declared total decided the mode at UploadStart, as Content-Length does. The
  // parts' metadata counts as an HTTP body's part headers count toward its length.
  return stream_ == nullptr && !declared_total_.has_value() &&
         bytes_sent_ + metadata_bytes_ > options_->max_body_size;
}

absl::Status UploadReactor::SwitchToStream() {
  auto replay = std::make_unique<Replay>();
  if (current_file_ != nullptr) {
    // Its bytes so far open its part; its live chunks continue it, still checked
    // against its declared size (declared_size_).
    UploadedFile* file = std::exchange(current_file_, nullptr);
    RETURN_IF_ERROR(file->Finish());
    replay->last_file_open = true;
    in_stream_file_ = true;
    stream_file_size_ = file->size();
  }
  replay->prefix = std::move(upload_);
  replay_ = std::move(replay);
  {
    MutexLock lock(&mu_);
    replaying_ = true;
    pumping_ = true;  // this thread, below
  }
  RETURN_IF_ERROR(StartStream(replay_->prefix.request));
  PumpReplay();
  return absl::OkStatus();
}

void UploadReactor::PumpReplay() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (finished_ || paused_) {
        // Paused: Resume() schedules the rest. Finished: nothing more is wanted.
        pumping_ = false;
        return;
      }
    }
    absl::StatusOr<bool> more = ReplayStep();
    if (!more.ok()) {
      {
        MutexLock lock(&mu_);
        pumping_ = false;
      }
      Fail(more.status());
      return;
    }
    if (!*more) break;
  }
  replay_.reset();  // the prefix's memory and temp files are not needed any more
  MutexLock lock(&mu_);
  replaying_ = false;
  pumping_ = false;
  if (finished_) return;
  if (paused_) {
    read_parked_ = true;  // the last piece filled the source
    return;
  }
  StartReadLocked();
}

absl::StatusOr<bool> UploadReactor::ReplayStep() {
  Replay& replay = *replay_;
  if (replay.reader.has_value()) {
    ASSIGN_OR_RETURN(const std::string_view chunk, replay.reader->Next());
    if (!chunk.empty()) {
      RETURN_IF_ERROR(stream_->Feed(chunk));
      return true;
    }
    replay.reader.reset();
    const bool open =
        replay.last_file_open && replay.next_part == replay.prefix.order.size();
    if (!open) {
      RETURN_IF_ERROR(stream_->Feed(MultipartFramer::EndPart()));
    }
    return true;
  }
  if (replay.next_part == replay.prefix.order.size()) return false;
  const BufferedUpload::PartRef part = replay.prefix.order[replay.next_part++];
  if (!part.is_file) {
    const FormField& field = replay.prefix.fields[part.index];
    ASSIGN_OR_RETURN(const std::string framed,
                     framer_->FieldPart(field.name, field.value));
    RETURN_IF_ERROR(stream_->Feed(framed));
    return true;
  }
  const UploadedFile& file = *replay.prefix.files[part.index];
  ASSIGN_OR_RETURN(const std::string header,
                   framer_->FilePartHeader(file.field_name(), file.filename(),
                                           file.content_type()));
  ASSIGN_OR_RETURN(FileChunkReader reader, file.NewReader(options_->stream.chunk_size));
  replay.reader.emplace(std::move(reader));
  RETURN_IF_ERROR(stream_->Feed(header));
  return true;
}

void UploadReactor::ScheduleReplayLocked() {
  // Replacing the previous alarm is safe: it has fired (its callback cleared
  // pumping_), and a running callback keeps its own reference to it.
  replay_alarm_ = std::make_unique<grpc::Alarm>();
  replay_alarm_->Set(std::chrono::system_clock::now(),
                     [link = link_](bool /*fired*/) { RunScheduledReplay(link); });
}

UploadReactor* UploadReactor::EnterAlarm(const std::shared_ptr<Link>& link) {
  MutexLock lock(&link->mu);
  UploadReactor* reactor = link->reactor;
  if (reactor == nullptr) return nullptr;  // the RPC is over (or the alarm cancelled)
  MutexLock reactor_lock(&reactor->mu_);
  ++reactor->alarms_running_;
  return reactor;
}

void UploadReactor::LeaveAlarm() {
  MutexLock lock(&mu_);
  if (--alarms_running_ == 0) alarm_done_.SignalAll();
}

void UploadReactor::RunScheduledReplay(const std::shared_ptr<Link>& link) {
  UploadReactor* reactor = EnterAlarm(link);
  if (reactor == nullptr) return;
  // Without the link's lock: an answer may come through it on this very thread.
  reactor->PumpReplay();
  reactor->LeaveAlarm();
}

void UploadReactor::ArmIdleAlarmLocked(absl::Time at) {
  // A fresh alarm, as for the replay: this may run inside the previous one's callback.
  idle_alarm_ = std::make_unique<grpc::Alarm>();
  idle_alarm_->Set(absl::ToChronoTime(at), [link = link_](bool fired) {
    if (fired) RunIdleCheck(link);
  });
}

void UploadReactor::RunIdleCheck(const std::shared_ptr<Link>& link) {
  UploadReactor* reactor = EnterAlarm(link);
  if (reactor == nullptr) return;
  reactor->CheckIdle();
  reactor->LeaveAlarm();
}

void UploadReactor::CheckIdle() {
  const absl::Duration timeout = options_->body_timeout;
  {
    MutexLock lock(&mu_);
    if (finished_) return;
    const absl::Time now = absl::Now();
    if (!reading_ || now - reading_since_ < timeout) {
      // In time, or waiting on the consumer (the source is full): look again later.
      ArmIdleAlarmLocked((reading_ ? reading_since_ : now) + timeout);
      return;
    }
  }
  // Like a cancellation, on a thread other than the read reactions': the buffered
  // upload and its temp files go with the reactor, once the pending read is done.
  Fail(absl::DeadlineExceededError(
      absl::StrCat("no message from the uploader for ", absl::FormatDuration(timeout),
                   " (BODY_TIMEOUT)")));
}

absl::Status UploadReactor::HandleStreamed(const v1::UploadRequest& request) {
  switch (request.kind_case()) {
    case v1::UploadRequest::kField: {
      if (absl::Status status = EndStreamFile(); !status.ok()) return status;
      absl::StatusOr<std::string> part =
          framer_->FieldPart(request.field().name(), request.field().value());
      if (!part.ok()) return part.status();
      return stream_->Feed(*part);
    }
    case v1::UploadRequest::kFile: {
      if (absl::Status status = EndStreamFile(); !status.ok()) return status;
      const v1::FileHeader& header = request.file();
      RETURN_IF_ERROR(CheckDeclaredSize(header, options_->file.max_size));
      absl::StatusOr<std::string> part = framer_->FilePartHeader(
          header.field_name(), header.filename(), header.content_type());
      if (!part.ok()) return part.status();
      in_stream_file_ = true;
      stream_file_size_ = 0;
      declared_size_ =
          header.has_size() ? std::optional<uint64_t>(header.size()) : std::nullopt;
      return stream_->Feed(*part);
    }
    case v1::UploadRequest::kChunk: {
      if (!in_stream_file_) {
        return absl::InvalidArgumentError("a Chunk before any FileHeader");
      }
      const v1::Chunk& chunk = request.chunk();
      if (chunk.offset() != 0 && chunk.offset() != stream_file_size_) {
        return absl::InvalidArgumentError(
            absl::StrCat("chunk offset ", chunk.offset(), " but ", stream_file_size_,
                         " bytes of the file were sent"));
      }
      stream_file_size_ += chunk.data().size();
      if (declared_size_.has_value() && stream_file_size_ > *declared_size_) {
        return absl::InvalidArgumentError(
            absl::StrCat("a file is larger than its declared size ", *declared_size_));
      }
      return stream_->Feed(chunk.data());
    }
    default:
      return absl::InvalidArgumentError("UploadRequest without a kind");
  }
}

absl::Status UploadReactor::EndStreamFile() {
  if (!in_stream_file_) return absl::OkStatus();
  in_stream_file_ = false;
  if (declared_size_.has_value() && stream_file_size_ != *declared_size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("a file declared ", *declared_size_, " bytes but sent ",
                     stream_file_size_));
  }
  return stream_->Feed(MultipartFramer::EndPart());
}

absl::Status UploadReactor::EndFile() {
  if (current_file_ == nullptr) return absl::OkStatus();
  UploadedFile* file = std::exchange(current_file_, nullptr);
  if (declared_size_.has_value() && file->size() != *declared_size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("file \"", file->filename(), "\" declared ", *declared_size_,
                     " bytes but sent ", file->size()));
  }
  return file->Finish();
}

void UploadReactor::Submit() {
  {
    MutexLock lock(&mu_);
    if (finished_ || cancelled_) return;
  }
  absl::Status status =
      started_ ? EndFile() : absl::InvalidArgumentError("no UploadStart was sent");
  if (!status.ok()) {
    FinishOnce(ToGrpcStatus(status), nullptr);
    return;
  }
  upload_.total_bytes = bytes_sent_;
  Dispatch(std::make_shared<BufferedUploadSource>(std::move(upload_)));
}

void UploadReactor::Dispatch(std::shared_ptr<UploadSource> source) {
  // Not under mu_: the answer may come before Submit() returns.
  UploadHandle handle = options_->dispatcher->Submit(
      std::move(source), [link = link_](ConsumerReply reply) mutable {
        MutexLock lock(&link->mu);
        if (link->reactor != nullptr) link->reactor->OnAnswer(std::move(reply));
      });
  bool cancel = false;
  {
    MutexLock lock(&mu_);
    if (finished_ || cancelled_) {  // failed or cancelled meanwhile
      cancel = true;
    } else {
      handle_ = std::move(handle);
    }
  }
  if (cancel) handle.Cancel("the gRPC uploader cancelled");
}

void UploadReactor::OnAnswer(ConsumerReply reply) {
  FinishOnce(grpc::Status::OK, &reply);
}

void UploadReactor::OnCancel() {
  {
    MutexLock lock(&mu_);
    cancelled_ = true;
  }
  Fail(absl::CancelledError("the gRPC uploader cancelled"));
}

void UploadReactor::FinishOnce(const grpc::Status& status, const ConsumerReply* reply) {
  {
    MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    if (reply != nullptr) ToProtoReply(*reply, response_);
  }
  GrpcMetrics::CountUploadRpc(status.error_code());
  Finish(status);
}

void UploadReactor::OnDone() {
  {
    // Waits for an answer being delivered right now; none comes in afterwards.
    MutexLock lock(&link_->mu);
    link_->reactor = nullptr;
  }
  {
    // No alarm starts a replay step now; one under way still feeds the source.
    MutexLock lock(&mu_);
    alarm_done_.Await(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return alarms_running_ == 0;
    });
  }
  // No Pause()/Resume() after this; one under way has returned.
  if (stream_ != nullptr) stream_->Detach();
  delete this;
}

}  // namespace spillway
