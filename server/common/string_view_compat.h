// Debian 12's Abseil (20220623) is built with ABSL_OPTION_USE_STD_STRING_VIEW = 0: its
// absl::string_view is a distinct type, so absl::StrCat, StrSplit, Status messages and
// friends do not accept std::string_view. Spillway's own APIs use std::string_view and
// convert at the Abseil call with these two functions. Header-only, no state.
#ifndef SPILLWAY_SERVER_COMMON_STRING_VIEW_COMPAT_H_
#define SPILLWAY_SERVER_COMMON_STRING_VIEW_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace spillway {

inline absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

inline std::string_view StdView(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

}  // namespace spillway

#endif  // SPILLWAY_SERVER_COMMON_STRING_VIEW_COMPAT_H_
