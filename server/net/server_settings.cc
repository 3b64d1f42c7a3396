#include "server/net/server_settings.h"

#include <array>

#include "server/common/quantity.h"
#include "server/common/status_macros.h"

namespace spillway {
namespace {

constexpr SettingSpec kHttpPort = {
    "HTTP_PORT", "8080",
    "TCP port for HTTP/1.1 and HTTP/2 (h2c); 0 picks a free port, printed at start-up"};
constexpr SettingSpec kListenAddress = {"LISTEN_ADDRESS", "0.0.0.0",
                                        "IPv4 or IPv6 address to listen on"};
constexpr SettingSpec kEventLoops = {
    "EVENT_LOOPS", "0", "event-loop threads, each with its own listener; 0 means one per core"};
constexpr SettingSpec kMaxHeaderBytes = {
    "MAX_HEADER_BYTES", "16Ki",
    "HTTP/1.1 request line plus header fields, and HTTP/2's header list size "
    "(SETTINGS_MAX_HEADER_LIST_SIZE); larger requests get 431"};
constexpr SettingSpec kDrainTimeout = {
    "DRAIN_TIMEOUT", "30s",
    "on SIGTERM/SIGINT, how long in-flight requests may take before exit"};
constexpr SettingSpec kAccessLog = {
    "ACCESS_LOG", "true", "one JSON line per request on stdout: true or false"};

constexpr SettingSpec kHeaderTimeout = {
    "HEADER_TIMEOUT", "10s",
    "from a request's first byte (or the connection's accept) to the end of its "
    "header; HTTP/1.1 gets 408 and is closed, HTTP/2 GOAWAY; 0 turns it off"};
constexpr SettingSpec kIdleTimeout = {
    "IDLE_TIMEOUT", "60s",
    "a keep-alive HTTP/1.1 connection with nothing in flight, or an HTTP/2 connection "
    "without streams, is closed after this long (HTTP/2 with GOAWAY); 0 turns it off"};
constexpr SettingSpec kBodyTimeout = {
    "BODY_TIMEOUT", "30s",
    "no request body byte for this long while one is expected (and not held back by "
    "the server): 408 (HTTP/1.1 then closes; HTTP/2 resets the stream; a gRPC Upload "
    "call ends with DEADLINE_EXCEEDED); 0 turns it off"};
constexpr SettingSpec kSendTimeout = {
    "SEND_TIMEOUT", "60s",
    "a client that takes none of the response bytes waiting for it for this long "
    "(it stopped reading) is disconnected; an HTTP/2 response its flow-control "
    "window holds back that long has its stream reset (CANCEL); 0 turns it off"};
constexpr SettingSpec kMaxConnections = {
    "MAX_CONNECTIONS", "10000",
    "open client connections per process; beyond it a new connection gets 503 with "
    "Retry-After and is closed"};
constexpr SettingSpec kMaxConcurrentUploads = {
    "MAX_CONCURRENT_UPLOADS", "1000",
    "uploads in flight, HTTP requests (other than /healthz, /readyz and /metrics) and "
    "gRPC Upload calls together; beyond it: 503 with Retry-After (gRPC: "
    "RESOURCE_EXHAUSTED)"};
constexpr SettingSpec kH2MaxConcurrentStreams = {
    "H2_MAX_CONCURRENT_STREAMS", "100",
    "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; a stream beyond it is refused "
    "(RST_STREAM REFUSED_STREAM) until the client has acknowledged the setting; "
    "after that, a client exceeding it loses the connection (GOAWAY PROTOCOL_ERROR, "
    "nghttp2's rule)"};

constexpr SettingSpec kTlsCertFile = {
    "TLS_CERT_FILE", "",
    "PEM certificate chain (leaf first); with --tls-key-file the HTTP port speaks TLS "
    "only, HTTP/2 chosen by ALPN (h2) and HTTP/1.1 otherwise; empty: no TLS"};
constexpr SettingSpec kTlsKeyFile = {
    "TLS_KEY_FILE", "", "PEM private key of --tls-cert-file (unencrypted)"};

constexpr std::array<SettingSpec, 15> kSpecs = {
    kHttpPort,       kListenAddress,        kEventLoops,    kMaxHeaderBytes,
    kDrainTimeout,   kAccessLog,            kHeaderTimeout, kIdleTimeout,
    kBodyTimeout,    kSendTimeout,          kMaxConnections, kMaxConcurrentUploads,
    kH2MaxConcurrentStreams, kTlsCertFile,  kTlsKeyFile};

absl::StatusOr<bool> ParseBool(std::string_view text) {
  if (text == "true" || text == "1" || text == "yes") return true;
  if (text == "false" || text == "0" || text == "no") return false;
  return absl::InvalidArgumentError("must be true or false");
}

}  // namespace

absl::Span<const SettingSpec> ServerSettings::Specs() { return kSpecs; }

absl::StatusOr<ServerSettings> ServerSettings::FromSource(SettingsSource& source) {
  ServerSettings settings;
  ASSIGN_OR_RETURN(int64_t port, source.GetInteger(kHttpPort, 0, 65535));
  settings.http_port = static_cast<uint16_t>(port);
  ASSIGN_OR_RETURN(settings.listen_address, source.GetString(kListenAddress));
  ASSIGN_OR_RETURN(int64_t loops, source.GetInteger(kEventLoops, 0, 1024));
  settings.event_loops = static_cast<size_t>(loops);
  ASSIGN_OR_RETURN(
      settings.max_header_bytes,
      source.GetParsed<uint64_t>(
          kMaxHeaderBytes, [](std::string_view text) -> absl::StatusOr<uint64_t> {
            ASSIGN_OR_RETURN(uint64_t bytes, ParseByteSize(text));
            // Below 1 KiB ordinary clients fail; above 1 MiB one request could pin
            // a lot of memory per connection.
            if (bytes < 1024 || bytes > 1024 * 1024) {
              return absl::InvalidArgumentError("must be from 1Ki to 1Mi");
            }
            return bytes;
          }));
  ASSIGN_OR_RETURN(settings.drain_timeout, source.GetDuration(kDrainTimeout));
  ASSIGN_OR_RETURN(settings.access_log, source.GetParsed<bool>(kAccessLog, ParseBool));
  ASSIGN_OR_RETURN(settings.header_timeout, source.GetDuration(kHeaderTimeout));
  ASSIGN_OR_RETURN(settings.idle_timeout, source.GetDuration(kIdleTimeout));
  ASSIGN_OR_RETURN(settings.body_timeout, source.GetDuration(kBodyTimeout));
  ASSIGN_OR_RETURN(settings.send_timeout, source.GetDuration(kSendTimeout));
  ASSIGN_OR_RETURN(settings.max_connections,
                   source.GetInteger(kMaxConnections, 1, int64_t{1} << 30));
  ASSIGN_OR_RETURN(settings.max_concurrent_uploads,
                   source.GetInteger(kMaxConcurrentUploads, 1, int64_t{1} << 30));
  ASSIGN_OR_RETURN(int64_t streams,
                   source.GetInteger(kH2MaxConcurrentStreams, 1, int64_t{1} << 20));
  settings.h2_max_concurrent_streams = static_cast<uint32_t>(streams);
  ASSIGN_OR_RETURN(settings.tls_cert_file, source.GetString(kTlsCertFile));
  ASSIGN_OR_RETURN(settings.tls_key_file, source.GetString(kTlsKeyFile));
  if (settings.tls_cert_file.empty() != settings.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert-file and --tls-key-file go together: set both for TLS, or neither");
  }
  return settings;
}

}  // namespace spillway
