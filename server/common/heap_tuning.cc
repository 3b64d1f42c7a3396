#include "server/common/heap_tuning.h"

#include <malloc.h>

#include <cstdlib>
#include <string_view>

namespace spillway {
namespace {

// Allocations under this come from the heap (upload blocks are 256 KiB).
constexpr int kMmapThreshold = 1 << 20;
// Free bytes a heap's top may keep: a few dozen uploads' blocks.
constexpr int kTrimThreshold = 32 << 20;

bool OperatorTunedMalloc() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables == nullptr) return false;
  const std::string_view text(tunables);
  return text.find("malloc.mmap_threshold") != std::string_view::npos ||
         text.find("malloc.trim_threshold") != std::string_view::npos;
}

}  // namespace

void KeepHeapWarm() {
  if (OperatorTunedMalloc()) return;
  // Setting either threshold also turns off glibc's dynamic adjustment of both.
  ::mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  ::mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
}

}  // namespace spillway
