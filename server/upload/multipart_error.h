// MultipartError: the machine-readable reason behind a multipart parsing failure.
//
// The parser reports every failure as an absl::Status whose code drives the HTTP answer
// (kInvalidArgument -> 400 for malformed input, kResourceExhausted -> 413 for a limit
// crossed). Callers that need more than the code (metrics labels, a 415 for a body that is
// not form data, tests) read the MultipartError carried as a status payload with
// GetMultipartError(). Plain values and free functions: safe from any thread.
#ifndef SPILLWAY_SERVER_UPLOAD_MULTIPART_ERROR_H_
#define SPILLWAY_SERVER_UPLOAD_MULTIPART_ERROR_H_

#include <optional>
#include <string_view>

#include "absl/status/status.h"

namespace spillway {

enum class MultipartError {
  // Content-Type: not multipart/form-data at all (callers may answer 415).
  kNotMultipartFormData,
  // Content-Type: multipart/form-data without a boundary parameter.
  kMissingBoundary,
  // Content-Type: boundary empty, longer than 70, outside RFC 2046 bchars, duplicated.
  kInvalidBoundary,
  // A delimiter line with something other than transport padding before its CRLF.
  kMalformedDelimiter,
  // A part header block that does not parse (line without colon, bad quoting, bad
  // RFC 5987 value, duplicate Content-Disposition, ...).
  kMalformedPartHeader,
  // A part without a `Content-Disposition: form-data` header carrying a non-empty name.
  kMissingFormDataName,
  // The body ended before the close delimiter.
  kTruncatedBody,
  // Limits (kResourceExhausted, HTTP 413).
  kTooManyParts,
  kPartHeaderTooLarge,
  kFieldTooLarge,
};

// "kTooManyParts" and so on; stable, usable as a metrics label.
std::string_view MultipartErrorName(MultipartError error);

// The status for `error`: kResourceExhausted for the three limits, kInvalidArgument
// otherwise, with `message` and the error attached as a payload.
absl::Status MakeMultipartError(MultipartError error, std::string_view message);

// The MultipartError attached to `status`, or nullopt if it carries none (OK statuses,
// errors from a Handler, misuse such as Feed after Finish).
std::optional<MultipartError> GetMultipartError(const absl::Status& status);

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_MULTIPART_ERROR_H_
