// RequestHead: what the protocol sessions know of a request once its headers are in,
// in the same shape for HTTP/1.1 and HTTP/2. A plain value; copied freely.
#ifndef SPILLWAY_SERVER_HTTP_REQUEST_HEAD_H_
#define SPILLWAY_SERVER_HTTP_REQUEST_HEAD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spillway {

struct RequestHead {
  std::string protocol;  // "HTTP/1.1" or "HTTP/2"
  std::string method;
  std::string path;      // without the query
  std::string query;     // without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string remote_address;                                // "127.0.0.1:53412"
  std::optional<uint64_t> content_length;  // absent: chunked or h2 without it
  std::string content_type;

  // The first header named `name` (lower-case), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return std::nullopt;
  }
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_REQUEST_HEAD_H_
