#include "server/dispatch/discard_sink.h"

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spillway {
namespace {

class DiscardFile final : public SinkFile {
 public:
  explicit DiscardFile(uint64_t bytes_per_second)
      : bytes_per_second_(bytes_per_second), start_(absl::Now()) {}

  absl::Status Write(std::string_view data) override {
    bytes_ += data.size();
    if (bytes_per_second_ != 0) {
      // Sleep until the bytes taken so far fit the rate: pacing from the start
      // rather than per chunk keeps the average exact whatever the chunk sizes.
      const absl::Time due =
          start_ + absl::Seconds(static_cast<double>(bytes_) /
                                 static_cast<double>(bytes_per_second_));
      const absl::Duration wait = due - absl::Now();
      if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<std::string>> Finish() override {
    return std::optional<std::string>();
  }
  absl::Status Publish() override { return absl::OkStatus(); }
  void Withdraw() override {}

 private:
  const uint64_t bytes_per_second_;
  const absl::Time start_;
  uint64_t bytes_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SinkFile>> DiscardSink::NewFile(
    std::string_view upload_id, size_t index, std::string_view filename) {
  return std::make_unique<DiscardFile>(bytes_per_second_);
}

}  // namespace spillway
