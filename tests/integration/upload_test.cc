// Uploads end to end: the real spillwayd with its built-in sinks, driven by curl over
// HTTP/1.1 and HTTP/2, in each mode (memory, spill, stream). Every receipt's sizes and
// SHA-256 must match the files sent, dir: must store identical bytes, and the temp
// directory must be empty once the uploads are answered.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/upload/checksum.h"
#include "tests/integration/spillwayd_process.h"
#include "tests/integration/test_clients.h"
#include "tests/integration/test_data.h"
#include "tests/unit/scoped_test_dir.h"

namespace spillway {
namespace {

using ::spillway::testing::ListDir;
using ::spillway::testing::RandomishBytes;
using ::spillway::testing::ReadWholeFile;
using ::spillway::testing::ScopedTestDir;
using ::spillway::testing::Sha256Hex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// What a receipt says about one file, as a substring of its JSON.
std::string FileReceipt(size_t size, std::string_view data, const std::string& mode) {
  return absl::StrCat("\"size\":", size, ",\"sha256\":\"", Sha256Hex(data),
                      "\",\"mode\":\"", mode, "\"");
}

class UploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = work_.path() + "/store";
    spill_ = work_.path() + "/spill";
    std::filesystem::create_directory(spill_);
  }

  void StartServer(std::vector<std::string> args) {
    SpillwaydProcess::Options options;
    options.args = {"--file-upload-temp-dir=" + spill_,
                    "--file-upload-max-memory-size=100Ki", "--max-body-size=1Mi",
                    "--stream-body-chunk-size=64Ki"};
    options.args.insert(options.args.end(), args.begin(), args.end());
    auto server = SpillwaydProcess::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::string WriteInput(const std::string& name, const std::string& data) {
    const std::string path = work_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << data;
    return path;
  }

  // curl printing the body, then "\n<code>".
  std::string Curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "30", "-w",
                                     "\n%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(absl::StrCat("http://127.0.0.1:", server_->http_port(), "/upload"));
    absl::StatusOr<CommandResult> result = RunCommand(argv);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->output : "";
  }

  ScopedTestDir work_;
  std::string store_;
  std::string spill_;
  std::unique_ptr<SpillwaydProcess> server_;
};

TEST_F(UploadTest, MultipartMemoryAndSpillIntoDirSinkOverHttp1AndHttp2) {
  StartServer({"--sink=dir:" + store_});
  const std::string small = RandomishBytes(10 * 1024, 1);   // memory
  const std::string big = RandomishBytes(600 * 1024, 2);    // spill
  const std::string small_path = WriteInput("small.bin", small);
  const std::string big_path = WriteInput("big.bin", big);
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    SCOPED_TRACE(protocol);
    const std::string out =
        Curl({protocol, "-F", "note=hello", "-F", "a=@" + small_path,
              "-F", "b=@" + big_path + ";filename=../../etc/passwd"});
    EXPECT_THAT(out, HasSubstr("\n201"));
    EXPECT_THAT(out, HasSubstr(R"("fields":[{"name":"note","value":"hello"}])"));
    EXPECT_THAT(out, HasSubstr(FileReceipt(small.size(), small, "memory")));
    EXPECT_THAT(out, HasSubstr(FileReceipt(big.size(), big, "spill")));
    EXPECT_THAT(ListDir(spill_), IsEmpty());
  }
  // Two uploads of two files each, stored under sanitized names, bytes identical.
  std::vector<std::string> stored = ListDir(store_);
  ASSERT_EQ(stored.size(), 4u);
  for (const std::string& name : stored) {
    const std::string content = ReadWholeFile(store_ + "/" + name);
    if (name.ends_with("-passwd")) {
      EXPECT_TRUE(content == big) << name;
    } else {
      EXPECT_TRUE(name.ends_with("-small.bin")) << name;
      EXPECT_TRUE(content == small) << name;
    }
  }
  EXPECT_FALSE(std::filesystem::exists(work_.path() + "/etc"));
}

