// The multipart limits of a buffered Upload RPC's parts (server/grpc/upload_part_limits.h):
// each is reached exactly without an error and crossed by one with the parser's error.
#include "server/grpc/upload_part_limits.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/upload/multipart_error.h"
#include "tests/unit/upload_request_builders.h"

namespace spillway {
namespace {

using ::spillway::testing::FieldMessage;
using ::spillway::testing::FileMessage;
using ::testing::HasSubstr;
using ::testing::Optional;

MultipartLimits SmallLimits() {
  MultipartLimits limits;
  limits.max_parts = 3;
  limits.max_part_header_bytes = 30;
  limits.max_field_size = 10;
  return limits;
}

TEST(UploadPartLimits, MetadataIsNamesFilenameAndContentType) {
  EXPECT_EQ(PartMetadataBytes(FieldMessage("name", "a long value")), 4u);
  EXPECT_EQ(PartMetadataBytes(FileMessage("f", "a.txt", "text/plain")), 1u + 5u + 10u);
  v1::UploadRequest chunk;
  chunk.mutable_chunk()->set_data("data");
  EXPECT_EQ(PartMetadataBytes(chunk), 0u);
}

TEST(UploadPartLimits, PartPastMaxPartsIsTooManyParts) {
  EXPECT_TRUE(CheckPartLimits(FieldMessage("f", "v"), 2, SmallLimits()).ok());
  for (const v1::UploadRequest& part : {FieldMessage("f", "v"), FileMessage("f", "a", "")}) {
    const absl::Status status = CheckPartLimits(part, 3, SmallLimits());
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(GetMultipartError(status), Optional(MultipartError::kTooManyParts));
    EXPECT_THAT(std::string(status.message()), HasSubstr("more than 3 parts (MAX_PARTS)"));
  }
  // Chunks are not parts.
  v1::UploadRequest chunk;
  chunk.mutable_chunk()->set_data("data");
  EXPECT_TRUE(CheckPartLimits(chunk, 3, SmallLimits()).ok());
}

TEST(UploadPartLimits, MetadataOverMaxPartHeaderBytesIsPartHeaderTooLarge) {
  EXPECT_TRUE(CheckPartLimits(FileMessage(std::string(10, 'n'), std::string(10, 'f'),
                                   std::string(10, 't')),
                              0, SmallLimits())
                  .ok());
  EXPECT_TRUE(CheckPartLimits(FieldMessage(std::string(30, 'n'), ""), 0, SmallLimits()).ok());
  // Each under the limit on its own, over it together.
  for (const v1::UploadRequest& part :
       {FileMessage(std::string(10, 'n'), std::string(10, 'f'), std::string(11, 't')),
        FieldMessage(std::string(31, 'n'), "")}) {
    const absl::Status status = CheckPartLimits(part, 0, SmallLimits());
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(GetMultipartError(status), Optional(MultipartError::kPartHeaderTooLarge));
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("(31 bytes) are larger than 30 bytes (MAX_PART_HEADER_BYTES)"));
  }
}

TEST(UploadPartLimits, FieldValueOverMaxFieldSizeIsFieldTooLarge) {
  EXPECT_TRUE(CheckPartLimits(FieldMessage("f", std::string(10, 'v')), 0, SmallLimits()).ok());
  const absl::Status status =
      CheckPartLimits(FieldMessage("note", std::string(11, 'v')), 0, SmallLimits());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(GetMultipartError(status), Optional(MultipartError::kFieldTooLarge));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("field \"note\" is larger than 10 bytes (MAX_FIELD_SIZE)"));
  // A file's bytes are FILE_UPLOAD_MAX_SIZE's business, not this one's.
  EXPECT_TRUE(CheckPartLimits(FileMessage("f", "a", ""), 0, SmallLimits()).ok());
}

}  // namespace
}  // namespace spillway
