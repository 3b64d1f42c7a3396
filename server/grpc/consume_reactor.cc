#include "server/grpc/consume_reactor.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "server/grpc/grpc_metrics.h"
#include "server/grpc/proto_conversions.h"

namespace spillway {

// The Consumer the Dispatcher holds. It may outlive the reactor: Detach() cuts it
// off, waiting for any Start() that is passing a delivery on.
class ConsumeReactor::StreamConsumer final : public Consumer {
 public:
  explicit StreamConsumer(ConsumeReactor* reactor) : reactor_(reactor) {}

  void Start(std::unique_ptr<Delivery> delivery) override {
    ConsumeReactor* reactor;
    {
      MutexLock lock(&mu_);
      reactor = reactor_;
      if (reactor != nullptr) ++starting_;
    }
    if (reactor == nullptr) return;  // `delivery` goes: it is redelivered
    reactor->AcceptDelivery(std::move(delivery));
    MutexLock lock(&mu_);
    if (--starting_ == 0) idle_cv_.SignalAll();
  }

  void Detach() {
    MutexLock lock(&mu_);
    reactor_ = nullptr;
    idle_cv_.Await(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return starting_ == 0;
    });
  }

 private:
  Mutex mu_;
  CondVar idle_cv_;
  ConsumeReactor* reactor_ ABSL_GUARDED_BY(mu_);  // not owned; null once detached
  int starting_ ABSL_GUARDED_BY(mu_) = 0;         // Start() calls in the reactor
};

// Travels inside each Next() callback; the reactor is not deleted while one lives.
class ConsumeReactor::CallbackToken {
 public:
  explicit CallbackToken(ConsumeReactor* reactor) : reactor_(reactor) {}
  CallbackToken(CallbackToken&& other) noexcept
      : reactor_(std::exchange(other.reactor_, nullptr)) {}
  CallbackToken& operator=(CallbackToken&&) = delete;
  ~CallbackToken() {
    if (reactor_ != nullptr) reactor_->ReleaseCallback();
  }
  ConsumeReactor* reactor() const { return reactor_; }

 private:
  ConsumeReactor* reactor_;
};

// One thing the driver does with mu_ released.
struct ConsumeReactor::Action {
  enum class Kind { kNone, kUnregister, kReply, kFail, kWrite, kNext, kWatch, kFinish };
  Kind kind = Kind::kNone;
  std::unique_ptr<Delivery> delivery;  // kReply, kFail: taken from delivery_
  Delivery* next_on = nullptr;         // kNext, kWatch: still owned by delivery_
  uint64_t generation = 0;             // kNext, kWatch
  ConsumerReply reply;                 // kReply
  absl::Status why;                    // kFail
  Counter* outcome = nullptr;          // kReply, kFail
  grpc::Status finish;                 // kFinish
  Dispatcher::ConsumerId consumer_id = 0;  // kUnregister
};

ConsumeReactor::ConsumeReactor(Dispatcher* dispatcher,
                               grpc::CallbackServerContext* context)
    : dispatcher_(dispatcher), context_(context) {
  StartRead(&in_bytes_);
}

void ConsumeReactor::OnReadDone(bool ok) {
  bool read_more = false;
  {
    MutexLock lock(&mu_);
    in_read_callback_ = true;
    if (!ok) {
      // Half-closed or broken: either way no Reply can come any more.
      broken_ = true;
      if (!finish_status_.has_value()) finish_status_ = grpc::Status::OK;
    }
  }
  if (ok) {
    // The method is raw (IngestService), so the parse a typed method leaves to gRPC
    // is ours. It also releases in_bytes_ for the next read.
    if (!grpc::SerializationTraits<v1::ConsumerMessage>::Deserialize(&in_bytes_, &in_)
             .ok()) {
      MutexLock lock(&mu_);
      FinishWithLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    "a message on the stream is not a ConsumerMessage"));
    } else {
      switch (in_.kind_case()) {
        case v1::ConsumerMessage::kAttach:
          read_more = HandleAttach(in_.attach());
          break;
        case v1::ConsumerMessage::kReply:
          HandleReply(in_.reply());
          read_more = true;
          break;
        default: {
          MutexLock lock(&mu_);
          FinishWithLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                        "ConsumerMessage without attach or reply"));
          break;
        }
      }
    }
  }
  {
    MutexLock lock(&mu_);
    if (finish_status_.has_value()) read_more = false;
    // The read is started before in_read_callback_ drops, so Finish() cannot slip
    // in between the check above and StartRead().
    if (read_more) StartRead(&in_bytes_);
    in_read_callback_ = false;
  }
  Drive();
}

