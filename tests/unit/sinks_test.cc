#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/notification.h"
#include "server/dispatch/buffered_upload_source.h"
#include "server/dispatch/dir_sink.h"
#include "server/dispatch/discard_sink.h"
#include "server/dispatch/dispatcher.h"
#include "server/dispatch/receipt.h"
#include "server/dispatch/sink_pool.h"
#include "server/dispatch/stored_name.h"
#include "server/dispatch/stream_upload_source.h"
#include "server/upload/checksum.h"
#include "server/upload/temp_directory.h"
#include "tests/unit/dispatch_test_util.h"
#include "tests/unit/scoped_test_dir.h"

namespace spillway {
namespace {

using ::spillway::testing::ScopedTestDir;
using ::spillway::testing::Sha256Hex;
using ::spillway::testing::TestBytes;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr std::string_view kId = "0123456789abcdef0123456789abcdef";

std::vector<std::string> ScopedTestDirList(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(StoredFileName, KeepsOnlyTheLastSegmentOfATraversal) {
  EXPECT_EQ(StoredFileName(kId, 0, "../../etc/passwd"), std::string(kId) + "-0-passwd");
  EXPECT_EQ(StoredFileName(kId, 1, "..\\..\\boot.ini"), std::string(kId) + "-1-boot.ini");
  EXPECT_EQ(StoredFileName(kId, 2, "C:\\Users\\me\\a b.txt"),
            std::string(kId) + "-2-a_b.txt");
}

TEST(StoredFileName, NeverHiddenNeverDotsNeverEmpty) {
  EXPECT_EQ(StoredFileName(kId, 0, ".bashrc"), std::string(kId) + "-0-bashrc");
  EXPECT_EQ(StoredFileName(kId, 0, ".."), std::string(kId) + "-0-file");
  EXPECT_EQ(StoredFileName(kId, 0, ""), std::string(kId) + "-0-file");
  EXPECT_EQ(StoredFileName(kId, 0, "dir/"), std::string(kId) + "-0-file");
}

TEST(StoredFileName, ReplacesUnsafeBytesAndBoundsTheLength) {
  EXPECT_EQ(StoredFileName(kId, 0, "r\xC3\xA9sum\xC3\xA9 (1).pdf"),
            std::string(kId) + "-0-r_sum_1_.pdf");
  EXPECT_EQ(StoredFileName(kId, 0, std::string("a\0b", 3)), std::string(kId) + "-0-a_b");
  const std::string stored = StoredFileName(kId, 0, std::string(300, 'x') + ".jpeg");
  EXPECT_EQ(stored.size(), kId.size() + 3 + kMaxSafeNameBytes);
  EXPECT_THAT(stored, ::testing::EndsWith(".jpeg"));
}

TEST(Receipt, IsEscapedJson) {
  Receipt receipt;
  receipt.upload_id = "id";
  receipt.total_bytes = 5;
  receipt.fields.emplace_back("q\"", "line\nbreak");
  FileReceipt file;
  file.field_name = "f";
  file.filename = "a\\b";
  file.size = 3;
  file.checksum_kind = ChecksumKind::kSha256;
  file.checksum = "abc";
  file.mode = UploadMode::kSpill;
  file.stored_name = "id-0-b";
  receipt.files.push_back(file);
  EXPECT_EQ(receipt.ToJson(),
            R"({"upload_id":"id","total_bytes":5,"fields":[{"name":"q\"","value":"line\nbreak"}],)"
            R"("files":[{"field_name":"f","filename":"a\\b","content_type":"","size":3,)"
            R"("sha256":"abc","mode":"spill","stored_name":"id-0-b"}]})"
            "\n");
}

