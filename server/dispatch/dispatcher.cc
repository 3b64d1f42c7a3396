#include "server/dispatch/dispatcher.h"

#include <sys/random.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/admin/metrics.h"

namespace spillway {

struct DispatchJob {
  enum class State {
    kWaiting,     // in Dispatcher::waiting_, no consumer yet
    kDelivering,  // a consumer holds delivery `delivery_seq`
    kDone,        // answered or cancelled; nothing more happens
  };

  DispatchJob(std::string id, std::shared_ptr<UploadSource> source,
              Dispatcher::DoneCallback on_done)
      : upload_id(std::move(id)), source(std::move(source)), on_done(std::move(on_done)) {}

  const std::string upload_id;  // immutable: readable without the lock
  // Guarded by Dispatcher::mu_ (a per-job annotation cannot name it).
  std::shared_ptr<UploadSource> source;  // reset when done
  Dispatcher::DoneCallback on_done;
  State state = State::kWaiting;
  uint32_t attempt = 0;       // of the current or last delivery
  uint64_t delivery_seq = 0;  // identifies the current delivery
  absl::Time dispatch_deadline;
  absl::Time reply_deadline;
  // The key of its entry in Dispatcher::reply_deadlines_; InfiniteFuture when none.
  absl::Time armed_reply_deadline = absl::InfiniteFuture();
  std::vector<Dispatcher::ConsumerId> failed_on;  // consumers that broke on it
  std::string end_reason;  // why it is over, for a consumer still holding it
  // The current delivery's Delivery::NotifyWhenOver callback, if it asked.
  absl::AnyInvocable<void() &&> on_over;
};

struct Dispatcher::ConsumerEntry {
  ConsumerId id = 0;
  std::shared_ptr<Consumer> consumer;
  ConsumerSpec spec;  // path_prefixes never empty
  bool busy = false;
  uint64_t last_start = 0;  // start_seq_ when it last got an upload (round robin)
};

struct Dispatcher::StartOrder {
  std::shared_ptr<Consumer> consumer;
  ConsumerId consumer_id;
  std::shared_ptr<Job> job;
  std::shared_ptr<UploadSource> source;
  uint64_t delivery_seq;
  uint32_t attempt;
  bool paths_only;
};

struct Dispatcher::Completion {
  Dispatcher::DoneCallback on_done;  // may be empty (cancelled upload)
  std::optional<ConsumerReply> reply;
  std::shared_ptr<UploadSource> abort_source;  // to wake a waiting stream cursor
  std::string reason;
  absl::AnyInvocable<void() &&> on_over;  // tells the consumer still holding it
};

// The Delivery a consumer holds: RequestStarted comes from here, the rest from the
// source's cursor; every call first asks the Dispatcher whether this delivery is
// still the upload's current one.
class DispatchedDelivery final : public Delivery {
 public:
  DispatchedDelivery(Dispatcher* dispatcher, Dispatcher::StartOrder order,
                     std::unique_ptr<EventCursor> cursor)
      : dispatcher_(dispatcher),
        job_(std::move(order.job)),
        source_(std::move(order.source)),
        consumer_id_(order.consumer_id),
        seq_(order.delivery_seq),
        attempt_(order.attempt),
        cursor_(std::move(cursor)) {}

  ~DispatchedDelivery() override {
    // The cursor goes first: a Next() callback still pending must not run into a
    // consumer that is destroying its delivery.
    cursor_.reset();
    if (!answered_) {
      Fail(absl::AbortedError("the consumer let go of the upload without replying"));
    }
  }

  std::string_view upload_id() const override { return job_->upload_id; }

  void Next(NextCallback callback) override {
    if (answered_) {
      std::move(callback)(
          absl::FailedPreconditionError("Next() after Reply() or Fail()"));
      return;
    }
    if (std::string reason = dispatcher_->CheckCurrent(job_, seq_); !reason.empty()) {
      if (abort_sent_) {
        std::move(callback)(absl::FailedPreconditionError("the upload is over"));
        return;
      }
      abort_sent_ = true;
      abort_reason_ = std::move(reason);
      std::move(callback)(RequestAbortedEvent{abort_reason_});
      return;
    }
    if (!started_sent_) {
      started_sent_ = true;
      std::move(callback)(RequestStartedEvent{job_->upload_id, attempt_,
                                              source_->mode(), &source_->request()});
      return;
    }
    cursor_->Next(std::move(callback));
  }

