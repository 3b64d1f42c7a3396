// MultipartParser: a push-based, streaming parser for multipart/form-data bodies
// (RFC 7578 over RFC 2046), the front half of every multipart upload.
//
// The caller pushes the body in slices of any size (down to one byte) with Feed() and
// calls Finish() at the end of input; the parser calls its Handler back with each
// part's headers, its data in pieces, the part's end, and the body's end. It never
// buffers payload: data slices point into the caller's input, except for at most
// delimiter-length bytes (< 80) that were held back at the end of one Feed() because
// they could have been the start of a delimiter and turned out not to be; those are
// handed over from the parser's own small buffer. Memory use is bounded by the
// part-header limit whatever the body size.
//
// Accepted: a first delimiter at the very start of the body or after a preamble; an
// ignored epilogue; transport padding (spaces, tabs) after a delimiter; a zero-part body
// ("--b--"). "\r\n--boundary" followed by anything but '-', space, tab or CR, or by one
// '-' that is not followed by another, is content, not a delimiter (as in Go's
// mime/multipart). Header blocks: see part_headers.h.
//
// Errors are absl::Status values carrying a MultipartError (multipart_error.h):
// malformed input is kInvalidArgument (HTTP 400); the three limits are
// kResourceExhausted (HTTP 413), the part-header limit included, so that every limit
// maps to one answer. After any error, including one returned by the Handler, the
// parser stays failed and Feed()/Finish() return that error again.
//
// Ownership and threading: the Handler is not owned and must outlive the parser. One
// thread at a time; not thread-safe. The Handler must not call back into the parser.
#ifndef SPILLWAY_SERVER_UPLOAD_MULTIPART_PARSER_H_
#define SPILLWAY_SERVER_UPLOAD_MULTIPART_PARSER_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/upload/boundary_finder.h"
#include "server/upload/multipart_error.h"
#include "server/upload/part_headers.h"

namespace spillway {

struct MultipartLimits {
  // Parts per body. The close delimiter after the last allowed part is fine.
  size_t max_parts = 1000;
  // Bytes of one part's header block: its header lines with their CRLFs plus the CRLF
  // of the empty line that ends them.
  size_t max_part_header_bytes = 16 * 1024;
  // Data bytes of one non-file part (no filename). File parts are limited elsewhere
  // (FILE_UPLOAD_MAX_SIZE), by whoever stores them.
  size_t max_field_size = 1024 * 1024;
};

class MultipartParser {
 public:
  // Receives the parse. A non-OK return aborts parsing: Feed()/Finish() return it.
  // Every reference and view passed in is valid only during the call.
  class Handler {
   public:
    virtual ~Handler() = default;
    // A part's header block was read. `headers` is reused for the next part.
    virtual absl::Status OnPartBegin(const PartHeaders& headers) = 0;
    // The next bytes of the current part, never empty. A part's data may arrive in any
    // number of slices, whatever the Feed() slicing was.
    virtual absl::Status OnPartData(std::string_view data) = 0;
    // The current part's data is complete (its closing delimiter was seen).
    virtual absl::Status OnPartEnd() = 0;
    // The close delimiter was seen; anything after it is ignored.
    virtual absl::Status OnBodyEnd() = 0;
  };

  // The boundary of a `multipart/form-data; boundary=...` Content-Type value (media type
  // case-insensitive; boundary quoted or token). Errors: kNotMultipartFormData,
  // kMissingBoundary, kInvalidBoundary.
  static absl::StatusOr<std::string> BoundaryFromContentType(std::string_view content_type);

  // For a body that may or may not be multipart: the boundary when `content_type` is
  // multipart/form-data, nullopt when it is some other type (a raw body), and an error
  // when it claims multipart/form-data but its boundary is missing or invalid (storing
  // such a body raw is not what the uploader meant).
  static absl::StatusOr<std::optional<std::string>> BoundaryIfMultipart(
      std::string_view content_type);

  // OK iff `boundary` is 1 to 70 RFC 2046 bchars not ending in a space; else
  // kInvalidBoundary.
  static absl::Status ValidateBoundary(std::string_view boundary);

  // `handler` is not owned. An invalid boundary leaves the parser failed with
  // kInvalidBoundary (reported by the first Feed() or Finish()).
  MultipartParser(std::string_view boundary, MultipartLimits limits, Handler* handler);

  MultipartParser(const MultipartParser&) = delete;
  MultipartParser& operator=(const MultipartParser&) = delete;

  // Parses the next slice of the body. Bytes after the close delimiter are ignored.
  absl::Status Feed(std::string_view input);

  // Declares the end of the body: kTruncatedBody unless the close delimiter was seen.
  // Feed() and Finish() after a successful Finish() fail with kFailedPrecondition.
  absl::Status Finish();

  // Parts whose headers were read so far.
  size_t parts() const { return parts_; }

  // Hands the rest of the parse to `handler` (not owned), which takes over in the
  // middle of whatever part the parser is in: a body that began buffered and turned
  // out to need streaming (UploadAssembler::HandOver). Not from inside a Handler call.
  void set_handler(Handler* handler) { handler_ = handler; }

 private:
  enum class State {
    kPreamble,       // before the first delimiter: bytes are dropped
    kDelimiterLine,  // after a delimiter: transport padding, then CRLF
    kPartHeaders,    // accumulating a header block up to CRLFCRLF
    kPartData,       // a part's data, up to the next delimiter
    kEpilogue,       // after the close delimiter: bytes are dropped
    kFinished,       // Finish() succeeded
  };

  absl::Status ScanContent(const char*& p, const char* end);
  absl::Status ResolveHeld(const char*& p, const char* end);
  absl::Status ReleaseHeld();
  absl::Status ScanDelimiterLine(const char*& p, const char* end);
  absl::Status ScanPartHeaders(const char*& p, const char* end);
  absl::Status Content(const char* data, size_t size);
  absl::Status PartDelimiter();
  absl::Status CloseDelimiter();
  absl::Status BeginPartHeaders();
  absl::Status EndPartHeaders();

  Handler* handler_;  // not owned
  const MultipartLimits limits_;
  // The parser's error; from construction on when the boundary is invalid. Declared
  // before delimiter_, which is built from a valid boundary only.
  absl::Status status_;
  // "\r\n--" + boundary + "-": the delimiter and the first byte of a close delimiter's
  // suffix. Held-back bytes are always a prefix of it, so they are never copied: when
  // they turn out to be content they are handed over from here.
  std::string delimiter_;
  BoundaryFinder finder_;  // searches for delimiter_ without its trailing '-'

  State state_ = State::kPreamble;
  // Bytes of delimiter_ seen at the end of earlier input and not yet classified.
  // Starts at 2 (the "\r\n") so that a delimiter at the very start of the body is found
  // by the same search as every later one.
  size_t held_ = 2;
  bool delimiter_cr_ = false;  // kDelimiterLine: the CR of its CRLF was seen
  // "\r\n" + the header block read so far; the leading CRLF (the delimiter line's own)
  // lets an empty block be found as CRLFCRLF like any other. Reused across parts.
  std::string header_buf_;
  PartHeaderParser header_parser_;
  PartHeaders headers_;
  size_t parts_ = 0;
  bool in_file_ = false;
  size_t field_bytes_ = 0;  // data bytes of the current non-file part
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_MULTIPART_PARSER_H_