TEST(Receipt, KeysTheChecksumByItsAlgorithmAndOmitsNone) {
  Receipt receipt;
  receipt.upload_id = "id";
  FileReceipt crc;
  crc.checksum_kind = ChecksumKind::kCrc32c;
  crc.checksum = "e3069283";
  receipt.files.push_back(crc);
  receipt.files.push_back(FileReceipt{});  // no checksum
  EXPECT_EQ(receipt.ToJson(),
            R"({"upload_id":"id","total_bytes":0,"fields":[],"files":[)"
            R"({"field_name":"","filename":"","content_type":"","size":0,)"
            R"("crc32c":"e3069283","mode":"memory"},)"
            R"({"field_name":"","filename":"","content_type":"","size":0,"mode":"memory"}]})"
            "\n");
}

TEST(MakeSink, ParsesTheSinkSetting) {
  ScopedTestDir dir;
  EXPECT_EQ(*MakeSink(""), nullptr);
  EXPECT_EQ((*MakeSink("discard"))->name(), "discard");
  EXPECT_EQ((*MakeSink("discard:rate=50Mi"))->name(), "discard");
  EXPECT_EQ((*MakeSink("dir:" + dir.path() + "/made"))->name(), "dir");
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() + "/made"));
  EXPECT_EQ(MakeSink("dir:").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeSink("discard:rate=0").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeSink("s3:bucket").status().code(), absl::StatusCode::kInvalidArgument);
}

// The sinks through the real dispatcher, as spillwayd runs them.
class SinkPoolTest : public ::testing::Test {
 protected:
  SinkPoolTest() : temp_dir_(*TempDirectory::Open(spill_dir_.path())) {
    settings_.dispatch_timeout = absl::Seconds(5);
    settings_.reply_timeout = absl::Seconds(5);
    settings_.chunk_size = 1000;
  }

  std::unique_ptr<UploadedFile> File(std::string field, std::string filename,
                                     std::string_view data,
                                     ChecksumKind checksum = ChecksumKind::kSha256) {
    UploadedFileOptions options;
    options.max_memory_size = 1500;
    options.checksum = checksum;
    options.temp_dir = &temp_dir_;
    auto file = std::make_unique<UploadedFile>(field, filename, "application/x", options);
    EXPECT_TRUE(file->Append(data).ok());
    EXPECT_TRUE(file->Finish().ok());
    return file;
  }

  // A raw body streamed in 1000-byte chunks; the test is its producer.
  static std::shared_ptr<StreamUploadSource> RawStream() { return Stream(""); }

  // The same for a multipart body with the boundary "b0undary".
  static std::shared_ptr<StreamUploadSource> MultipartStream() {
    return Stream("multipart/form-data; boundary=b0undary");
  }

  static std::shared_ptr<StreamUploadSource> Stream(std::string content_type) {
    RequestInfo request;
    request.path = "/big";
    request.content_type = std::move(content_type);
    StreamUploadOptions options;
    options.chunk_size = 1000;
    return *StreamUploadSource::Create(request, options, nullptr);
  }

  // The start of a two-file body for MultipartStream(): "first.bin" (2500 bytes)
  // whole, and "second.bin" begun (1500 bytes); no closing boundary yet.
  static std::string TwoFilesBegun() {
    return absl::StrCat(
        "--b0undary\r\nContent-Disposition: form-data; name=\"a\"; "
        "filename=\"first.bin\"\r\n\r\n",
        TestBytes(2500), "\r\n--b0undary\r\nContent-Disposition: "
        "form-data; name=\"b\"; filename=\"second.bin\"\r\n\r\n",
        TestBytes(1500, 3));
  }

  // A consumer reply still to come, for tests that feed an upload after submitting it.
  struct PendingReply {
    absl::AnyInvocable<void(ConsumerReply) &&> Callback() {
      return [this](ConsumerReply r) {
        reply = std::move(r);
        arrived.Notify();
      };
    }
    bool Wait() { return arrived.WaitForNotificationWithTimeout(absl::Seconds(10)); }

    Notification arrived;
    ConsumerReply reply;
  };

