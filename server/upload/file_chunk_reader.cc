#include "server/upload/file_chunk_reader.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace spillway {

FileChunkReader::FileChunkReader(std::string_view memory, int fd, uint64_t size,
                                 size_t chunk_size)
    : memory_(memory), fd_(fd), size_(size), chunk_size_(chunk_size) {}

FileChunkReader::~FileChunkReader() = default;

FileChunkReader FileChunkReader::ForMemory(std::string_view data, size_t chunk_size) {
  return FileChunkReader(data, -1, data.size(), chunk_size);
}

FileChunkReader FileChunkReader::ForFile(int fd, uint64_t size, size_t chunk_size) {
  return FileChunkReader(std::string_view(), fd, size, chunk_size);
}

absl::StatusOr<std::string_view> FileChunkReader::Next() {
  const size_t want =
      static_cast<size_t>(std::min<uint64_t>(chunk_size_, size_ - offset_));
  if (want == 0) return std::string_view();
  if (fd_ < 0) {
    std::string_view chunk = memory_.substr(offset_, want);
    offset_ += want;
    return chunk;
  }
  if (buffer_ == nullptr) {
    // Never larger than the file: a huge chunk_size on a small file costs nothing.
    buffer_ = std::make_unique_for_overwrite<char[]>(
        static_cast<size_t>(std::min<uint64_t>(chunk_size_, size_)));
  }
  size_t got = 0;
  while (got < want) {
    const ssize_t n = ::pread(fd_, buffer_.get() + got, want - got,
                              static_cast<off_t>(offset_ + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "reading a spilled upload's temp file");
    }
    if (n == 0) {
      return absl::DataLossError(absl::StrCat(
          "spilled upload's temp file ends at byte ", offset_ + got,
          " but the upload has ", size_, " bytes"));
    }
    got += static_cast<size_t>(n);
  }
  offset_ += want;
  return std::string_view(buffer_.get(), want);
}

}  // namespace spillway
