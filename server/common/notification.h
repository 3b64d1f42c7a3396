// Notification: a one-shot event, the TSan-visible stand-in for absl::Notification
// (see server/common/mutex.h for why Spillway does not use Abseil's synchronization).
// One thread calls Notify() once; any number wait for it. Everything the notifier
// wrote before Notify() is visible to a thread that saw the notification.
//
// A waiter may destroy the Notification as soon as it has seen it: Notify() touches
// nothing after it releases the mutex.
// Thread-safety: all methods are thread-safe.
#ifndef SPILLWAY_SERVER_COMMON_NOTIFICATION_H_
#define SPILLWAY_SERVER_COMMON_NOTIFICATION_H_

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "server/common/mutex.h"

namespace spillway {

class Notification {
 public:
  Notification() = default;
  Notification(const Notification&) = delete;
  Notification& operator=(const Notification&) = delete;

  void Notify() {
    MutexLock lock(&mu_);
    notified_ = true;
    cv_.SignalAll();  // under mu_: a woken waiter may destroy *this at once
  }

  bool HasBeenNotified() const {
    MutexLock lock(&mu_);
    return notified_;
  }

  void WaitForNotification() const {
    MutexLock lock(&mu_);
    cv_.Await(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return notified_; });
  }

  // True if notified within `timeout`.
  bool WaitForNotificationWithTimeout(absl::Duration timeout) const {
    MutexLock lock(&mu_);
    return cv_.AwaitWithTimeout(
        &mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return notified_; }, timeout);
  }

 private:
  mutable Mutex mu_;
  mutable CondVar cv_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_COMMON_NOTIFICATION_H_
