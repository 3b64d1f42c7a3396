// Uploads abandoned mid-body, in each mode, over HTTP/1.1 (the client closes its
// socket, or half-closes it) and HTTP/2 (RST_STREAM on a connection that stays open;
// and a real client, curl, giving up): every temp file goes, the spilled-bytes gauge
// and the in-flight gauge return to 0, and the server still serves.
//
// Each abort waits first for proof that the upload is live in the mode under test
// (a temp file for spill, the in-flight gauge otherwise), so a test cannot pass by
// aborting before anything happened.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/upload_fixture.h"
#include "tests/unit/h2_raw_frames.h"

namespace spillway {
namespace {

using ::spillway::testing::H2ClientStart;
using ::spillway::testing::H2Frame;
using ::spillway::testing::H2RequestBlock;
using ::spillway::testing::RandomishBytes;

constexpr char kInFlight[] = "spillway_uploads_in_flight";
constexpr char kSpilled[] = "spillway_spilled_bytes";

struct AbortCase {
  std::string mode;
  size_t content_length;  // declared; 0 means chunked (HTTP/1.1 only)
  size_t sent;            // bytes of body sent before the abort
};

// With a 16 KiB memory threshold and 1 MiB MAX_BODY_SIZE, and under the 64 KiB initial
// HTTP/2 window, so the raw HTTP/2 client needs no flow control of its own.
const std::vector<AbortCase>& Cases() {
  static const auto* cases = new std::vector<AbortCase>{
      {"memory", 100 * 1024, 8 * 1024},
      {"spill", 500 * 1024, 60 * 1024},
      {"stream", 4 * 1024 * 1024, 60 * 1024},
  };
  return *cases;
}

// Each case runs against a sink on its own worker thread (a slow discard, which keeps a
// streamed upload in flight with its consumer) and against the plain discard sink,
// which handles events on the event loop as they arrive (RunSinkDeliveryInline).
class AbortsTest : public testing::UploadFixture,
                   public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    testing::UploadFixture::SetUp();
    StartServer({"--file-upload-max-memory-size=16Ki", "--max-body-size=1Mi",
                 "--stream-body-chunk-size=16Ki", "--sink=" + GetParam()});
  }

  // The upload is live in `mode`: a temp file exists (spill), or it is in flight.
  void ExpectLive(const std::string& mode) {
    if (mode == "spill") {
      const absl::Time give_up = absl::Now() + absl::Seconds(10);
      while (SpillFiles().empty() && absl::Now() < give_up) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      ASSERT_FALSE(SpillFiles().empty()) << "the upload never spilled";
      // Bytes count once written out of the spill's write buffer.
      while (testing::MetricValue(Scrape(), kSpilled) <= 0 && absl::Now() < give_up) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      EXPECT_GT(testing::MetricValue(Scrape(), kSpilled), 0);
    }
    ASSERT_TRUE(MetricSoon(kInFlight, 1)) << "the upload never started";
  }

  void ExpectCleanedUp() {
    EXPECT_TRUE(TempDirEmptySoon()) << SpillFiles().size() << " temp files left";
    EXPECT_TRUE(MetricSoon(kInFlight, 0)) << "the upload is still in flight";
    EXPECT_TRUE(MetricSoon(kSpilled, 0)) << "spilled bytes still counted";
    ExpectStillServesAndTempDirEmpty();
  }

  enum class Http1Abort { kClose, kHalfClose };

