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
#include "server/upload/multipart_parser.h"

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
  // Multipart limits (MultipartLimits): parts per body, bytes of one part's header
  // block, data bytes of one plain (non-file) field. Crossing one is 413.
  uint64_t max_parts = 1000;
  uint64_t max_part_header_bytes = 16 * 1024;
  uint64_t max_field_size = 1024 * 1024;
  // Bytes of all spilled files on disk at once, process-wide (SpillBudget); past it
  // an upload that must spill more gets 507. 0 means unlimited (the file system's
  // own ENOSPC is then the limit, also 507).
  uint64_t max_spill_bytes = 0;

  // max_parts, max_part_header_bytes and max_field_size, as the parser takes them.
  MultipartLimits multipart_limits() const;

  // The specs of these settings, for --help.
  static absl::Span<const SettingSpec> Specs();
  static absl::StatusOr<UploadSettings> FromSource(SettingsSource& source);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_UPLOAD_SETTINGS_H_
