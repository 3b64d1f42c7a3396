#include "server/upload/uploaded_file.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"

namespace spillway {

UploadedFile::UploadedFile(std::string field_name, std::string filename,
                           std::string content_type, const UploadedFileOptions& options)
    : field_name_(std::move(field_name)),
      filename_(std::move(filename)),
      content_type_(std::move(content_type)),
      options_(options),
      memory_(static_cast<size_t>(std::min<uint64_t>(options.max_memory_size, SIZE_MAX))),
      spill_charge_(options.spill_budget),
      checksum_kind_(options.checksum),
      checksum_(Checksum::Create(options.checksum)) {}

UploadedFile::UploadedFile(UploadedFile&&) noexcept = default;
UploadedFile& UploadedFile::operator=(UploadedFile&&) noexcept = default;
UploadedFile::~UploadedFile() = default;

std::string_view UploadedFile::path() const {
  return temp_file_.has_value() ? std::string_view(temp_file_->path())
                                : std::string_view();
}

size_t UploadedFile::memory_bytes() const {
  return memory_.heap_bytes() + (write_buffer_ != nullptr ? kWriteBufferSize : 0);
}

absl::Status UploadedFile::CheckReceiving() const {
  switch (state_) {
    case State::kReceiving:
      return absl::OkStatus();
    case State::kFailed:
      return error_;
    case State::kFinished:
      break;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "upload of file \"", absl::CEscape(filename_), "\" is already finished"));
}

absl::Status UploadedFile::Append(std::string_view data) {
  RETURN_IF_ERROR(CheckReceiving());
  if (data.empty()) return absl::OkStatus();
  // Written so that it cannot overflow: size_ <= max_size holds here.
  if (options_.max_size != 0 && data.size() > options_.max_size - size_) {
    return Fail(absl::ResourceExhaustedError(absl::StrCat(
        "file \"", absl::CEscape(filename_), "\" (field \"", absl::CEscape(field_name_),
        "\") exceeds the maximum file size of ", options_.max_size, " bytes")));
  }
  if (!spilled_) {
    // size_ <= max_memory_size holds while in memory.
    if (data.size() <= options_.max_memory_size - size_) {
      memory_.Append(data);
      checksum_.Update(data);
      size_ += data.size();
      return absl::OkStatus();
    }
    if (absl::Status status = Spill(); !status.ok()) return Fail(std::move(status));
  }
  if (absl::Status status = WriteToFile(data); !status.ok()) {
    return Fail(std::move(status));
  }
  checksum_.Update(data);
  size_ += data.size();
  return absl::OkStatus();
}

absl::Status UploadedFile::Spill() {
  if (options_.temp_dir == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "file \"", absl::CEscape(filename_), "\" is larger than the in-memory limit of ",
        options_.max_memory_size, " bytes and no temp directory is configured"));
  }
  ASSIGN_OR_RETURN(TempFile file, options_.temp_dir->Create());
  temp_file_.emplace(std::move(file));
  spilled_ = true;
  for (std::string_view block : memory_.views()) RETURN_IF_ERROR(WriteFully(block));
  memory_.Clear();
  write_buffer_ = std::make_unique_for_overwrite<char[]>(kWriteBufferSize);
  return absl::OkStatus();
}

absl::Status UploadedFile::WriteToFile(std::string_view data) {
  if (data.size() >= kDirectWriteSize) {
    RETURN_IF_ERROR(FlushWriteBuffer());
    return WriteFully(data);
  }
  if (data.size() > kWriteBufferSize - buffered_) RETURN_IF_ERROR(FlushWriteBuffer());
  std::memcpy(write_buffer_.get() + buffered_, data.data(), data.size());
  buffered_ += data.size();
  return absl::OkStatus();
}

absl::Status UploadedFile::FlushWriteBuffer() {
  if (buffered_ == 0) return absl::OkStatus();
  RETURN_IF_ERROR(WriteFully(std::string_view(write_buffer_.get(), buffered_)));
  buffered_ = 0;
  return absl::OkStatus();
}

absl::Status UploadedFile::WriteFully(std::string_view data) {
  // Charged before the bytes reach the disk, so that the budget is never overrun.
  RETURN_IF_ERROR(spill_charge_.Add(
      data.size(), absl::StrCat("spilling file \"", absl::CEscape(filename_), "\"")));
  const int fd = temp_file_->fd();
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == ENOSPC || err == EDQUOT) {
        return InsufficientStorageError(absl::StrCat(
            "no space left in temp directory \"",
            absl::CEscape(options_.temp_dir->path()), "\" (",
            err == ENOSPC ? "ENOSPC" : "EDQUOT", ") while spilling file \"",
            absl::CEscape(filename_), "\" at ", size_, " bytes"));
      }
      return absl::ErrnoToStatus(
          err, absl::StrCat("writing temp file \"", temp_file_->path(),
                            "\" for file \"", absl::CEscape(filename_), "\""));
    }
    // write() to a regular file returns 0 only for a zero-length request; a short
    // write (signal, quota edge) just means "write the rest".
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status UploadedFile::Finish() {
  RETURN_IF_ERROR(CheckReceiving());
  if (spilled_) {
    if (absl::Status status = FlushWriteBuffer(); !status.ok()) {
      return Fail(std::move(status));
    }
    write_buffer_.reset();
  }
  checksum_hex_ = checksum_.FinishHex();
  state_ = State::kFinished;
  return absl::OkStatus();
}

absl::Status UploadedFile::Fail(absl::Status status) {
  state_ = State::kFailed;
  error_ = status;
  memory_.Clear();
  write_buffer_.reset();
  buffered_ = 0;
  temp_file_.reset();  // Unlinks and closes.
  spill_charge_.Release();
  return status;
}

absl::StatusOr<FileChunkReader> UploadedFile::NewReader(size_t chunk_size) const {
  if (state_ != State::kFinished) {
    return absl::FailedPreconditionError(
        absl::StrCat("file \"", absl::CEscape(filename_),
                     "\" can only be read after a successful Finish()"));
  }
  if (chunk_size == 0) {
    return absl::InvalidArgumentError("chunk_size must be positive");
  }
  if (spilled_) return FileChunkReader::ForFile(temp_file_->fd(), size_, chunk_size);
  return FileChunkReader::ForMemory(memory_.views(), chunk_size);
}

}  // namespace spillway