  // Each HTTP/1.1 case, ended mid-body by `abort`.
  void AbortHttp1UploadsMidBody(Http1Abort abort) {
    std::vector<AbortCase> cases = Cases();
    // One read may carry it all: past the spill's 64 KiB write buffer, so that bytes
    // reach the disk.
    cases[1].sent = 150 * 1024;
    // Unknown length: the raw prefix and the assembler both spill.
    cases.push_back({"spill", 0, 150 * 1024});
    for (const AbortCase& c : cases) {
      SCOPED_TRACE(absl::StrCat(c.mode, " ", c.content_length));
      absl::StatusOr<RawConnection> connection =
          RawConnection::Connect(server_->http_port());
      ASSERT_TRUE(connection.ok()) << connection.status();
      const std::string body = RandomishBytes(c.sent, 7);
      const std::string framing =
          c.content_length == 0 ? "Transfer-Encoding: chunked"
                                : absl::StrCat("Content-Length: ", c.content_length);
      const std::string payload =
          c.content_length == 0
              ? absl::StrCat(absl::Hex(body.size()), "\r\n", body, "\r\n")
              : body;
      ASSERT_TRUE(connection
                      ->Send(absl::StrCat("POST /upload HTTP/1.1\r\nHost: t\r\n"
                                          "Content-Type: application/octet-stream\r\n",
                                          framing, "\r\n\r\n", payload))
                      .ok());
      ExpectLive(c.mode);
      if (abort == Http1Abort::kHalfClose) {
        // The request can never complete: the server closes without an answer.
        ASSERT_TRUE(connection->ShutdownWrite().ok());
        std::string answer;
        EXPECT_TRUE(connection->ReadToClose(&answer, absl::Seconds(10)));
        EXPECT_EQ(answer, "");
      }
      { RawConnection closing = *std::move(connection); }  // closes the socket
      ExpectCleanedUp();
    }
    // Only the streamed upload was with its consumer when its uploader went away; the
    // others were not dispatched yet.
    EXPECT_EQ(
        testing::MetricValue(Scrape(), "spillway_deliveries_total{outcome=\"cancelled\"}"),
        1);
  }
};

TEST_P(AbortsTest, Http1ClientClosesTheSocketMidBody) {
  AbortHttp1UploadsMidBody(Http1Abort::kClose);
}

TEST_P(AbortsTest, Http1ClientHalfClosesMidBody) {
  AbortHttp1UploadsMidBody(Http1Abort::kHalfClose);
}

TEST_P(AbortsTest, Http2RstStreamMidBodyOnALiveConnection) {
  absl::StatusOr<RawConnection> connection = RawConnection::Connect(server_->http_port());
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE(connection->Send(H2ClientStart()).ok());
  uint32_t stream_id = 1;
  for (const AbortCase& c : Cases()) {
    SCOPED_TRACE(c.mode);
    std::string frames = H2Frame(testing::kH2Headers, testing::kH2EndHeaders, stream_id,
                                 H2RequestBlock("POST", "/upload",
                                                absl::StrCat(c.content_length)));
    const std::string body = RandomishBytes(c.sent, 8);
    for (size_t at = 0; at < body.size(); at += 15000) {
      frames += H2Frame(testing::kH2Data, 0, stream_id, body.substr(at, 15000));
    }
    ASSERT_TRUE(connection->Send(frames).ok());
    ExpectLive(c.mode);
    // RST_STREAM CANCEL (0x8): only this stream ends; the connection stays.
    ASSERT_TRUE(connection
                    ->Send(H2Frame(testing::kH2RstStream, 0, stream_id,
                                   std::string("\0\0\0\x08", 4)))
                    .ok());
    ExpectCleanedUp();
    stream_id += 2;
  }
}

TEST_P(AbortsTest, CurlOverHttp2GivesUpMidBody) {
  // A real client: curl sends slowly and gives up after a second, in each mode.
  for (const AbortCase& c : Cases()) {
    SCOPED_TRACE(c.mode);
    const std::string path =
        WriteInput(c.mode + ".bin", RandomishBytes(c.content_length, 9));
    const testing::HttpResult result =
        Curl({"--http2-prior-knowledge", "--limit-rate", "32k", "--max-time", "1",
              "--data-binary", "@" + path});
    EXPECT_EQ(result.status, 0) << "curl was meant to give up: " << result.body;
    ExpectCleanedUp();
  }
}

INSTANTIATE_TEST_SUITE_P(Sinks, AbortsTest,
                         ::testing::Values("discard:rate=64Ki", "discard"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "discard" ? std::string("InlineDiscard")
                                                          : std::string("WorkerDiscard");
                         });

}  // namespace
}  // namespace spillway
