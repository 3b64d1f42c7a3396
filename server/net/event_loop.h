// EventLoop: one thread's epoll loop. Every connection, listener and HTTP session
// lives on exactly one loop and is touched only from that loop's thread. The only way
// to reach a loop from another thread is Post(): a task queue guarded by a mutex plus
// an eventfd that wakes epoll_wait. A task the loop posts to itself (an upload answered
// inline, say) goes to a loop-local queue instead: no lock, no eventfd write, no extra
// wake-up. Timers (header/idle timeouts) are loop-local.
//
// Ownership: the loop does not own the IoHandlers or fds it watches; whoever calls
// Watch() must Unwatch() before closing the fd or destroying the handler.
// Threading: Post(), Stop() and IsInLoopThread() are thread-safe; everything else is
// loop-thread only (REQUIRES: IsInLoopThread(), once Run() has started).
#ifndef SPILLWAY_SERVER_NET_EVENT_LOOP_H_
#define SPILLWAY_SERVER_NET_EVENT_LOOP_H_

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/common/mutex.h"
#include "server/common/unique_fd.h"

namespace spillway {

// Receives readiness for one watched fd; `events` is the epoll mask (EPOLLIN, ...).
class IoHandler {
 public:
  virtual ~IoHandler() = default;
  virtual void OnIoEvent(uint32_t events) = 0;
};

class EventLoop {
 public:
  using Task = absl::AnyInvocable<void() &&>;
  using TimerId = uint64_t;

  static absl::StatusOr<std::unique_ptr<EventLoop>> Create();
  ~EventLoop();

  // Runs tasks, timers and I/O until Stop(). Call from the thread that owns the loop.
  void Run();
  // Thread-safe. Run() returns after the current iteration.
  void Stop();

  // Thread-safe: queues `task` to run on the loop thread, after the current I/O
  // events; tasks from one thread run in the order they were posted.
  void Post(Task task);
  bool IsInLoopThread() const;

  absl::Status Watch(int fd, uint32_t events, IoHandler* handler);
  absl::Status Modify(int fd, uint32_t events, IoHandler* handler);
  void Unwatch(int fd);

  // Runs `task` once after `delay` unless cancelled first. Cancelling a fired or
  // unknown id is a no-op.
  TimerId AddTimer(absl::Duration delay, Task task);
  void CancelTimer(TimerId id);

  // Cached at the top of each iteration; cheap for per-request timestamps.
  absl::Time now() const { return now_; }

 private:
  EventLoop(UniqueFd epoll_fd, UniqueFd wake_fd);
  void RunPostedTasks();
  void RunDueTimers();
  int NextTimeoutMs() const;

  void Wake();
  void DrainWakeFd();

  UniqueFd epoll_fd_;
  UniqueFd wake_fd_;  // eventfd: Post() writes, the loop reads
  std::atomic<bool> stopping_{false};
  std::atomic<std::thread::id> loop_thread_{};

  Mutex tasks_mu_;
  std::vector<Task> tasks_ ABSL_GUARDED_BY(tasks_mu_);
  std::vector<Task> local_tasks_;  // loop-thread only: posted by the loop itself

  // Loop-thread only. Handlers by fd: an event for an fd Unwatch()ed earlier in the
  // same epoll batch finds no entry and is dropped, so a handler destroyed by an
  // earlier event's callback is never called.
  std::map<int, IoHandler*> handlers_;
  std::multimap<absl::Time, std::pair<TimerId, Task>> timers_;
  std::map<TimerId, absl::Time> timer_deadlines_;
  TimerId next_timer_id_ = 1;
  absl::Time now_ = absl::Now();
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_EVENT_LOOP_H_
