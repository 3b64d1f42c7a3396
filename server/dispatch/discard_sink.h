// DiscardSink (`--sink=discard`, `--sink=discard:rate=50Mi`): takes every byte and
// keeps none, for benchmarks and tests. With a rate, each file is read no faster than
// `rate` bytes per second, which makes it a deliberately slow consumer: the way to see
// backpressure reach the uploader.
//
// Ownership: none. Threading: thread-safe (immutable); each SinkFile paces itself.
#ifndef SPILLWAY_SERVER_DISPATCH_DISCARD_SINK_H_
#define SPILLWAY_SERVER_DISPATCH_DISCARD_SINK_H_

#include <cstdint>
#include <memory>

#include "server/dispatch/sink.h"

namespace spillway {

class DiscardSink final : public Sink {
 public:
  // `bytes_per_second` 0 means as fast as the bytes come.
  explicit DiscardSink(uint64_t bytes_per_second = 0)
      : bytes_per_second_(bytes_per_second) {}

  std::string_view name() const override { return "discard"; }
  int success_status() const override { return 200; }
  // A benchmark sink: hashing here would measure SHA-256, not the server.
  bool needs_sha256() const override { return false; }
  // Pacing means waiting: a rated discard sink reads every byte on its worker thread.
  bool ignores_bytes() const override { return bytes_per_second_ == 0; }
  absl::StatusOr<std::unique_ptr<SinkFile>> NewFile(std::string_view upload_id,
                                                    size_t index,
                                                    std::string_view filename) override;

 private:
  const uint64_t bytes_per_second_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_DISCARD_SINK_H_
