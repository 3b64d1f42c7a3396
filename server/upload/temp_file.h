// TempFile is one spilled upload's file on disk: an open, exclusively flock()ed
// descriptor and the path it was created at. It is created only by
// TempDirectory::Create() (0600, unguessable name, never derived from the uploader's
// filename) and removed when the TempFile is destroyed, whatever way the upload ended.
//
// Ownership: move-only RAII. The destructor unlinks the path and then closes the
// descriptor, which releases the lock; a moved-from TempFile owns nothing. If the
// process dies instead, the lock dies with it and TempDirectory::SweepLeftovers()
// removes the file at the next start-up.
//
// Threading: not thread-safe; owned by one thread at a time. fd() may be shared with
// concurrent readers that use pread() (which does not move the file offset) as long as
// the TempFile outlives them.
#ifndef SPILLWAY_SERVER_UPLOAD_TEMP_FILE_H_
#define SPILLWAY_SERVER_UPLOAD_TEMP_FILE_H_

#include <string>

#include "server/common/unique_fd.h"

namespace spillway {

class TempFile {
 public:
  TempFile(TempFile&& other) noexcept;
  // Removes the file this object owned before taking over `other`'s.
  TempFile& operator=(TempFile&& other) noexcept;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile();

  // The path the file was created at ("" once moved from). The name stays valid until
  // destruction: only this object, or a sweep after this process died, removes it.
  const std::string& path() const { return path_; }

  // The open read-write descriptor (-1 once moved from). Owned by this object: do not
  // close it. The file offset is shared by everyone using the descriptor.
  int fd() const { return fd_.get(); }

  bool valid() const { return fd_.valid(); }

 private:
  friend class TempDirectory;
  // REQUIRES: `fd` is open on `path` and holds flock(LOCK_EX).
  TempFile(std::string path, UniqueFd fd);

  void Remove();

  std::string path_;
  UniqueFd fd_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_TEMP_FILE_H_