TEST_F(UploadTest, RawAndStreamedBodiesIntoDiscardSink) {
  StartServer({"--sink=discard"});
  const std::string raw = RandomishBytes(300 * 1024, 3);          // buffered, spilled
  const std::string huge = RandomishBytes(3 * 1024 * 1024, 4);    // over MAX_BODY_SIZE
  const std::string raw_path = WriteInput("raw.bin", raw);
  const std::string huge_path = WriteInput("huge.bin", huge);
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    SCOPED_TRACE(protocol);
    std::string out = Curl({protocol, "--data-binary", "@" + raw_path, "-H",
                            "content-type: application/octet-stream"});
    EXPECT_THAT(out, HasSubstr("\n200"));
    EXPECT_THAT(out, HasSubstr(FileReceipt(raw.size(), raw, "spill")));
    EXPECT_THAT(out, Not(HasSubstr("stored_name")));
    out = Curl({protocol, "-T", huge_path});
    EXPECT_THAT(out, HasSubstr("\n200"));
    EXPECT_THAT(out, HasSubstr(FileReceipt(huge.size(), huge, "stream")));
    out = Curl({protocol, "-F", "f=@" + huge_path});
    EXPECT_THAT(out, HasSubstr("\n200"));
    EXPECT_THAT(out, HasSubstr(FileReceipt(huge.size(), huge, "stream")));
    if (protocol == "--http1.1") {
      // Unknown length: starts buffered, switches to a stream past MAX_BODY_SIZE.
      out = Curl({protocol, "-H", "Transfer-Encoding: chunked", "-T", huge_path});
      EXPECT_THAT(out, HasSubstr("\n200"));
      EXPECT_THAT(out, HasSubstr(FileReceipt(huge.size(), huge, "stream")));
      out = Curl({protocol, "-H", "Transfer-Encoding: chunked", "-T", raw_path});
      EXPECT_THAT(out, HasSubstr(FileReceipt(raw.size(), raw, "spill")));
    }
    EXPECT_THAT(ListDir(spill_), IsEmpty());
  }
}

TEST_F(UploadTest, PipelinedUploadsOfAHalfClosedClientAreAllAnswered) {
  StartServer({"--sink=discard"});
  const std::string first = RandomishBytes(10 * 1024, 5);   // memory
  const std::string second = RandomishBytes(300 * 1024, 6);  // spill
  auto connection = RawConnection::Connect(server_->http_port());
  ASSERT_TRUE(connection.ok()) << connection.status();
  std::string requests;
  for (const std::string* body : {&first, &second}) {
    absl::StrAppend(&requests, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: ",
                    body->size(), "\r\n\r\n", *body);
  }
  ASSERT_TRUE(connection->Send(requests).ok());
  ASSERT_TRUE(connection->ShutdownWrite().ok());
  std::string all;
  EXPECT_TRUE(connection->ReadToClose(&all, absl::Seconds(30)));
  const size_t first_receipt = all.find(FileReceipt(first.size(), first, "memory"));
  const size_t second_receipt = all.find(FileReceipt(second.size(), second, "spill"));
  ASSERT_NE(first_receipt, std::string::npos) << all;
  ASSERT_NE(second_receipt, std::string::npos) << all;
  EXPECT_LT(first_receipt, second_receipt);
  // Only the last answer closes the connection.
  EXPECT_EQ(all.find("connection: close\r\n"), all.rfind("connection: close\r\n"));
  EXPECT_GT(all.find("connection: close\r\n"), first_receipt);
  EXPECT_THAT(ListDir(spill_), IsEmpty());
}

TEST_F(UploadTest, WithoutAnyConsumerUploadsGet503AfterDispatchTimeout) {
  StartServer({"--dispatch-timeout=300ms"});
  const std::string out = Curl({"-i", "--data-binary", "x"});
  EXPECT_THAT(out, HasSubstr("\n503"));
  EXPECT_THAT(out, HasSubstr("retry-after: 1"));
}

}  // namespace
}  // namespace spillway
