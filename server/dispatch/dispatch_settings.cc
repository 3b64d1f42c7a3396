#include "server/dispatch/dispatch_settings.h"

#include <array>
#include <string_view>

#include "server/common/quantity.h"
#include "server/common/status_macros.h"

namespace spillway {
namespace {

constexpr SettingSpec kDispatchTimeout = {
    "DISPATCH_TIMEOUT", "10s",
    "how long an upload waits for a free consumer before 503 with Retry-After"};
constexpr SettingSpec kReplyTimeout = {
    "REPLY_TIMEOUT", "60s",
    "how long a consumer may go without replying or pulling data before 504"};
constexpr SettingSpec kMaxDeliveryAttempts = {
    "MAX_DELIVERY_ATTEMPTS", "3",
    "deliveries of a buffered upload whose consumer broke, before 502"};

constexpr std::array<SettingSpec, 3> kSpecs = {kDispatchTimeout, kReplyTimeout,
                                               kMaxDeliveryAttempts};

}  // namespace

absl::Span<const SettingSpec> DispatchSettings::Specs() { return kSpecs; }

absl::StatusOr<DispatchSettings> DispatchSettings::FromSource(SettingsSource& source) {
  DispatchSettings settings;
  ASSIGN_OR_RETURN(settings.dispatch_timeout, source.GetDuration(kDispatchTimeout));
  // 0 would answer every upload 504 before any consumer could.
  ASSIGN_OR_RETURN(
      settings.reply_timeout,
      source.GetParsed<absl::Duration>(
          kReplyTimeout, [](std::string_view text) -> absl::StatusOr<absl::Duration> {
            ASSIGN_OR_RETURN(absl::Duration timeout, ParseNonNegativeDuration(text));
            if (timeout == absl::ZeroDuration()) {
              return absl::InvalidArgumentError("must be more than 0");
            }
            return timeout;
          }));
  ASSIGN_OR_RETURN(int64_t attempts, source.GetInteger(kMaxDeliveryAttempts, 1, 100));
  settings.max_delivery_attempts = static_cast<int>(attempts);
  return settings;
}

}  // namespace spillway