bool ConsumeReactor::HandleAttach(const v1::Attach& attach) {
  ConsumerSpec spec;
  spec.name = attach.name();
  spec.paths_only = attach.paths_only();
  for (const std::string& prefix : attach.path_prefixes()) {
    if (prefix.empty() || prefix[0] != '/') {
      MutexLock lock(&mu_);
      FinishWithLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    absl::StrCat("path prefix \"", prefix,
                                                 "\" does not start with '/'")));
      return false;
    }
    spec.path_prefixes.push_back(prefix);
  }
  {
    MutexLock lock(&mu_);
    if (attached_) {
      FinishWithLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    "Attach sent twice"));
      return false;
    }
    attached_ = true;
  }
  consumer_ = std::make_shared<StreamConsumer>(this);
  GrpcMetrics::Get().consumers_attached->Add(1);
  // May hand over an upload before it returns.
  const Dispatcher::ConsumerId id = dispatcher_->Register(consumer_, std::move(spec));
  MutexLock lock(&mu_);
  consumer_id_ = id;
  return true;
}

void ConsumeReactor::HandleReply(const v1::Reply& reply) {
  MutexLock lock(&mu_);
  if (!attached_) {
    FinishWithLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "the first message must be Attach"));
    return;
  }
  // Which upload a Reply answers must be said: one without an id could be a late
  // second answer to the upload before, and would answer the next one, which this
  // consumer may not even have seen (DESIGN.md §3: no 2xx that no consumer gave).
  if (reply.upload_id().empty()) {
    FinishWithLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "Reply.upload_id is required (the RequestStarted "
                                  "upload_id of the upload being answered)"));
    return;
  }
  // A reply for no upload, or a stale one, is dropped.
  if (delivery_ == nullptr || pending_reply_.has_value()) return;
  if (reply.upload_id() != upload_id_) return;
  pending_reply_ = FromProtoReply(reply);
}

void ConsumeReactor::OnWriteDone(bool ok) {
  {
    MutexLock lock(&mu_);
    // gRPC is done with out_; a streamed chunk's buffer goes as soon as the transport
    // lets go of its slice too.
    out_.Clear();
    write_in_flight_ = false;
    if (ok) {
      GrpcMetrics::Get().bytes_delivered->Increment(chunk_bytes_in_flight_);
    } else {
      broken_ = true;
      if (!finish_status_.has_value()) {
        finish_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed");
      }
    }
    chunk_bytes_in_flight_ = 0;
  }
  Drive();
}

void ConsumeReactor::OnCancel() {
  {
    MutexLock lock(&mu_);
    broken_ = true;
    if (!finish_status_.has_value()) finish_status_ = grpc::Status::CANCELLED;
  }
  Drive();
}

void ConsumeReactor::OnDone() {
  // No Start() after this; one under way has finished.
  if (consumer_ != nullptr) consumer_->Detach();
  std::unique_ptr<Delivery> delivery;
  Dispatcher::ConsumerId id;
  {
    MutexLock lock(&mu_);
    idle_cv_.Await(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !driving_;
    });
    driving_ = true;  // for good: no Drive() does anything from here on
    delivery = TakeDeliveryLocked();
    id = consumer_id_;
    broken_ = true;
  }
  if (delivery != nullptr) {
    delivery->Fail(absl::UnavailableError("the consumer's stream ended"));
    GrpcMetrics::Get().deliveries_failed->Increment();
    delivery.reset();
  }
  {
    MutexLock lock(&mu_);
    idle_cv_.Await(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return callbacks_ == 0;
    });
  }
  if (id != 0) dispatcher_->Unregister(id);  // harmless if already done
  if (consumer_ != nullptr) GrpcMetrics::Get().consumers_attached->Add(-1);
  delete this;
}