  // Submits and waits for the reply.
  ConsumerReply Run(Dispatcher& dispatcher, std::shared_ptr<UploadSource> source,
                    std::string* upload_id = nullptr) {
    PendingReply pending;
    UploadHandle handle = dispatcher.Submit(std::move(source), pending.Callback());
    if (upload_id != nullptr) *upload_id = handle.upload_id();
    EXPECT_TRUE(pending.Wait());
    return std::move(pending.reply);
  }

  ScopedTestDir spill_dir_;
  ScopedTestDir parent_;  // the sink directory lives in here, to watch for escapes
  TempDirectory temp_dir_;
  DispatchSettings settings_;
};

TEST_F(SinkPoolTest, DirSinkStoresIdenticalBytesUnderSanitizedNamesWithReceipt) {
  const std::string sink_dir = parent_.path() + "/store";
  Dispatcher dispatcher(settings_);
  absl::StatusOr<std::unique_ptr<SinkPool>> pool =
      SinkPool::Start({.sink = "dir:" + sink_dir, .workers = 2}, &dispatcher);
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ((*pool)->workers(), 2u);

  const std::string small = TestBytes(1000);
  const std::string big = TestBytes(5000, 9);  // spilled
  BufferedUpload upload;
  upload.request.path = "/anything";
  upload.fields.push_back({"note", "hi \"there\""});
  upload.files.push_back(File("a", "../../etc/passwd", small));
  upload.files.push_back(File("b", ".hidden big.bin", big));
  upload.order = {{false, 0}, {true, 0}, {true, 1}};
  upload.total_bytes = 6500;
  ASSERT_FALSE(upload.files[1]->in_memory());

  std::string id;
  ConsumerReply reply =
      Run(dispatcher, std::make_shared<BufferedUploadSource>(std::move(upload)), &id);
  EXPECT_EQ(reply.status, 201);
  const std::string name_a = id + "-0-passwd";
  const std::string name_b = id + "-1-hidden_big.bin";
  EXPECT_THAT(reply.body,
              AllOf(HasSubstr("\"upload_id\":\"" + id + "\""),
                    HasSubstr(R"("fields":[{"name":"note","value":"hi \"there\""}])"),
                    HasSubstr("\"filename\":\"../../etc/passwd\""),
                    HasSubstr("\"size\":1000,\"sha256\":\"" + Sha256Hex(small) +
                              "\",\"mode\":\"memory\",\"stored_name\":\"" + name_a + "\""),
                    HasSubstr("\"size\":5000,\"sha256\":\"" + Sha256Hex(big) +
                              "\",\"mode\":\"spill\",\"stored_name\":\"" + name_b + "\""),
                    HasSubstr("\"total_bytes\":6500")));
  // Exactly the two files, nothing partial, nothing outside the sink directory.
  EXPECT_THAT(ScopedTestDirList(sink_dir), ElementsAre(name_a, name_b));
  EXPECT_THAT(parent_.List(), ElementsAre("store"));
  EXPECT_TRUE(ReadWholeFile(sink_dir + "/" + name_a) == small);
  EXPECT_TRUE(ReadWholeFile(sink_dir + "/" + name_b) == big);
}

TEST_F(SinkPoolTest, DirSinkStoresARawBodyAsOneFile) {
  const std::string sink_dir = parent_.path() + "/store";
  Dispatcher dispatcher(settings_);
  auto pool = SinkPool::Start({.sink = "dir:" + sink_dir, .workers = 1}, &dispatcher);
  ASSERT_TRUE(pool.ok());
  const std::string body = TestBytes(3000, 4);
  BufferedUpload upload;
  upload.raw = true;
  upload.files.push_back(File("", "", body));
  upload.order = {{true, 0}};
  upload.total_bytes = body.size();
  std::string id;
  ConsumerReply reply =
      Run(dispatcher, std::make_shared<BufferedUploadSource>(std::move(upload)), &id);
  EXPECT_EQ(reply.status, 201);
  EXPECT_THAT(reply.body, HasSubstr("\"field_name\":\"\",\"filename\":\"\""));
  EXPECT_THAT(reply.body, HasSubstr(Sha256Hex(body)));
  EXPECT_TRUE(ReadWholeFile(sink_dir + "/" + id + "-0-file") == body);
}

