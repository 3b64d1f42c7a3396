#include "server/upload/multipart_parser.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/common/string_view_compat.h"
#include "server/upload/header_params.h"

namespace spillway {
namespace {

constexpr size_t kMaxBoundarySize = 70;  // RFC 2046 §5.1.1

// RFC 2046 bchars (space only inside, checked by the caller), as a table: every
// multipart request's boundary is checked, and a switch per character showed up in
// profiles of small uploads.
constexpr std::array<bool, 256> kBoundaryChars = [] {
  std::array<bool, 256> table{};
  for (unsigned char c = '0'; c <= '9'; ++c) table[c] = true;
  for (unsigned char c = 'a'; c <= 'z'; ++c) table[c] = table[c - 'a' + 'A'] = true;
  for (unsigned char c : std::string_view("'()+_,-./:=? ")) table[c] = true;
  return table;
}();

// The first "\r\n\r\n" in [p, p + n), or null. memchr for '\r' rather than memmem:
// memmem's per-call setup cost more than the search on a block of a hundred bytes.
const char* FindHeaderBlockEnd(const char* p, size_t n) {
  const char* const end = p + n;
  while (end - p >= 4) {
    const auto* cr = static_cast<const char*>(
        std::memchr(p, '\r', static_cast<size_t>(end - p) - 3));
    if (cr == nullptr) return nullptr;
    if (std::memcmp(cr, "\r\n\r\n", 4) == 0) return cr;
    p = cr + 1;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<std::optional<std::string>> MultipartParser::BoundaryIfMultipart(
    std::string_view content_type) {
  absl::StatusOr<std::string> boundary = BoundaryFromContentType(content_type);
  if (boundary.ok()) return std::optional<std::string>(*std::move(boundary));
  if (GetMultipartError(boundary.status()) == MultipartError::kNotMultipartFormData) {
    return std::optional<std::string>();
  }
  return boundary.status();
}

absl::Status MultipartParser::ValidateBoundary(std::string_view boundary) {
  if (boundary.empty() || boundary.size() > kMaxBoundarySize) {
    return MakeMultipartError(
        MultipartError::kInvalidBoundary,
        absl::StrCat("multipart boundary must be 1 to 70 characters, got ", boundary.size()));
  }
  for (char c : boundary) {
    if (!kBoundaryChars[static_cast<unsigned char>(c)]) {
      return MakeMultipartError(
          MultipartError::kInvalidBoundary,
          absl::StrCat("multipart boundary has a character outside RFC 2046 bchars: \"",
                       absl::CHexEscape(AbslView(boundary)), "\""));
    }
  }
  if (boundary.back() == ' ') {
    return MakeMultipartError(MultipartError::kInvalidBoundary,
                              "multipart boundary ends in a space");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MultipartParser::BoundaryFromContentType(
    std::string_view content_type) {
  std::string_view params;
  const std::string_view type = SplitHeaderValue(content_type, &params);
  if (!EqualsIgnoreCaseAscii(type, "multipart/form-data")) {
    return MakeMultipartError(
        MultipartError::kNotMultipartFormData,
        absl::StrCat("Content-Type is \"", absl::CHexEscape(AbslView(type.substr(0, 64))),
                     "\", not multipart/form-data"));
  }
  HeaderParamReader reader(params);
  std::string_view attribute;
  std::string value;
  std::optional<std::string> boundary;
  while (reader.Next(&attribute, &value)) {
    if (!EqualsIgnoreCaseAscii(attribute, "boundary")) continue;
    if (boundary.has_value()) {
      return MakeMultipartError(MultipartError::kInvalidBoundary,
                                "Content-Type has two boundary parameters");
    }
    boundary = value;
  }
  if (reader.malformed()) {
    return MakeMultipartError(MultipartError::kInvalidBoundary,
                              "cannot parse the Content-Type parameters");
  }
  if (!boundary.has_value()) {
    return MakeMultipartError(MultipartError::kMissingBoundary,
                              "multipart/form-data Content-Type without a boundary");
  }
  RETURN_IF_ERROR(ValidateBoundary(*boundary));
  return *std::move(boundary);
}

MultipartParser::MultipartParser(std::string_view boundary, MultipartLimits limits,
                                 Handler* handler)
    : handler_(handler),
      limits_(limits),
      status_(ValidateBoundary(boundary)),
      // An invalid boundary still needs a well-formed pattern for the finder; the
      // parser is failed from the start, so it never searches with it.
      delimiter_(absl::StrCat("\r\n--",
                              AbslView(status_.ok() ? boundary : "invalid"), "-")),
      finder_(std::string_view(delimiter_).substr(0, delimiter_.size() - 1)) {
  header_buf_.reserve(256);
}

absl::Status MultipartParser::Feed(std::string_view input) {
  if (!status_.ok()) return status_;
  if (state_ == State::kFinished) {
    return absl::FailedPreconditionError("MultipartParser::Feed after Finish");
  }
  const char* p = input.data();
  const char* const end = p + input.size();
  while (p < end) {
    absl::Status s;
    switch (state_) {
      case State::kPreamble:
      case State::kPartData:
        s = ScanContent(p, end);
        break;
      case State::kDelimiterLine:
        s = ScanDelimiterLine(p, end);
        break;
      case State::kPartHeaders:
        s = ScanPartHeaders(p, end);
        break;
      case State::kEpilogue:
      case State::kFinished:
        p = end;
        break;
    }
    if (!s.ok()) [[unlikely]] {
      status_ = s;
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status MultipartParser::Finish() {
  if (!status_.ok()) return status_;
  std::string_view where;
  switch (state_) {
    case State::kEpilogue:
      state_ = State::kFinished;
      return absl::OkStatus();
    case State::kFinished:
      return absl::FailedPreconditionError("MultipartParser::Finish called twice");
    case State::kPreamble:
      where = "before the first delimiter";
      break;
    case State::kDelimiterLine:
      where = "inside a delimiter line";
      break;
    case State::kPartHeaders:
      where = "inside a part's headers";
      break;
    case State::kPartData:
      where = "inside a part's data";
      break;
  }
  status_ = MakeMultipartError(
      MultipartError::kTruncatedBody,
      absl::StrCat("multipart body ended ", AbslView(where), ", without the close delimiter"));
  return status_;
}

// The hot path. Everything between delimiters goes to Content() as whole runs of the
// caller's input; only finder_ ever looks inside file payload.
absl::Status MultipartParser::ScanContent(const char*& p, const char* end) {
  if (held_ > 0) {
    const State before = state_;
    RETURN_IF_ERROR(ResolveHeld(p, end));
    if (held_ > 0 || state_ != before) return absl::OkStatus();
  }
  const size_t m = finder_.pattern().size();
  const char* from = p;
  while (true) {
    const char* hit = finder_.Find(from, end);
    if (hit == nullptr) {
      const size_t tail = finder_.PartialMatchAtEnd(from, end);
      RETURN_IF_ERROR(Content(p, static_cast<size_t>(end - tail - p)));
      held_ = tail;
      p = end;
      return absl::OkStatus();
    }
    const char* after = hit + m;
    if (after == end) {
      RETURN_IF_ERROR(Content(p, static_cast<size_t>(hit - p)));
      held_ = m;
      p = end;
      return absl::OkStatus();
    }
    const char c = *after;
    if (c == ' ' || c == '\t' || c == '\r') {
      RETURN_IF_ERROR(Content(p, static_cast<size_t>(hit - p)));
      p = after;  // the padding and CRLF are the delimiter line's
      return PartDelimiter();
    }
    if (c == '-') {
      if (after + 1 == end) {
        RETURN_IF_ERROR(Content(p, static_cast<size_t>(hit - p)));
        held_ = m + 1;
        p = end;
        return absl::OkStatus();
      }
      if (after[1] == '-') {
        RETURN_IF_ERROR(Content(p, static_cast<size_t>(hit - p)));
        p = after + 2;
        return CloseDelimiter();
      }
    }
    // "\r\n--boundary" then something else is content. No delimiter can start inside
    // the match (its CR is the pattern's only one), so the search resumes after it.
    from = after;
  }
}

// Classifies held-back delimiter bytes with the new input. Leaves held_ > 0 only when
// the input ran out (p == end) before the question was settled.
absl::Status MultipartParser::ResolveHeld(const char*& p, const char* end) {
  const size_t m = finder_.pattern().size();
  if (held_ < m) {
    const size_t n = std::min(m - held_, static_cast<size_t>(end - p));
    if (std::memcmp(p, delimiter_.data() + held_, n) != 0) return ReleaseHeld();
    p += n;
    held_ += n;
    if (held_ < m) return absl::OkStatus();
  }
  if (p == end) return absl::OkStatus();
  if (held_ == m) {
    const char c = *p;
    if (c == ' ' || c == '\t' || c == '\r') {
      held_ = 0;
      return PartDelimiter();
    }
    if (c != '-') return ReleaseHeld();
    ++p;
    held_ = m + 1;
    if (p == end) return absl::OkStatus();
  }
  if (*p != '-') return ReleaseHeld();
  ++p;
  held_ = 0;
  return CloseDelimiter();
}

// Held-back bytes that are not a delimiter after all are content. Like the pattern's
// CR, the byte that disproved them may start a delimiter, so it is not consumed here.
absl::Status MultipartParser::ReleaseHeld() {
  const size_t n = held_;
  held_ = 0;
  return Content(delimiter_.data(), n);
}

absl::Status MultipartParser::Content(const char* data, size_t size) {
  if (size == 0 || state_ != State::kPartData) return absl::OkStatus();
  if (!in_file_) {
    const size_t room = limits_.max_field_size - field_bytes_;
    if (size > room) [[unlikely]] {
      // Handing over exactly the allowed bytes first keeps what the handler sees
      // independent of how the input was sliced.
      if (room > 0) RETURN_IF_ERROR(handler_->OnPartData(std::string_view(data, room)));
      field_bytes_ = limits_.max_field_size;
      return MakeMultipartError(
          MultipartError::kFieldTooLarge,
          absl::StrCat("multipart field \"", absl::CHexEscape(headers_.name.substr(0, 64)),
                       "\" is larger than ", limits_.max_field_size,
                       " bytes (MAX_FIELD_SIZE)"));
    }
    field_bytes_ += size;
  }
  return handler_->OnPartData(std::string_view(data, size));
}

absl::Status MultipartParser::PartDelimiter() {
  if (state_ == State::kPartData) RETURN_IF_ERROR(handler_->OnPartEnd());
  state_ = State::kDelimiterLine;
  delimiter_cr_ = false;
  return absl::OkStatus();
}

absl::Status MultipartParser::CloseDelimiter() {
  if (state_ == State::kPartData) RETURN_IF_ERROR(handler_->OnPartEnd());
  state_ = State::kEpilogue;
  return handler_->OnBodyEnd();
}

// Padding is a handful of bytes at most in practice, so a byte loop is fine here; an
// endless run of it costs the sender as much as it costs us and is never stored.
absl::Status MultipartParser::ScanDelimiterLine(const char*& p, const char* end) {
  while (p < end) {
    const char c = *p;
    if (!delimiter_cr_) {
      if (c == ' ' || c == '\t') {
        ++p;
        continue;
      }
      if (c == '\r') {
        delimiter_cr_ = true;
        ++p;
        continue;
      }
    } else if (c == '\n') {
      ++p;
      return BeginPartHeaders();
    }
    return MakeMultipartError(
        MultipartError::kMalformedDelimiter,
        absl::StrCat("multipart delimiter line has \"", absl::CHexEscape(absl::string_view(p, 1)),
                     "\" where only padding and CRLF may follow the boundary"));
  }
  return absl::OkStatus();
}

absl::Status MultipartParser::BeginPartHeaders() {
  if (parts_ >= limits_.max_parts) {
    return MakeMultipartError(
        MultipartError::kTooManyParts,
        absl::StrCat("multipart body has more than ", limits_.max_parts,
                     " parts (MAX_PARTS)"));
  }
  state_ = State::kPartHeaders;
  header_buf_.assign("\r\n");
  return absl::OkStatus();
}

absl::Status MultipartParser::ScanPartHeaders(const char*& p, const char* end) {
  static constexpr std::string_view kEnd = "\r\n\r\n";
  const size_t have = header_buf_.size() - 2;  // < max_part_header_bytes, or 0
  const size_t n = static_cast<size_t>(end - p);
  // Only this much input can belong to a block within the limit, so no search looks
  // further, whatever the slice size.
  const size_t take = std::min(n, limits_.max_part_header_bytes - have);

  // A terminator that starts in what is already buffered ends in the first 3 bytes.
  size_t found = std::string_view::npos;  // bytes of input up to the terminator's end
  {
    char joint[6];
    const size_t back = std::min<size_t>(3, header_buf_.size());
    const size_t front = std::min<size_t>(3, take);
    std::memcpy(joint, header_buf_.data() + header_buf_.size() - back, back);
    std::memcpy(joint + back, p, front);
    const std::string_view j(joint, back + front);
    const size_t at = j.find(kEnd);
    if (at != std::string_view::npos && at < back) found = at + kEnd.size() - back;
  }
  if (found == std::string_view::npos && take > 0) {
    const char* at = FindHeaderBlockEnd(p, take);
    if (at != nullptr) found = static_cast<size_t>(at - p) + kEnd.size();
  }
  if (found != std::string_view::npos) {
    header_buf_.append(p, found);
    p += found;
    return EndPartHeaders();
  }
  if (take < n || have + n >= limits_.max_part_header_bytes) {
    return MakeMultipartError(
        MultipartError::kPartHeaderTooLarge,
        absl::StrCat("multipart part header block is larger than ",
                     limits_.max_part_header_bytes, " bytes (MAX_PART_HEADER_BYTES)"));
  }
  header_buf_.append(p, n);
  p = end;
  return absl::OkStatus();
}

absl::Status MultipartParser::EndPartHeaders() {
  RETURN_IF_ERROR(
      header_parser_.Parse(std::string_view(header_buf_).substr(2), &headers_));
  ++parts_;
  in_file_ = headers_.is_file();
  field_bytes_ = 0;
  held_ = 0;
  state_ = State::kPartData;
  return handler_->OnPartBegin(headers_);
}

}  // namespace spillway
