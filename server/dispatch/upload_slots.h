// UploadSlots: MAX_CONCURRENT_UPLOADS (DESIGN.md §4) across both front ends. An HTTP
// upload (ConcurrencyLimitedHandler) and a gRPC Upload call (IngestService) each hold
// a slot while in flight (spillway_uploads_in_flight); past the limit an upload is
// refused at once (HTTP 503 with Retry-After, gRPC RESOURCE_EXHAUSTED) and counted in
// spillway_uploads_rejected_total. The drain on SIGTERM waits until no slot is held.
//
// Ownership: UploadSlots outlives every UploadSlot taken from it (main owns it).
// Threading: thread-safe; one atomic counter shared by every loop and gRPC thread.
#ifndef SPILLWAY_SERVER_DISPATCH_UPLOAD_SLOTS_H_
#define SPILLWAY_SERVER_DISPATCH_UPLOAD_SLOTS_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>

#include "server/admin/metrics.h"

namespace spillway {

class UploadSlots;

// One slot, given back when destroyed. Move-only.
class UploadSlot {
 public:
  UploadSlot(UploadSlot&& other) noexcept
      : slots_(std::exchange(other.slots_, nullptr)) {}
  UploadSlot& operator=(UploadSlot&& other) noexcept;
  UploadSlot(const UploadSlot&) = delete;
  UploadSlot& operator=(const UploadSlot&) = delete;
  ~UploadSlot() { Give(); }

  // Gives it back now (idempotent).
  void Give();

 private:
  friend class UploadSlots;
  explicit UploadSlot(UploadSlots* slots) : slots_(slots) {}
  UploadSlots* slots_;  // null once given back or moved from
};

class UploadSlots {
 public:
  // `metrics` is not owned and outlives this.
  UploadSlots(int64_t limit, MetricsRegistry* metrics);

  // A slot, or nullopt past the limit (then counted as rejected).
  std::optional<UploadSlot> Take();

  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

 private:
  friend class UploadSlot;

  const int64_t limit_;
  Gauge* const in_flight_gauge_;
  Counter* const rejected_;
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_UPLOAD_SLOTS_H_
