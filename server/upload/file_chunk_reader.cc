#include "server/upload/file_chunk_reader.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace spillway {

FileChunkReader::FileChunkReader(std::vector<std::string_view> blocks, int fd,
                                 uint64_t size, size_t chunk_size)
    : blocks_(std::move(blocks)), fd_(fd), size_(size), chunk_size_(chunk_size) {}

FileChunkReader::~FileChunkReader() = default;

FileChunkReader FileChunkReader::ForMemory(std::vector<std::string_view> blocks,
                                           size_t chunk_size) {
  uint64_t size = 0;
  for (std::string_view block : blocks) size += block.size();
  return FileChunkReader(std::move(blocks), -1, size, chunk_size);
}

FileChunkReader FileChunkReader::ForFile(int fd, uint64_t size, size_t chunk_size) {
  return FileChunkReader({}, fd, size, chunk_size);
}

char* FileChunkReader::Buffer() {
  if (buffer_ == nullptr) {
    // Never larger than the file: a huge chunk_size on a small file costs nothing.
    buffer_ = std::make_unique_for_overwrite<char[]>(
        static_cast<size_t>(std::min<uint64_t>(chunk_size_, size_)));
  }
  return buffer_.get();
}

void FileChunkReader::AdvanceInBlocks(size_t n) {
  block_offset_ += n;
  while (block_index_ < blocks_.size() && block_offset_ == blocks_[block_index_].size()) {
    ++block_index_;
    block_offset_ = 0;
  }
}

absl::StatusOr<std::string_view> FileChunkReader::Next() {
  const size_t want =
      static_cast<size_t>(std::min<uint64_t>(chunk_size_, size_ - offset_));
  if (want == 0) return std::string_view();
  if (fd_ < 0) {
    const std::string_view rest = blocks_[block_index_].substr(block_offset_);
    if (rest.size() >= want) {  // within one block: a view of it, no copy
      AdvanceInBlocks(want);
      offset_ += want;
      return rest.substr(0, want);
    }
    // Spans blocks: gathered into the buffer.
    char* const buffer = Buffer();
    for (size_t got = 0; got < want;) {
      const std::string_view piece =
          blocks_[block_index_].substr(block_offset_, want - got);
      std::memcpy(buffer + got, piece.data(), piece.size());
      got += piece.size();
      AdvanceInBlocks(piece.size());
    }
    offset_ += want;
    return std::string_view(buffer, want);
  }
  char* const buffer = Buffer();
  size_t got = 0;
  while (got < want) {
    const ssize_t n = ::pread(fd_, buffer + got, want - got,
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
