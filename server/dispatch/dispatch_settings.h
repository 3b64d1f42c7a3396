// DispatchSettings: the timeouts and retry bound of DESIGN.md §3. Read once at
// start-up from a SettingsSource, then copied into the Dispatcher. A plain value.
#ifndef SPILLWAY_SERVER_DISPATCH_DISPATCH_SETTINGS_H_
#define SPILLWAY_SERVER_DISPATCH_DISPATCH_SETTINGS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/common/settings_source.h"

namespace spillway {

struct DispatchSettings {
  // An upload waits at most this long for a free consumer, then gets 503.
  absl::Duration dispatch_timeout = absl::Seconds(10);
  // A delivered upload gets 504 when its consumer neither replies nor pulls an
  // event for this long (re-armed at every event, so a slow but progressing consumer
  // of a large stream is not cut off).
  absl::Duration reply_timeout = absl::Seconds(60);
  // Deliveries of one buffered upload, the first included; then 502.
  int max_delivery_attempts = 3;
  // Not a setting of its own: STREAM_BODY_CHUNK_SIZE from UploadSettings.
  size_t chunk_size = 256 * 1024;

  static absl::Span<const SettingSpec> Specs();
  // Reads the three settings; chunk_size is left at its default for the caller to
  // copy from UploadSettings.
  static absl::StatusOr<DispatchSettings> FromSource(SettingsSource& source);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_DISPATCH_SETTINGS_H_