TEST_F(SinkPoolTest, DiscardSinkRepliesWithReceiptWithoutStoredNames) {
  Dispatcher dispatcher(settings_);
  auto pool = SinkPool::Start({.sink = "discard", .workers = 4}, &dispatcher);
  ASSERT_TRUE(pool.ok());
  const std::string data = TestBytes(4000, 2);
  BufferedUpload upload;
  upload.files.push_back(File("f", "x.bin", data));
  upload.order = {{true, 0}};
  ConsumerReply reply =
      Run(dispatcher, std::make_shared<BufferedUploadSource>(std::move(upload)));
  EXPECT_EQ(reply.status, 200);
  EXPECT_THAT(reply.body, HasSubstr("\"sha256\":\"" + Sha256Hex(data) + "\""));
  EXPECT_THAT(reply.body, Not(HasSubstr("stored_name")));
}

std::string ChecksumHex(ChecksumKind kind, std::string_view data) {
  Checksum checksum = Checksum::Create(kind);
  checksum.Update(data);
  return checksum.FinishHex();
}

TEST_F(SinkPoolTest, DiscardSinkReportsTheUploadsOwnChecksumAndHashesNothing) {
  Dispatcher dispatcher(settings_);
  auto pool = SinkPool::Start({.sink = "discard", .workers = 1}, &dispatcher);
  ASSERT_TRUE(pool.ok());
  const std::string small = TestBytes(1000, 3);
  const std::string big = TestBytes(4000, 5);  // spilled
  BufferedUpload upload;
  upload.files.push_back(File("a", "none.bin", small, ChecksumKind::kNone));
  upload.files.push_back(File("b", "crc.bin", big, ChecksumKind::kCrc32c));
  upload.order = {{true, 0}, {true, 1}};
  ConsumerReply reply =
      Run(dispatcher, std::make_shared<BufferedUploadSource>(std::move(upload)));
  EXPECT_EQ(reply.status, 200);
  // FILE_UPLOAD_CHECKSUM=none: no checksum key at all, rather than one computed here.
  EXPECT_THAT(reply.body, HasSubstr("\"size\":1000,\"mode\":\"memory\""));
  EXPECT_THAT(reply.body, HasSubstr("\"size\":4000,\"crc32c\":\"" +
                                        ChecksumHex(ChecksumKind::kCrc32c, big) +
                                        "\",\"mode\":\"spill\""));
  EXPECT_THAT(reply.body, Not(HasSubstr("sha256")));
}

TEST_F(SinkPoolTest, DiscardSinkTakesEachStreamedChunkOnTheProducersThread) {
  Dispatcher dispatcher(settings_);
  auto pool = SinkPool::Start({.sink = "discard", .workers = 1}, &dispatcher);
  ASSERT_TRUE(pool.ok());
  std::shared_ptr<StreamUploadSource> source = RawStream();
  PendingReply pending;
  UploadHandle handle = dispatcher.Submit(source, pending.Callback());
  const std::string data = TestBytes(10500, 9);
  // The producer runs on a thread of its own, as an event loop does. Every event is
  // handled before Feed() returns (RunSinkDeliveryInline): nothing is ever queued,
  // so no other thread is waiting to be woken for it.
  std::thread producer([&] {
    for (size_t at = 0; at < data.size(); at += 700) {
      EXPECT_TRUE(source->Feed(std::string_view(data).substr(at, 700)).ok());
      EXPECT_EQ(source->queued_bytes(), 0u);
    }
    EXPECT_TRUE(source->Finish().ok());
  });
  producer.join();
  ASSERT_TRUE(pending.Wait());
  const ConsumerReply& reply = pending.reply;
  EXPECT_EQ(reply.status, 200);
  EXPECT_THAT(reply.body, HasSubstr("\"size\":10500,\"sha256\":\"" + Sha256Hex(data) +
                                        "\",\"mode\":\"stream\""));
}

