// Mutex, MutexLock and CondVar: Spillway's locking primitives, thin wrappers over
// std::mutex and std::condition_variable with Abseil's names and thread-safety
// annotations.
//
// Why not absl::Mutex: Debian 12's Abseil (20220623) is a shared library built without
// -fsanitize=thread, so ThreadSanitizer cannot see absl::Mutex, absl::CondVar or
// absl::Notification synchronize anything (they are futexes and atomics inside
// uninstrumented code). In a TSan build every access guarded by them was reported as a
// race, which made the TSan build useless. std::mutex and std::condition_variable are
// pthread_mutex_* and pthread_cond_* underneath, which libtsan intercepts, so
// happens-before through these wrappers is visible and TSan reports only real races.
//
// Differences from absl::Mutex to keep in mind:
//  - There is no Mutex::Await(absl::Condition): absl re-evaluates conditions on every
//    Unlock(), std::mutex does not. Wait for a predicate on a CondVar instead
//    (CondVar::Await / AwaitWithTimeout), and Signal() or SignalAll() that CondVar
//    wherever the predicate may become true.
//  - No reader locks, no deadlock detection, no debug-mode AssertHeld() check.
//
// Signal under the mutex when a waiter may destroy the CondVar (or the object holding
// it) as soon as its predicate holds; unlocking first would let the waiter return and
// free the CondVar before the Signal() touches it.
//
// Thread-safety: all methods are thread-safe. ABSL_GUARDED_BY and friends from
// absl/base/thread_annotations.h work with Mutex (they are only macros).
#ifndef SPILLWAY_SERVER_COMMON_MUTEX_H_
#define SPILLWAY_SERVER_COMMON_MUTEX_H_

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spillway {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // Tells the static analysis that the lock is held; checks nothing at run time.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable used with a Mutex. Every wait may wake spuriously; the
// predicate forms loop for you. REQUIRES for every wait: `mu` held by the caller; it
// is released while waiting and held again on return.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // still held: the caller's
  }

  // True if `timeout` passed (CondVar's convention). InfiniteDuration waits
  // until signalled.
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (timeout == absl::InfiniteDuration()) {
      Wait(mu);
      return false;
    }
    // Measured on the steady clock; clamped so that steady_clock::now() + timeout
    // cannot overflow (a century is as good as forever here).
    timeout = std::clamp(timeout, absl::ZeroDuration(), absl::Hours(24 * 365 * 100));
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const std::cv_status status = cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout));
    lock.release();
    return status == std::cv_status::timeout;
  }

  // True if `deadline` passed. InfiniteFuture waits until signalled.
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (deadline == absl::InfiniteFuture()) {
      Wait(mu);
      return false;
    }
    return WaitWithTimeout(mu, deadline - absl::Now());
  }

  // Waits until `ready()` (called with `mu` held) is true. Replaces
  // absl::Mutex::Await(absl::Condition).
  template <typename Predicate>
  void Await(Mutex* mu, Predicate ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!ready()) Wait(mu);
  }

  // As Await(), giving up after `timeout`; returns ready() as last evaluated, like
  // absl::Mutex::AwaitWithTimeout.
  template <typename Predicate>
  bool AwaitWithTimeout(Mutex* mu, Predicate ready, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!ready()) {
      if (WaitWithDeadline(mu, deadline)) return ready();
    }
    return true;
  }

  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_COMMON_MUTEX_H_
