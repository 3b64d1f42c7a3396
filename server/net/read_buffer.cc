#include "server/net/read_buffer.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

namespace spillway {

void ReadBuffer::Consume(size_t n) {
  assert(n <= size());
  begin_ += n;
  // All consumed: the next read starts at the front again, with nothing to move.
  if (begin_ == end_) begin_ = end_ = 0;
}

char* ReadBuffer::PrepareWrite(size_t min_room) {
  assert(min_room > 0);
  if (capacity_ - end_ >= min_room) return block_.get() + end_;
  const size_t unconsumed = size();
  if (capacity_ - unconsumed >= min_room) {
    // Enough room once the consumed prefix is reclaimed: slide the (usually short)
    // unconsumed tail to the front instead of growing.
    std::memmove(block_.get(), block_.get() + begin_, unconsumed);
  } else {
    // Geometric growth: a session that holds on to bytes (a long header arriving in
    // pieces) costs amortised O(1) copies per byte.
    const size_t capacity = std::max(unconsumed + min_room, 2 * capacity_);
    std::unique_ptr<char[]> block = std::make_unique_for_overwrite<char[]>(capacity);
    if (unconsumed > 0) std::memcpy(block.get(), block_.get() + begin_, unconsumed);
    block_ = std::move(block);
    capacity_ = capacity;
  }
  begin_ = 0;
  end_ = unconsumed;
  return block_.get() + end_;
}

void ReadBuffer::Commit(size_t n) {
  assert(n <= capacity_ - end_);
  end_ += n;
}

}  // namespace spillway
