// FileChunkReader reads a finished UploadedFile from the start in chunks of at most
// chunk_size bytes, the same way whether the file is held in memory or spilled to disk.
// Obtain one from UploadedFile::NewReader().
//
// Ownership and lifetime: the reader borrows the file's bytes (memory mode: the
// blocks of its BlockBuffer) or its descriptor (spill mode); it owns only its chunk
// buffer. The UploadedFile must outlive
// the reader and must not be moved, modified or destroyed while the reader is in use.
// A view returned by Next() is valid until the next call to Next(), or until the reader
// or the UploadedFile is destroyed or moved, whichever comes first. (In memory mode it
// is a slice of one of the file's blocks, or the reader's buffer where a chunk spans
// two blocks; in spill mode it points into the reader's buffer, filled with pread().)
//
// Threading: a reader is used by one thread at a time. Several readers of the same
// finished file may run concurrently on different threads: pread() does not move the
// shared file offset.
#ifndef SPILLWAY_SERVER_UPLOAD_FILE_CHUNK_READER_H_
#define SPILLWAY_SERVER_UPLOAD_FILE_CHUNK_READER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace spillway {

class FileChunkReader {
 public:
  // The concatenation of `blocks` (BlockBuffer::views()). REQUIRES: chunk_size > 0;
  // the blocks' bytes stay valid as long as the reader is used.
  static FileChunkReader ForMemory(std::vector<std::string_view> blocks,
                                   size_t chunk_size);
  // Reads bytes [0, size) of `fd` with pread(). The reader does not own `fd`.
  // REQUIRES: chunk_size > 0; `fd` stays open as long as the reader is used.
  static FileChunkReader ForFile(int fd, uint64_t size, size_t chunk_size);

  FileChunkReader(FileChunkReader&&) noexcept = default;
  FileChunkReader& operator=(FileChunkReader&&) noexcept = default;
  FileChunkReader(const FileChunkReader&) = delete;
  FileChunkReader& operator=(const FileChunkReader&) = delete;
  ~FileChunkReader();

  // Returns the next min(chunk_size, remaining) bytes; an empty view at the end (and on
  // every call after). kDataLoss if the file on disk is shorter than its recorded size;
  // other read errors as mapped from errno.
  absl::StatusOr<std::string_view> Next();

  uint64_t size() const { return size_; }
  // Bytes returned so far.
  uint64_t offset() const { return offset_; }

 private:
  FileChunkReader(std::vector<std::string_view> blocks, int fd, uint64_t size,
                  size_t chunk_size);
  // The chunk buffer, allocated on first use.
  char* Buffer();
  // Memory mode: moves the block cursor `n` bytes on.
  void AdvanceInBlocks(size_t n);

  std::vector<std::string_view> blocks_;  // Memory mode, and the cursor in them:
  size_t block_index_ = 0;
  size_t block_offset_ = 0;
  int fd_ = -1;              // Spill mode; borrowed.
  uint64_t size_ = 0;
  uint64_t offset_ = 0;
  size_t chunk_size_ = 0;
  std::unique_ptr<char[]> buffer_;  // Spill mode, allocated on first Next().
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_FILE_CHUNK_READER_H_
