// LoopGroup: N EventLoops, each run by its own thread (DESIGN.md §4). A connection is
// accepted and served on one loop for its whole life; the group only starts and stops
// the threads.
//
// Ownership: the group owns the loops and threads; loops outlive every object that
// watches them as long as those objects are destroyed before the group (or from
// tasks posted before Stop()).
// Threading: Create/Start/Stop/Join from one controlling thread; loop(i) pointers may
// be used from any thread for Post().
#ifndef SPILLWAY_SERVER_NET_LOOP_GROUP_H_
#define SPILLWAY_SERVER_NET_LOOP_GROUP_H_

#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "server/net/event_loop.h"

namespace spillway {

class LoopGroup {
 public:
  // `count` 0 means one loop per core.
  static absl::StatusOr<std::unique_ptr<LoopGroup>> Create(size_t count);
  ~LoopGroup();  // Stops and joins.

  LoopGroup(const LoopGroup&) = delete;
  LoopGroup& operator=(const LoopGroup&) = delete;

  void Start();
  // Asks every loop to stop after its current iteration; does not wait.
  void Stop();
  void Join();

  size_t size() const { return loops_.size(); }
  EventLoop* loop(size_t i) const { return loops_[i].get(); }

 private:
  explicit LoopGroup(std::vector<std::unique_ptr<EventLoop>> loops)
      : loops_(std::move(loops)) {}

  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_LOOP_GROUP_H_
