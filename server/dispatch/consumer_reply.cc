#include "server/dispatch/consumer_reply.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/common/string_view_compat.h"
#include "server/dispatch/json_escape.h"
#include "server/upload/header_params.h"

namespace spillway {

ConsumerReply ConsumerReply::JsonError(int status, std::string_view message) {
  ConsumerReply reply;
  reply.status = status;
  reply.headers.emplace_back("content-type", "application/json");
  reply.body = absl::StrCat("{\"error\":", JsonString(message), ",\"status\":", status,
                            "}\n");
  return reply;
}

absl::Status ConsumerReply::Validate() const {
  if (status < 200 || status > 599) {
    return absl::InvalidArgumentError(
        absl::StrCat("reply status ", status, " is not a final HTTP status (200-599)"));
  }
  for (const auto& [name, value] : headers) {
    const bool name_ok =
        !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
          return IsTokenChar(static_cast<unsigned char>(c));
        });
    if (!name_ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "reply header name \"", absl::CEscape(AbslView(name)), "\" is not a token"));
    }
    for (const char c : value) {
      const auto byte = static_cast<unsigned char>(c);
      if ((byte < 0x20 && byte != '\t') || byte == 0x7f) {
        return absl::InvalidArgumentError(
            absl::StrCat("reply header \"", name, "\" has a control character in its value"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace spillway
