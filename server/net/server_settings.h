// ServerSettings: the front end's own settings (DESIGN.md §4): where to listen, how
// many loops, the header limit, drain and access log, and the front end's limits and
// timeouts (connections, concurrent uploads, HTTP/2 streams; header, idle and body
// timeouts, where 0 turns a timeout off; TLS certificate and key). Read once at start-up from a
// SettingsSource, then a plain value.
#ifndef SPILLWAY_SERVER_NET_SERVER_SETTINGS_H_
#define SPILLWAY_SERVER_NET_SERVER_SETTINGS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/common/settings_source.h"

namespace spillway {

struct ServerSettings {
  uint16_t http_port = 8080;  // 0: an ephemeral port, printed at start-up
  std::string listen_address = "0.0.0.0";
  size_t event_loops = 0;  // 0: one per core
  size_t max_header_bytes = 16 * 1024;  // HTTP/1.1 431 limit and HTTP/2 header list
  absl::Duration drain_timeout = absl::Seconds(30);
  bool access_log = true;

  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration body_timeout = absl::Seconds(30);
  absl::Duration send_timeout = absl::Seconds(60);
  int64_t max_connections = 10000;        // per process, over all loops
  int64_t max_concurrent_uploads = 1000;  // requests in flight, admin paths aside
  uint32_t h2_max_concurrent_streams = 100;
  // Both set: the HTTP port speaks TLS only (ALPN h2 or http/1.1). Both empty: h2c
  // and HTTP/1.1 in the clear.
  std::string tls_cert_file;
  std::string tls_key_file;

  static absl::Span<const SettingSpec> Specs();
  static absl::StatusOr<ServerSettings> FromSource(SettingsSource& source);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_SERVER_SETTINGS_H_
