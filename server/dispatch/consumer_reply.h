// ConsumerReply: a consumer's answer to one upload (ingest.proto `Reply`); the
// front end turns it into the HTTP response, the gRPC Upload RPC into its response.
// The dispatcher also makes its own (503, 504, 502) in the same shape. A plain value.
#ifndef SPILLWAY_SERVER_DISPATCH_CONSUMER_REPLY_H_
#define SPILLWAY_SERVER_DISPATCH_CONSUMER_REPLY_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spillway {

struct ConsumerReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;

  // A JSON error reply {"error":"<message>","status":<status>} with
  // content-type application/json.
  static ConsumerReply JsonError(int status, std::string_view message);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_CONSUMER_REPLY_H_
