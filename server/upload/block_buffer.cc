#include "server/upload/block_buffer.h"

#include <algorithm>

namespace spillway {

void BlockBuffer::Append(std::string_view data) {
  while (!data.empty()) {
    std::string* block;
    if (rest_.empty() && first_.size() < kBlockSize) {
      block = &first_;
    } else {
      if (rest_.empty() || rest_.back().size() == kBlockSize) {
        // Taken whole, capped by what may still come.
        rest_.emplace_back().reserve(std::min(kBlockSize, max_size_ - size_));
      }
      block = &rest_.back();
    }
    const size_t n = std::min(data.size(), kBlockSize - block->size());
    if (block->size() + n > block->capacity()) {
      // The first block grows geometrically, to at most kBlockSize and max_size.
      const size_t cap = std::min(kBlockSize, max_size_ - (size_ - block->size()));
      block->reserve(std::max(block->size() + n, std::min(cap, 2 * block->capacity())));
    }
    block->append(data.data(), n);
    size_ += n;
    data.remove_prefix(n);
  }
}

size_t BlockBuffer::heap_bytes() const {
  // A short std::string keeps its bytes inline, not on the heap.
  const auto heap = [](const std::string& block) {
    return block.capacity() > std::string().capacity() ? block.capacity() : 0;
  };
  size_t bytes = heap(first_);
  for (const std::string& block : rest_) bytes += heap(block);
  return bytes;
}

std::vector<std::string_view> BlockBuffer::views() const {
  std::vector<std::string_view> views;
  if (size_ == 0) return views;
  views.reserve(1 + rest_.size());
  views.emplace_back(first_);
  views.insert(views.end(), rest_.begin(), rest_.end());
  return views;
}

void BlockBuffer::Clear() {
  std::string().swap(first_);
  std::vector<std::string>().swap(rest_);
  size_ = 0;
}

}  // namespace spillway
