#include "server/dispatch/upload_slots.h"

namespace spillway {

UploadSlot& UploadSlot::operator=(UploadSlot&& other) noexcept {
  if (this != &other) {
    Give();
    slots_ = std::exchange(other.slots_, nullptr);
  }
  return *this;
}

void UploadSlot::Give() {
  if (slots_ == nullptr) return;
  slots_->in_flight_.fetch_sub(1, std::memory_order_relaxed);
  slots_->in_flight_gauge_->Add(-1);
  slots_ = nullptr;
}

UploadSlots::UploadSlots(int64_t limit, MetricsRegistry* metrics)
    : limit_(limit),
      in_flight_gauge_(metrics->GetGauge(
          "spillway_uploads_in_flight",
          "Uploads (HTTP requests and gRPC Upload calls) being received, dispatched "
          "or answered.")),
      rejected_(metrics->GetCounter(
          "spillway_uploads_rejected_total",
          "Uploads (HTTP requests and gRPC Upload calls) refused because of "
          "MAX_CONCURRENT_UPLOADS.")) {}

std::optional<UploadSlot> UploadSlots::Take() {
  // Optimistic increment: two threads racing for the last slot cannot both win.
  if (in_flight_.fetch_add(1, std::memory_order_relaxed) >= limit_) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    rejected_->Increment();
    return std::nullopt;
  }
  in_flight_gauge_->Add(1);
  return UploadSlot(this);
}

}  // namespace spillway
