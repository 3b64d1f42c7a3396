#include "server/net/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/string_view_compat.h"

namespace spillway {
namespace {

constexpr int kMaxEventsPerWait = 256;

absl::Status ErrnoError(std::string_view what) {
  return absl::InternalError(absl::StrCat(AbslView(what), ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create() {
  UniqueFd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd) return ErrnoError("epoll_create1");
  UniqueFd wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd) return ErrnoError("eventfd");
  // The wake fd is registered with data.fd = -1 below, which no handler can have.
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = -1;
  if (::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, wake_fd.get(), &event) != 0) {
    return ErrnoError("epoll_ctl(eventfd)");
  }
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(epoll_fd), std::move(wake_fd)));
}

EventLoop::EventLoop(UniqueFd epoll_fd, UniqueFd wake_fd)
    : epoll_fd_(std::move(epoll_fd)), wake_fd_(std::move(wake_fd)) {}

EventLoop::~EventLoop() = default;

void EventLoop::Run() {
  loop_thread_.store(std::this_thread::get_id());
  epoll_event events[kMaxEventsPerWait];
  while (!stopping_.load(std::memory_order_acquire)) {
    now_ = absl::Now();
    const int n = ::epoll_wait(epoll_fd_.get(), events, kMaxEventsPerWait, NextTimeoutMs());
    now_ = absl::Now();
    if (n < 0 && errno != EINTR) break;  // only EBADF/EFAULT/EINVAL: programming errors
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == -1) {
        DrainWakeFd();
        continue;
      }
      auto it = handlers_.find(fd);
      if (it == handlers_.end()) continue;  // unwatched by an earlier callback
      it->second->OnIoEvent(events[i].events);
    }
    RunDueTimers();
    RunPostedTasks();
  }
}

void EventLoop::Stop() {
  stopping_.store(true, std::memory_order_release);
  Wake();
}

void EventLoop::Post(Task task) {
  if (IsInLoopThread()) {
    // Run() reaches RunPostedTasks() before it waits again.
    local_tasks_.push_back(std::move(task));
    return;
  }
  bool was_empty;
  {
    MutexLock lock(&tasks_mu_);
    was_empty = tasks_.empty();
    tasks_.push_back(std::move(task));
  }
  // A non-empty queue already has a wake-up pending (or is being run and will be
  // re-checked), so one write per batch is enough.
  if (was_empty) Wake();
}

bool EventLoop::IsInLoopThread() const {
  return loop_thread_.load() == std::this_thread::get_id();
}

absl::Status EventLoop::Watch(int fd, uint32_t events, IoHandler* handler) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return ErrnoError("epoll_ctl(ADD)");
  }
  handlers_[fd] = handler;
  return absl::OkStatus();
}

absl::Status EventLoop::Modify(int fd, uint32_t events, IoHandler* handler) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, fd, &event) != 0) {
    return ErrnoError("epoll_ctl(MOD)");
  }
  handlers_[fd] = handler;
  return absl::OkStatus();
}

void EventLoop::Unwatch(int fd) {
  if (handlers_.erase(fd) == 0) return;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::AddTimer(absl::Duration delay, Task task) {
  const TimerId id = next_timer_id_++;
  // Measured from the real clock, not the cached now_, so a timer added after a
  // long callback does not fire early.
  const absl::Time deadline = absl::Now() + delay;
  timers_.emplace(deadline, std::make_pair(id, std::move(task)));
  timer_deadlines_.emplace(id, deadline);
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return;
  auto [first, last] = timers_.equal_range(it->second);
  for (auto timer = first; timer != last; ++timer) {
    if (timer->second.first == id) {
      timers_.erase(timer);
      break;
    }
  }
  timer_deadlines_.erase(it);
}

void EventLoop::RunDueTimers() {
  // Equal deadlines keep insertion order (multimap inserts at the end of a range).
  while (!timers_.empty() && timers_.begin()->first <= now_) {
    auto node = timers_.extract(timers_.begin());
    timer_deadlines_.erase(node.mapped().first);
    std::move(node.mapped().second)();
  }
}

void EventLoop::RunPostedTasks() {
  std::vector<Task> batch;
  {
    MutexLock lock(&tasks_mu_);
    batch.swap(tasks_);
  }
  std::vector<Task> local_batch;
  local_batch.swap(local_tasks_);
  // Tasks posted by these tasks run in the next iteration, so a task that re-posts
  // itself cannot starve I/O.
  for (Task& task : batch) std::move(task)();
  for (Task& task : local_batch) std::move(task)();
}

int EventLoop::NextTimeoutMs() const {
  // Tasks posted from other threads need no check here: Post() wrote the eventfd, so
  // epoll returns. The loop's own tasks only need it not to sleep.
  if (!local_tasks_.empty()) return 0;
  if (timers_.empty()) return -1;
  const absl::Duration wait = timers_.begin()->first - absl::Now();
  if (wait <= absl::ZeroDuration()) return 0;
  // Round up so the timer is due when we wake, instead of spinning once early.
  return static_cast<int>(absl::ToInt64Milliseconds(wait + absl::Milliseconds(1) -
                                                    absl::Nanoseconds(1)));
}

void EventLoop::Wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
}

void EventLoop::DrainWakeFd() {
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(wake_fd_.get(), &count, sizeof(count));
}

}  // namespace spillway
