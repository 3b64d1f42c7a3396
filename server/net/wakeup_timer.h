// WakeupTimer: "call me back no later than T" on one EventLoop, for timeouts whose
// deadline moves forward on nearly every read (header, idle and body timeouts).
//
// At most one loop timer is armed at a time. WakeBy(t) re-arms only when `t` is
// earlier than the armed wake-up; a later `t` costs nothing, because the owner does
// not rely on the timer to know its deadlines: it stores them (a timestamp per
// connection or stream) and, when woken, checks which have really passed and asks
// for the next wake-up. So a deadline pushed back by every read costs no timer
// operation at all, and an early wake-up only costs one check.
//
// Ownership: owned by the object whose timeouts it serves (a session, a connection);
// `loop` is not owned and outlives it. The destructor cancels the armed timer, so the
// callback never runs after the owner is gone.
// Threading: loop thread only. The callback runs on the loop thread, from
// EventLoop's timer dispatch (never from inside WakeBy), and may destroy the timer.
#ifndef SPILLWAY_SERVER_NET_WAKEUP_TIMER_H_
#define SPILLWAY_SERVER_NET_WAKEUP_TIMER_H_

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "server/net/event_loop.h"

namespace spillway {

// Timeout settings use zero for "off"; deadlines are simpler when "off" is an
// infinite duration (a deadline computed from it is InfiniteFuture).
inline absl::Duration TimeoutOrInfinite(absl::Duration timeout) {
  return timeout > absl::ZeroDuration() ? timeout : absl::InfiniteDuration();
}

class WakeupTimer {
 public:
  WakeupTimer(EventLoop* loop, absl::AnyInvocable<void()> on_wake)
      : loop_(loop), on_wake_(std::move(on_wake)) {}
  ~WakeupTimer() { Cancel(); }

  WakeupTimer(const WakeupTimer&) = delete;
  WakeupTimer& operator=(const WakeupTimer&) = delete;

  // Ensures a wake-up at or soon after `when` (InfiniteFuture: no-op).
  void WakeBy(absl::Time when);
  // Drops the armed wake-up, if any.
  void Cancel();

  bool armed() const { return timer_ != 0; }

 private:
  EventLoop* const loop_;  // not owned
  absl::AnyInvocable<void()> on_wake_;
  EventLoop::TimerId timer_ = 0;  // 0: none armed
  absl::Time armed_for_ = absl::InfiniteFuture();
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_WAKEUP_TIMER_H_