  void Reply(ConsumerReply reply) override {
    if (answered_.exchange(true)) return;
    Release("the consumer replied");
    dispatcher_->OnReply(job_, seq_, consumer_id_, std::move(reply));
  }

  void Fail(absl::Status why) override {
    if (answered_.exchange(true)) return;
    Release("the consumer failed");
    dispatcher_->OnFail(job_, seq_, consumer_id_, why);
  }

  void NotifyWhenOver(absl::AnyInvocable<void() &&> callback) override {
    if (answered_) return;  // answered by this delivery: nothing to be told
    dispatcher_->NotifyWhenOver(job_, seq_, std::move(callback));
  }

 private:
  // Lets go of the bytes before the answer travels on, so that by the time the
  // uploader sees it, no temp file is held on this consumer's behalf. A Next()
  // still outstanding (stream mode) gets RequestAborted first.
  void Release(std::string_view reason) {
    if (source_ != nullptr) source_->Abort(reason);
    cursor_.reset();
    source_.reset();
  }

  Dispatcher* const dispatcher_;
  const std::shared_ptr<DispatchJob> job_;
  // Holding the source keeps the bytes the cursor reads alive, even after the
  // upload was answered by a timeout on another thread. Null once answered.
  std::shared_ptr<UploadSource> source_;
  const Dispatcher::ConsumerId consumer_id_;
  const uint64_t seq_;
  const uint32_t attempt_;
  std::unique_ptr<EventCursor> cursor_;
  // Reply() may race with an outstanding Next() (an early reply in stream mode).
  std::atomic<bool> answered_{false};
  // Touched only by Next(), whose calls never overlap.
  bool started_sent_ = false;
  bool abort_sent_ = false;
  std::string abort_reason_;  // RequestAbortedEvent::reason points here
};

namespace {

std::string RandomHex64() {
  uint64_t value = 0;
  if (getrandom(&value, sizeof(value), 0) != sizeof(value)) {
    // getrandom cannot fail for 8 bytes once the pool is initialised; fall back to
    // the clock rather than fail start-up.
    value = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  }
  return absl::StrCat(absl::Hex(value, absl::kZeroPad16));
}

// The wall clock at the kernel tick's resolution (1-4 ms): a few ns to read, where
// absl::Now() takes about 50 here. For refreshing REPLY_TIMEOUT on every event a
// consumer pulls, where a tick is nothing.
absl::Time CoarseNow() {
  timespec now;
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  return absl::TimeFromTimespec(now);
}

// Whole-segment prefix match: "/a" matches "/a", "/a/", "/a/b", not "/ab".
bool PrefixMatches(std::string_view prefix, std::string_view path) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  return prefix.empty() || prefix.back() == '/' || path.size() == prefix.size() ||
         path[prefix.size()] == '/';
}

// How deliveries end, for every kind of consumer (built-in sinks and gRPC streams):
// spillway_deliveries_total{outcome}. Looked up once: the registry's lookups lock.
struct DeliveryOutcomes {
  Counter* replied;      // the consumer answered
  Counter* redelivered;  // the consumer broke; the buffered upload goes to another
  Counter* failed;       // the consumer broke and the upload got 502
  Counter* timed_out;    // no reply within REPLY_TIMEOUT: 504
  Counter* cancelled;    // the uploader went away during the delivery
};

const DeliveryOutcomes& Outcomes() {
  static const DeliveryOutcomes* const outcomes = [] {
    MetricsRegistry& registry = MetricsRegistry::Global();
    const auto counter = [&registry](std::string_view outcome) {
      return registry.GetCounter("spillway_deliveries_total",
                                 "Deliveries of uploads to consumers, by how they ended.",
                                 Labels({{"outcome", outcome}}));
    };
    return new DeliveryOutcomes{counter("replied"), counter("redelivered"),
                                counter("failed"), counter("timed_out"),
                                counter("cancelled")};
  }();
  return *outcomes;
}

std::string RetryAfterSeconds(absl::Duration dispatch_timeout) {
  // An uploader retrying sooner than a dispatch wait would likely wait again.
  const int64_t seconds =
      std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(dispatch_timeout,
                                                            absl::Seconds(1))));
  return absl::StrCat(seconds);
}

}  // namespace

