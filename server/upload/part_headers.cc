#include "server/upload/part_headers.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/common/string_view_compat.h"
#include "server/common/utf8.h"
#include "server/upload/header_params.h"
#include "server/upload/multipart_error.h"

namespace spillway {
namespace {

// Error messages quote what the client sent, escaped and cut short: they end up in logs.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string out = absl::CHexEscape(AbslView(s.substr(0, kMax)));
  if (s.size() > kMax) out += "...";
  return out;
}

absl::Status Malformed(std::string_view what) {
  return MakeMultipartError(MultipartError::kMalformedPartHeader,
                            absl::StrCat("malformed multipart part header: ", AbslView(what)));
}

// The end of the line starting at `pos` (the index of its CR), or an error for a line
// without CRLF or with a bare CR or LF inside.
absl::Status FindLineEnd(std::string_view block, size_t pos, size_t* eol) {
  const void* lf = std::memchr(block.data() + pos, '\n', block.size() - pos);
  if (lf == nullptr) return Malformed("header line without CRLF");
  const size_t at = static_cast<size_t>(static_cast<const char*>(lf) - block.data());
  if (at == pos || block[at - 1] != '\r') return Malformed("bare LF in header block");
  if (std::memchr(block.data() + pos, '\r', at - 1 - pos) != nullptr) {
    return Malformed("bare CR in header block");
  }
  *eol = at - 1;
  return absl::OkStatus();
}

// Plain name= and filename= values cannot hold CR or LF (those end the header line),
// but NUL, ESC and the other control bytes get through a quoted string; a consumer
// would get them in names and environment variables (a NUL cuts one short).
bool HasControlByte(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7F;
  });
}

// Names, filenames and content types reach gRPC consumers in proto3 strings, which
// must be UTF-8 (see utf8.h).
absl::Status CheckUtf8(std::string_view what, std::string_view value) {
  if (IsValidUtf8(value)) return absl::OkStatus();
  return Malformed(
      absl::StrCat(AbslView(what), " \"", Quote(value), "\" is not valid UTF-8"));
}

// Assigns into an engaged optional, keeping the capacity of the previous part's name.
void SetFilename(std::string_view value, PartHeaders* out) {
  if (out->filename.has_value()) {
    out->filename->assign(value);
  } else {
    out->filename.emplace(value);
  }
}

}  // namespace

void PartHeaders::Clear() {
  name.clear();
  filename.reset();
  content_type.clear();
}

absl::Status PartHeaderParser::Parse(std::string_view block, PartHeaders* out) {
  // out->filename stays engaged for ParseContentDisposition to reuse its capacity.
  out->name.clear();
  out->content_type.clear();
  bool seen_disposition = false;
  bool seen_content_type = false;
  size_t pos = 0;
  while (true) {
    size_t eol;
    RETURN_IF_ERROR(FindLineEnd(block, pos, &eol));
    const std::string_view line = block.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) break;  // the empty line that ends the block
    if (line[0] == ' ' || line[0] == '\t') {
      return Malformed("folded continuation line without a header before it");
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return Malformed(absl::StrCat("line without a colon: \"", Quote(line), "\""));
    }
    const std::string_view name = line.substr(0, colon);
    if (name.empty()) return Malformed("empty header name");
    for (char c : name) {
      if (!IsTokenChar(static_cast<unsigned char>(c))) {
        return Malformed(absl::StrCat("invalid header name \"", Quote(name), "\""));
      }
    }
    std::string_view value = TrimOws(line.substr(colon + 1));

    // Obsolete line folding (RFC 7230 §3.2.4): each fold becomes one space.
    if (pos < block.size() && (block[pos] == ' ' || block[pos] == '\t')) {
      unfolded_.assign(value);
      while (pos < block.size() && (block[pos] == ' ' || block[pos] == '\t')) {
        RETURN_IF_ERROR(FindLineEnd(block, pos, &eol));
        const std::string_view more = TrimOws(block.substr(pos, eol - pos));
        pos = eol + 2;
        if (more.empty()) continue;
        if (!unfolded_.empty()) unfolded_.push_back(' ');
        unfolded_.append(more);
      }
      value = unfolded_;
    }

    if (EqualsIgnoreCaseAscii(name, "Content-Disposition")) {
      if (seen_disposition) return Malformed("Content-Disposition given twice");
      seen_disposition = true;
      RETURN_IF_ERROR(ParseContentDisposition(value, out));
    } else if (EqualsIgnoreCaseAscii(name, "Content-Type")) {
      if (seen_content_type) return Malformed("Content-Type given twice");
      seen_content_type = true;
      RETURN_IF_ERROR(CheckUtf8("Content-Type", value));
      out->content_type.assign(value);
    }
  }
  if (!seen_disposition) {
    return MakeMultipartError(MultipartError::kMissingFormDataName,
                              "multipart part without a Content-Disposition header");
  }
  return absl::OkStatus();
}

