// SpillBudget: the process-wide cap on bytes of spilled uploads on disk
// (MAX_SPILL_BYTES, DESIGN.md §4: crossing it is 507 Insufficient Storage).
//
// An UploadedFile charges every byte it writes to its temp file (Charge) and gives the
// whole charge back when the temp file goes (SpillCharge's destructor or Release), so
// the budget counts exactly the bytes of live temp files, whatever way their uploads
// end. A charge that would cross the limit is refused without being applied: the
// caller fails the upload with InsufficientStorageError(), which the HTTP edge maps to
// 507, distinctly from the per-file 413 (both are kResourceExhausted; the payload
// tells them apart). ENOSPC/EDQUOT while spilling is reported the same way.
//
// Ownership: the budget is owned by whoever builds the pipeline (UploadPipeline) and
// must outlive every SpillCharge drawn on it. A SpillCharge is a move-only handle
// owned by one UploadedFile.
// Threading: SpillBudget is thread-safe (one atomic, compare-and-swap); `on_change` is
// called on the charging thread, outside any lock, and must be thread-safe. A
// SpillCharge belongs to one thread at a time, like its UploadedFile.
#ifndef SPILLWAY_SERVER_UPLOAD_SPILL_BUDGET_H_
#define SPILLWAY_SERVER_UPLOAD_SPILL_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>

#include "absl/status/status.h"

namespace spillway {

class SpillBudget {
 public:
  // `limit` in bytes; 0 means unlimited (bytes are still counted). `on_change` (may be
  // empty) sees every applied delta, e.g. to move a metrics gauge.
  explicit SpillBudget(uint64_t limit,
                       std::function<void(int64_t delta)> on_change = nullptr)
      : limit_(limit), on_change_(std::move(on_change)) {}

  SpillBudget(const SpillBudget&) = delete;
  SpillBudget& operator=(const SpillBudget&) = delete;

  // Adds `bytes` unless that would take the total past the limit; false (nothing
  // added) then.
  bool TryCharge(uint64_t bytes);
  void Release(uint64_t bytes);

  uint64_t limit() const { return limit_; }
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const uint64_t limit_;
  const std::function<void(int64_t)> on_change_;
  std::atomic<uint64_t> used_{0};
};

// One temp file's share of a SpillBudget. A default-constructed (or budget-less)
// charge accepts everything and counts nothing.
class SpillCharge {
 public:
  SpillCharge() = default;
  explicit SpillCharge(SpillBudget* budget) : budget_(budget) {}
  SpillCharge(SpillCharge&& other) noexcept
      : budget_(std::exchange(other.budget_, nullptr)),
        bytes_(std::exchange(other.bytes_, 0)) {}
  SpillCharge& operator=(SpillCharge&& other) noexcept;
  SpillCharge(const SpillCharge&) = delete;
  SpillCharge& operator=(const SpillCharge&) = delete;
  ~SpillCharge() { Release(); }

  // Charges `bytes` more; on refusal, an InsufficientStorageError naming `what`.
  absl::Status Add(uint64_t bytes, std::string_view what);
  // Gives everything charged so far back.
  void Release();

  uint64_t bytes() const { return bytes_; }

 private:
  SpillBudget* budget_ = nullptr;  // not owned
  uint64_t bytes_ = 0;
};

// kResourceExhausted with a payload marking it as "insufficient storage" (HTTP 507):
// the spill budget or the temp directory's file system is full.
absl::Status InsufficientStorageError(std::string_view message);
bool IsInsufficientStorage(const absl::Status& status);

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_SPILL_BUDGET_H_
