#include "server/upload/temp_directory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/common/string_view_compat.h"
#include "server/common/unique_fd.h"

namespace spillway {
namespace {

constexpr size_t kRandomBytes = 16;  // 128 bits: 32 hex digits.

// Collisions with a 128-bit random name only happen when something else creates our
// names; a few retries are plenty, and a bound keeps a broken directory from spinning.
constexpr int kMaxCreateAttempts = 8;

absl::StatusOr<std::string> RandomName() {
  unsigned char bytes[kRandomBytes];
  size_t filled = 0;
  while (filled < sizeof(bytes)) {
    const ssize_t n = ::getrandom(bytes + filled, sizeof(bytes) - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "getrandom() for a temp file name");
    }
    filled += static_cast<size_t>(n);
  }
  return absl::StrCat(
      AbslView(TempDirectory::kFilePrefix),
      absl::BytesToHexString(
          absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes))));
}

bool IsOurName(std::string_view name) {
  if (!name.starts_with(TempDirectory::kFilePrefix)) return false;
  name.remove_prefix(TempDirectory::kFilePrefix.size());
  if (name.size() != 2 * kRandomBytes) return false;
  for (char c : name) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

int FlockRetryingEintr(int fd, int operation) {
  int rc;
  do {
    rc = ::flock(fd, operation);
  } while (rc != 0 && errno == EINTR);
  return rc;
}

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};

}  // namespace

absl::StatusOr<TempDirectory> TempDirectory::Open(std::string dir) {
  if (dir.empty()) {
    const char* tmpdir = std::getenv("TMPDIR");
    dir = (tmpdir != nullptr && *tmpdir != '\0') ? tmpdir : "/tmp";
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();

  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat("temp directory \"", absl::CEscape(dir), "\""));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "temp directory \"", absl::CEscape(dir), "\" is not a directory"));
  }
  // access() also reports a read-only file system (EROFS) for W_OK.
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    const int err = errno;
    return absl::Status(
        err == EROFS ? absl::StatusCode::kFailedPrecondition
                     : absl::StatusCode::kPermissionDenied,
        absl::StrCat("temp directory \"", absl::CEscape(dir),
                     "\" is not writable: ", absl::ErrnoToStatus(err, "").message()));
  }
  return TempDirectory(std::move(dir));
}

absl::StatusOr<TempFile> TempDirectory::Create() const {
  for (int attempt = 0; attempt < kMaxCreateAttempts; ++attempt) {
    ASSIGN_OR_RETURN(std::string name, RandomName());
    std::string path = absl::StrCat(path_, "/", name);
    UniqueFd fd(::open(path.c_str(),
                       O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) {
      if (errno == EEXIST || errno == EINTR) continue;
      return absl::ErrnoToStatus(
          errno, absl::StrCat("creating a temp file in \"", absl::CEscape(path_), "\""));
    }
    // Between open() and this flock() the file exists unlocked, and a sweeper (maybe in
    // another replica) may take it. Never block on it: the sweeper removes the file, so
    // drop that name and try a fresh one.
    if (FlockRetryingEintr(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::unlink(path.c_str());
      if (err == EWOULDBLOCK) continue;
      return absl::ErrnoToStatus(err, absl::StrCat("locking temp file \"", path, "\""));
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) {
      const int err = errno;
      ::unlink(path.c_str());
      return absl::ErrnoToStatus(err, absl::StrCat("fstat of temp file \"", path, "\""));
    }
    // A sweeper got the lock first, removed the name and let go before our flock().
    if (st.st_nlink == 0) continue;
    // A default ACL on the directory can widen the mode open() asked for.
    if ((st.st_mode & 07777) != 0600 && ::fchmod(fd.get(), 0600) != 0) {
      const int err = errno;
      ::unlink(path.c_str());
      return absl::ErrnoToStatus(err, absl::StrCat("chmod of temp file \"", path, "\""));
    }
    return TempFile(std::move(path), std::move(fd));
  }
  return absl::AbortedError(absl::StrCat("could not create a temp file in \"",
                                         absl::CEscape(path_), "\" after ",
                                         kMaxCreateAttempts, " attempts"));
}

absl::StatusOr<int> TempDirectory::SweepLeftovers() const {
  std::unique_ptr<DIR, DirCloser> dir(::opendir(path_.c_str()));
  if (dir == nullptr) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat("opening temp directory \"", absl::CEscape(path_), "\""));
  }
  // Collect names first: the directory is not modified while it is being read.
  std::vector<std::string> candidates;
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir.get());
    if (entry == nullptr) {
      if (errno != 0) {
        return absl::ErrnoToStatus(
            errno, absl::StrCat("reading temp directory \"", absl::CEscape(path_), "\""));
      }
      break;
    }
    if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN) continue;
    if (IsOurName(entry->d_name)) candidates.emplace_back(entry->d_name);
  }

  const int dir_fd = ::dirfd(dir.get());
  int removed = 0;
  for (const std::string& name : candidates) {
    // O_NONBLOCK: never hang on a FIFO planted under one of our names.
    UniqueFd fd(::openat(dir_fd, name.c_str(),
                         O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd.valid()) continue;
    // A live TempFile holds LOCK_EX on its own open file description, so this fails for
    // every file in use, in this process or any other.
    if (FlockRetryingEintr(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    struct stat by_fd;
    struct stat by_name;
    if (::fstat(fd.get(), &by_fd) != 0 || !S_ISREG(by_fd.st_mode) ||
        by_fd.st_nlink == 0) {
      continue;  // Not a regular file, or another sweeper removed it meanwhile.
    }
    // Remove the name only if it still names the inode we hold locked.
    if (::fstatat(dir_fd, name.c_str(), &by_name, AT_SYMLINK_NOFOLLOW) != 0 ||
        by_name.st_dev != by_fd.st_dev || by_name.st_ino != by_fd.st_ino) {
      continue;
    }
    if (::unlinkat(dir_fd, name.c_str(), 0) == 0) ++removed;
  }
  return removed;
}

}  // namespace spillway
