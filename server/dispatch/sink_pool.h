// SinkPool: the built-in consumers chosen by the SINK setting (DESIGN.md §3):
//   ""                      none (uploads wait for gRPC consumers, or get 503)
//   "dir:PATH"              DirSink: files stored atomically under PATH, 201 + receipt
//   "discard"               DiscardSink: bytes counted and dropped, 200 + receipt
//   "discard:rate=50Mi"     the same, reading each file at most 50 MiB/s (tests)
// It registers SINK_WORKERS (default 4) SinkWorkers with the Dispatcher, for every
// path ("/"), and unregisters and stops them when destroyed.
//
// Ownership: owns its workers (shared with the dispatcher's registry) and the Sink.
// REQUIRES: the Dispatcher outlives the pool. Threading: created and destroyed on one
// thread (main); the workers run on their own threads.
#ifndef SPILLWAY_SERVER_DISPATCH_SINK_POOL_H_
#define SPILLWAY_SERVER_DISPATCH_SINK_POOL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "server/common/settings_source.h"
#include "server/dispatch/dispatcher.h"
#include "server/dispatch/sink.h"
#include "server/dispatch/sink_worker.h"

namespace spillway {

struct SinkSettings {
  std::string sink;  // SINK, as written
  int workers = 4;   // SINK_WORKERS

  static absl::Span<const SettingSpec> Specs();
  static absl::StatusOr<SinkSettings> FromSource(SettingsSource& source);
};

// Parses a SINK value into a Sink (nullptr for ""). kInvalidArgument names the value.
absl::StatusOr<std::shared_ptr<Sink>> MakeSink(std::string_view spec);

class SinkPool {
 public:
  // A pool with no workers when settings.sink is "".
  static absl::StatusOr<std::unique_ptr<SinkPool>> Start(const SinkSettings& settings,
                                                         Dispatcher* dispatcher);
  ~SinkPool();
  SinkPool(const SinkPool&) = delete;
  SinkPool& operator=(const SinkPool&) = delete;

  size_t workers() const { return workers_.size(); }

 private:
  explicit SinkPool(Dispatcher* dispatcher) : dispatcher_(dispatcher) {}

  Dispatcher* const dispatcher_;  // not owned
  std::shared_ptr<Sink> sink_;
  std::vector<std::shared_ptr<SinkWorker>> workers_;
  std::vector<Dispatcher::ConsumerId> ids_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_SINK_POOL_H_