// ---- UploadHandle ----

UploadHandle& UploadHandle::operator=(UploadHandle&& other) noexcept {
  if (this != &other) {
    Cancel("the uploader went away");
    dispatcher_ = std::exchange(other.dispatcher_, nullptr);
    job_ = std::move(other.job_);
  }
  return *this;
}

UploadHandle::~UploadHandle() { Cancel("the uploader went away"); }

const std::string& UploadHandle::upload_id() const {
  static const std::string* const kNone = new std::string();
  return job_ != nullptr ? job_->upload_id : *kNone;
}

void UploadHandle::Cancel(std::string_view reason) {
  if (job_ == nullptr) return;
  dispatcher_->Cancel(job_, reason);
  job_.reset();
}

// ---- Dispatcher ----

Dispatcher::Dispatcher(DispatchSettings settings)
    : settings_(std::move(settings)), id_prefix_(RandomHex64()) {
  timer_thread_ = std::thread([this] { TimerLoop(); });
}

Dispatcher::~Dispatcher() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    timer_cv_.Signal();
  }
  timer_thread_.join();
}

std::string Dispatcher::NewUploadId() {
  // StrCat with Hex, not StrFormat: this runs for every upload, and parsing a format
  // string cost more than the rest of the id.
  return absl::StrCat(id_prefix_, absl::Hex(next_id_.fetch_add(1), absl::kZeroPad16));
}

Dispatcher::ConsumerId Dispatcher::Register(std::shared_ptr<Consumer> consumer,
                                            ConsumerSpec spec) {
  if (spec.path_prefixes.empty()) spec.path_prefixes.push_back("/");
  std::vector<StartOrder> orders;
  ConsumerId id;
  {
    MutexLock lock(&mu_);
    id = next_consumer_id_++;
    auto entry = std::make_unique<ConsumerEntry>();
    entry->id = id;
    entry->consumer = std::move(consumer);
    entry->spec = std::move(spec);
    consumers_.emplace(id, std::move(entry));
    MatchLocked(&orders);
  }
  RunStarts(std::move(orders));
  return id;
}

void Dispatcher::Unregister(ConsumerId id) {
  std::unique_ptr<ConsumerEntry> entry;
  {
    MutexLock lock(&mu_);
    auto it = consumers_.find(id);
    if (it == consumers_.end()) return;
    entry = std::move(it->second);
    consumers_.erase(it);
  }
  // Destroyed unlocked: if the registry held the last reference, the consumer's
  // destructor may wait for a thread that is calling into this Dispatcher.
}

UploadHandle Dispatcher::Submit(std::shared_ptr<UploadSource> source,
                                DoneCallback on_done) {
  auto job = std::make_shared<Job>(NewUploadId(), std::move(source), std::move(on_done));
  std::vector<StartOrder> orders;
  {
    MutexLock lock(&mu_);
    EnqueueLocked(job);
    MatchLocked(&orders);
  }
  RunStarts(std::move(orders));
  return UploadHandle(this, std::move(job));
}

Dispatcher::Stats Dispatcher::stats() const {
  MutexLock lock(&mu_);
  Stats stats;
  stats.consumers = consumers_.size();
  for (const auto& [id, entry] : consumers_) stats.busy_consumers += entry->busy;
  for (const auto& job : waiting_) {
    stats.waiting_uploads += job->state == Job::State::kWaiting;
  }
  return stats;
}

std::string Dispatcher::CheckCurrent(const std::shared_ptr<Job>& job, uint64_t seq) {
  MutexLock lock(&mu_);
  if (job->state != Job::State::kDelivering || job->delivery_seq != seq) {
    return job->end_reason.empty() ? std::string("the upload is over")
                                   : job->end_reason;
  }
  // A consumer that keeps pulling is making progress: it gets a fresh REPLY_TIMEOUT
  // (never an earlier one: the coarse clock may lag the one that armed it).
  job->reply_deadline =
      std::max(job->reply_deadline, CoarseNow() + settings_.reply_timeout);
  return "";
}

