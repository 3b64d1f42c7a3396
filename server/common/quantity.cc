#include "server/common/quantity.h"

#include <array>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/common/string_view_compat.h"

namespace spillway {
namespace {

using uint128 = unsigned __int128;

constexpr std::array<std::pair<std::string_view, uint64_t>, 12> kSuffixes = {{
    {"Ki", uint64_t{1} << 10}, {"Mi", uint64_t{1} << 20}, {"Gi", uint64_t{1} << 30},
    {"Ti", uint64_t{1} << 40}, {"Pi", uint64_t{1} << 50}, {"Ei", uint64_t{1} << 60},
    {"k", 1'000}, {"M", 1'000'000}, {"G", 1'000'000'000},
    {"T", 1'000'000'000'000}, {"P", 1'000'000'000'000'000},
    {"E", 1'000'000'000'000'000'000},
}};

absl::Status InvalidSize(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid size \"", AbslView(text), "\": ", AbslView(why),
                   " (expected bytes or a quantity such as 1048576, 10Mi, 2.5Mi, "
                   "256Ki, 10M or 256k)"));
}

}  // namespace

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  const std::string_view original = text;
  text = StdView(absl::StripAsciiWhitespace(AbslView(text)));
  size_t digits_end = 0;
  while (digits_end < text.size() &&
         (absl::ascii_isdigit(text[digits_end]) || text[digits_end] == '.')) {
    ++digits_end;
  }
  const std::string_view number = text.substr(0, digits_end);
  const std::string_view suffix = text.substr(digits_end);
  if (number.empty()) return InvalidSize(original, "no number");

  uint64_t multiplier = 1;
  if (!suffix.empty()) {
    multiplier = 0;
    for (const auto& [name, value] : kSuffixes) {
      if (suffix == name) multiplier = value;
    }
    if (multiplier == 0) {
      return InvalidSize(original, absl::StrCat("unknown unit \"", AbslView(suffix), "\""));
    }
  }

  // value = mantissa / 10^scale, computed exactly in 128 bits.
  uint128 mantissa = 0;
  uint128 scale = 1;
  bool seen_point = false;
  bool seen_digit = false;
  for (char c : number) {
    if (c == '.') {
      if (seen_point) return InvalidSize(original, "more than one decimal point");
      seen_point = true;
      continue;
    }
    seen_digit = true;
    mantissa = mantissa * 10 + static_cast<uint128>(c - '0');
    if (seen_point) scale *= 10;
    if (mantissa > (uint128{1} << 100) || scale > (uint128{1} << 60)) {
      return InvalidSize(original, "too large");
    }
  }
  if (!seen_digit) return InvalidSize(original, "no digits");

  const uint128 scaled = mantissa * multiplier;
  if (scaled % scale != 0) {
    return InvalidSize(original, "not a whole number of bytes");
  }
  const uint128 bytes = scaled / scale;
  if (bytes > UINT64_MAX) return InvalidSize(original, "too large");
  return static_cast<uint64_t>(bytes);
}

absl::StatusOr<absl::Duration> ParseNonNegativeDuration(std::string_view text) {
  absl::Duration duration;
  const std::string stripped(absl::StripAsciiWhitespace(AbslView(text)));
  if (!absl::ParseDuration(stripped, &duration) || duration < absl::ZeroDuration() ||
      duration == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid duration \"", AbslView(text), "\" (expected a value such as 500ms, 10s, 2m)"));
  }
  return duration;
}

}  // namespace spillway
