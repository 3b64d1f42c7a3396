#include "server/dispatch/stored_name.h"

#include "absl/strings/str_cat.h"
#include "server/common/string_view_compat.h"

namespace spillway {
namespace {

bool IsSafe(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

std::string SafeName(std::string_view filename) {
  // Browsers on Windows may send a full path; curl sends what it was given.
  if (size_t slash = filename.find_last_of("/\\"); slash != std::string_view::npos) {
    filename.remove_prefix(slash + 1);
  }
  std::string safe;
  for (char c : filename) {
    const char mapped = IsSafe(c) ? c : '_';
    // A UTF-8 name becomes one '_' per run of foreign bytes, not one per byte.
    if (mapped == '_' && !IsSafe(c) && !safe.empty() && safe.back() == '_') continue;
    safe.push_back(mapped);
  }
  size_t dots = safe.find_first_not_of('.');
  safe.erase(0, dots == std::string::npos ? safe.size() : dots);
  if (safe.size() > kMaxSafeNameBytes) {
    // Keep a short extension: it is what tells a reader what the file is.
    const size_t dot = safe.rfind('.');
    const size_t extension =
        dot != std::string::npos && safe.size() - dot <= 16 ? safe.size() - dot : 0;
    safe = safe.substr(0, kMaxSafeNameBytes - extension) + safe.substr(safe.size() - extension);
  }
  if (safe.empty()) safe = "file";
  return safe;
}

}  // namespace

std::string StoredFileName(std::string_view upload_id, size_t index,
                           std::string_view filename) {
  return absl::StrCat(AbslView(upload_id), "-", index, "-", SafeName(filename));
}

}  // namespace spillway
