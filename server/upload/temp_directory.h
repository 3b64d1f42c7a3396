// TempDirectory is the directory that spilled uploads live in (FILE_UPLOAD_TEMP_DIR).
// It names and creates TempFiles, and at start-up removes the ones a crashed process
// left behind.
//
// Files are named "spillway-" followed by 32 hex digits from getrandom(): unguessable,
// and never derived from anything the uploader sent. Every live TempFile holds
// flock(LOCK_EX) on its file for its whole life; a file whose lock can be taken belongs
// to no live process. That is what lets several replicas (or processes) share one
// directory: a sweep only ever removes files nobody holds.
//
// Ownership: a small value holding the directory's path; it owns no files (each
// TempFile owns its own). Copyable.
// Threading: immutable after Open(), so Create() and SweepLeftovers() may be called
// concurrently from any number of threads (and processes).
#ifndef SPILLWAY_SERVER_UPLOAD_TEMP_DIRECTORY_H_
#define SPILLWAY_SERVER_UPLOAD_TEMP_DIRECTORY_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "server/upload/temp_file.h"

namespace spillway {

class TempDirectory {
 public:
  // The prefix of every file this class creates; SweepLeftovers() only ever looks at
  // names of exactly this prefix followed by 32 lower-case hex digits.
  static constexpr std::string_view kFilePrefix = "spillway-";

  // `dir` "" means $TMPDIR, or /tmp when that is unset or empty. The directory must
  // exist and be writable and searchable by this process; otherwise the error
  // (kNotFound, kFailedPrecondition or kPermissionDenied) names it.
  static absl::StatusOr<TempDirectory> Open(std::string dir);

  // The directory, as given (trailing slashes removed).
  const std::string& path() const { return path_; }

  // Creates a new, empty file, mode 0600, open read-write with O_CLOEXEC, locked with
  // flock(LOCK_EX) until the returned TempFile is destroyed.
  absl::StatusOr<TempFile> Create() const;

  // Removes leftover files (see kFilePrefix) that no live process holds locked, and
  // returns how many it removed. Files it cannot open (another user's), non-regular
  // files and locked files are skipped silently; only a failure to read the directory
  // itself is an error. Meant for start-up, but safe at any time.
  absl::StatusOr<int> SweepLeftovers() const;

 private:
  explicit TempDirectory(std::string path) : path_(std::move(path)) {}

  std::string path_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_TEMP_DIRECTORY_H_
