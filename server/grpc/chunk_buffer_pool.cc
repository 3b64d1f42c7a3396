#include "server/grpc/chunk_buffer_pool.h"

#include <utility>

namespace spillway {

// What a slice made by Wrap() owns.
struct ChunkBufferPool::Lent {
  std::string bytes;
  std::shared_ptr<ChunkBufferPool> pool;
};

std::shared_ptr<ChunkBufferPool> ChunkBufferPool::Create(size_t max_buffers) {
  return std::shared_ptr<ChunkBufferPool>(new ChunkBufferPool(max_buffers));
}

std::string ChunkBufferPool::Take() {
  MutexLock lock(&mu_);
  if (free_.empty()) return std::string();
  std::string buffer = std::move(free_.back());
  free_.pop_back();
  return buffer;
}

grpc::Slice ChunkBufferPool::Wrap(std::string bytes) {
  auto* lent = new Lent{std::move(bytes), shared_from_this()};
  // The string object stays where it is from here, so its data pointer does too.
  return grpc::Slice(lent->bytes.data(), lent->bytes.size(), &ChunkBufferPool::Return,
                     lent);
}

void ChunkBufferPool::Return(void* lent_ptr) {
  std::unique_ptr<Lent> lent(static_cast<Lent*>(lent_ptr));
  ChunkBufferPool& pool = *lent->pool;
  MutexLock lock(&pool.mu_);
  if (pool.free_.size() >= pool.max_buffers_) return;  // freed with `lent`
  // Not cleared: the source writes a chunk over it, and would otherwise zero-fill
  // it back to a chunk's length first (StreamUploadSource::TakeChunkBuffer).
  pool.free_.push_back(std::move(lent->bytes));
}

size_t ChunkBufferPool::free_buffers() const {
  MutexLock lock(&mu_);
  return free_.size();
}

}  // namespace spillway
