// TLS on the HTTP port (--tls-cert-file, --tls-key-file; DESIGN.md §4): curl and nghttp
// over https with a self-signed certificate made by the openssl binary. ALPN picks
// HTTP/2 or HTTP/1.1; every mode stores the bytes sent; input OpenSSL holds back is
// never stranded; and what a client that does not speak TLS, a silent one, one over
// MAX_CONNECTIONS, or an h2c Upgrade get. Bad certificate settings stop start-up.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_clients.h"
#include "tests/integration/upload_fixture.h"

namespace spillway {
namespace {

using ::spillway::testing::FileReceipt;
using ::spillway::testing::HttpResult;
using ::spillway::testing::MetricValue;
using ::spillway::testing::RandomishBytes;
using ::testing::HasSubstr;
using ::testing::Not;

// A self-signed P-256 certificate for 127.0.0.1 and its key, as PEM files.
absl::Status MakeCertificate(const std::string& cert, const std::string& key) {
  absl::StatusOr<CommandResult> made = RunCommand(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
       "-subj", "/CN=spillway-test", "-addext", "subjectAltName=IP:127.0.0.1"});
  if (!made.ok()) return made.status();
  if (made->exit_code != 0) return absl::InternalError("openssl req: " + made->errors);
  return absl::OkStatus();
}

class TlsTest : public testing::UploadFixture {
 protected:
  void SetUp() override {
    UploadFixture::SetUp();
    cert_ = work_.path() + "/cert.pem";
    key_ = work_.path() + "/key.pem";
    ASSERT_TRUE(MakeCertificate(cert_, key_).ok());
    scheme_ = "https";
    // --cacert: curl checks the certificate the server presents, and its name.
    curl_args_ = {"--cacert", cert_};
  }

  void StartTlsServer(std::vector<std::string> args) {
    args.push_back("--tls-cert-file=" + cert_);
    args.push_back("--tls-key-file=" + key_);
    StartServer(args);
  }

