#include "server/upload/uploaded_file.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/upload/checksum.h"
#include "server/upload/temp_directory.h"
#include "tests/unit/scoped_test_dir.h"

namespace spillway {
namespace {

using ::spillway::testing::ScopedTestDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr uint64_t kMemoryLimit = 1000;

std::string TestData(size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131 + 7) % 251);
  return data;
}

std::string ReadWholeFile(std::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string OneShotHex(ChecksumKind kind, std::string_view data) {
  Checksum checksum = Checksum::Create(kind);
  checksum.Update(data);
  return checksum.FinishHex();
}

// Reads the whole file back through a reader with the given chunk size, checking that
// no chunk is larger than asked.
std::string ReadAll(const UploadedFile& file, size_t chunk_size) {
  absl::StatusOr<FileChunkReader> reader = file.NewReader(chunk_size);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return "";
  std::string out;
  for (;;) {
    absl::StatusOr<std::string_view> chunk = reader->Next();
    EXPECT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk.ok() || chunk->empty()) break;
    EXPECT_LE(chunk->size(), chunk_size);
    out.append(*chunk);
  }
  return out;
}

// A fresh temp directory per test, so listing it proves nothing was left behind.
class UploadedFileTest : public ::testing::Test {
 protected:
  UploadedFileTest() : temp_dir_(TempDirectory::Open(dir_.path()).value()) {}

  UploadedFileOptions Options(uint64_t max_memory_size = kMemoryLimit,
                              uint64_t max_size = 0,
                              ChecksumKind checksum = ChecksumKind::kSha256) {
    UploadedFileOptions options;
    options.max_memory_size = max_memory_size;
    options.max_size = max_size;
    options.checksum = checksum;
    options.temp_dir = &temp_dir_;
    return options;
  }

  UploadedFile NewFile(const UploadedFileOptions& options) {
    return UploadedFile("document", "report.pdf", "application/pdf", options);
  }

  ScopedTestDir dir_;
  TempDirectory temp_dir_;
};

TEST_F(UploadedFileTest, KeepsMetadata) {
  UploadedFile file = NewFile(Options());
  EXPECT_EQ(file.field_name(), "document");
  EXPECT_EQ(file.filename(), "report.pdf");
  EXPECT_EQ(file.content_type(), "application/pdf");
}

TEST_F(UploadedFileTest, SmallFileStaysInMemory) {
  UploadedFile file = NewFile(Options());
  ASSERT_TRUE(file.Append("hello").ok());
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_TRUE(file.in_memory());
  EXPECT_EQ(file.path(), "");
  EXPECT_EQ(file.size(), 5u);
  EXPECT_EQ(ReadAll(file, 2), "hello");
  EXPECT_THAT(dir_.List(), IsEmpty());
}

TEST_F(UploadedFileTest, EmptyFileStaysInMemory) {
  UploadedFile file = NewFile(Options(/*max_memory_size=*/0));
  ASSERT_TRUE(file.Append("").ok());
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_TRUE(file.in_memory());
  EXPECT_EQ(file.size(), 0u);
  EXPECT_EQ(ReadAll(file, 4), "");
  EXPECT_EQ(file.checksum_hex(), OneShotHex(ChecksumKind::kSha256, ""));
}

TEST_F(UploadedFileTest, ExactlyMaxMemorySizeStaysInMemory) {
  UploadedFile file = NewFile(Options());
  const std::string data = TestData(kMemoryLimit);
  ASSERT_TRUE(file.Append(std::string_view(data).substr(0, 400)).ok());
  ASSERT_TRUE(file.Append(std::string_view(data).substr(400)).ok());
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_TRUE(file.in_memory());
  EXPECT_EQ(file.path(), "");
  EXPECT_EQ(file.size(), kMemoryLimit);
  EXPECT_LE(file.memory_bytes(), kMemoryLimit);
  EXPECT_THAT(dir_.List(), IsEmpty());
}

TEST_F(UploadedFileTest, OneByteOverMaxMemorySizeSpills) {
  UploadedFile file = NewFile(Options());
  const std::string data = TestData(kMemoryLimit + 1);
  ASSERT_TRUE(file.Append(std::string_view(data).substr(0, kMemoryLimit)).ok());
  EXPECT_TRUE(file.in_memory());
  ASSERT_TRUE(file.Append(std::string_view(data).substr(kMemoryLimit)).ok());
  EXPECT_FALSE(file.in_memory());
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_FALSE(file.in_memory());
  EXPECT_EQ(file.size(), kMemoryLimit + 1);
  EXPECT_EQ(ReadWholeFile(file.path()), data);
}

