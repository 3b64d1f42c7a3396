#include "server/upload/multipart_error.h"

#include <array>
#include <utility>

#include "absl/strings/cord.h"
#include "server/common/string_view_compat.h"

namespace spillway {
namespace {

// The payload holds the error's name rather than its number, so a status logged or
// forwarded elsewhere stays readable and renumbering the enum cannot misreport.
constexpr std::string_view kPayloadUrl = "type.spillway.dev/spillway.MultipartError";

constexpr std::array<std::pair<MultipartError, std::string_view>, 10> kNames = {{
    {MultipartError::kNotMultipartFormData, "kNotMultipartFormData"},
    {MultipartError::kMissingBoundary, "kMissingBoundary"},
    {MultipartError::kInvalidBoundary, "kInvalidBoundary"},
    {MultipartError::kMalformedDelimiter, "kMalformedDelimiter"},
    {MultipartError::kMalformedPartHeader, "kMalformedPartHeader"},
    {MultipartError::kMissingFormDataName, "kMissingFormDataName"},
    {MultipartError::kTruncatedBody, "kTruncatedBody"},
    {MultipartError::kTooManyParts, "kTooManyParts"},
    {MultipartError::kPartHeaderTooLarge, "kPartHeaderTooLarge"},
    {MultipartError::kFieldTooLarge, "kFieldTooLarge"},
}};

}  // namespace

std::string_view MultipartErrorName(MultipartError error) {
  for (const auto& [value, name] : kNames) {
    if (value == error) return name;
  }
  return "kUnknown";
}

absl::Status MakeMultipartError(MultipartError error, std::string_view message) {
  const bool limit = error == MultipartError::kTooManyParts ||
                     error == MultipartError::kPartHeaderTooLarge ||
                     error == MultipartError::kFieldTooLarge;
  absl::Status status(
      limit ? absl::StatusCode::kResourceExhausted : absl::StatusCode::kInvalidArgument,
      AbslView(message));
  status.SetPayload(AbslView(kPayloadUrl), absl::Cord(AbslView(MultipartErrorName(error))));
  return status;
}

std::optional<MultipartError> GetMultipartError(const absl::Status& status) {
  auto payload = status.GetPayload(AbslView(kPayloadUrl));
  if (!payload.has_value()) return std::nullopt;
  for (const auto& [value, name] : kNames) {
    if (*payload == AbslView(name)) return value;
  }
  return std::nullopt;
}

}  // namespace spillway
