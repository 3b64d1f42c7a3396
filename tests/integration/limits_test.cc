// The front end's limits and timeouts (DESIGN.md §4) against the real spillwayd:
// each is set low, crossed once by a raw client, and answered with its status code;
// afterwards the server still serves, and the temp dir holds no file.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/spillwayd_process.h"
#include "tests/integration/test_clients.h"
#include "tests/integration/upload_fixture.h"
#include "tests/unit/h2_raw_frames.h"
#include "tests/unit/scoped_test_dir.h"

namespace spillway {
namespace {

using ::spillway::testing::H2ClientStart;
using ::spillway::testing::H2Frame;
using ::spillway::testing::H2ParsedFrame;
using ::spillway::testing::H2ParseFrames;
using ::spillway::testing::H2RequestBlock;
using ::spillway::testing::ScopedTestDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr uint32_t kRefusedStream = 0x7;
constexpr uint32_t kCancel = 0x8;

class LimitsTest : public ::testing::Test {
 protected:
  // With --sink=discard unless `with_sink` is false: then uploads wait for a consumer
  // that never comes, and get 503 after DISPATCH_TIMEOUT.
  void StartServer(std::vector<std::string> args, bool with_sink = true) {
    args.push_back("--file-upload-temp-dir=" + temp_.path());
    if (with_sink) args.push_back("--sink=discard");
    SpillwaydProcess::Options options;
    options.args = std::move(args);
    auto server = SpillwaydProcess::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  RawConnection Connect() {
    auto connection = RawConnection::Connect(server_->http_port());
    EXPECT_TRUE(connection.ok()) << connection.status();
    return std::move(*connection);
  }

  // GET /healthz with curl on a new connection, retried for a few seconds (a slot
  // freed by a close is given back asynchronously).
  std::string Healthz(const std::string& path = "/healthz") {
    std::string output;
    for (int attempt = 0; attempt < 50; ++attempt) {
      absl::StatusOr<CommandResult> result =
          RunCommand({"curl", "-sS", "--max-time", "5",
                      absl::StrCat("http://127.0.0.1:", server_->http_port(), path)});
      if (result.ok() && result->exit_code == 0 &&
          result->output.find("too many connections") == std::string::npos) {
        return result->output;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return "no answer";
  }

  void ExpectStillServesAndTempDirEmpty() {
    EXPECT_EQ(Healthz(), "ok\n");
    EXPECT_THAT(temp_.List(), IsEmpty());
  }

  // Reads HTTP/2 frames until `done` holds for the frames so far, the peer closes,
  // or `timeout`.
  std::vector<H2ParsedFrame> ReadFrames(
      RawConnection& connection,
      const std::function<bool(const std::vector<H2ParsedFrame>&)>& done,
      absl::Duration timeout = absl::Seconds(5)) {
    std::string bytes;
    const absl::Time give_up = absl::Now() + timeout;
    while (absl::Now() < give_up) {
      // A needle that never comes: returns after what arrived within 50 ms.
      bytes += connection.ReadUntil(std::string(64, '\xfe'), absl::Milliseconds(50));
      if (done(H2ParseFrames(bytes))) break;
    }
    return H2ParseFrames(bytes);
  }

  static bool Has(const std::vector<H2ParsedFrame>& frames, uint8_t type,
                  uint32_t stream_id) {
    for (const auto& frame : frames) {
      if (frame.type == type && frame.stream_id == stream_id) return true;
    }
    return false;
  }
  static std::string DataOf(const std::vector<H2ParsedFrame>& frames,
                            uint32_t stream_id) {
    std::string data;
    for (const auto& frame : frames) {
      if (frame.type == testing::kH2Data && frame.stream_id == stream_id) {
        data += frame.payload;
      }
    }
    return data;
  }

  ScopedTestDir temp_;
  std::unique_ptr<SpillwaydProcess> server_;
};

// --- HEADER_TIMEOUT ------------------------------------------------------------------

TEST_F(LimitsTest, HalfARequestLineGets408AndIsClosed) {
  StartServer({"--header-timeout=300ms"});
  RawConnection slowloris = Connect();
  ASSERT_TRUE(slowloris.Send("GET /heal").ok());
  std::string response;
  EXPECT_TRUE(slowloris.ReadToClose(&response)) << "still open: " << response;
  EXPECT_EQ(StatusCodeOf(response), 408) << response;
  EXPECT_THAT(response, HasSubstr("connection: close"));
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(LimitsTest, SilentConnectionIsClosedAfterTheHeaderTimeout) {
  StartServer({"--header-timeout=300ms"});
  RawConnection silent = Connect();
  std::string response;
  EXPECT_TRUE(silent.ReadToClose(&response));
  EXPECT_THAT(response, IsEmpty()) << "no protocol chosen, nothing to answer";
  ExpectStillServesAndTempDirEmpty();
}

// --- IDLE_TIMEOUT --------------------------------------------------------------------

TEST_F(LimitsTest, IdleKeepAliveConnectionIsClosed) {
  StartServer({"--idle-timeout=300ms"});
  RawConnection connection = Connect();
  ASSERT_TRUE(connection.Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").ok());
  EXPECT_THAT(connection.ReadUntil("ok\n"), StartsWith("HTTP/1.1 200 "));
  std::string rest;
  EXPECT_TRUE(connection.ReadToClose(&rest)) << "idle connection still open";
  EXPECT_THAT(rest, IsEmpty());
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(LimitsTest, IdleHttp2ConnectionGetsGoaway) {
  StartServer({"--idle-timeout=300ms"});
  RawConnection connection = Connect();
  ASSERT_TRUE(connection.Send(H2ClientStart()).ok());
  std::string bytes;
  EXPECT_TRUE(connection.ReadToClose(&bytes)) << "idle h2 connection still open";
  std::vector<H2ParsedFrame> frames = H2ParseFrames(bytes);
  ASSERT_TRUE(Has(frames, testing::kH2Goaway, 0));
  for (const auto& frame : frames) {
    if (frame.type == testing::kH2Goaway) {
      EXPECT_EQ(frame.ErrorCode(), 0u);
    }
  }
  ExpectStillServesAndTempDirEmpty();
}

// --- BODY_TIMEOUT --------------------------------------------------------------------

TEST_F(LimitsTest, StalledHttp1BodyGets408AndLeavesNoTempFile) {
  StartServer({"--body-timeout=300ms", "--file-upload-max-memory-size=1Ki"});
  RawConnection uploader = Connect();
  const std::string boundary = "b0undary";
  const std::string part_start = absl::StrCat(
      "--", boundary, "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n", std::string(8192, 'x'));
  ASSERT_TRUE(uploader
                  .Send(absl::StrCat("POST /up HTTP/1.1\r\nHost: t\r\nContent-Type: "
                                     "multipart/form-data; boundary=",
                                     boundary, "\r\nContent-Length: 100000\r\n\r\n",
                                     part_start))
                  .ok());
  std::string response;
  EXPECT_TRUE(uploader.ReadToClose(&response)) << "still open: " << response;
  EXPECT_EQ(StatusCodeOf(response), 408) << response;
  const size_t head_end = response.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  // The access log and the metrics count it as the 408 it was, not as a client that
  // went away (499), with the bytes of the answer the session sent.
  EXPECT_TRUE(server_->WaitForLine(
      absl::StrCat(R"("path":"/up","protocol":"HTTP/1.1","status":408,"bytes":)",
                   response.size() - head_end - 4, ","),
      absl::Seconds(5)));
  ExpectStillServesAndTempDirEmpty();
}

// A large Content-Length body is read a read's worth at a time (SO_RCVLOWAT, see
// ConnectionIo::ExpectInput): a client that sends less than that per BODY_TIMEOUT
// still makes progress and must not be taken for a stalled one.
TEST_F(LimitsTest, SlowButSteadyHttp1BodyIsNotTimedOut) {
  StartServer({"--body-timeout=500ms"});
  RawConnection uploader = Connect();
  constexpr size_t kPiece = 32 * 1024;
  constexpr size_t kPieces = 16;  // 512 KiB: read 256 KiB at a time, the low-water mark
  ASSERT_TRUE(uploader
                  .Send(absl::StrCat("POST /up HTTP/1.1\r\nHost: t\r\nContent-Type: "
                                     "application/octet-stream\r\nContent-Length: ",
                                     kPiece * kPieces, "\r\n\r\n"))
                  .ok());
  // 32 KiB every 150 ms: a read's worth takes 1.2 s, over BODY_TIMEOUT.
  for (size_t i = 0; i < kPieces; ++i) {
    ASSERT_TRUE(uploader.Send(std::string(kPiece, 'x')).ok()) << "piece " << i;
    absl::SleepFor(absl::Milliseconds(150));
  }
  const std::string response = uploader.ReadUntil("\r\n\r\n");
  EXPECT_EQ(StatusCodeOf(response), 200) << response;
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(LimitsTest, StalledHttp2StreamIsReset) {
  StartServer({"--body-timeout=300ms"});
  RawConnection uploader = Connect();
  ASSERT_TRUE(uploader
                  .Send(H2ClientStart() +
                        H2Frame(testing::kH2Headers, testing::kH2EndHeaders, 1,
                                H2RequestBlock("POST", "/up", "100000")) +
                        H2Frame(testing::kH2Data, 0, 1, std::string(1000, 'x')))
                  .ok());
  // 408, then RST_STREAM.
  std::vector<H2ParsedFrame> frames = ReadFrames(uploader, [](const auto& frames) {
    return Has(frames, testing::kH2RstStream, 1);
  });
  EXPECT_TRUE(Has(frames, testing::kH2RstStream, 1)) << "stalled stream not reset";
  EXPECT_TRUE(Has(frames, testing::kH2Headers, 1)) << "no response before the reset";
  EXPECT_THAT(DataOf(frames, 1), HasSubstr("timeout"));
  EXPECT_TRUE(server_->WaitForLine(
      absl::StrCat(R"("path":"/up","protocol":"HTTP/2","status":408,"bytes":)",
                   DataOf(frames, 1).size(), ","),
      absl::Seconds(5)));
  EXPECT_FALSE(Has(frames, testing::kH2Goaway, 0)) << "only the stream should end";
  ExpectStillServesAndTempDirEmpty();
}

// --- SEND_TIMEOUT --------------------------------------------------------------------

TEST_F(LimitsTest, ClientThatStopsReadingIsDisconnected) {
  StartServer({"--send-timeout=300ms"});
  RawConnection reader = Connect();
  // Pipelined requests whose answers (a metrics page of some KiB each) are far more
  // than the socket buffers hold; not one byte of them is read.
  std::string requests;
  for (int i = 0; i < 4000; ++i) requests += "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_TRUE(reader.Send(requests).ok());
  // The server gives up on it: the open connections fall back to the scrape's own.
  double open = -1;
  for (int attempt = 0; attempt < 200; ++attempt) {
    open = testing::MetricValue("\n" + Healthz("/metrics"), "spillway_connections_open");
    if (open == 1) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(open, 1) << "the connection that stopped reading is still open";
  std::string rest;
  EXPECT_TRUE(reader.ReadToClose(&rest, absl::Seconds(20))) << "still open";
  ExpectStillServesAndTempDirEmpty();
}

// --- MAX_CONNECTIONS -----------------------------------------------------------------

TEST_F(LimitsTest, ConnectionBeyondTheLimitGets503WithRetryAfter) {
  // Two loops: the count is per process, not per loop.
  StartServer({"--max-connections=2", "--event-loops=2"});
  RawConnection first = Connect();
  RawConnection second = Connect();
  for (RawConnection* connection : {&first, &second}) {
    ASSERT_TRUE(connection->Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").ok());
    ASSERT_THAT(connection->ReadUntil("ok\n"), StartsWith("HTTP/1.1 200 "));
  }
  RawConnection third = Connect();
  std::string response;
  EXPECT_TRUE(third.ReadToClose(&response));
  EXPECT_EQ(StatusCodeOf(response), 503) << response;
  EXPECT_THAT(response, HasSubstr("retry-after: "));
  // Read over a connection already in: a new one could be refused as well (until the
  // server has seen a close) and be counted too.
  ASSERT_TRUE(
      second.Send("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").ok());
  std::string metrics;
  EXPECT_TRUE(second.ReadToClose(&metrics));
  EXPECT_THAT(metrics, HasSubstr("spillway_connections_rejected_total 1\n"));
  // The closed connection's slot is free again: a new one is served.
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(LimitsTest, Http2ResponseHeldBackByTheClientWindowIsReset) {
  // The client sets its stream windows to 0 and never opens them: the upload's
  // response HEADERS go out, its DATA cannot. After SEND_TIMEOUT the stream is reset,
  // so that it gives back its upload slot; the connection itself stays.
  StartServer({"--send-timeout=300ms"});
  RawConnection client = Connect();
  const std::string initial_window_zero("\x00\x04\x00\x00\x00\x00", 6);
  ASSERT_TRUE(client
                  .Send(std::string(testing::kH2Preface) +
                        H2Frame(testing::kH2Settings, 0, 0, initial_window_zero) +
                        H2Frame(testing::kH2Headers, testing::kH2EndHeaders, 1,
                                H2RequestBlock("POST", "/up", "5")) +
                        H2Frame(testing::kH2Data, testing::kH2EndStream, 1, "hello"))
                  .ok());
  std::vector<H2ParsedFrame> frames = ReadFrames(client, [](const auto& frames) {
    return Has(frames, testing::kH2RstStream, 1);
  });
  EXPECT_TRUE(Has(frames, testing::kH2Headers, 1)) << "no response HEADERS";
  EXPECT_EQ(DataOf(frames, 1), "") << "DATA sent into a closed window";
  uint32_t reset_code = 0;
  for (const auto& frame : frames) {
    if (frame.type == testing::kH2RstStream && frame.stream_id == 1) {
      reset_code = frame.ErrorCode();
    }
  }
  EXPECT_EQ(reset_code, kCancel) << "stream 1 was not reset with CANCEL";
  EXPECT_FALSE(Has(frames, testing::kH2Goaway, 0)) << "only the stream should end";
  EXPECT_THAT(Healthz("/metrics"), HasSubstr("spillway_uploads_in_flight 0\n"));
  ExpectStillServesAndTempDirEmpty();
}

// --- MAX_CONCURRENT_UPLOADS ----------------------------------------------------------

TEST_F(LimitsTest, UploadBeyondTheLimitGets503ButAdminPathsStillAnswer) {
  StartServer({"--max-concurrent-uploads=1"});
  RawConnection client = Connect();
  // Stream 1 holds the only upload slot (its body never ends); stream 3 is one too
  // many; stream 5 is /healthz, which is never limited.
  std::string get_healthz = H2RequestBlock("GET", "/healthz");
  ASSERT_TRUE(client
                  .Send(H2ClientStart() +
                        H2Frame(testing::kH2Headers, testing::kH2EndHeaders, 1,
                                H2RequestBlock("POST", "/up", "100")) +
                        H2Frame(testing::kH2Headers,
                                testing::kH2EndHeaders | testing::kH2EndStream, 3,
                                H2RequestBlock("POST", "/up", "0")) +
                        H2Frame(testing::kH2Headers,
                                testing::kH2EndHeaders | testing::kH2EndStream, 5,
                                get_healthz))
                  .ok());
  std::vector<H2ParsedFrame> frames = ReadFrames(client, [](const auto& frames) {
    return DataOf(frames, 3).find('}') != std::string::npos &&
           DataOf(frames, 5).find('\n') != std::string::npos;
  });
  EXPECT_THAT(DataOf(frames, 3), HasSubstr("too many concurrent uploads"));
  EXPECT_THAT(DataOf(frames, 3), HasSubstr("\"status\":503"));
  EXPECT_EQ(DataOf(frames, 5), "ok\n");
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(LimitsTest, Http1StreamedBodyGetsNo100ContinueBeforeAConsumerHasIt) {
  // DESIGN.md §3 over HTTP/1.1: the client that asks first is told to send its body
  // only once a consumer has the upload. None comes: its answer is the 503 alone.
  StartServer({"--max-body-size=256Ki", "--dispatch-timeout=1s"}, /*with_sink=*/false);
  RawConnection client = Connect();
  ASSERT_TRUE(client
                  .Send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10485760\r\n"
                        "Content-Type: application/octet-stream\r\n"
                        "Expect: 100-continue\r\n\r\n")
                  .ok());
  const std::string response = client.ReadUntil("}");
  EXPECT_EQ(StatusCodeOf(response), 503) << response;
  EXPECT_THAT(response, Not(HasSubstr("100 Continue")));
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(LimitsTest, Http2StreamedBodyIsNotReadBeforeAConsumerHasIt) {
  // DESIGN.md §3: a body over MAX_BODY_SIZE is dispatched from its headers, but not
  // read until a consumer has the upload. With no consumer at all, the client may
  // fill the 1 MiB window it was given, and gets no more of it (no WINDOW_UPDATE for
  // its stream) before DISPATCH_TIMEOUT's 503.
  StartServer({"--max-body-size=256Ki", "--dispatch-timeout=2s"}, /*with_sink=*/false);
  RawConnection client = Connect();
  ASSERT_TRUE(client.Send(H2ClientStart()).ok());
  // The server's SETTINGS (acknowledged below) make the stream window 1 MiB.
  ReadFrames(client, [](const auto& frames) {
    return Has(frames, testing::kH2Settings, 0);
  });
  std::string request = H2Frame(testing::kH2Settings, /*ACK*/ 0x1, 0, "") +
                        H2Frame(testing::kH2Headers, testing::kH2EndHeaders, 1,
                                H2RequestBlock("POST", "/up", "10485760"));
  for (int i = 0; i < 64; ++i) {
    request += H2Frame(testing::kH2Data, 0, 1, std::string(16 * 1024, 'x'));
  }
  ASSERT_TRUE(client.Send(request).ok());
  // Everything the server sends for a second, well before the 503 at 2 s: its 503
  // comes with a WINDOW_UPDATE of its own (the rest of the body is then read and
  // dropped, as after any early answer), so only the time before it can tell.
  std::vector<H2ParsedFrame> frames =
      ReadFrames(client, [](const auto&) { return false; }, absl::Seconds(1));
  EXPECT_FALSE(Has(frames, testing::kH2Headers, 1)) << "answered too early to tell";
  EXPECT_FALSE(Has(frames, testing::kH2WindowUpdate, 1))
      << "the stream's window was reopened with no consumer to read its body";
  frames = ReadFrames(client, [](const auto& frames) {
    return DataOf(frames, 1).find('}') != std::string::npos;
  });
  EXPECT_THAT(DataOf(frames, 1), HasSubstr("\"status\":503"));
  ExpectStillServesAndTempDirEmpty();
}

// --- HTTP/2 caps ---------------------------------------------------------------------

TEST_F(LimitsTest, Http2StreamsBeyondTheCapAreRefused) {
  StartServer({"--h2-max-concurrent-streams=1"});
  RawConnection client = Connect();
  // Stream 1 stays open (its body never ends); stream 3 is over the cap.
  ASSERT_TRUE(client
                  .Send(H2ClientStart() +
                        H2Frame(testing::kH2Headers, testing::kH2EndHeaders, 1,
                                H2RequestBlock("POST", "/up", "100")) +
                        H2Frame(testing::kH2Headers,
                                testing::kH2EndHeaders | testing::kH2EndStream, 3,
                                H2RequestBlock("GET", "/healthz")))
                  .ok());
  std::vector<H2ParsedFrame> frames = ReadFrames(client, [](const auto& frames) {
    return Has(frames, testing::kH2RstStream, 3);
  });
  bool refused = false;
  for (const auto& frame : frames) {
    if (frame.type == testing::kH2RstStream && frame.stream_id == 3) {
      refused = frame.ErrorCode() == kRefusedStream;
    }
  }
  EXPECT_TRUE(refused) << "stream 3 was not refused with REFUSED_STREAM";
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(LimitsTest, Http2HeaderListOverMaxHeaderBytesGets431) {
  StartServer({"--max-header-bytes=2Ki"});
  absl::StatusOr<CommandResult> result = RunCommand(
      {"curl", "-sS", "--max-time", "10", "--http2-prior-knowledge", "-o", "/dev/null",
       "-w", "%{http_code}", "-H", "X-Big: " + std::string(4096, 'a'),
       absl::StrCat("http://127.0.0.1:", server_->http_port(), "/healthz")});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->output, "431") << result->errors;
  EXPECT_TRUE(server_->WaitForLine(R"("protocol":"HTTP/2","status":431)", absl::Seconds(5)))
      << "the refused request is logged";
  ExpectStillServesAndTempDirEmpty();
}

}  // namespace
}  // namespace spillway
