#include "server/http/http_response.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/dispatch/json_escape.h"
#include "server/upload/spill_budget.h"

namespace spillway {

HttpResponse HttpResponse::Error(int status, std::string_view message) {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("content-type", "application/json");
  response.body = "{\"error\":";
  AppendJsonString(message, &response.body);
  absl::StrAppend(&response.body, ",\"status\":", status, "}\n");
  return response;
}

int HttpStatusFromStatus(const absl::Status& status) {
  // Both are kResourceExhausted; only the payload tells a full disk (or spill budget)
  // from a request over a limit.
  if (IsInsufficientStorage(status)) return 507;
  switch (status.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kFailedPrecondition: return 400;
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kResourceExhausted: return 413;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

}  // namespace spillway
