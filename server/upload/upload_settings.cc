#include "server/upload/upload_settings.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "server/common/quantity.h"
#include "server/common/status_macros.h"

namespace spillway {
namespace {

constexpr SettingSpec kMaxBodySize = {
    "MAX_BODY_SIZE", "10Mi",
    "bodies up to this size are received whole before dispatch; larger ones "
    "stream to the consumer in chunks"};
constexpr SettingSpec kMaxMemorySize = {
    "FILE_UPLOAD_MAX_MEMORY_SIZE", "2.5Mi",
    "per file: up to this size stays in RAM; larger spills to a temp file"};
constexpr SettingSpec kMaxFileSize = {
    "FILE_UPLOAD_MAX_SIZE", "0",
    "per-file maximum, enforced while parsing (413); 0 means unlimited"};
constexpr SettingSpec kTempDir = {
    "FILE_UPLOAD_TEMP_DIR", "",
    "directory for spilled files; empty means $TMPDIR or /tmp"};
constexpr SettingSpec kChunkSize = {
    "STREAM_BODY_CHUNK_SIZE", "256Ki",
    "size of every chunk handed to consumers (1Ki to 4Mi)"};
constexpr SettingSpec kChecksum = {
    "FILE_UPLOAD_CHECKSUM", "sha256",
    "per-file checksum computed while bytes arrive: sha256, crc32c or none"};

constexpr std::array<SettingSpec, 6> kSpecs = {
    kMaxBodySize, kMaxMemorySize, kMaxFileSize, kTempDir, kChunkSize, kChecksum};

// Chunks travel as single gRPC messages, whose default cap is 4 MiB.
constexpr uint64_t kMinChunkSize = 1024;
constexpr uint64_t kMaxChunkSize = 4 * 1024 * 1024 - 64 * 1024;

}  // namespace

absl::Span<const SettingSpec> UploadSettings::Specs() { return kSpecs; }

absl::StatusOr<UploadSettings> UploadSettings::FromSource(SettingsSource& source) {
  UploadSettings settings;
  ASSIGN_OR_RETURN(settings.max_body_size, source.GetByteSize(kMaxBodySize));
  ASSIGN_OR_RETURN(settings.file_upload_max_memory_size,
                   source.GetByteSize(kMaxMemorySize));
  ASSIGN_OR_RETURN(settings.file_upload_max_size, source.GetByteSize(kMaxFileSize));
  ASSIGN_OR_RETURN(settings.file_upload_temp_dir, source.GetString(kTempDir));
  ASSIGN_OR_RETURN(
      settings.stream_body_chunk_size,
      source.GetParsed<uint64_t>(
          kChunkSize, [](std::string_view text) -> absl::StatusOr<uint64_t> {
            ASSIGN_OR_RETURN(uint64_t bytes, ParseByteSize(text));
            if (bytes < kMinChunkSize || bytes > kMaxChunkSize) {
              return absl::InvalidArgumentError(absl::StrCat(
                  "must be from ", kMinChunkSize, " to ", kMaxChunkSize, " bytes"));
            }
            return bytes;
          }));
  ASSIGN_OR_RETURN(settings.file_upload_checksum,
                   source.GetParsed<ChecksumKind>(kChecksum, ParseChecksumKind));
  return settings;
}

}  // namespace spillway