TEST_F(UploadedFileTest, SpilledFileIsInTempDirWithMode0600) {
  UploadedFile file = NewFile(Options());
  ASSERT_TRUE(file.Append(TestData(kMemoryLimit + 1)).ok());
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_THAT(std::string(file.path()), StartsWith(dir_.path() + "/spillway-"));
  EXPECT_THAT(std::string(file.path()), ::testing::Not(HasSubstr("report")));
  struct stat st;
  ASSERT_EQ(::stat(std::string(file.path()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_THAT(dir_.List(), SizeIs(1));
}

TEST_F(UploadedFileTest, SpillFreesMemory) {
  UploadedFile file = NewFile(Options(/*max_memory_size=*/1 << 20));
  ASSERT_TRUE(file.Append(TestData(1 << 20)).ok());
  EXPECT_GE(file.memory_bytes(), size_t{1} << 20);
  ASSERT_TRUE(file.Append("x").ok());
  EXPECT_LE(file.memory_bytes(), UploadedFile::kWriteBufferSize);
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_EQ(file.memory_bytes(), 0u);
}

TEST_F(UploadedFileTest, SpillsByManySmallAppends) {
  UploadedFile file = NewFile(Options());
  // Crosses the memory limit and, once spilled, the write buffer several times.
  const std::string data = TestData(3 * UploadedFile::kWriteBufferSize + 12345);
  for (size_t at = 0; at < data.size(); at += 97) {
    ASSERT_TRUE(file.Append(std::string_view(data).substr(at, 97)).ok());
  }
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_FALSE(file.in_memory());
  EXPECT_EQ(file.size(), data.size());
  EXPECT_EQ(ReadWholeFile(file.path()), data);
}

TEST_F(UploadedFileTest, SpillsByOneBigAppend) {
  UploadedFile file = NewFile(Options());
  const std::string data = TestData(5 * UploadedFile::kWriteBufferSize + 3);
  ASSERT_TRUE(file.Append(data).ok());
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_FALSE(file.in_memory());
  EXPECT_EQ(ReadWholeFile(file.path()), data);
}

TEST_F(UploadedFileTest, MixedAppendSizesKeepOrder) {
  UploadedFile file = NewFile(Options(/*max_memory_size=*/10));
  const std::string data = TestData(1 << 20);
  size_t at = 0;
  for (size_t step : {5, 6, 70000, 3, 65536, 65535, 1, 200000, 40}) {
    ASSERT_TRUE(file.Append(std::string_view(data).substr(at, step)).ok());
    at += step;
  }
  ASSERT_TRUE(file.Append(std::string_view(data).substr(at)).ok());
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_EQ(ReadWholeFile(file.path()), data);
}

TEST_F(UploadedFileTest, SpillWithoutTempDirFails) {
  UploadedFileOptions options = Options();
  options.temp_dir = nullptr;
  UploadedFile file = NewFile(options);
  absl::Status status = file.Append(TestData(kMemoryLimit + 1));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("report.pdf"));
}

TEST_F(UploadedFileTest, MaxSizeExceededIsResourceExhausted) {
  UploadedFile file = NewFile(Options(kMemoryLimit, /*max_size=*/5000));
  ASSERT_TRUE(file.Append(TestData(4000)).ok());
  absl::Status status = file.Append(TestData(1001));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("5000"));
  EXPECT_THAT(status.message(), HasSubstr("report.pdf"));
  EXPECT_EQ(file.size(), 4000u);  // Nothing of the rejected append was taken.
}

TEST_F(UploadedFileTest, MaxSizeExceededInMemory) {
  UploadedFile file = NewFile(Options(kMemoryLimit, /*max_size=*/10));
  EXPECT_EQ(file.Append(TestData(11)).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(file.memory_bytes(), 0u);
}

TEST_F(UploadedFileTest, ExactlyMaxSizeIsAccepted) {
  UploadedFile file = NewFile(Options(kMemoryLimit, /*max_size=*/5000));
  const std::string data = TestData(5000);
  ASSERT_TRUE(file.Append(std::string_view(data).substr(0, 4999)).ok());
  ASSERT_TRUE(file.Append(std::string_view(data).substr(4999)).ok());
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_EQ(file.size(), 5000u);
  EXPECT_EQ(ReadWholeFile(file.path()), data);
}

TEST_F(UploadedFileTest, ErrorIsSticky) {
  UploadedFile file = NewFile(Options(kMemoryLimit, /*max_size=*/10));
  ASSERT_FALSE(file.Append(TestData(11)).ok());
  EXPECT_EQ(file.Append("x").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(file.Finish().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(file.NewReader(10).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(UploadedFileTest, AppendAfterFinishFails) {
  UploadedFile file = NewFile(Options());
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_EQ(file.Append("x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(file.Finish().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(UploadedFileTest, ReaderRequiresFinish) {
  UploadedFile file = NewFile(Options());
  ASSERT_TRUE(file.Append("abc").ok());
  EXPECT_EQ(file.NewReader(10).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(UploadedFileTest, ReaderRejectsZeroChunkSize) {
  UploadedFile file = NewFile(Options());
  ASSERT_TRUE(file.Finish().ok());
  EXPECT_EQ(file.NewReader(0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UploadedFileTest, ChecksumMatchesOneShotInBothModes) {
  for (ChecksumKind kind :
       {ChecksumKind::kSha256, ChecksumKind::kCrc32c, ChecksumKind::kNone}) {
    for (size_t size : {size_t{100}, size_t{kMemoryLimit}, size_t{300000}}) {
      const std::string data = TestData(size);
      UploadedFile file = NewFile(Options(kMemoryLimit, 0, kind));
      for (size_t at = 0; at < data.size(); at += 333) {
        ASSERT_TRUE(file.Append(std::string_view(data).substr(at, 333)).ok());
      }
      EXPECT_EQ(file.checksum_hex(), "");  // Not final before Finish().
      ASSERT_TRUE(file.Finish().ok());
      EXPECT_EQ(file.in_memory(), size <= kMemoryLimit);
      EXPECT_EQ(file.checksum_kind(), kind);
      EXPECT_EQ(file.checksum_hex(), OneShotHex(kind, data))
          << ChecksumKindName(kind) << " size " << size;
    }
  }
}

TEST_F(UploadedFileTest, ReaderYieldsSameBytesInBothModes) {
  const std::string data = TestData(200000);
  UploadedFile in_memory = NewFile(Options(/*max_memory_size=*/data.size()));
  UploadedFile spilled = NewFile(Options(/*max_memory_size=*/10));
  ASSERT_TRUE(in_memory.Append(data).ok());
  ASSERT_TRUE(spilled.Append(data).ok());
  ASSERT_TRUE(in_memory.Finish().ok());
  ASSERT_TRUE(spilled.Finish().ok());
  ASSERT_TRUE(in_memory.in_memory());
  ASSERT_FALSE(spilled.in_memory());
  for (size_t chunk_size : {size_t{1}, size_t{7}, size_t{4096}, size_t{65536},
                            size_t{262144}, data.size(), data.size() + 1}) {
    if (chunk_size == 1) {
      // Byte-at-a-time over 200 KB is slow under sanitizers; a prefix is enough.
      absl::StatusOr<FileChunkReader> a = in_memory.NewReader(1);
      absl::StatusOr<FileChunkReader> b = spilled.NewReader(1);
      for (int i = 0; i < 1000; ++i) EXPECT_EQ(a->Next().value(), b->Next().value());
      continue;
    }
    EXPECT_EQ(ReadAll(in_memory, chunk_size), data) << chunk_size;
    EXPECT_EQ(ReadAll(spilled, chunk_size), data) << chunk_size;
  }
}

TEST_F(UploadedFileTest, ReaderChunksAreFullUntilTheLast) {
  UploadedFile file = NewFile(Options(/*max_memory_size=*/10));
  ASSERT_TRUE(file.Append(TestData(25)).ok());
  ASSERT_TRUE(file.Finish().ok());
  FileChunkReader reader = file.NewReader(10).value();
  EXPECT_EQ(reader.Next()->size(), 10u);
  EXPECT_EQ(reader.Next()->size(), 10u);
  EXPECT_EQ(reader.Next()->size(), 5u);
  EXPECT_TRUE(reader.Next()->empty());
  EXPECT_TRUE(reader.Next()->empty());
  EXPECT_EQ(reader.offset(), 25u);
}

TEST_F(UploadedFileTest, ReaderReportsTruncatedTempFile) {
  UploadedFile file = NewFile(Options(/*max_memory_size=*/10));
  ASSERT_TRUE(file.Append(TestData(100)).ok());
  ASSERT_TRUE(file.Finish().ok());
  ASSERT_EQ(::truncate(std::string(file.path()).c_str(), 50), 0);
  FileChunkReader reader = file.NewReader(64).value();
  EXPECT_EQ(reader.Next().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(UploadedFileTest, MovedFileKeepsItsTempFile) {
  const std::string data = TestData(kMemoryLimit + 500);
  UploadedFile original = NewFile(Options());
  ASSERT_TRUE(original.Append(data).ok());
  UploadedFile moved = std::move(original);
  ASSERT_TRUE(moved.Finish().ok());
  EXPECT_EQ(ReadAll(moved, 4096), data);
  EXPECT_THAT(dir_.List(), SizeIs(1));
}

TEST_F(UploadedFileTest, NoTempFileRemainsAfterSuccess) {
  {
    UploadedFile file = NewFile(Options());
    ASSERT_TRUE(file.Append(TestData(3 * kMemoryLimit)).ok());
    ASSERT_TRUE(file.Finish().ok());
    EXPECT_THAT(dir_.List(), SizeIs(1));
  }
  EXPECT_THAT(dir_.List(), IsEmpty());
}

TEST_F(UploadedFileTest, NoTempFileRemainsAfterLimitError) {
  UploadedFile file = NewFile(Options(kMemoryLimit, /*max_size=*/3 * kMemoryLimit));
  ASSERT_TRUE(file.Append(TestData(2 * kMemoryLimit)).ok());
  EXPECT_THAT(dir_.List(), SizeIs(1));
  ASSERT_FALSE(file.Append(TestData(2 * kMemoryLimit)).ok());
  // Removed as soon as the upload fails, not only when the object goes away.
  EXPECT_THAT(dir_.List(), IsEmpty());
  EXPECT_EQ(file.path(), "");
}

TEST_F(UploadedFileTest, NoTempFileRemainsAfterAbandonedUpload) {
  {
    UploadedFile file = NewFile(Options());
    ASSERT_TRUE(file.Append(TestData(2 * kMemoryLimit)).ok());
    ASSERT_TRUE(file.Append("more").ok());
    EXPECT_THAT(dir_.List(), SizeIs(1));
    // Destroyed mid-upload, without Finish().
  }
  EXPECT_THAT(dir_.List(), IsEmpty());
}

TEST_F(UploadedFileTest, FullDiskIsResourceExhausted) {
  // A 64 KiB tmpfs fills up at once. Mounting needs CAP_SYS_ADMIN, so the scenario
  // runs in a child process with its own mount namespace (nothing leaks into the host)
  // and the test is skipped where that is not allowed.
  constexpr int kSkip = 77;
  const std::string mount_point = dir_.path() + "/small";
  ASSERT_EQ(::mkdir(mount_point.c_str(), 0700), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=64k") != 0) {
      ::_exit(kSkip);
    }
    absl::StatusOr<TempDirectory> small = TempDirectory::Open(mount_point);
    if (!small.ok()) ::_exit(10);
    UploadedFileOptions options;
    options.max_memory_size = 0;
    options.temp_dir = &*small;
    UploadedFile file("document", "big.bin", "", options);
    const absl::Status status = file.Append(std::string(1 << 20, 'x'));
    if (status.code() != absl::StatusCode::kResourceExhausted) ::_exit(11);
    if (!absl::StrContains(status.message(), "no space left") ||
        !absl::StrContains(status.message(), "big.bin")) {
      ::_exit(12);
    }
    if (!std::filesystem::is_empty(mount_point)) ::_exit(13);  // Failed file removed.
    if (!IsInsufficientStorage(status)) ::_exit(14);  // 507, not the per-file 413
    ::_exit(0);
  }
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(WIFEXITED(wait_status));
  if (WEXITSTATUS(wait_status) == kSkip) GTEST_SKIP() << "cannot mount a tmpfs here";
  EXPECT_EQ(WEXITSTATUS(wait_status), 0)
      << "10: open failed, 11: wrong code, 12: unclear message, 13: file left behind";
}

}  // namespace
}  // namespace spillway
