// Dispatcher: hands each upload to one free consumer and brings its reply back
// (DESIGN.md §3).
//
//  - Routing: an upload goes to a consumer whose path prefixes match its path; among
//    the registered consumers the longest matching prefix wins, and within that group
//    the free consumer that started an upload least recently (round robin).
//  - One upload per consumer at a time: a consumer is busy from Start() until it
//    replies, fails or releases its Delivery.
//  - No free consumer within DISPATCH_TIMEOUT: 503 with Retry-After. No reply (and no
//    event pulled) within REPLY_TIMEOUT: 504. A consumer that fails before replying:
//    a replayable (buffered) upload is redelivered with attempt + 1, to another
//    consumer when one matches, up to MAX_DELIVERY_ATTEMPTS; then, or at once for a
//    streamed upload, 502. A consumer still holding an upload that ends otherwise
//    (504, uploader gone) is told (Delivery::NotifyWhenOver) and is free once it
//    lets go of the delivery.
//  - The uploader gets a 2xx only when a consumer replied 2xx: every reply the
//    dispatcher makes itself is an error.
//  - How each delivery ended (replied, redelivered, failed, timed out, cancelled) is
//    counted in spillway_deliveries_total{outcome}, whatever the consumer.
//
// Threading model. One Mutex (mu_) guards all shared state: the consumer
// registry, the queue of uploads waiting for a consumer, the reply deadlines, and each
// upload's state (Job). Work crosses threads only through that state:
//  - Submit(), Register() and a consumer freeing up (reply, fail, release) match
//    waiting uploads to free consumers under mu_, then call Consumer::Start() on the
//    calling thread after releasing it;
//  - one timer thread, owned by the Dispatcher, sleeps on a CondVar until the nearest
//    deadline and answers expired uploads (503, 504). It never sleeps longer than the
//    shorter of the two timeouts (or 10 ms, if that is longer, so that zero timeouts
//    do not make it spin), so a new deadline is hardly ever earlier than its wake-up
//    and submitting an upload does not have to wake it;
//  - completion callbacks (DoneCallback) run on whichever thread decided the outcome
//    (a consumer's, the timer thread, a submitter's), never with mu_ held.
// Every public method is thread-safe.
//
// Ownership: the Dispatcher shares each upload's source with the deliveries reading
// it; a source (and its temp files) is released when the upload is answered and the
// consumer has let go of its Delivery. REQUIRES: the Dispatcher outlives every
// Delivery and UploadHandle it gave out (main destroys it after the loops, the gRPC
// server and the sinks).
#ifndef SPILLWAY_SERVER_DISPATCH_DISPATCHER_H_
#define SPILLWAY_SERVER_DISPATCH_DISPATCHER_H_

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "server/common/mutex.h"
#include "server/dispatch/consumer.h"
#include "server/dispatch/consumer_reply.h"
#include "server/dispatch/dispatch_settings.h"
#include "server/dispatch/upload_source.h"

namespace spillway {

class Dispatcher;
// One upload's state in the dispatcher; defined in dispatcher.cc, guarded by the
// Dispatcher's mutex.
struct DispatchJob;

// The submitter's hold on an upload in the dispatcher. Move-only. Cancel() (or
// destroying the handle) says the uploader went away: a waiting upload leaves the
// queue, a delivered one is aborted (its consumer gets RequestAborted at its next
// Next()), and the DoneCallback is not called after Cancel() returns... unless it is
// already running on another thread: callers that need certainty post the callback's
// work to their own thread and check there (UploadExchange does, via weak_ptr).
class UploadHandle {
 public:
  UploadHandle() = default;
  UploadHandle(UploadHandle&&) noexcept = default;
  UploadHandle& operator=(UploadHandle&& other) noexcept;
  UploadHandle(const UploadHandle&) = delete;
  UploadHandle& operator=(const UploadHandle&) = delete;
  ~UploadHandle();

  const std::string& upload_id() const;
  void Cancel(std::string_view reason);

 private:
  friend class Dispatcher;
  UploadHandle(Dispatcher* dispatcher, std::shared_ptr<DispatchJob> job)
      : dispatcher_(dispatcher), job_(std::move(job)) {}

