#include "server/upload/upload_settings.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<UploadSettings> Load(std::vector<const char*> args,
                                    std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "spillwayd");
  absl::StatusOr<SettingsSource> source = SettingsSource::FromCommandLine(
      static_cast<int>(args.size()), args.data(),
      [env](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
      });
  if (!source.ok()) return source.status();
  return UploadSettings::FromSource(*source);
}

TEST(UploadSettings, DefaultsMatchTheDesign) {
  absl::StatusOr<UploadSettings> settings = Load({});
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->max_body_size, 10u * 1024 * 1024);
  EXPECT_EQ(settings->file_upload_max_memory_size, 2621440u);
  EXPECT_EQ(settings->file_upload_max_size, 0u);
  EXPECT_EQ(settings->file_upload_temp_dir, "");
  EXPECT_EQ(settings->stream_body_chunk_size, 256u * 1024);
  EXPECT_EQ(settings->file_upload_checksum, ChecksumKind::kSha256);
  EXPECT_EQ(settings->max_parts, 1000u);
  EXPECT_EQ(settings->max_part_header_bytes, 16u * 1024);
  EXPECT_EQ(settings->max_field_size, 1024u * 1024);
  EXPECT_EQ(settings->max_spill_bytes, 0u);
  EXPECT_EQ(UploadSettings::Specs().size(), 10u);
}

TEST(UploadSettings, MultipartLimitsAndSpillBudget) {
  absl::StatusOr<UploadSettings> settings =
      Load({"--max-parts=3", "--max-part-header-bytes=1Ki", "--max-spill-bytes=10Gi"},
           {{"SPILLWAY_MAX_FIELD_SIZE", "2k"}});
  ASSERT_TRUE(settings.ok()) << settings.status();
  const MultipartLimits limits = settings->multipart_limits();
  EXPECT_EQ(limits.max_parts, 3u);
  EXPECT_EQ(limits.max_part_header_bytes, 1024u);
  EXPECT_EQ(limits.max_field_size, 2000u);
  EXPECT_EQ(settings->max_spill_bytes, 10ull << 30);
  EXPECT_FALSE(Load({"--max-parts=0"}).ok());
}

TEST(UploadSettings, FlagsAndEnvironment) {
  absl::StatusOr<UploadSettings> settings =
      Load({"--max-body-size=1Mi", "--file-upload-checksum=crc32c"},
           {{"SPILLWAY_MAX_BODY_SIZE", "5Mi"},
            {"SPILLWAY_FILE_UPLOAD_MAX_MEMORY_SIZE", "64Ki"},
            {"SPILLWAY_FILE_UPLOAD_MAX_SIZE", "1G"},
            {"SPILLWAY_FILE_UPLOAD_TEMP_DIR", "/var/spill"},
            {"SPILLWAY_STREAM_BODY_CHUNK_SIZE", "64k"}});
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->max_body_size, 1u << 20);
  EXPECT_EQ(settings->file_upload_max_memory_size, 64u * 1024);
  EXPECT_EQ(settings->file_upload_max_size, 1'000'000'000u);
  EXPECT_EQ(settings->file_upload_temp_dir, "/var/spill");
  EXPECT_EQ(settings->stream_body_chunk_size, 64'000u);
  EXPECT_EQ(settings->file_upload_checksum, ChecksumKind::kCrc32c);
}

TEST(UploadSettings, InvalidChecksumNamesTheSetting) {
  absl::StatusOr<UploadSettings> settings = Load({"--file-upload-checksum=md5"});
  EXPECT_THAT(settings.status().message(), HasSubstr("FILE_UPLOAD_CHECKSUM"));
  EXPECT_THAT(settings.status().message(), HasSubstr("\"md5\""));
}

TEST(UploadSettings, ChunkSizeOutOfRange) {
  EXPECT_THAT(Load({"--stream-body-chunk-size=10"}).status().message(),
              HasSubstr("STREAM_BODY_CHUNK_SIZE"));
  EXPECT_FALSE(Load({"--stream-body-chunk-size=64Mi"}).ok());
  EXPECT_TRUE(Load({"--stream-body-chunk-size=1Ki"}).ok());
}

}  // namespace
}  // namespace spillway
