// Many uploads at once, and drain (issue 3 §5): 1,000 small multipart uploads over
// ONE HTTP/2 connection (h2load -c 1 -m 100) and over 100 HTTP/1.1 connections
// (h2load --h1 -c 100) must all succeed; SIGTERM during an upload held by a slow sink
// lets it finish with 2xx, and the server exits 0.
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/upload_fixture.h"

namespace spillway {
namespace {

using ::spillway::testing::FileReceipt;
using ::spillway::testing::HttpResult;
using ::spillway::testing::RandomishBytes;
using ::testing::HasSubstr;

constexpr char kBoundary[] = "h2load-b0undary";

class ConcurrencyTest : public testing::UploadFixture {
 protected:
  // A multipart body with a field and a 4 KiB file, as h2load's -d file.
  std::string SmallMultipartBody() {
    return WriteInput(
        "small.multipart",
        absl::StrCat("--", kBoundary,
                     "\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--",
                     kBoundary,
                     "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"s.bin\""
                     "\r\nContent-Type: application/octet-stream\r\n\r\n",
                     RandomishBytes(4096, 1), "\r\n--", kBoundary, "--\r\n"));
  }

  // Runs h2load and returns its output; the summary line reads
  // "status codes: N 2xx, N 3xx, N 4xx, N 5xx".
  std::string H2load(std::vector<std::string> args) {
    std::vector<std::string> argv = {"h2load", "-n", "1000", "-d", SmallMultipartBody(),
                                     "-H",
                                     absl::StrCat("content-type: multipart/form-data; "
                                                  "boundary=",
                                                  kBoundary)};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(Url());
    absl::StatusOr<CommandResult> result = RunCommand(argv);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->output + result->errors : "";
  }
};

TEST_F(ConcurrencyTest, ThousandUploadsOverOneHttp2Connection) {
  StartServer({"--sink=discard", "--sink-workers=16"});
  const std::string out = H2load({"-c", "1", "-m", "100"});
  EXPECT_THAT(out, HasSubstr("requests: 1000 total, 1000 started, 1000 done, "
                             "1000 succeeded"))
      << out;
  EXPECT_THAT(out, HasSubstr("status codes: 1000 2xx, 0 3xx, 0 4xx, 0 5xx")) << out;
  // Counted as each stream closes, which may trail h2load's last answer a little.
  EXPECT_TRUE(MetricSoon(
      "spillway_requests_total{protocol=\"HTTP/2\",status=\"200\"}", 1000, "--http1.1"));
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(ConcurrencyTest, ThousandUploadsOverAHundredHttp1Connections) {
  StartServer({"--sink=discard", "--sink-workers=16"});
  const std::string out = H2load({"--h1", "-c", "100"});
  EXPECT_THAT(out, HasSubstr("requests: 1000 total, 1000 started, 1000 done, "
                             "1000 succeeded"))
      << out;
  EXPECT_THAT(out, HasSubstr("status codes: 1000 2xx, 0 3xx, 0 4xx, 0 5xx")) << out;
  // Counted as each stream closes, which may trail h2load's last answer a little.
  EXPECT_TRUE(MetricSoon(
      "spillway_requests_total{protocol=\"HTTP/1.1\",status=\"200\"}", 1000,
      "--http2-prior-knowledge"));
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(ConcurrencyTest, SigtermDuringAnUploadLetsItFinish) {
  // 1 MiB at 512 KiB/s: the upload is with the sink for about two seconds.
  StartServer({"--sink=discard:rate=512Ki", "--drain-timeout=30s",
               "--file-upload-max-memory-size=64Ki"});
  const std::string data = RandomishBytes(1024 * 1024, 2);
  const std::string path = WriteInput("drain.bin", data);
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    SCOPED_TRACE(protocol);
    if (protocol != "--http1.1") {
      server_.reset();
      StartServer({"--sink=discard:rate=512Ki", "--drain-timeout=30s",
                   "--file-upload-max-memory-size=64Ki"});
    }
    HttpResult result;
    std::thread uploader([&] { result = Curl({protocol, "-F", "f=@" + path}); });
    // Wait until the upload is in flight (received, now with the slow sink).
    const bool in_flight = MetricSoon("spillway_uploads_in_flight", 1);
    EXPECT_TRUE(in_flight);
    ASSERT_TRUE(server_->Signal(SIGTERM).ok());
    uploader.join();
    EXPECT_EQ(result.status, 200) << result.body << result.errors;
    EXPECT_THAT(result.body, HasSubstr(FileReceipt(data, "spill")));
    EXPECT_EQ(server_->Wait(absl::Seconds(30)).value_or(-1), 0);
    EXPECT_TRUE(TempDirEmptySoon());
  }
}

}  // namespace
}  // namespace spillway
