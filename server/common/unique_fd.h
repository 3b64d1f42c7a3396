// UniqueFd owns one POSIX file descriptor and closes it when destroyed: the only way
// Spillway holds a descriptor, so none leaks on an error path. Move-only; not
// thread-safe (an fd is owned by one thread at a time, like the object holding it).
#ifndef SPILLWAY_SERVER_COMMON_UNIQUE_FD_H_
#define SPILLWAY_SERVER_COMMON_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace spillway {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }

  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_COMMON_UNIQUE_FD_H_
