// The real spillwayd on an ephemeral loopback port, driven by curl and raw sockets.
#include <signal.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/spillwayd_process.h"
#include "tests/integration/test_clients.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class FrontEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = SpillwaydProcess::Start({});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", server_->http_port(), path);
  }

  // curl printing the body, then "\n<code> <http version>".
  CommandResult Curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "-w",
                                     "\n%{http_code} %{http_version}"};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<CommandResult> result = RunCommand(argv);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{};
  }

  std::unique_ptr<SpillwaydProcess> server_;
};

TEST_F(FrontEndTest, HealthzOverHttp1WithCurl) {
  CommandResult result = Curl({"--http1.1", Url("/healthz")});
  EXPECT_EQ(result.exit_code, 0) << result.errors;
  EXPECT_EQ(result.output, "ok\n\n200 1.1");
  EXPECT_TRUE(server_->WaitForLine("\"path\":\"/healthz\"", absl::Seconds(5)))
      << "no access-log line";
}

TEST_F(FrontEndTest, ReadyzAndMetricsOverHttp1) {
  EXPECT_EQ(Curl({Url("/readyz")}).output, "ready\n\n200 1.1");
  CommandResult metrics = Curl({Url("/metrics")});
  EXPECT_THAT(metrics.output, HasSubstr("# TYPE spillway_connections_total counter"));
  EXPECT_THAT(metrics.output, HasSubstr("spillway_requests_total{protocol=\"HTTP/1.1\""));
}

TEST_F(FrontEndTest, CurlReusesOneConnectionForTwoRequests) {
  absl::StatusOr<CommandResult> result =
      RunCommand({"curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-o", "/dev/null",
                  "-w", "%{num_connects} ", Url("/healthz"), Url("/readyz")});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->output, "1 0 ") << result->errors;
}

