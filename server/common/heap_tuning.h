// KeepHeapWarm: tunes glibc malloc so that the 256 KiB blocks uploads churn through
// (read buffers, memory-mode file blocks) are reused from the heap instead of being
// mapped and unmapped, or trimmed and faulted back in, for every upload.
//
// Why: glibc maps allocations over its mmap threshold fresh each time, and gives the
// top of a heap back to the kernel once more than the trim threshold is free there.
// Its dynamic thresholds settle near 2x the largest freed block, so with 64 uploads
// of 1 MiB + 8 MiB each, every upload faulted in about 1.5 MiB of zeroed pages: 381
// page faults per upload, against 65-80 with these settings, and about 10-15% less
// server CPU per upload in `make bench` (b). The cost: up to 32 MiB per malloc arena
// may stay resident after a burst instead of going back to the kernel.
//
// An operator's own GLIBC_TUNABLES malloc thresholds win: nothing is changed then.
//
// Call once, early in main(), before other threads start.
#ifndef SPILLWAY_SERVER_COMMON_HEAP_TUNING_H_
#define SPILLWAY_SERVER_COMMON_HEAP_TUNING_H_

namespace spillway {

void KeepHeapWarm();

}  // namespace spillway

#endif  // SPILLWAY_SERVER_COMMON_HEAP_TUNING_H_
