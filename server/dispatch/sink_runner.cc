#include "server/dispatch/sink_runner.h"

#include <atomic>
#include <memory>
#include <optional>
#include <utility>
#include <variant>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "server/common/string_view_compat.h"
#include "server/dispatch/receipt.h"
#include "server/upload/checksum.h"

namespace spillway {
namespace {

// Per-delivery state; one event at a time.
class SinkSession {
 public:
  SinkSession(Sink& sink, Delivery& delivery) : sink_(sink), delivery_(delivery) {}

  // Returns false once the delivery is over.
  bool Handle(const UploadEvent& event) { return std::visit(*this, event); }

  bool operator()(const RequestStartedEvent& event) {
    receipt_.upload_id = std::string(event.upload_id);
    return true;
  }
  bool operator()(const FieldEvent& event) {
    receipt_.fields.emplace_back(std::string(event.name), std::string(event.value));
    return true;
  }
  bool operator()(const FileStartedEvent& event) {
    current_ = FileReceipt{};
    current_.field_name = std::string(event.field_name);
    current_.filename = std::string(event.filename);
    current_.content_type = std::string(event.content_type);
    current_.mode = event.mode;
    // The upload hashes as its bytes arrive; hash here only for a digest it lacks.
    own_sha256_ = sink_.needs_sha256() && event.checksum_kind != ChecksumKind::kSha256;
    if (own_sha256_) sha256_ = Checksum::Create(ChecksumKind::kSha256);
    absl::StatusOr<std::unique_ptr<SinkFile>> file =
        sink_.NewFile(receipt_.upload_id, receipt_.files.size(), event.filename);
    if (!file.ok()) return ReplyError(file.status());
    file_ = *std::move(file);
    if (event.path_only && (!sink_.ignores_bytes() || own_sha256_)) {
      // Never asked for: only sinks that ignore the bytes register for paths only.
      return ReplyError(absl::InternalError("sink got a file by path only"));
    }
    return true;
  }
  bool operator()(const ChunkEvent& event) {
    if (own_sha256_) sha256_.Update(event.data);
    if (absl::Status status = file_->Write(event.data); !status.ok()) {
      return ReplyError(status);
    }
    return true;
  }
  bool operator()(const FileFinishedEvent& event) {
    absl::StatusOr<std::optional<std::string>> stored = file_->Finish();
    if (!stored.ok()) return ReplyError(stored.status());
    finished_.push_back(std::move(file_));
    current_.stored_name = *std::move(stored);
    current_.size = event.size;
    if (own_sha256_) {
      current_.checksum_kind = ChecksumKind::kSha256;
      current_.checksum = sha256_.FinishHex();
    } else {
      current_.checksum_kind = event.checksum_kind;
      current_.checksum = std::string(event.checksum_hex);
    }
    receipt_.files.push_back(std::move(current_));
    return true;
  }
  bool operator()(const RequestFinishedEvent& event) {
    // All or nothing: a file that cannot be published takes back those that were.
    for (size_t i = 0; i < finished_.size(); ++i) {
      if (absl::Status status = finished_[i]->Publish(); !status.ok()) {
        for (size_t j = 0; j < i; ++j) finished_[j]->Withdraw();
        return ReplyError(status);
      }
    }
    finished_.clear();
    receipt_.total_bytes = event.total_bytes;
    ConsumerReply reply;
    reply.status = sink_.success_status();
    reply.headers.emplace_back("content-type", "application/json");
    reply.body = receipt_.ToJson();
    delivery_.Reply(std::move(reply));
    return false;
  }
  bool operator()(const RequestAbortedEvent&) {
    // Nobody waits for an answer.
    DropFiles();
    delivery_.Fail(absl::CancelledError("upload aborted"));
    return false;
  }

 private:
  // Files not published leave nothing behind (SinkFile), and go at once rather than
  // with the session.
  void DropFiles() {
    file_.reset();
    finished_.clear();
  }

  bool ReplyError(const absl::Status& status) {
    DropFiles();
    const int http_status =
        status.code() == absl::StatusCode::kResourceExhausted ? 507 : 500;
    delivery_.Reply(ConsumerReply::JsonError(
        http_status, absl::StrCat(AbslView(sink_.name()), " sink: ", status.message())));
    return false;
  }

