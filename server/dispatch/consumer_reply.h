// ConsumerReply: a consumer's answer to one upload (ingest.proto `Reply`); the
// front end turns it into the HTTP response, the gRPC Upload RPC into its response.
// The dispatcher also makes its own (503, 504, 502) in the same shape. A plain value.
#ifndef SPILLWAY_SERVER_DISPATCH_CONSUMER_REPLY_H_
#define SPILLWAY_SERVER_DISPATCH_CONSUMER_REPLY_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace spillway {

struct ConsumerReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;

  // A JSON error reply {"error":"<message>","status":<status>} with
  // content-type application/json.
  static ConsumerReply JsonError(int status, std::string_view message);

  // OK if HTTP can carry it: a final status (200-599), header names that are RFC 9110
  // tokens, values without control characters other than HTAB (a CR or LF would
  // split an HTTP/1.1 response). Else kInvalidArgument saying which part is wrong.
  absl::Status Validate() const;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_CONSUMER_REPLY_H_
