#include "server/grpc/multipart_framer.h"

#include <sys/random.h>

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/common/string_view_compat.h"

namespace spillway {
namespace {

absl::StatusOr<std::string> Quoted(std::string_view what, std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat(AbslView(what), " contains CR, LF or NUL"));
    }
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

MultipartFramer::MultipartFramer() {
  uint64_t random[2] = {0, 0};
  if (getrandom(random, sizeof(random), 0) != sizeof(random)) {
    random[0] = reinterpret_cast<uintptr_t>(this);
  }
  boundary_ = absl::StrFormat("spillway-%016x%016x", random[0], random[1]);
}

std::string MultipartFramer::content_type() const {
  return absl::StrCat("multipart/form-data; boundary=", boundary_);
}

absl::StatusOr<std::string> MultipartFramer::FieldPart(std::string_view name,
                                                       std::string_view value) {
  if (name.empty()) return absl::InvalidArgumentError("a field without a name");
  absl::StatusOr<std::string> quoted = Quoted("a field name", name);
  if (!quoted.ok()) return quoted.status();
  return absl::StrCat("--", boundary_, "\r\nContent-Disposition: form-data; name=",
                      *quoted, "\r\n\r\n", AbslView(value), "\r\n");
}

absl::StatusOr<std::string> MultipartFramer::FilePartHeader(std::string_view name,
                                                            std::string_view filename,
                                                            std::string_view content_type) {
  if (name.empty()) return absl::InvalidArgumentError("a file without a field name");
  absl::StatusOr<std::string> quoted_name = Quoted("a field name", name);
  if (!quoted_name.ok()) return quoted_name.status();
  absl::StatusOr<std::string> quoted_filename = Quoted("a filename", filename);
  if (!quoted_filename.ok()) return quoted_filename.status();
  std::string out = absl::StrCat("--", boundary_,
                                 "\r\nContent-Disposition: form-data; name=", *quoted_name,
                                 "; filename=", *quoted_filename, "\r\n");
  if (!content_type.empty()) {
    for (char c : content_type) {
      if (c == '\r' || c == '\n' || c == '\0') {
        return absl::InvalidArgumentError("a content type contains CR, LF or NUL");
      }
    }
    absl::StrAppend(&out, "Content-Type: ", AbslView(content_type), "\r\n");
  }
  absl::StrAppend(&out, "\r\n");
  return out;
}

std::string MultipartFramer::Close() const { return absl::StrCat("--", boundary_, "--\r\n"); }

}  // namespace spillway