  std::string cert_;
  std::string key_;
};

enum class Client { kCurlHttp1Multipart, kCurlAlpnH2Multipart, kCurlAlpnH2Raw, kNghttpRaw };

class TlsModesTest : public TlsTest, public ::testing::WithParamInterface<Client> {
 protected:
  HttpResult Send(Client client, const std::string& name, const std::string& data) {
    const std::string path = WriteInput(name, data);
    const std::string file = "f=@" + path + ";type=application/x-test";
    switch (client) {
      case Client::kCurlHttp1Multipart:
        return Curl({"--http1.1", "-F", "note=hello", "-F", file});
      case Client::kCurlAlpnH2Multipart:
        return Curl({"--http2", "-F", "note=hello", "-F", file});
      case Client::kCurlAlpnH2Raw:
        return Curl({"--http2", "--data-binary", "@" + path, "-H",
                     "content-type: application/x-test"});
      case Client::kNghttpRaw: {
        absl::StatusOr<CommandResult> result =
            RunCommand({"nghttp", "-v", "-t", "60", "-d", path, "-H",
                        "content-type: application/x-test", Url()});
        HttpResult out;
        if (!result.ok()) return out;
        out.body = result->output;
        out.errors = result->errors;
        // nghttp -v names the protocol ALPN chose.
        if (out.body.find("The negotiated protocol: h2") != std::string::npos) {
          out.version = "2";
        }
        const size_t at = out.body.find(":status: ");
        if (at != std::string::npos) out.status = std::atoi(out.body.c_str() + at + 9);
        return out;
      }
    }
    return {};
  }
};

TEST_P(TlsModesTest, AlpnPicksTheProtocolAndEveryModeStoresTheBytesSent) {
  std::vector<std::string> args = SmallModeArgs();
  args.push_back("--sink=dir:" + store_);
  StartTlsServer(args);

  const Client client = GetParam();
  const struct {
    std::string name;
    size_t size;
  } modes[] = {{"memory", 20 * 1024}, {"spill", 300 * 1024}, {"stream", 1536 * 1024}};
  int seed = 0;
  for (const auto& mode : modes) {
    SCOPED_TRACE(mode.name);
    const std::string data = RandomishBytes(mode.size, ++seed);
    const HttpResult result = Send(client, mode.name + ".bin", data);
    ASSERT_EQ(result.status, 201) << result.body << result.errors;
    EXPECT_EQ(result.version, client == Client::kCurlHttp1Multipart ? "1.1" : "2");
    EXPECT_THAT(result.body, HasSubstr(FileReceipt(data, mode.name)));
    ExpectStoredOnce(result, data);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Clients, TlsModesTest,
    ::testing::Values(Client::kCurlHttp1Multipart, Client::kCurlAlpnH2Multipart,
                      Client::kCurlAlpnH2Raw, Client::kNghttpRaw),
    [](const ::testing::TestParamInfo<Client>& info) -> std::string {
      switch (info.param) {
        case Client::kCurlHttp1Multipart: return "CurlHttp1Multipart";
        case Client::kCurlAlpnH2Multipart: return "CurlAlpnH2Multipart";
        case Client::kCurlAlpnH2Raw: return "CurlAlpnH2Raw";
        case Client::kNghttpRaw: return "NghttpRaw";
      }
      return "";
    });

// An HTTP/1.1 streamed body is read straight into its 1 KiB chunks, so a read takes
// 1 KiB of a record of up to 16 KiB and OpenSSL keeps the rest, where epoll cannot
// see it. The slow sink makes the stream pause reading over and over; at the body's
// tail the rest sits in OpenSSL with nothing more on the socket, and if resuming
// waited for epoll, the upload would never finish.
TEST_F(TlsTest, InputOpenSslHoldsIsReadWithoutWaitingForTheSocket) {
  StartTlsServer({"--sink=discard:rate=4Mi", "--max-body-size=64Ki",
                  "--stream-body-chunk-size=1Ki"});
  // 1 MiB: curl writes it 64 KiB at a time, so the last record is a whole 16 KiB.
  const std::string data = RandomishBytes(1024 * 1024, 7);
  const std::string path = WriteInput("body.bin", data);
  const HttpResult result =
      Curl({"--http1.1", "--max-time", "30", "--data-binary", "@" + path, "-H",
            "content-type: application/x-test"});
  ASSERT_EQ(result.status, 200) << result.body << result.errors;
  EXPECT_THAT(result.body, HasSubstr(absl::StrCat(R"("size":)", data.size())));
  EXPECT_THAT(result.body, HasSubstr(R"("mode":"stream")"));
}

// A TLS client may end its side with close_notify and keep the TCP connection open.
// Mid-body, that cuts the upload short and must be seen at once; the low-water mark
// the server sets while a long body arrives (SO_RCVLOWAT) once hid the few bytes of
// close_notify until BODY_TIMEOUT. Python's ssl module is the client: it can send
// close_notify without a FIN.
TEST_F(TlsTest, CloseNotifyMidBodyEndsTheUploadAtOnce) {
  StartTlsServer({"--sink=discard", "--body-timeout=60s"});
  constexpr std::string_view kClient = R"(
import socket, ssl, sys, time
port, cert = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=cert)
context.set_alpn_protocols(["http/1.1"])
raw = socket.create_connection(("127.0.0.1", port))
tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
length = 8 << 20
tls.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-test\r\n"
            b"Content-Length: %d\r\n\r\n" % length + b"x" * (length // 2))
time.sleep(0.3)  # the server is inside the body, its low-water mark set
start = time.monotonic()
tls.settimeout(20)
try:
    tls.unwrap()  # close_notify; TCP stays open; waits for the server to close
    raw.settimeout(20)
    while raw.recv(4096):
        pass
except socket.timeout:
    print("still open after 20 s")
    sys.exit(1)
except (ssl.SSLError, OSError):
    pass  # the server closed without a close_notify of its own: also an end
print("closed after %.1f s" % (time.monotonic() - start))
)";
  absl::StatusOr<CommandResult> client =
      RunCommand({"python3", "-c", std::string(kClient),
                  absl::StrCat(server_->http_port()), cert_});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(client->exit_code, 0) << client->output << client->errors;
  EXPECT_THAT(client->output, HasSubstr("closed after"));
  EXPECT_TRUE(MetricSoon("spillway_uploads_in_flight", 0));
  ExpectStillServesAndTempDirEmpty();
}

// Renegotiation is refused (TLS 1.2; 1.3 has none), and a refusal on a connection that
// already carried requests is not a failed handshake.
TEST_F(TlsTest, RenegotiationIsRefusedAndNotCountedAsAFailedHandshake) {
  StartTlsServer({"--sink=discard"});
  // s_client renegotiates when a line holds just "R".
  const std::string script = absl::StrCat(
      "(sleep 0.5; printf 'GET /healthz HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n'; sleep 0.5; "
      "echo R; sleep 1) | openssl s_client -connect 127.0.0.1:", server_->http_port(),
      " -no_tls1_3 -CAfile ", cert_, " 2>&1");
  absl::StatusOr<CommandResult> client = RunCommand({"bash", "-c", script});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_THAT(client->output, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(client->output, HasSubstr("RENEGOTIATING"));
  EXPECT_THAT(client->output, HasSubstr("no renegotiation"));
  EXPECT_TRUE(MetricSoon("spillway_connections_open", 1));
  EXPECT_EQ(MetricValue(Scrape(), "spillway_tls_handshake_failures_total"), 0);
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(TlsTest, ClientThatDoesNotSpeakTlsIsClosedAndCounted) {
  StartTlsServer({"--sink=discard"});
  absl::StatusOr<RawConnection> plain = RawConnection::Connect(server_->http_port());
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(plain->Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").ok());
  std::string answer;
  EXPECT_TRUE(plain->ReadToClose(&answer));
  EXPECT_THAT(answer, Not(HasSubstr("HTTP/1.1")));  // at most a TLS alert

  // curl without TLS gets no HTTP answer either.
  const HttpResult cleartext = testing::CurlFor(
      {"--http1.1"}, absl::StrCat("http://127.0.0.1:", server_->http_port(), "/healthz"));
  EXPECT_EQ(cleartext.status, 0) << cleartext.body;

  EXPECT_TRUE(MetricSoon("spillway_tls_handshake_failures_total", 2));
  // The scrape's own connection is the only one left.
  EXPECT_TRUE(MetricSoon("spillway_connections_open", 1));
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(TlsTest, SilentClientIsClosedAfterTheHeaderTimeout) {
  StartTlsServer({"--sink=discard", "--header-timeout=1s"});
  absl::StatusOr<RawConnection> silent = RawConnection::Connect(server_->http_port());
  ASSERT_TRUE(silent.ok()) << silent.status();
  std::string answer;
  EXPECT_TRUE(silent->ReadToClose(&answer, absl::Seconds(10)));
  EXPECT_EQ(answer, "");
  ExpectStillServesAndTempDirEmpty();
}

// Over TLS a connection beyond the limit is closed at once: a 503 would first cost a
// handshake.
TEST_F(TlsTest, ConnectionBeyondTheLimitIsClosedWithoutAHandshake) {
  // One loop: connections are accepted in the order they were made, so the holder
  // has the only slot before curl connects.
  StartTlsServer({"--sink=discard", "--max-connections=1", "--event-loops=1"});
  {
    absl::StatusOr<RawConnection> holder = RawConnection::Connect(server_->http_port());
    ASSERT_TRUE(holder.ok()) << holder.status();
    const HttpResult refused = Curl({}, "/healthz");
    EXPECT_EQ(refused.status, 0) << refused.body;
    EXPECT_THAT(refused.errors, Not(HasSubstr("certificate")));  // no handshake began
  }
  // The holder is gone: its slot frees, and TLS clients are served again.
  ASSERT_TRUE(MetricSoon("spillway_connections_rejected_total", 1));
  EXPECT_EQ(Curl({}, "/healthz").body, "ok\n");
}

// h2c is for cleartext only (RFC 9113 §3.1): over TLS the Upgrade header is ignored
// and the request answered over HTTP/1.1.
TEST_F(TlsTest, H2cUpgradeIsIgnored) {
  StartTlsServer({"--sink=discard"});
  const HttpResult result =
      Curl({"--http1.1", "-H", "Connection: Upgrade, HTTP2-Settings", "-H",
            "Upgrade: h2c", "-H", "HTTP2-Settings: AAMAAABkAAQAAP__"},
           "/healthz");
  EXPECT_EQ(result.status, 200) << result.body << result.errors;
  EXPECT_EQ(result.version, "1.1");
  EXPECT_EQ(result.body, "ok\n");
}

TEST_F(TlsTest, BadCertificateSettingsStopStartUp) {
  const std::string other_cert = work_.path() + "/other-cert.pem";
  const std::string other_key = work_.path() + "/other-key.pem";
  ASSERT_TRUE(MakeCertificate(other_cert, other_key).ok());
  const struct {
    std::vector<std::string> flags;
    std::string message;
  } cases[] = {
      {{"--tls-cert-file=" + cert_}, "go together"},
      {{"--tls-cert-file=" + work_.path() + "/missing.pem", "--tls-key-file=" + key_},
       "missing.pem"},
      {{"--tls-cert-file=" + key_, "--tls-key-file=" + key_}, "certificate chain"},
      {{"--tls-cert-file=" + cert_, "--tls-key-file=" + other_key}, "does not match"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    std::vector<std::string> argv = {SpillwaydProcess::DefaultBinary(), "--http-port=0",
                                     "--grpc-port=0", "--listen-address=127.0.0.1"};
    argv.insert(argv.end(), c.flags.begin(), c.flags.end());
    absl::StatusOr<CommandResult> result = RunCommand(argv);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 2) << result->output;
    EXPECT_THAT(result->errors, HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace spillway
