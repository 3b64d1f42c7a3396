#include "server/dispatch/consumer_reply.h"

#include "absl/strings/str_cat.h"
#include "server/dispatch/json_escape.h"

namespace spillway {

ConsumerReply ConsumerReply::JsonError(int status, std::string_view message) {
  ConsumerReply reply;
  reply.status = status;
  reply.headers.emplace_back("content-type", "application/json");
  reply.body = absl::StrCat("{\"error\":", JsonString(message), ",\"status\":", status,
                            "}\n");
  return reply;
}

}  // namespace spillway
