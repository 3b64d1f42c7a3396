#include "server/dispatch/delivery.h"

#include <optional>
#include <utility>

#include "absl/synchronization/notification.h"

namespace spillway {

absl::StatusOr<UploadEvent> NextEventBlocking(Delivery& delivery) {
  absl::Notification done;
  std::optional<absl::StatusOr<UploadEvent>> result;
  delivery.Next([&](absl::StatusOr<UploadEvent> event) {
    result.emplace(std::move(event));
    done.Notify();
  });
  done.WaitForNotification();
  return *std::move(result);
}

}  // namespace spillway
