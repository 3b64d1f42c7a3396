// UploadSettings: the settings that choose how an upload is buffered (DESIGN.md §1):
// memory, spill or stream, and the per-file limit and checksum. Read once at start-up
// from a SettingsSource, then shared read-only by every thread.
#ifndef SPILLWAY_SERVER_UPLOAD_UPLOAD_SETTINGS_H_
#define SPILLWAY_SERVER_UPLOAD_UPLOAD_SETTINGS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "server/common/settings_source.h"
#include "server/upload/checksum.h"

namespace spillway {

struct UploadSettings {
  // Bodies up to this size are received whole before dispatch; larger ones stream.
  uint64_t max_body_size = 10 * 1024 * 1024;
  // Per file: up to this size stays in RAM; one byte more spills to a temp file.
  uint64_t file_upload_max_memory_size = 2621440;
  // Per-file maximum, enforced while parsing; 0 means unlimited.
  uint64_t file_upload_max_size = 0;
  // Where spilled files live; "" means $TMPDIR or /tmp.
  std::string file_upload_temp_dir;
  // Size of every chunk handed to consumers.
  uint64_t stream_body_chunk_size = 256 * 1024;
  ChecksumKind file_upload_checksum = ChecksumKind::kSha256;

  // The specs of the six settings, for --help.
  static absl::Span<const SettingSpec> Specs();
  static absl::StatusOr<UploadSettings> FromSource(SettingsSource& source);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_UPLOAD_SETTINGS_H_
