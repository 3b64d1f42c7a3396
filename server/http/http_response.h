// HttpResponse: a complete response as the upload pipeline or admin endpoints produce
// it; the protocol session turns it into HTTP/1.1 bytes or HTTP/2 frames. A value.
#ifndef SPILLWAY_SERVER_HTTP_HTTP_RESPONSE_H_
#define SPILLWAY_SERVER_HTTP_HTTP_RESPONSE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace spillway {

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;

  // A short JSON error body: {"error":"<message>","status":<status>}.
  static HttpResponse Error(int status, std::string_view message);
};

// The HTTP status for an error status from the upload core: kInvalidArgument 400,
// kResourceExhausted 413 (507 when marked InsufficientStorageError, spill_budget.h),
// kUnavailable 503, kDeadlineExceeded 504, ...
// Converting happens once, at this edge.
int HttpStatusFromStatus(const absl::Status& status);

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_HTTP_RESPONSE_H_
