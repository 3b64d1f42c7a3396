#include "server/upload/upload_assembler.h"

#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/upload/multipart_error.h"
#include "server/upload/temp_directory.h"
#include "tests/unit/dispatch_test_util.h"
#include "tests/unit/scoped_test_dir.h"

namespace spillway {
namespace {

using ::spillway::testing::MultipartBody;
using ::spillway::testing::MultipartContentType;
using ::spillway::testing::ScopedTestDir;
using ::spillway::testing::Sha256Hex;
using ::spillway::testing::TestBytes;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr uint64_t kMemoryLimit = 1000;

std::string ReadWholeFile(std::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class UploadAssemblerTest : public ::testing::Test {
 protected:
  UploadAssemblerTest() : temp_dir_(*TempDirectory::Open(dir_.path())) {
    options_.file.max_memory_size = kMemoryLimit;
    options_.file.temp_dir = &temp_dir_;
  }

  std::unique_ptr<UploadAssembler> NewAssembler(std::string content_type) {
    RequestInfo request;
    request.method = "POST";
    request.path = "/upload";
    request.content_type = std::move(content_type);
    absl::StatusOr<std::unique_ptr<UploadAssembler>> assembler =
        UploadAssembler::Create(request, options_);
    EXPECT_TRUE(assembler.ok()) << assembler.status();
    return assembler.ok() ? *std::move(assembler) : nullptr;
  }

  // Feeds `body` in slices of `slice` bytes, then finishes.
  absl::StatusOr<BufferedUpload> Assemble(std::string content_type, std::string_view body,
                                          size_t slice = 7) {
    std::unique_ptr<UploadAssembler> assembler = NewAssembler(std::move(content_type));
    for (size_t i = 0; i < body.size(); i += slice) {
      if (absl::Status status = assembler->Append(body.substr(i, slice)); !status.ok()) {
        return status;
      }
    }
    return assembler->Finish();
  }

  ScopedTestDir dir_;
  TempDirectory temp_dir_;
  UploadAssemblerOptions options_;
};

TEST_F(UploadAssemblerTest, KeepsFieldsAndFilesInBodyOrder) {
  const std::string body = MultipartBody()
                               .Field("title", "holiday")
                               .File("photo", "a.jpg", "image/jpeg", "JPEGDATA")
                               .Field("tag", "sea")
                               .Build();
  absl::StatusOr<BufferedUpload> upload = Assemble(MultipartContentType(), body);
  ASSERT_TRUE(upload.ok()) << upload.status();
  EXPECT_FALSE(upload->raw);
  ASSERT_THAT(upload->fields, SizeIs(2));
  EXPECT_EQ(upload->fields[0].name, "title");
  EXPECT_EQ(upload->fields[0].value, "holiday");
  EXPECT_EQ(upload->fields[1].value, "sea");
  ASSERT_THAT(upload->files, SizeIs(1));
  const UploadedFile& file = *upload->files[0];
  EXPECT_EQ(file.field_name(), "photo");
  EXPECT_EQ(file.filename(), "a.jpg");
  EXPECT_EQ(file.content_type(), "image/jpeg");
  EXPECT_EQ(file.size(), 8u);
  EXPECT_EQ(file.checksum_hex(), Sha256Hex("JPEGDATA"));
  ASSERT_THAT(upload->order, SizeIs(3));
  EXPECT_FALSE(upload->order[0].is_file);
  EXPECT_TRUE(upload->order[1].is_file);
  EXPECT_FALSE(upload->order[2].is_file);
  EXPECT_EQ(upload->order[2].index, 1u);
  EXPECT_EQ(upload->total_bytes, body.size());
  EXPECT_EQ(upload->mode(), UploadMode::kMemory);
}

TEST_F(UploadAssemblerTest, SlicingDoesNotChangeTheResult) {
  const std::string data = TestBytes(3 * kMemoryLimit);
  const std::string body = MultipartBody().File("f", "x.bin", "application/x", data).Build();
  for (size_t slice : {size_t{1}, size_t{13}, body.size()}) {
    absl::StatusOr<BufferedUpload> upload = Assemble(MultipartContentType(), body, slice);
    ASSERT_TRUE(upload.ok()) << upload.status() << " slice " << slice;
    ASSERT_THAT(upload->files, SizeIs(1));
    EXPECT_EQ(upload->files[0]->checksum_hex(), Sha256Hex(data)) << "slice " << slice;
  }
}

TEST_F(UploadAssemblerTest, FileAtMemoryLimitStaysInMemoryOneMoreByteSpills) {
  const std::string small = TestBytes(kMemoryLimit);
  const std::string big = TestBytes(kMemoryLimit + 1, 1);
  const std::string body = MultipartBody()
                               .File("a", "small.bin", "x/y", small)
                               .File("b", "big.bin", "x/y", big)
                               .Build();
  absl::StatusOr<BufferedUpload> upload = Assemble(MultipartContentType(), body, 64);
  ASSERT_TRUE(upload.ok()) << upload.status();
  ASSERT_THAT(upload->files, SizeIs(2));
  EXPECT_TRUE(upload->files[0]->in_memory());
  EXPECT_FALSE(upload->files[1]->in_memory());
  EXPECT_EQ(ReadWholeFile(upload->files[1]->path()), big);
  EXPECT_EQ(upload->mode(), UploadMode::kSpill);
  EXPECT_THAT(dir_.List(), SizeIs(1));
  upload = absl::InternalError("dropped");  // the upload goes away...
  EXPECT_THAT(dir_.List(), IsEmpty());      // ...and its temp file with it
}

TEST_F(UploadAssemblerTest, FileOverMaxSizeIsResourceExhaustedAndLeavesNoTempFile) {
  options_.file.max_size = 2 * kMemoryLimit;
  const std::string body =
      MultipartBody().File("f", "huge.bin", "x/y", TestBytes(2 * kMemoryLimit + 1)).Build();
  absl::StatusOr<BufferedUpload> upload = Assemble(MultipartContentType(), body, 100);
  EXPECT_EQ(upload.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(dir_.List(), IsEmpty());
}

TEST_F(UploadAssemblerTest, RawBodyIsOneUnnamedFile) {
  const std::string data = TestBytes(2 * kMemoryLimit);
  absl::StatusOr<BufferedUpload> upload = Assemble("application/octet-stream", data);
  ASSERT_TRUE(upload.ok()) << upload.status();
  EXPECT_TRUE(upload->raw);
  EXPECT_THAT(upload->fields, IsEmpty());
  ASSERT_THAT(upload->files, SizeIs(1));
  EXPECT_EQ(upload->files[0]->field_name(), "");
  EXPECT_EQ(upload->files[0]->filename(), "");
  EXPECT_EQ(upload->files[0]->content_type(), "application/octet-stream");
  EXPECT_EQ(upload->files[0]->size(), data.size());
  EXPECT_FALSE(upload->files[0]->in_memory());
  EXPECT_EQ(upload->files[0]->checksum_hex(), Sha256Hex(data));
}

TEST_F(UploadAssemblerTest, EmptyRawBodyIsAnEmptyFile) {
  absl::StatusOr<BufferedUpload> upload = Assemble("", "");
  ASSERT_TRUE(upload.ok()) << upload.status();
  ASSERT_THAT(upload->files, SizeIs(1));
  EXPECT_EQ(upload->files[0]->size(), 0u);
}

TEST_F(UploadAssemblerTest, MultipartWithoutBoundaryIsRejectedAtOnce) {
  RequestInfo request;
  request.content_type = "multipart/form-data";
  absl::StatusOr<std::unique_ptr<UploadAssembler>> assembler =
      UploadAssembler::Create(request, options_);
  EXPECT_EQ(assembler.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetMultipartError(assembler.status()), MultipartError::kMissingBoundary);
}

TEST_F(UploadAssemblerTest, TruncatedMultipartBodyFailsAtFinish) {
  std::string body = MultipartBody().File("f", "a", "x/y", TestBytes(3 * kMemoryLimit)).Build();
  body.resize(body.size() - 10);
  absl::StatusOr<BufferedUpload> upload = Assemble(MultipartContentType(), body);
  EXPECT_EQ(upload.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetMultipartError(upload.status()), MultipartError::kTruncatedBody);
  EXPECT_THAT(dir_.List(), IsEmpty());
}

TEST_F(UploadAssemblerTest, AbandonedMidBodyLeavesNoTempFile) {
  const std::string body =
      MultipartBody().File("f", "a", "x/y", TestBytes(5 * kMemoryLimit)).Build();
  std::unique_ptr<UploadAssembler> assembler = NewAssembler(MultipartContentType());
  ASSERT_TRUE(assembler->Append(body.substr(0, body.size() / 2)).ok());
  EXPECT_THAT(dir_.List(), SizeIs(1));  // spilled
  assembler.reset();                    // the uploader went away
  EXPECT_THAT(dir_.List(), IsEmpty());
}

TEST_F(UploadAssemblerTest, ErrorsStick) {
  std::unique_ptr<UploadAssembler> assembler = NewAssembler(MultipartContentType());
  EXPECT_FALSE(assembler->Append("--wrong\r\n\r\n--" + std::string(testing::kBoundary) +
                                 "\r\nno-colon\r\n\r\n")
                   .ok());
  EXPECT_FALSE(assembler->Append("more").ok());
  EXPECT_FALSE(assembler->Finish().ok());
}

}  // namespace
}  // namespace spillway
