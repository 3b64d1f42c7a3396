#include "server/dispatch/dir_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "server/common/string_view_compat.h"
#include "server/common/unique_fd.h"
#include "server/dispatch/stored_name.h"

namespace spillway {
namespace {

absl::Status ErrnoStatus(int error, std::string_view what) {
  std::string message = absl::StrCat(AbslView(what), ": ", std::strerror(error));
  switch (error) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

class DirSinkFile final : public SinkFile {
 public:
  DirSinkFile(UniqueFd fd, std::string partial_path, std::string final_path,
              std::string stored_name)
      : fd_(std::move(fd)),
        partial_path_(std::move(partial_path)),
        final_path_(std::move(final_path)),
        stored_name_(std::move(stored_name)) {}

  ~DirSinkFile() override {
    if (!published_) unlink(partial_path_.c_str());
  }

  absl::Status Write(std::string_view data) override {
    while (!data.empty()) {
      const ssize_t n = write(fd_.get(), data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "writing to the sink directory");
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<std::string>> Finish() override {
    // The data must be on disk before the name is: after a crash, a stored name
    // never points at a short file.
    if (fsync(fd_.get()) != 0) return ErrnoStatus(errno, "fsync in the sink directory");
    fd_.reset();
    return std::optional<std::string>(stored_name_);
  }

  absl::Status Publish() override {
    if (rename(partial_path_.c_str(), final_path_.c_str()) != 0) {
      return ErrnoStatus(errno, "renaming in the sink directory");
    }
    published_ = true;
    return absl::OkStatus();
  }

  void Withdraw() override {
    if (published_) unlink(final_path_.c_str());
  }

 private:
  UniqueFd fd_;  // open until Finish()
  const std::string partial_path_;
  const std::string final_path_;
  const std::string stored_name_;
  bool published_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DirSink>> DirSink::Open(std::string dir) {
  if (dir.empty()) return absl::InvalidArgumentError("dir: sink needs a path");
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create sink directory ", dir, ": ", error.message()));
  }
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("sink directory ", dir, " is not writable: ", std::strerror(errno)));
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return std::unique_ptr<DirSink>(new DirSink(std::move(dir)));
}

absl::StatusOr<std::unique_ptr<SinkFile>> DirSink::NewFile(std::string_view upload_id,
                                                           size_t index,
                                                           std::string_view filename) {
  std::string stored_name = StoredFileName(upload_id, index, filename);
  // Hidden, so that whoever watches the directory can skip unfinished files.
  std::string partial_path = absl::StrCat(dir_, "/.partial-", stored_name);
  std::string final_path = absl::StrCat(dir_, "/", stored_name);
  // O_TRUNC rather than O_EXCL: a redelivery of the same upload (same id) after a
  // broken attempt may meet its predecessor's partial file.
  const int fd = open(partial_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
                                                O_NOFOLLOW, 0644);
  if (fd < 0) return ErrnoStatus(errno, "creating a file in the sink directory");
  return std::make_unique<DirSinkFile>(UniqueFd(fd), std::move(partial_path),
                                       std::move(final_path), std::move(stored_name));
}

}  // namespace spillway
