#include "server/upload/spill_budget.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "server/common/string_view_compat.h"

namespace spillway {
namespace {

constexpr std::string_view kPayloadUrl = "type.spillway.dev/InsufficientStorage";

}  // namespace

bool SpillBudget::TryCharge(uint64_t bytes) {
  if (bytes == 0) return true;
  uint64_t used = used_.load(std::memory_order_relaxed);
  do {
    // Written so that it cannot overflow: used <= limit_ holds whenever limit_ != 0.
    if (limit_ != 0 && bytes > limit_ - used) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  if (on_change_) on_change_(static_cast<int64_t>(bytes));
  return true;
}

void SpillBudget::Release(uint64_t bytes) {
  if (bytes == 0) return;
  used_.fetch_sub(bytes, std::memory_order_relaxed);
  if (on_change_) on_change_(-static_cast<int64_t>(bytes));
}

SpillCharge& SpillCharge::operator=(SpillCharge&& other) noexcept {
  if (this != &other) {
    Release();
    budget_ = std::exchange(other.budget_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

absl::Status SpillCharge::Add(uint64_t bytes, std::string_view what) {
  if (budget_ == nullptr) return absl::OkStatus();
  if (!budget_->TryCharge(bytes)) {
    return InsufficientStorageError(absl::StrCat(
        AbslView(what), " would take the spilled bytes on disk past MAX_SPILL_BYTES (",
        budget_->limit(), " bytes, ", budget_->used(), " in use)"));
  }
  bytes_ += bytes;
  return absl::OkStatus();
}

void SpillCharge::Release() {
  if (budget_ != nullptr) budget_->Release(bytes_);
  bytes_ = 0;
}

absl::Status InsufficientStorageError(std::string_view message) {
  absl::Status status = absl::ResourceExhaustedError(AbslView(message));
  status.SetPayload(AbslView(kPayloadUrl), absl::Cord("507"));
  return status;
}

bool IsInsufficientStorage(const absl::Status& status) {
  return status.code() == absl::StatusCode::kResourceExhausted &&
         status.GetPayload(AbslView(kPayloadUrl)).has_value();
}

}  // namespace spillway
