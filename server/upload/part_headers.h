// PartHeaders: what a multipart/form-data part says about itself, and
// PartHeaderParser, which reads it from the part's header block.
//
// Only Content-Disposition and Content-Type matter (RFC 7578 §4.8: other part headers
// are to be ignored). Content-Disposition must be `form-data` with a non-empty `name`;
// `filename` (quoted or token) and `filename*` (RFC 5987, UTF-8 or ISO-8859-1, which
// wins over `filename`) make the part a file part. Plain `filename` is kept as sent:
// browsers and curl send `"` as %22 and raw UTF-8, and decoding %XX there would turn
// an honest name into a different one.
//
// Strictness, where clients never differ: header lines end in CRLF (a bare CR or LF is
// malformed); Content-Disposition or Content-Type given twice, or a parameter repeated,
// is malformed rather than resolved by "first wins", so that Spillway and whatever sits
// behind it cannot read the same part differently. Obsolete line folding is accepted.
//
// Not thread-safe. A parser is meant to be reused part after part: it and the
// PartHeaders it fills keep their string capacity, so steady-state parsing allocates
// only for names longer than the small-string buffer.
#ifndef SPILLWAY_SERVER_UPLOAD_PART_HEADERS_H_
#define SPILLWAY_SERVER_UPLOAD_PART_HEADERS_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace spillway {

struct PartHeaders {
  // The form field name (Content-Disposition `name`), never empty.
  std::string name;
  // Present iff the part is a file, possibly empty: a browser's empty file input sends
  // `filename=""`. Decoded from `filename*` when that is present, else as sent.
  std::optional<std::string> filename;
  // The part's Content-Type value as sent (trimmed), empty if absent.
  std::string content_type;

  bool is_file() const { return filename.has_value(); }
  void Clear();

  friend bool operator==(const PartHeaders&, const PartHeaders&) = default;
};

class PartHeaderParser {
 public:
  // Parses `block`: the part's header lines, each ending in CRLF, followed by the CRLF
  // of the empty line that ends them (so an empty block is just "\r\n"). On error
  // *out is unspecified and the status carries kMalformedPartHeader or
  // kMissingFormDataName (see multipart_error.h).
  absl::Status Parse(std::string_view block, PartHeaders* out);

  // Parses one Content-Disposition value into out->name and out->filename.
  absl::Status ParseContentDisposition(std::string_view value, PartHeaders* out);

 private:
  std::string unfolded_;  // a header value joined from obsolete folded lines
  std::string value_;     // the current parameter's unquoted value
  std::string decoded_;   // the current filename* value, decoded
};

// Decodes an RFC 5987 ext-value (`charset'language'percent-encoded`) into UTF-8 in
// *out. Charsets: UTF-8 (the result must be valid UTF-8) and ISO-8859-1, any case.
// Control characters (below 0x20, 0x7F) are refused. Returns kMalformedPartHeader for
// anything else.
absl::Status DecodeRfc5987Value(std::string_view ext_value, std::string* out);

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_PART_HEADERS_H_