absl::Status PartHeaderParser::ParseContentDisposition(std::string_view value,
                                                       PartHeaders* out) {
  std::string_view params;
  const std::string_view type = SplitHeaderValue(value, &params);
  if (!EqualsIgnoreCaseAscii(type, "form-data")) {
    return MakeMultipartError(
        MultipartError::kMissingFormDataName,
        absl::StrCat("multipart part has Content-Disposition \"", Quote(type),
                     "\", not form-data"));
  }
  out->name.clear();
  bool seen_name = false;
  bool seen_filename = false;
  bool seen_filename_star = false;
  HeaderParamReader reader(params);
  std::string_view attribute;
  while (reader.Next(&attribute, &value_)) {
    if (EqualsIgnoreCaseAscii(attribute, "name")) {
      if (seen_name) return Malformed("Content-Disposition name given twice");
      seen_name = true;
      if (HasControlByte(value_)) {
        return Malformed(absl::StrCat("control character in name \"", Quote(value_), "\""));
      }
      RETURN_IF_ERROR(CheckUtf8("name", value_));
      out->name.assign(value_);
    } else if (EqualsIgnoreCaseAscii(attribute, "filename")) {
      if (seen_filename) return Malformed("Content-Disposition filename given twice");
      seen_filename = true;
      if (HasControlByte(value_)) {
        return Malformed(
            absl::StrCat("control character in filename \"", Quote(value_), "\""));
      }
      RETURN_IF_ERROR(CheckUtf8("filename", value_));
      if (!seen_filename_star) SetFilename(value_, out);
    } else if (EqualsIgnoreCaseAscii(attribute, "filename*")) {
      if (seen_filename_star) return Malformed("Content-Disposition filename* given twice");
      seen_filename_star = true;
      RETURN_IF_ERROR(DecodeRfc5987Value(value_, &decoded_));
      RETURN_IF_ERROR(CheckUtf8("filename*", decoded_));
      SetFilename(decoded_, out);
    }
  }
  if (!seen_filename && !seen_filename_star) out->filename.reset();
  if (reader.malformed()) {
    return Malformed(absl::StrCat("cannot parse Content-Disposition parameters \"",
                                  Quote(params), "\""));
  }
  if (out->name.empty()) {
    return MakeMultipartError(MultipartError::kMissingFormDataName,
                              seen_name ? "multipart part has an empty form-data name"
                                        : "multipart part has no form-data name");
  }
  return absl::OkStatus();
}

absl::Status DecodeRfc5987Value(std::string_view ext_value, std::string* out) {
  const size_t q1 = ext_value.find('\'');
  const size_t q2 = q1 == std::string_view::npos ? q1 : ext_value.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) {
    return Malformed(
        absl::StrCat("filename* is not charset'lang'value: \"", Quote(ext_value), "\""));
  }
  const std::string_view charset = ext_value.substr(0, q1);
  const bool utf8 = EqualsIgnoreCaseAscii(charset, "UTF-8");
  if (!utf8 && !EqualsIgnoreCaseAscii(charset, "ISO-8859-1")) {
    return Malformed(absl::StrCat("unsupported filename* charset \"", Quote(charset), "\""));
  }
  const std::string_view encoded = ext_value.substr(q2 + 1);
  out->clear();
  for (size_t i = 0; i < encoded.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(encoded[i]);
    if (c == '%') {
      const bool complete = i + 2 < encoded.size();
      const int hi = complete ? HexDigitValue(encoded[i + 1]) : -1;
      const int lo = complete ? HexDigitValue(encoded[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return Malformed(absl::StrCat("bad percent-encoding in filename* \"",
                                      Quote(ext_value), "\""));
      }
      c = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
    }
    if (c < 0x20 || c == 0x7F) {
      // As for plain filename= (HasControlByte): no CR, LF or NUL into names downstream.
      return Malformed(
          absl::StrCat("control character in filename* \"", Quote(ext_value), "\""));
    }
    if (!utf8 && c >= 0x80) {
      // ISO-8859-1 maps byte for byte onto U+0000..U+00FF.
      out->push_back(static_cast<char>(0xC0 | (c >> 6)));
      out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  if (utf8 && !IsValidUtf8(*out)) {
    return Malformed(
        absl::StrCat("filename* is not valid UTF-8: \"", Quote(ext_value), "\""));
  }
  return absl::OkStatus();
}

}  // namespace spillway
