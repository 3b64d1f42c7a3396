// ReadBuffer: a connection's input buffer. Bytes read from the socket wait here until
// the protocol session consumes them; unconsumed bytes stay in order and are offered
// again.
//
// Why not std::string: growing a string to make room for read() zero-fills that room
// first (64 KiB per read, every read), only for the kernel to overwrite it. Here the
// spare capacity is never initialised: PrepareWrite() hands out raw room, Commit()
// counts what read() actually put there.
//
// Layout: one heap block, [0, begin_) consumed, [begin_, end_) unconsumed, [end_,
// capacity_) free. Consuming only moves begin_; when everything is consumed both
// offsets go back to 0, so the common case (the session takes all it was given) never
// copies. Unconsumed bytes are moved to the front only when the free tail is too
// small for the next read, and the block grows (geometrically) only when compacting
// would not make room either. The block is kept while the buffer lives.
//
// Ownership: owns its block. Threading: not thread-safe; one thread (the connection's
// loop thread). Views from data() are valid until the next non-const call.
#ifndef SPILLWAY_SERVER_NET_READ_BUFFER_H_
#define SPILLWAY_SERVER_NET_READ_BUFFER_H_

#include <cstddef>
#include <memory>
#include <string_view>

namespace spillway {

class ReadBuffer {
 public:
  ReadBuffer() = default;
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;

  // The unconsumed bytes.
  std::string_view data() const {
    return std::string_view(block_.get() + begin_, end_ - begin_);
  }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  // The size of the heap block (for tests): unconsumed bytes plus room.
  size_t capacity() const { return capacity_; }

  // Drops the first `n` unconsumed bytes. REQUIRES: n <= size().
  void Consume(size_t n);

  // Returns room for at least `min_room` bytes right after the unconsumed ones,
  // compacting or growing the block if needed; the room is uninitialised. Write into
  // it, then Commit() what was written. REQUIRES: min_room > 0.
  char* PrepareWrite(size_t min_room);
  // Makes `n` bytes written into the room from PrepareWrite() unconsumed bytes.
  // REQUIRES: n <= the room PrepareWrite() made.
  void Commit(size_t n);

 private:
  std::unique_ptr<char[]> block_;
  size_t capacity_ = 0;
  size_t begin_ = 0;  // first unconsumed byte
  size_t end_ = 0;    // one past the last unconsumed byte
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_READ_BUFFER_H_