TEST_F(SinkPoolTest, DirSinkComputesTheSha256TheUploadDidNot) {
  const std::string sink_dir = parent_.path() + "/store";
  Dispatcher dispatcher(settings_);
  auto pool = SinkPool::Start({.sink = "dir:" + sink_dir, .workers = 1}, &dispatcher);
  ASSERT_TRUE(pool.ok());
  const std::string small = TestBytes(1000, 6);
  const std::string big = TestBytes(4000, 7);  // spilled, read in 1000-byte chunks
  BufferedUpload upload;
  upload.files.push_back(File("a", "none.bin", small, ChecksumKind::kNone));
  upload.files.push_back(File("b", "crc.bin", big, ChecksumKind::kCrc32c));
  upload.order = {{true, 0}, {true, 1}};
  ConsumerReply reply =
      Run(dispatcher, std::make_shared<BufferedUploadSource>(std::move(upload)));
  EXPECT_EQ(reply.status, 201);
  EXPECT_THAT(reply.body,
              AllOf(HasSubstr("\"size\":1000,\"sha256\":\"" + Sha256Hex(small) + "\""),
                    HasSubstr("\"size\":4000,\"sha256\":\"" + Sha256Hex(big) + "\""),
                    Not(HasSubstr("crc32c"))));
}

TEST_F(SinkPoolTest, ThrottledDiscardSinkReadsNoFasterThanItsRate) {
  Dispatcher dispatcher(settings_);
  auto pool = SinkPool::Start({.sink = "discard:rate=100Ki", .workers = 1}, &dispatcher);
  ASSERT_TRUE(pool.ok());
  BufferedUpload upload;
  upload.files.push_back(File("f", "x.bin", TestBytes(30 * 1024)));
  upload.order = {{true, 0}};
  const absl::Time start = absl::Now();
  ConsumerReply reply =
      Run(dispatcher, std::make_shared<BufferedUploadSource>(std::move(upload)));
  EXPECT_EQ(reply.status, 200);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(280));  // 30 KiB at 100 KiB/s
}