TEST_F(FrontEndTest, KeepAliveServesTwoRequestsOnOneRawConnection) {
  auto connection = RawConnection::Connect(server_->http_port());
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE(connection->Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").ok());
  std::string first = connection->ReadUntil("ok\n");
  EXPECT_THAT(first, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(first, HasSubstr("\r\n\r\nok\n"));
  ASSERT_TRUE(connection->Send("GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n").ok());
  std::string second = connection->ReadUntil("ready\n");
  EXPECT_THAT(second, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(second, HasSubstr("\r\n\r\nready\n"));
}

TEST_F(FrontEndTest, PipelinedRequestsAreAnsweredInOrder) {
  auto connection = RawConnection::Connect(server_->http_port());
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE(connection
                  ->Send("GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                  .ok());
  std::string all;
  EXPECT_TRUE(connection->ReadToClose(&all));
  const size_t ready = all.find("ready\n");
  const size_t ok = all.find("ok\n");
  ASSERT_NE(ready, std::string::npos) << all;
  ASSERT_NE(ok, std::string::npos) << all;
  EXPECT_LT(ready, ok);
}

TEST_F(FrontEndTest, MalformedRequestGets400AndTheServerStillServes) {
  {
    auto connection = RawConnection::Connect(server_->http_port());
    ASSERT_TRUE(connection.ok()) << connection.status();
    ASSERT_TRUE(connection->Send("GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n").ok());
    std::string response;
    EXPECT_TRUE(connection->ReadToClose(&response)) << "the connection must close";
    EXPECT_EQ(StatusCodeOf(response), 400) << response;
    EXPECT_THAT(response, HasSubstr("connection: close\r\n"));
  }
  {
    auto connection = RawConnection::Connect(server_->http_port());
    ASSERT_TRUE(connection.ok()) << connection.status();
    ASSERT_TRUE(connection
                    ->Send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                    .ok());
    std::string response;
    EXPECT_TRUE(connection->ReadToClose(&response));
    EXPECT_EQ(StatusCodeOf(response), 400) << response;
  }
  {
    // libhttp-parser frames a body by "Transfer-Encoding :"; a proxy may not.
    auto connection = RawConnection::Connect(server_->http_port());
    ASSERT_TRUE(connection.ok()) << connection.status();
    ASSERT_TRUE(connection
                    ->Send("POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding :chunked\r\n"
                           "\r\n5\r\nhello\r\n0\r\n\r\n")
                    .ok());
    std::string response;
    EXPECT_TRUE(connection->ReadToClose(&response)) << "the connection must close";
    EXPECT_EQ(StatusCodeOf(response), 400) << response;
  }
  // Heads another parser could read differently: two Transfer-Encoding lines (one
  // list, "gzip, chunked"), no Host, a tab in the target.
  for (const char* request :
       {"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "POST /a\tb HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"}) {
    SCOPED_TRACE(request);
    auto connection = RawConnection::Connect(server_->http_port());
    ASSERT_TRUE(connection.ok()) << connection.status();
    ASSERT_TRUE(connection->Send(request).ok());
    std::string response;
    EXPECT_TRUE(connection->ReadToClose(&response)) << "the connection must close";
    EXPECT_EQ(StatusCodeOf(response), 400) << response;
    EXPECT_THAT(response, HasSubstr("malformed request: "));
  }
  EXPECT_TRUE(server_->WaitForLine(R"("method":"POST","path":"/x","protocol":"HTTP/1.1","status":400)",
                                   absl::Seconds(5)))
      << "a refused head is logged too";
  EXPECT_EQ(Curl({Url("/healthz")}).output, "ok\n\n200 1.1");
}

TEST_F(FrontEndTest, OversizedHeadersGet431) {
  const struct {
    std::string flag;
    std::string protocol;
    std::string version;
  } cases[] = {{"--http1.1", "HTTP/1.1", "1.1"}, {"--http2-prior-knowledge", "HTTP/2", "2"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.protocol);
    CommandResult result =
        Curl({c.flag, "-H", "X-Big: " + std::string(20 * 1024, 'b'), Url("/healthz")});
    EXPECT_THAT(result.output, HasSubstr("431 " + c.version)) << result.errors;
    const size_t body_bytes = result.output.rfind('\n');  // the body, then "\n431 …"
    ASSERT_NE(body_bytes, std::string::npos);
    // The session answered it, not a handler: still logged, with what it read of the
    // head and the bytes it sent, and counted.
    EXPECT_TRUE(server_->WaitForLine(
        absl::StrCat(R"({"event":"access","method":"GET","path":"/healthz","protocol":")",
                     c.protocol, R"(","status":431,"bytes":)", body_bytes, ","),
        absl::Seconds(5)));
    EXPECT_THAT(Curl({Url("/metrics")}).output,
                HasSubstr("spillway_requests_total{protocol=\"" + c.protocol +
                          "\",status=\"431\"} 1\n"));
  }
  EXPECT_EQ(Curl({Url("/healthz")}).output, "ok\n\n200 1.1");
}

TEST_F(FrontEndTest, Http2PriorKnowledgeAndUpgradeServeHealthz) {
  CommandResult prior = Curl({"--http2-prior-knowledge", Url("/healthz")});
  EXPECT_EQ(prior.output, "ok\n\n200 2") << prior.errors;
  CommandResult upgrade = Curl({"--http2", Url("/healthz")});
  EXPECT_EQ(upgrade.output, "ok\n\n200 2") << upgrade.errors;
}

TEST_F(FrontEndTest, UpgradeWithBadOrRepeatedHttp2SettingsStaysOnHttp1) {
  // RFC 9113 §3.2: one HTTP2-Settings, holding a valid SETTINGS payload. Otherwise
  // the offer is declined (no 101) and the request is answered over HTTP/1.1.
  const std::string offer =
      "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
      "Upgrade: h2c\r\n";
  for (const std::string settings :
       {"HTTP2-Settings: AASAAAAA\r\n",  // INITIAL_WINDOW_SIZE 2^31
        "HTTP2-Settings: AAIAAAAC\r\n",  // ENABLE_PUSH 2
        "HTTP2-Settings: AAMAAABk\r\nHTTP2-Settings: AAMAAABk\r\n"}) {
    SCOPED_TRACE(settings);
    auto connection = RawConnection::Connect(server_->http_port());
    ASSERT_TRUE(connection.ok()) << connection.status();
    ASSERT_TRUE(connection->Send(offer + settings + "\r\n").ok());
    const std::string response = connection->ReadUntil("ok\n");
    EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(response, HasSubstr("\r\n\r\nok\n"));
  }
  // The same offer with one valid HTTP2-Settings is taken.
  auto connection = RawConnection::Connect(server_->http_port());
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE(connection->Send(offer + "HTTP2-Settings: AAMAAABk\r\n\r\n").ok());
  EXPECT_THAT(connection->ReadUntil("\r\n\r\n"),
              StartsWith("HTTP/1.1 101 Switching Protocols\r\n"));
}

TEST_F(FrontEndTest, SigtermExitsZero) {
  EXPECT_EQ(Curl({Url("/healthz")}).output, "ok\n\n200 1.1");
  ASSERT_TRUE(server_->Signal(SIGTERM).ok());
  absl::StatusOr<int> code = server_->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_TRUE(server_->WaitForLine("\"event\":\"stopped\"", absl::Seconds(1)));
}

TEST_F(FrontEndTest, SigtermWithAnIdleKeepAliveConnectionExitsZero) {
  {
    auto connection = RawConnection::Connect(server_->http_port());
    ASSERT_TRUE(connection.ok()) << connection.status();
    ASSERT_TRUE(connection->Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").ok());
    EXPECT_THAT(connection->ReadUntil("ok\n"), HasSubstr("ok\n"));
    ASSERT_TRUE(server_->Signal(SIGTERM).ok());
    std::string rest;
    EXPECT_TRUE(connection->ReadToClose(&rest)) << "drain closes idle connections";
  }  // the client closes on EOF, as real clients do, ending the server's linger
  absl::StatusOr<int> code = server_->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

// Its listeners share their port with SO_REUSEPORT (one per loop), and so does gRPC
// by default: without a check, a second spillwayd started on the same ports would
// run and take part of the first one's connections.
TEST_F(FrontEndTest, SecondServerOnATakenPortExitsOne) {
  const struct {
    std::string http_port;
    std::string grpc_port;
    std::string message;
  } cases[] = {
      {absl::StrCat(server_->http_port()), "0", "is already in use"},
      {"0", absl::StrCat(server_->grpc_port()), "GRPC_PORT"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.http_port + " " + c.grpc_port);
    // `timeout`: a second server that does start must not hang the test (exit 124).
    absl::StatusOr<CommandResult> second = RunCommand(
        {"timeout", "10", SpillwaydProcess::DefaultBinary(), "--listen-address=127.0.0.1",
         "--http-port=" + c.http_port, "--grpc-port=" + c.grpc_port, "--sink=discard"});
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_EQ(second->exit_code, 1) << second->output;
    EXPECT_THAT(second->errors, HasSubstr(c.message));
  }
  EXPECT_THAT(Curl({Url("/healthz")}).output, StartsWith("ok\n"));
}

TEST(SpillwaydCommandLine, HelpExitsZeroAndListsSettings) {
  absl::StatusOr<CommandResult> result = RunCommand({SPILLWAYD_PATH, "--help"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_THAT(result->output, HasSubstr("--http-port"));
  EXPECT_THAT(result->output, HasSubstr("SPILLWAY_DRAIN_TIMEOUT"));
  EXPECT_THAT(result->output, HasSubstr("--max-body-size"));
}

TEST(SpillwaydCommandLine, InvalidSettingExitsTwo) {
  absl::StatusOr<CommandResult> result =
      RunCommand({SPILLWAYD_PATH, "--http-port=seventy"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_THAT(result->errors, HasSubstr("HTTP_PORT"));
}

TEST(SpillwaydCommandLine, ReplyTimeoutOfZeroExitsTwo) {
  absl::StatusOr<CommandResult> result = RunCommand({SPILLWAYD_PATH, "--reply-timeout=0"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_THAT(result->errors, HasSubstr("REPLY_TIMEOUT"));
  EXPECT_THAT(result->errors, HasSubstr("must be more than 0"));
}

TEST(SpillwaydCommandLine, OnePortForHttpAndGrpcExitsTwo) {
  absl::StatusOr<CommandResult> result = RunCommand(
      {SPILLWAYD_PATH, "--listen-address=127.0.0.1", "--http-port=18999",
       "--grpc-port=18999"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_THAT(result->errors, HasSubstr("HTTP_PORT and GRPC_PORT must differ"));
}

}  // namespace
}  // namespace spillway
