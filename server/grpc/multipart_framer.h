// MultipartFramer: writes a gRPC upload's fields and files as a multipart/form-data
// body, so that a streamed Upload RPC can go through the same StreamUploadSource (and
// so the same parser, limits and checksums) as a streamed HTTP upload. The boundary
// is 32 random hex digits per upload: file bytes cannot be crafted to contain it.
//
// Names and filenames go into quoted strings with '"' and '\\' backslash-escaped; CR,
// LF and NUL cannot be framed (kInvalidArgument), nor can an empty field name (the
// multipart rules require one).
//
// A plain value; not thread-safe.
#ifndef SPILLWAY_SERVER_GRPC_MULTIPART_FRAMER_H_
#define SPILLWAY_SERVER_GRPC_MULTIPART_FRAMER_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace spillway {

class MultipartFramer {
 public:
  MultipartFramer();

  // "multipart/form-data; boundary=..."
  std::string content_type() const;

  // The bytes that open a part. A file part's data follows; EndPart() closes it.
  absl::StatusOr<std::string> FieldPart(std::string_view name, std::string_view value);
  absl::StatusOr<std::string> FilePartHeader(std::string_view name,
                                             std::string_view filename,
                                             std::string_view content_type);
  // After a file part's data.
  static std::string_view EndPart() { return "\r\n"; }
  // The close delimiter.
  std::string Close() const;

 private:
  std::string boundary_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_MULTIPART_FRAMER_H_