void Dispatcher::NotifyWhenOver(const std::shared_ptr<Job>& job, uint64_t seq,
                                absl::AnyInvocable<void() &&> callback) {
  {
    MutexLock lock(&mu_);
    if (job->state == Job::State::kDelivering && job->delivery_seq == seq) {
      // An earlier callback, if any, is destroyed (as `callback`) after unlocking.
      std::swap(job->on_over, callback);
      return;
    }
  }
  std::move(callback)();  // already over
}

void Dispatcher::OnReply(const std::shared_ptr<Job>& job, uint64_t seq,
                         ConsumerId consumer, ConsumerReply reply) {
  if (absl::Status valid = reply.Validate(); !valid.ok()) {
    // Passed on, a CR or LF in a header would split an HTTP/1.1 response: what a
    // gateway does with an upstream's malformed answer.
    reply = ConsumerReply::JsonError(
        502, absl::StrCat("the consumer's reply cannot be sent as HTTP: ",
                          valid.message()));
  }
  std::vector<Completion> completions;
  std::vector<StartOrder> orders;
  absl::AnyInvocable<void() &&> unneeded;  // destroyed after unlocking
  {
    MutexLock lock(&mu_);
    MarkFreeLocked(consumer);
    if (job->state == Job::State::kDelivering && job->delivery_seq == seq) {
      unneeded = std::move(job->on_over);
      job->on_over = nullptr;
      Outcomes().replied->Increment();
      FinishLocked(*job, "the consumer replied", &reply, &completions);
    }
    MatchLocked(&orders);
  }
  RunCompletions(std::move(completions));
  RunStarts(std::move(orders));
}

void Dispatcher::OnFail(const std::shared_ptr<Job>& job, uint64_t seq,
                        ConsumerId consumer, const absl::Status& why) {
  std::vector<Completion> completions;
  std::vector<StartOrder> orders;
  absl::AnyInvocable<void() &&> unneeded;  // destroyed after unlocking
  {
    MutexLock lock(&mu_);
    MarkFreeLocked(consumer);
    if (job->state == Job::State::kDelivering && job->delivery_seq == seq) {
      unneeded = std::move(job->on_over);
      job->on_over = nullptr;
      job->failed_on.push_back(consumer);
      if (job->source->replayable() &&
          static_cast<int>(job->attempt) < settings_.max_delivery_attempts) {
        job->state = Job::State::kWaiting;
        DisarmReplyDeadlineLocked(*job);
        EnqueueLocked(job);
        Outcomes().redelivered->Increment();
      } else {
        Outcomes().failed->Increment();
        ConsumerReply reply = ConsumerReply::JsonError(
            502, job->source->replayable()
                     ? absl::StrCat("no consumer could take the upload after ",
                                    job->attempt, " attempts; last: ", why.message())
                     : absl::StrCat("the consumer of the streamed upload broke: ",
                                    why.message()));
        FinishLocked(*job, "the consumer broke", &reply, &completions);
      }
    }
    MatchLocked(&orders);
  }
  RunCompletions(std::move(completions));
  RunStarts(std::move(orders));
}

void Dispatcher::Cancel(const std::shared_ptr<Job>& job, std::string_view reason) {
  std::vector<Completion> completions;
  {
    MutexLock lock(&mu_);
    if (job->state == Job::State::kDone) return;
    if (job->state == Job::State::kDelivering) Outcomes().cancelled->Increment();
    FinishLocked(*job, reason, nullptr, &completions);
    if (!waiting_.empty()) {
      // Leave no dead entry behind: a queue of cancelled uploads would hold their
      // sources (and temp files) until their deadlines.
      waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), job), waiting_.end());
    }
  }
  RunCompletions(std::move(completions));
}