void ConsumeReactor::AcceptDelivery(std::unique_ptr<Delivery> delivery) {
  std::unique_ptr<Delivery> refused;
  {
    MutexLock lock(&mu_);
    if (delivery_ != nullptr || broken_ || finish_status_.has_value()) {
      refused = std::move(delivery);
    } else {
      upload_id_ = std::string(delivery->upload_id());
      delivery_ = std::move(delivery);
      StartNewGenerationLocked();
      watch_wanted_ = true;  // see OnOver
    }
  }
  if (refused != nullptr) {
    // Let go unlocked: the dispatcher redelivers it (possibly to us, refused again
    // only while we are ending).
    refused->Fail(absl::UnavailableError("the consumer's stream is ending"));
    return;
  }
  Drive();
}

void ConsumeReactor::OnEvent(uint64_t generation, absl::StatusOr<UploadEvent> event) {
  {
    MutexLock lock(&mu_);
    if (generation != generation_ || delivery_ == nullptr) return;  // stale
    next_outstanding_ = false;
    if (!event.ok()) {
      event_error_ = event.status();
    } else if (absl::Status encoded = encoder_.Encode(*event, &out_); !encoded.ok()) {
      event_error_ = std::move(encoded);
    } else {
      // Encode() copied what the views show (they die at our next call on the
      // delivery), or took a streamed chunk's buffer: of that chunk only data.size()
      // is read now.
      out_ready_ = true;
      if (const auto* chunk = std::get_if<ChunkEvent>(&*event)) {
        chunk_bytes_in_flight_ = chunk->data.size();
      }
      if (IsLastEvent(*event)) {
        last_event_taken_ = true;
        release_after_write_ = std::holds_alternative<RequestAbortedEvent>(*event);
        // Now only the consumer's Reply moves things on, unless we hear otherwise.
        watch_wanted_ = !release_after_write_;
      }
    }
  }
  Drive();
}

void ConsumeReactor::OnOver(uint64_t generation) {
  bool cancel = false;
  {
    MutexLock lock(&mu_);
    if (generation != generation_ || delivery_ == nullptr) return;  // let go already
    over_ = true;
    // Our write has waited about REPLY_TIMEOUT: the consumer stopped reading (for an
    // uploader that merely went away, a recent write just completes as usual).
    cancel = write_in_flight_ && absl::Now() - write_started_at_ >=
                                     dispatcher_->settings().reply_timeout / 2;
  }
  if (cancel) {
    // The stuck write then completes (not ok), and the stream ends like any broken
    // one: the delivery, its files and the consumer's slot go.
    context_->TryCancel();
    return;
  }
  Drive();
}

void ConsumeReactor::ReleaseCallback() {
  MutexLock lock(&mu_);
  if (--callbacks_ == 0) idle_cv_.SignalAll();
}

void ConsumeReactor::StartNewGenerationLocked() {
  ++generation_;
  next_outstanding_ = false;
  last_event_taken_ = false;
  over_ = false;
  watch_wanted_ = false;
  release_after_write_ = false;
  pending_reply_.reset();
  event_error_ = absl::OkStatus();
}

std::unique_ptr<Delivery> ConsumeReactor::TakeDeliveryLocked() {
  StartNewGenerationLocked();
  // An unsent event is dropped (no write is in flight while one is ready), and with
  // it a streamed chunk's buffer.
  if (out_ready_) out_.Clear();
  out_ready_ = false;
  upload_id_.clear();
  return std::move(delivery_);
}

void ConsumeReactor::FinishWithLocked(grpc::Status status) {
  broken_ = true;
  if (!finish_status_.has_value()) finish_status_ = std::move(status);
}