TEST_F(SinkPoolTest, AbortedStreamLeavesNoPartialFileInTheSinkDirectory) {
  const std::string sink_dir = parent_.path() + "/store";
  Dispatcher dispatcher(settings_);
  auto pool = SinkPool::Start({.sink = "dir:" + sink_dir, .workers = 1}, &dispatcher);
  ASSERT_TRUE(pool.ok());
  std::shared_ptr<StreamUploadSource> source = RawStream();
  UploadHandle handle = dispatcher.Submit(source, [](ConsumerReply) {});
  ASSERT_TRUE(source->Feed(TestBytes(3500)).ok());
  // The worker is writing ".partial-…"; wait until it has taken the chunks.
  for (int i = 0; i < 500 && source->queued_bytes() > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_THAT(ScopedTestDirList(sink_dir), ElementsAre(StartsWith(".partial-")));
  handle.Cancel("client went away");
  for (int i = 0; i < 500 && !ScopedTestDirList(sink_dir).empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_THAT(ScopedTestDirList(sink_dir), IsEmpty());
}

// Stream mode delivers a multipart upload's files as they arrive. One written whole is
// still not stored if the upload then ends without its closing boundary (a limit
// crossed, the client gone): the files of an upload are published together.
TEST_F(SinkPoolTest, StreamAbortedAfterAWholeFileStoresNothing) {
  const std::string sink_dir = parent_.path() + "/store";
  Dispatcher dispatcher(settings_);
  auto pool = SinkPool::Start({.sink = "dir:" + sink_dir, .workers = 1}, &dispatcher);
  ASSERT_TRUE(pool.ok());
  std::shared_ptr<StreamUploadSource> source = MultipartStream();
  UploadHandle handle = dispatcher.Submit(source, [](ConsumerReply) {});
  ASSERT_TRUE(source->Feed(TwoFilesBegun()).ok());
  // The worker has written the first file whole and is writing the second.
  for (int i = 0; i < 500 && ScopedTestDirList(sink_dir).size() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  for (int i = 0; i < 500 && source->queued_bytes() > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_THAT(ScopedTestDirList(sink_dir),
              ElementsAre(StartsWith(".partial-"), StartsWith(".partial-")));
  handle.Cancel("client went away");
  for (int i = 0; i < 500 && !ScopedTestDirList(sink_dir).empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_THAT(ScopedTestDirList(sink_dir), IsEmpty());
}

// All or nothing at the end too: when one file cannot be renamed into place, those
// already published are taken back and the uploader gets an error, not a receipt.
TEST_F(SinkPoolTest, FileThatCannotBePublishedTakesBackTheOthers) {
  const std::string sink_dir = parent_.path() + "/store";
  Dispatcher dispatcher(settings_);
  auto pool = SinkPool::Start({.sink = "dir:" + sink_dir, .workers = 1}, &dispatcher);
  ASSERT_TRUE(pool.ok());
  std::shared_ptr<StreamUploadSource> source = MultipartStream();
  PendingReply pending;
  UploadHandle handle = dispatcher.Submit(source, pending.Callback());
  // A directory where the second file's stored name goes: its rename must fail.
  const std::string blocker = sink_dir + "/" + handle.upload_id() + "-1-second.bin";
  ASSERT_TRUE(std::filesystem::create_directories(blocker + "/inside"));
  ASSERT_TRUE(source->Feed(absl::StrCat(TwoFilesBegun(), "\r\n--b0undary--\r\n")).ok());
  ASSERT_TRUE(source->Finish().ok());
  ASSERT_TRUE(pending.Wait());
  const ConsumerReply& reply = pending.reply;
  EXPECT_EQ(reply.status, 500) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr("renaming in the sink directory"));
  // Only the blocker is left: the first file was withdrawn, nothing partial stays.
  EXPECT_THAT(ScopedTestDirList(sink_dir), ElementsAre(handle.upload_id() + "-1-second.bin"));
}

TEST(DirSinkFile, IsHiddenUntilPublishedAndCanBeWithdrawn) {
  ScopedTestDir dir;
  absl::StatusOr<std::unique_ptr<DirSink>> sink = DirSink::Open(dir.path());
  ASSERT_TRUE(sink.ok()) << sink.status();
  absl::StatusOr<std::unique_ptr<SinkFile>> kept = (*sink)->NewFile("u1", 0, "kept.bin");
  absl::StatusOr<std::unique_ptr<SinkFile>> dropped = (*sink)->NewFile("u1", 1, "x.bin");
  ASSERT_TRUE(kept.ok() && dropped.ok());
  ASSERT_TRUE((*kept)->Write("kept bytes").ok());
  ASSERT_TRUE((*dropped)->Write("dropped bytes").ok());
  absl::StatusOr<std::optional<std::string>> name = (*kept)->Finish();
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(*name, "u1-0-kept.bin");
  ASSERT_TRUE((*dropped)->Finish().ok());
  // Finished, both still hidden.
  EXPECT_THAT(dir.List(), ElementsAre(StartsWith(".partial-"), StartsWith(".partial-")));

  ASSERT_TRUE((*kept)->Publish().ok());
  dropped->reset();  // never published: its partial file goes
  EXPECT_THAT(dir.List(), ElementsAre("u1-0-kept.bin"));
  EXPECT_TRUE(ReadWholeFile(dir.path() + "/u1-0-kept.bin") == "kept bytes");

  (*kept)->Withdraw();
  EXPECT_THAT(dir.List(), IsEmpty());
}

}  // namespace
}  // namespace spillway
