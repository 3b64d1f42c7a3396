// BlockBuffer: bytes appended in order and kept in heap blocks of kBlockSize (the
// last one partly filled), never in one contiguous allocation. It holds a memory-mode
// file (UploadedFile).
//
// Why blocks: a contiguous buffer grows by reallocating, and each step copies every
// byte so far while old and new coexist; its capacity also runs ahead of its size.
// With many concurrent uploads that churned and fragmented the heap: in the bench's
// 64-client run of 1 MiB + 8 MiB multipart bodies the server peaked at ~210 MiB of
// RSS for ~130 MiB of live bytes. Uniform blocks are reused as they are freed and
// never copied. The first block starts small and doubles up to kBlockSize, so a
// 4 KiB file does not take 256 KiB; no block is reserved past `max_size` in all.
//
// kBlockSize is STREAM_BODY_CHUNK_SIZE's default, so a reader handing out chunks of
// that size can give views of the blocks themselves (FileChunkReader).
//
// Ownership: owns its blocks. Threading: not thread-safe; one owner at a time, and
// several readers of views() at once once appends are over. Movable: the blocks'
// bytes stay where they are when the buffer is moved.
#ifndef SPILLWAY_SERVER_UPLOAD_BLOCK_BUFFER_H_
#define SPILLWAY_SERVER_UPLOAD_BLOCK_BUFFER_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace spillway {

class BlockBuffer {
 public:
  static constexpr size_t kBlockSize = 256 * 1024;

  // `max_size`: the most bytes that will be appended; capacity never exceeds it.
  explicit BlockBuffer(size_t max_size) : max_size_(max_size) {}

  // REQUIRES: size() + data.size() <= max_size.
  void Append(std::string_view data);

  size_t size() const { return size_; }
  // Heap bytes held (capacity, not size).
  size_t heap_bytes() const;
  // The bytes in order, one view per block; every block but the last is full.
  // Valid until the next Append() or Clear().
  std::vector<std::string_view> views() const;
  // Frees every block.
  void Clear();

 private:
  size_t max_size_;
  size_t size_ = 0;
  // The first block apart, so that a small file costs one allocation, not two.
  std::string first_;
  std::vector<std::string> rest_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_BLOCK_BUFFER_H_
