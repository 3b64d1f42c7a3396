#include "server/net/loop_group.h"

#include <utility>

#include "server/common/status_macros.h"

namespace spillway {

absl::StatusOr<std::unique_ptr<LoopGroup>> LoopGroup::Create(size_t count) {
  if (count == 0) count = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<EventLoop>> loops;
  for (size_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<EventLoop> loop, EventLoop::Create());
    loops.push_back(std::move(loop));
  }
  return std::unique_ptr<LoopGroup>(new LoopGroup(std::move(loops)));
}

LoopGroup::~LoopGroup() {
  Stop();
  Join();
}

void LoopGroup::Start() {
  for (auto& loop : loops_) {
    threads_.emplace_back([raw = loop.get()] { raw->Run(); });
  }
}

void LoopGroup::Stop() {
  for (auto& loop : loops_) loop->Stop();
}

void LoopGroup::Join() {
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

}  // namespace spillway
