#include "server/net/wakeup_timer.h"

#include <algorithm>

namespace spillway {

void WakeupTimer::WakeBy(absl::Time when) {
  if (when == absl::InfiniteFuture()) return;
  if (timer_ != 0 && armed_for_ <= when) return;  // an earlier wake-up will re-check
  Cancel();
  armed_for_ = when;
  // Measured from the loop's cached now(), which the owners' deadlines are based on
  // too; AddTimer counts from the real clock, so the wake-up is never early.
  const absl::Duration delay = std::max(absl::ZeroDuration(), when - loop_->now());
  timer_ = loop_->AddTimer(delay, [this] {
    timer_ = 0;
    armed_for_ = absl::InfiniteFuture();
    on_wake_();  // last: it may destroy this timer
  });
}

void WakeupTimer::Cancel() {
  if (timer_ == 0) return;
  loop_->CancelTimer(timer_);
  timer_ = 0;
  armed_for_ = absl::InfiniteFuture();
}

}  // namespace spillway
