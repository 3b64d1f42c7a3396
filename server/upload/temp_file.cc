#include "server/upload/temp_file.h"

#include <unistd.h>

#include <utility>

namespace spillway {

TempFile::TempFile(std::string path, UniqueFd fd)
    : path_(std::move(path)), fd_(std::move(fd)) {}

TempFile::TempFile(TempFile&& other) noexcept
    : path_(std::exchange(other.path_, std::string())), fd_(std::move(other.fd_)) {}

TempFile& TempFile::operator=(TempFile&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, std::string());
    fd_ = std::move(other.fd_);
  }
  return *this;
}

TempFile::~TempFile() { Remove(); }

void TempFile::Remove() {
  // Unlink while still holding the lock, then close: a sweeper that gets the lock only
  // after close finds no name left to remove, so it can never take someone else's file.
  // An unlink error (say, the directory was wiped under us) is not actionable here; the
  // close still frees the space.
  if (!path_.empty()) ::unlink(path_.c_str());
  path_.clear();
  fd_.reset();
}

}  // namespace spillway
