// RequestInfo: what a consumer is told about the request that carried an upload
// (ingest.proto `RequestStarted`, minus the per-delivery upload id and attempt). The
// same shape whether the upload came over HTTP/1.1, HTTP/2 or gRPC. A plain value,
// copied freely; immutable once an upload is handed to the dispatcher.
#ifndef SPILLWAY_SERVER_UPLOAD_REQUEST_INFO_H_
#define SPILLWAY_SERVER_UPLOAD_REQUEST_INFO_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace spillway {

struct RequestInfo {
  std::string protocol;  // "HTTP/1.1", "HTTP/2" or "gRPC"
  std::string method;
  std::string path;   // without the query; routes the upload to consumers
  std::string query;  // without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string remote_address;
  std::string content_type;
  std::optional<uint64_t> content_length;  // absent when unknown
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_REQUEST_INFO_H_