ConsumeReactor::Action ConsumeReactor::NextActionLocked() {
  Action action;
  const GrpcMetrics& metrics = GrpcMetrics::Get();
  if (broken_ && consumer_id_ != 0 && !unregistered_) {
    // At once, not in OnDone(): every upload offered to a dying stream would be
    // refused, costing a buffered upload an attempt and a streamed one a 502.
    unregistered_ = true;
    action.kind = Action::Kind::kUnregister;
    action.consumer_id = consumer_id_;
    return action;
  }
  if (delivery_ != nullptr) {
    if (pending_reply_.has_value()) {
      // A reply that arrived wins, even if the stream broke right after.
      action.kind = Action::Kind::kReply;
      action.reply = *std::move(pending_reply_);
      action.outcome = metrics.deliveries_replied;
      action.delivery = TakeDeliveryLocked();
      return action;
    }
    if (broken_ || !event_error_.ok()) {
      action.kind = Action::Kind::kFail;
      action.why = !event_error_.ok()
                       ? event_error_
                       : absl::UnavailableError("the consumer's stream broke");
      action.outcome = metrics.deliveries_failed;
      action.delivery = TakeDeliveryLocked();
      return action;
    }
    if (release_after_write_ && !out_ready_ && !write_in_flight_) {
      // RequestAborted reached the consumer: nobody wants its reply.
      action.kind = Action::Kind::kFail;
      action.why = absl::CancelledError("the upload was aborted");
      action.outcome = metrics.deliveries_aborted;
      action.delivery = TakeDeliveryLocked();
      return action;
    }
  }
  if (out_ready_ && !write_in_flight_ && !broken_) {
    out_ready_ = false;
    write_in_flight_ = true;
    write_started_at_ = absl::Now();
    action.kind = Action::Kind::kWrite;
    return action;
  }
  if (delivery_ != nullptr && watch_wanted_) {
    watch_wanted_ = false;
    ++callbacks_;
    action.kind = Action::Kind::kWatch;
    action.next_on = delivery_.get();
    action.generation = generation_;
    return action;
  }
  if (delivery_ != nullptr && !write_in_flight_ && !out_ready_ && !next_outstanding_ &&
      (!last_event_taken_ || over_)) {
    // After RequestFinished only when the upload is over: that Next() yields
    // RequestAborted.
    over_ = false;
    next_outstanding_ = true;
    ++callbacks_;
    action.kind = Action::Kind::kNext;
    action.next_on = delivery_.get();
    action.generation = generation_;
    return action;
  }
  if (finish_status_.has_value() && !finish_called_ && !write_in_flight_ &&
      delivery_ == nullptr && !in_read_callback_) {
    finish_called_ = true;
    action.kind = Action::Kind::kFinish;
    action.finish = *finish_status_;
    return action;
  }
  return action;
}

void ConsumeReactor::Perform(Action& action) {
  switch (action.kind) {
    case Action::Kind::kNone:
      return;
    case Action::Kind::kUnregister:
      dispatcher_->Unregister(action.consumer_id);
      return;
    case Action::Kind::kReply:
      action.delivery->Reply(std::move(action.reply));
      action.outcome->Increment();
      action.delivery.reset();
      return;
    case Action::Kind::kFail:
      action.delivery->Fail(action.why);
      action.outcome->Increment();
      action.delivery.reset();
      return;
    case Action::Kind::kWrite:
      // out_ is not touched until OnWriteDone: no Next() is made before it.
      StartWrite(&out_);
      return;
    case Action::Kind::kNext: {
      // Safe without mu_: only the driver (this thread) takes delivery_ away.
      action.next_on->Next(
          [token = CallbackToken(this), generation = action.generation](
              absl::StatusOr<UploadEvent> event) mutable {
            token.reactor()->OnEvent(generation, std::move(event));
          });
      return;
    }
    case Action::Kind::kWatch:
      // Safe without mu_, as for kNext. May call back inline (already over).
      action.next_on->NotifyWhenOver(
          [token = CallbackToken(this), generation = action.generation]() mutable {
            token.reactor()->OnOver(generation);
          });
      return;
    case Action::Kind::kFinish:
      Finish(action.finish);
      return;
  }
}

void ConsumeReactor::Drive() {
  {
    MutexLock lock(&mu_);
    if (driving_) return;  // the driver re-checks the state after its current step
    driving_ = true;
  }
  for (;;) {
    Action action;
    {
      MutexLock lock(&mu_);
      action = NextActionLocked();
      if (action.kind == Action::Kind::kNone) {
        driving_ = false;
        idle_cv_.SignalAll();
        return;
      }
    }
    Perform(action);
  }
}

}  // namespace spillway