  Dispatcher* dispatcher_ = nullptr;  // not owned
  std::shared_ptr<DispatchJob> job_;
};

class Dispatcher {
 public:
  using ConsumerId = uint64_t;
  // Receives the upload's answer: the consumer's reply, or the dispatcher's own
  // 502/503/504. Called exactly once unless the upload was cancelled first; on any
  // thread, without locks held; it must not block.
  using DoneCallback = absl::AnyInvocable<void(ConsumerReply) &&>;

  struct Stats {
    size_t consumers = 0;
    size_t busy_consumers = 0;
    size_t waiting_uploads = 0;
  };

  explicit Dispatcher(DispatchSettings settings);
  // Stops the timer thread. Uploads still waiting are dropped without their callbacks
  // running: by then the loops that would deliver them are gone.
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Adds a consumer; it may receive an upload before Register() returns.
  ConsumerId Register(std::shared_ptr<Consumer> consumer, ConsumerSpec spec);
  // Removes a consumer. It gets no new upload afterwards except for a Start() already
  // under way on another thread (see consumer.h); one it holds stays its own until
  // it lets go of the Delivery.
  void Unregister(ConsumerId id);

  // Queues an upload for the next matching free consumer. The upload id is assigned
  // here (128 bits of hex: a per-process random prefix and a counter).
  UploadHandle Submit(std::shared_ptr<UploadSource> source, DoneCallback on_done);

  Stats stats() const;
  const DispatchSettings& settings() const { return settings_; }

 private:
  friend class UploadHandle;
  friend class DispatchedDelivery;
  using Job = DispatchJob;
  struct ConsumerEntry;
  struct StartOrder;   // a match made under mu_, carried out after unlocking
  struct Completion;   // a DoneCallback to run after unlocking, and a source to abort

  std::string NewUploadId();

  // Called by deliveries and handles.
  // The reason the delivery `seq` of `job` is over, or "" if it is current (then its
  // reply deadline is re-armed).
  std::string CheckCurrent(const std::shared_ptr<Job>& job, uint64_t seq);
  void OnReply(const std::shared_ptr<Job>& job, uint64_t seq, ConsumerId consumer,
               ConsumerReply reply);
  void OnFail(const std::shared_ptr<Job>& job, uint64_t seq, ConsumerId consumer,
              const absl::Status& why);
  void Cancel(const std::shared_ptr<Job>& job, std::string_view reason);
  // Delivery::NotifyWhenOver for delivery `seq` of `job`.
  void NotifyWhenOver(const std::shared_ptr<Job>& job, uint64_t seq,
                      absl::AnyInvocable<void() &&> callback);

  // Under mu_: ends `job` with `reply`, moved from (or silently when `reply` is null).
  void FinishLocked(Job& job, std::string_view reason, ConsumerReply* reply,
                    std::vector<Completion>* completions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkFreeLocked(ConsumerId consumer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnqueueLocked(std::shared_ptr<Job> job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A delivering job has exactly one entry in reply_deadlines_, keyed by the
  // deadline it was armed with.
  void ArmReplyDeadlineLocked(const std::shared_ptr<Job>& job)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DisarmReplyDeadlineLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MatchLocked(std::vector<StartOrder>* orders) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ConsumerEntry* PickConsumerLocked(const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLocked(absl::Time now, std::vector<Completion>* completions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time NextDeadlineLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeTimerLocked(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Without mu_.
  void RunStarts(std::vector<StartOrder> orders);
  static void RunCompletions(std::vector<Completion> completions);
  void TimerLoop();

  const DispatchSettings settings_;
  const std::string id_prefix_;  // 16 hex digits, random per Dispatcher
  std::atomic<uint64_t> next_id_{1};

  mutable Mutex mu_;
  CondVar timer_cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time timer_wakeup_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  ConsumerId next_consumer_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t start_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<ConsumerId, std::unique_ptr<ConsumerEntry>> consumers_ ABSL_GUARDED_BY(mu_);
  // Uploads waiting for a consumer, oldest first; their dispatch deadlines ascend.
  std::deque<std::shared_ptr<Job>> waiting_ ABSL_GUARDED_BY(mu_);
  // One entry per delivery under way, removed when it ends (so a finished upload is
  // not kept for REPLY_TIMEOUT). A Next() pushes the job's deadline back without
  // moving its entry; the entry moves when it comes due.
  std::multimap<absl::Time, std::shared_ptr<Job>> reply_deadlines_ ABSL_GUARDED_BY(mu_);

  std::thread timer_thread_;  // last: starts after everything above exists
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_DISPATCHER_H_
