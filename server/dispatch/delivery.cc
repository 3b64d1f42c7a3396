#include "server/dispatch/delivery.h"
#include "server/common/notification.h"

#include <optional>
#include <utility>


namespace spillway {

absl::StatusOr<UploadEvent> NextEventBlocking(Delivery& delivery) {
  Notification done;
  std::optional<absl::StatusOr<UploadEvent>> result;
  delivery.Next([&](absl::StatusOr<UploadEvent> event) {
    result.emplace(std::move(event));
    done.Notify();
  });
  done.WaitForNotification();
  return *std::move(result);
}

}  // namespace spillway