void Dispatcher::FinishLocked(Job& job, std::string_view reason, ConsumerReply* reply,
                              std::vector<Completion>* completions) {
  job.state = Job::State::kDone;
  job.end_reason = std::string(reason);
  DisarmReplyDeadlineLocked(job);
  // The callback and the source leave the job here and are run or destroyed after
  // unlocking: either may hold the last references to the exchange or temp files.
  Completion completion;
  completion.on_done = std::move(job.on_done);
  job.on_done = nullptr;
  if (reply != nullptr) completion.reply = std::move(*reply);
  completion.reason = job.end_reason;
  completion.abort_source = std::move(job.source);
  // Set only while a delivery that has not answered holds the job.
  completion.on_over = std::move(job.on_over);
  job.on_over = nullptr;
  completions->push_back(std::move(completion));
}

void Dispatcher::MarkFreeLocked(ConsumerId consumer) {
  if (auto it = consumers_.find(consumer); it != consumers_.end()) {
    it->second->busy = false;
  }
}

void Dispatcher::EnqueueLocked(std::shared_ptr<Job> job) {
  job->dispatch_deadline = absl::Now() + settings_.dispatch_timeout;
  WakeTimerLocked(job->dispatch_deadline);
  waiting_.push_back(std::move(job));
}

Dispatcher::ConsumerEntry* Dispatcher::PickConsumerLocked(const Job& job) {
  // An empty path (a gRPC upload that named none) is the root.
  std::string_view path = job.source->request().path;
  if (path.empty()) path = "/";
  // Two passes: first avoiding consumers that already broke on this upload, then, if
  // no other consumer handles its path at all, allowing them.
  for (const bool avoid_failed : {true, false}) {
    size_t best_length = 0;
    bool any = false;
    ConsumerEntry* best = nullptr;
    for (auto& [id, entry] : consumers_) {
      if (avoid_failed && std::find(job.failed_on.begin(), job.failed_on.end(), id) !=
                              job.failed_on.end()) {
        continue;
      }
      size_t length = 0;
      bool matches = false;
      for (const std::string& prefix : entry->spec.path_prefixes) {
        if (PrefixMatches(prefix, path) && (!matches || prefix.size() > length)) {
          matches = true;
          length = prefix.size();
        }
      }
      if (!matches) continue;
      if (!any || length > best_length) {
        // A longer prefix makes a new routing group: consumers with shorter
        // prefixes are not candidates, even when free.
        any = true;
        best_length = length;
        best = nullptr;
      } else if (length < best_length) {
        continue;
      }
      if (!entry->busy && (best == nullptr || entry->last_start < best->last_start)) {
        best = entry.get();
      }
    }
    if (any) return best;
  }
  return nullptr;
}

void Dispatcher::MatchLocked(std::vector<StartOrder>* orders) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    const std::shared_ptr<Job>& job = *it;
    if (job->state != Job::State::kWaiting) {
      it = waiting_.erase(it);
      continue;
    }
    ConsumerEntry* entry = PickConsumerLocked(*job);
    if (entry == nullptr) {
      ++it;
      continue;
    }
    entry->busy = true;
    entry->last_start = ++start_seq_;
    job->state = Job::State::kDelivering;
    ++job->attempt;
    ++job->delivery_seq;
    job->reply_deadline = absl::Now() + settings_.reply_timeout;
    ArmReplyDeadlineLocked(job);
    orders->push_back(StartOrder{entry->consumer, entry->id, job, job->source,
                                 job->delivery_seq, job->attempt,
                                 entry->spec.paths_only});
    it = waiting_.erase(it);
  }
}

void Dispatcher::RunStarts(std::vector<StartOrder> orders) {
  for (StartOrder& order : orders) {
    CursorOptions options;
    options.chunk_size = settings_.chunk_size;
    options.paths_only = order.paths_only;
    std::unique_ptr<EventCursor> cursor = order.source->OpenCursor(options);
    std::shared_ptr<Consumer> consumer = order.consumer;
    consumer->Start(
        std::make_unique<DispatchedDelivery>(this, std::move(order), std::move(cursor)));
  }
}

