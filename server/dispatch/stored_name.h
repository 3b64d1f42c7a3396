// The name a built-in sink stores an uploaded file under. The uploader's filename is
// never used as a path: only the last path segment survives, reduced to a safe
// alphabet, and is prefixed with the upload id and the file's index, so that names
// are unique, never hidden, never "." or "..", and never contain a separator.
// Free function, no state: safe from any thread.
#ifndef SPILLWAY_SERVER_DISPATCH_STORED_NAME_H_
#define SPILLWAY_SERVER_DISPATCH_STORED_NAME_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace spillway {

// "<upload_id>-<index>-<safe>", where <safe> is `filename`'s last segment after any
// '/' or '\\', with every byte outside [A-Za-z0-9._-] replaced by '_', leading dots
// dropped, at most kMaxSafeNameBytes bytes (the extension kept when cut), and "file"
// when nothing is left. REQUIRES: upload_id is [0-9a-f]+ (Dispatcher ids are).
std::string StoredFileName(std::string_view upload_id, size_t index,
                           std::string_view filename);

inline constexpr size_t kMaxSafeNameBytes = 100;

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_STORED_NAME_H_
