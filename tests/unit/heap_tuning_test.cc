#include "server/common/heap_tuning.h"

#include <malloc.h>

#include <cstdlib>

#include "gtest/gtest.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SPILLWAY_SANITIZED_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SPILLWAY_SANITIZED_MALLOC 1
#endif
#endif

namespace spillway {
namespace {

// glibc's default mmap threshold is 128 KiB: without KeepHeapWarm() a 512 KiB block is
// a fresh mapping (counted in hblks), faulted in page by page and unmapped on free.
TEST(HeapTuning, HalfMegabyteBlocksComeFromTheHeap) {
#ifdef SPILLWAY_SANITIZED_MALLOC
  GTEST_SKIP() << "the sanitizer's allocator replaces glibc malloc";
#endif
  KeepHeapWarm();
  const size_t mapped_before = mallinfo2().hblks;
  void* block = std::malloc(512 * 1024);
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(mallinfo2().hblks, mapped_before);
  std::free(block);
}

}  // namespace
}  // namespace spillway