void Dispatcher::RunCompletions(std::vector<Completion> completions) {
  for (Completion& completion : completions) {
    if (completion.abort_source != nullptr) {
      completion.abort_source->Abort(completion.reason);
      // Possibly the last reference: temp files go before the answer does.
      completion.abort_source.reset();
    }
    if (completion.on_done && completion.reply.has_value()) {
      std::move(completion.on_done)(std::move(*completion.reply));
    }
    // After the uploader's answer: the consumer is told it is not wanted.
    if (completion.on_over) std::move(completion.on_over)();
  }
}

void Dispatcher::ExpireLocked(absl::Time now, std::vector<Completion>* completions) {
  while (!waiting_.empty()) {
    Job& job = *waiting_.front();
    if (job.state == Job::State::kWaiting) {
      if (job.dispatch_deadline > now) break;
      ConsumerReply reply = ConsumerReply::JsonError(
          503, absl::StrCat("no consumer for ", job.source->request().path,
                            " was free within ",
                            absl::FormatDuration(settings_.dispatch_timeout)));
      reply.headers.emplace_back("retry-after",
                                 RetryAfterSeconds(settings_.dispatch_timeout));
      FinishLocked(job, "no consumer was free in time", &reply, completions);
    }
    waiting_.pop_front();
  }
  while (!reply_deadlines_.empty() && reply_deadlines_.begin()->first <= now) {
    // A copy: finishing the job removes the entry, which may hold the last reference.
    const std::shared_ptr<Job> job = reply_deadlines_.begin()->second;
    if (job->reply_deadline > now) {
      ArmReplyDeadlineLocked(job);  // pushed back by a Next(): check again then
      continue;
    }
    Outcomes().timed_out->Increment();
    ConsumerReply reply = ConsumerReply::JsonError(
        504, absl::StrCat("the consumer did not reply within ",
                          absl::FormatDuration(settings_.reply_timeout)));
    FinishLocked(*job,
                 absl::StrCat("the reply timed out: no reply within REPLY_TIMEOUT (",
                              absl::FormatDuration(settings_.reply_timeout), ")"),
                 &reply, completions);
  }
}

absl::Time Dispatcher::NextDeadlineLocked() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& job : waiting_) {
    if (job->state == Job::State::kWaiting) {
      next = job->dispatch_deadline;  // ascending: the first live one is the nearest
      break;
    }
  }
  if (!reply_deadlines_.empty()) next = std::min(next, reply_deadlines_.begin()->first);
  return next;
}

void Dispatcher::ArmReplyDeadlineLocked(const std::shared_ptr<Job>& job) {
  DisarmReplyDeadlineLocked(*job);
  job->armed_reply_deadline = job->reply_deadline;
  reply_deadlines_.emplace(job->reply_deadline, job);
  WakeTimerLocked(job->reply_deadline);
}

void Dispatcher::DisarmReplyDeadlineLocked(Job& job) {
  if (job.armed_reply_deadline == absl::InfiniteFuture()) return;
  auto [first, last] = reply_deadlines_.equal_range(job.armed_reply_deadline);
  job.armed_reply_deadline = absl::InfiniteFuture();
  for (auto it = first; it != last; ++it) {
    if (it->second.get() == &job) {
      reply_deadlines_.erase(it);  // the caller holds its own reference to `job`
      return;
    }
  }
}

void Dispatcher::WakeTimerLocked(absl::Time deadline) {
  if (deadline < timer_wakeup_) timer_cv_.Signal();
}

void Dispatcher::TimerLoop() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    std::vector<Completion> completions;
    ExpireLocked(absl::Now(), &completions);
    if (!completions.empty()) {
      mu_.Unlock();
      RunCompletions(std::move(completions));
      mu_.Lock();
      continue;
    }
    // Capped so that Submit() need not signal (see the header); at least 10 ms, so
    // that zero timeouts do not make it spin.
    const absl::Duration longest_sleep =
        std::max(absl::Milliseconds(10),
                 std::min(settings_.dispatch_timeout, settings_.reply_timeout));
    timer_wakeup_ = std::min(NextDeadlineLocked(), absl::Now() + longest_sleep);
    timer_cv_.WaitWithDeadline(&mu_, timer_wakeup_);
    timer_wakeup_ = absl::InfinitePast();  // awake: no need to be signalled
  }
}

}  // namespace spillway
