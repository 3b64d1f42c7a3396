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
    "size of every chunk handed to consumers (1Ki to 4032Ki: 4Mi less room for a gRPC "
    "message's framing)"};
constexpr SettingSpec kChecksum = {
    "FILE_UPLOAD_CHECKSUM", "sha256",
    "per-file checksum computed while bytes arrive: sha256, crc32c or none"};

constexpr SettingSpec kMaxParts = {
    "MAX_PARTS", "1000",
    "multipart parts per request body; more get 413"};
constexpr SettingSpec kMaxPartHeaderBytes = {
    "MAX_PART_HEADER_BYTES", "16Ki",
    "bytes of one multipart part's header block; larger gets 413"};
constexpr SettingSpec kMaxFieldSize = {
    "MAX_FIELD_SIZE", "1Mi",
    "bytes of one plain (non-file) multipart field's value; larger gets 413"};
constexpr SettingSpec kMaxSpillBytes = {
    "MAX_SPILL_BYTES", "0",
    "bytes of spilled files on disk at once, process-wide; an upload that would spill "
    "past it gets 507 (as does a full disk); 0 means unlimited. Set it below the temp "
    "volume's size (e.g. a Kubernetes emptyDir sizeLimit)"};

constexpr std::array<SettingSpec, 10> kSpecs = {
    kMaxBodySize, kMaxMemorySize, kMaxFileSize, kTempDir, kChunkSize, kChecksum,
    kMaxParts, kMaxPartHeaderBytes, kMaxFieldSize, kMaxSpillBytes};

// Chunks travel as single gRPC messages, whose default cap is 4 MiB.
constexpr uint64_t kMinChunkSize = 1024;
constexpr uint64_t kMaxChunkSize = 4 * 1024 * 1024 - 64 * 1024;

}  // namespace

absl::Span<const SettingSpec> UploadSettings::Specs() { return kSpecs; }

MultipartLimits UploadSettings::multipart_limits() const {
  MultipartLimits limits;
  limits.max_parts = static_cast<size_t>(max_parts);
  limits.max_part_header_bytes = static_cast<size_t>(max_part_header_bytes);
  limits.max_field_size = static_cast<size_t>(max_field_size);
  return limits;
}

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
  ASSIGN_OR_RETURN(int64_t max_parts, source.GetInteger(kMaxParts, 1, 1000000));
  settings.max_parts = static_cast<uint64_t>(max_parts);
  ASSIGN_OR_RETURN(settings.max_part_header_bytes,
                   source.GetByteSize(kMaxPartHeaderBytes));
  ASSIGN_OR_RETURN(settings.max_field_size, source.GetByteSize(kMaxFieldSize));
  ASSIGN_OR_RETURN(settings.max_spill_bytes, source.GetByteSize(kMaxSpillBytes));
  return settings;
}

}  // namespace spillway