  Sink& sink_;
  Delivery& delivery_;
  Receipt receipt_;
  FileReceipt current_;
  bool own_sha256_ = false;  // the current file's SHA-256 is computed here
  Checksum sha256_ = Checksum::Create(ChecksumKind::kNone);  // only if own_sha256_
  std::unique_ptr<SinkFile> file_;  // the file being written
  // Written whole, published when the upload has arrived whole (RequestFinished).
  // Inline: most uploads carry a file or two, and this runs for every upload.
  absl::InlinedVector<std::unique_ptr<SinkFile>, 2> finished_;
};

thread_local bool inside_inline_delivery = false;

// One RunSinkDeliveryInline() run. Owned by the callbacks it gives Next() (and by
// Pump() while it runs); the last one to let go destroys it.
//
// One Next() is outstanding at a time. Its callback either runs inside Next() (the
// event was at hand: Pump()'s loop handles it, so there is no recursion over a whole
// buffered upload) or later on the producer's thread, which then handles the event
// and pumps on from there. state_ decides which of the two handles an event when the
// callback races the end of Next(): whichever moves it second. (An atomic, not a
// mutex: this runs for every event of every upload a built-in sink takes.)
class InlineSinkRun : public std::enable_shared_from_this<InlineSinkRun> {
 public:
  InlineSinkRun(std::shared_ptr<Sink> sink, std::unique_ptr<Delivery> delivery)
      : sink_(std::move(sink)), delivery_(std::move(delivery)), session_(*sink_, *delivery_) {}

  void Pump() {
    const bool was_inside = std::exchange(inside_inline_delivery, true);
    for (;;) {
      event_.reset();  // no Next() is outstanding: event_ is this thread's
      state_.store(State::kInNext, std::memory_order_relaxed);
      delivery_->Next([self = shared_from_this()](absl::StatusOr<UploadEvent> event) {
        self->OnEvent(std::move(event));
      });
      if (state_.exchange(State::kIdle, std::memory_order_acq_rel) != State::kEventReady) {
        break;  // it comes later: OnEvent() takes over
      }
      if (!HandleEvent()) break;
    }
    inside_inline_delivery = was_inside;
  }

 private:
  enum class State { kIdle, kInNext, kEventReady };

  void OnEvent(absl::StatusOr<UploadEvent> event) {
    event_.emplace(std::move(event));
    if (state_.exchange(State::kEventReady, std::memory_order_acq_rel) == State::kInNext) {
      return;  // Pump() handles it when Next() returns
    }
    const bool was_inside = std::exchange(inside_inline_delivery, true);
    const bool more = HandleEvent();
    inside_inline_delivery = was_inside;
    if (more) Pump();
  }

  // Returns false once the delivery is over (answered, failed or aborted).
  bool HandleEvent() {
    // Only one thread gets here at a time: the one Next() or its callback chose.
    absl::StatusOr<UploadEvent>& event = *event_;
    if (!event.ok()) {
      delivery_->Fail(event.status());
      return false;
    }
    return session_.Handle(*event);
  }

  const std::shared_ptr<Sink> sink_;
  const std::unique_ptr<Delivery> delivery_;
  SinkSession session_;
  std::atomic<State> state_{State::kIdle};
  // The event being handled, written by the callback and read by whoever handles it
  // (state_ orders the two). Its views are valid until the next Next().
  std::optional<absl::StatusOr<UploadEvent>> event_;
};

}  // namespace

void RunSinkDeliveryInline(std::shared_ptr<Sink> sink, std::unique_ptr<Delivery> delivery) {
  std::make_shared<InlineSinkRun>(std::move(sink), std::move(delivery))->Pump();
}

bool InsideInlineSinkDelivery() { return inside_inline_delivery; }

void RunSinkDelivery(Sink& sink, Delivery& delivery) {
  SinkSession session(sink, delivery);
  for (;;) {
    absl::StatusOr<UploadEvent> event = NextEventBlocking(delivery);
    if (!event.ok()) {
      delivery.Fail(event.status());
      return;
    }
    if (!session.Handle(*event)) return;
  }
}

}  // namespace spillway
