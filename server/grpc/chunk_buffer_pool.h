// ChunkBufferPool: streamed chunk buffers that gRPC has finished sending, kept for the
// next chunk of the same Consume stream.
//
// Why: ServerMessageEncoder hands a streamed chunk's std::string to gRPC as a slice
// (no copy), so the buffer leaves the StreamUploadSource's recycling loop. Without a
// way back, the source allocated every chunk afresh, and a 1 GiB upload to a gRPC
// consumer page-faulted in up to 50,000 fresh heap pages whenever glibc had given
// the memory back in between (those runs took about a fifth more server CPU). With the
// pool, a slice's destroy returns its buffer here, and the encoder swaps a returned
// buffer into the next chunk event, which the source recycles as before.
//
// Ownership: shared (std::shared_ptr) by the encoder and every slice Wrap() made, so
// a slice that gRPC drops after the stream ended still has somewhere to go. Holds at
// most `max_buffers` buffers; more are freed.
// Threading: thread-safe; a slice is dropped on whichever gRPC thread lets go last.
#ifndef SPILLWAY_SERVER_GRPC_CHUNK_BUFFER_POOL_H_
#define SPILLWAY_SERVER_GRPC_CHUNK_BUFFER_POOL_H_

#include <grpcpp/support/slice.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "server/common/mutex.h"

namespace spillway {

class ChunkBufferPool : public std::enable_shared_from_this<ChunkBufferPool> {
 public:
  static std::shared_ptr<ChunkBufferPool> Create(size_t max_buffers);

  // A returned buffer, its old bytes still in it, if there is one; else an empty
  // string.
  std::string Take();

  // A slice of all of `bytes` that owns them; once gRPC drops the slice, `bytes`
  // comes back to this pool.
  grpc::Slice Wrap(std::string bytes);

  size_t free_buffers() const;

 private:
  struct Lent;

  explicit ChunkBufferPool(size_t max_buffers) : max_buffers_(max_buffers) {}
  static void Return(void* lent);

  const size_t max_buffers_;
  mutable Mutex mu_;
  std::vector<std::string> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_CHUNK_BUFFER_POOL_H_
