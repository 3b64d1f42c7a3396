// Spill throughput: how close UploadedFile gets to a plain write() loop when every
// byte goes to a temp file, with each checksum kind. 100 MiB per iteration in 256 KiB
// appends (STREAM_BODY_CHUNK_SIZE), file created and removed inside the timed loop in
// every benchmark so that the comparison is like for like.
//
// The directory is $SPILLWAY_BENCH_DIR, or /tmp. Run with
//   --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "benchmark/benchmark.h"
#include "server/upload/checksum.h"
#include "server/upload/temp_directory.h"
#include "server/upload/uploaded_file.h"

namespace spillway {
namespace {

constexpr size_t kFileSize = size_t{100} << 20;
constexpr size_t kChunkSize = size_t{256} << 10;

std::string BenchDir() {
  const char* dir = std::getenv("SPILLWAY_BENCH_DIR");
  return (dir != nullptr && *dir != '\0') ? dir : "/tmp";
}

const std::string& Chunk() {
  static const std::string* chunk = [] {
    auto* data = new std::string(kChunkSize, '\0');
    for (size_t i = 0; i < data->size(); ++i) {
      (*data)[i] = static_cast<char>((i * 131 + 7) % 251);
    }
    return data;
  }();
  return *chunk;
}

void BM_PlainWriteLoop(benchmark::State& state) {
  const std::string path = BenchDir() + "/spillway-bench-plain";
  const std::string& chunk = Chunk();
  for (auto _ : state) {
    const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
      state.SkipWithError("open failed");
      return;
    }
    for (size_t written = 0; written < kFileSize; written += chunk.size()) {
      size_t done = 0;
      while (done < chunk.size()) {
        const ssize_t n = ::write(fd, chunk.data() + done, chunk.size() - done);
        if (n < 0) {
          ::close(fd);
          state.SkipWithError("write failed");
          return;
        }
        done += static_cast<size_t>(n);
      }
    }
    ::close(fd);
    ::unlink(path.c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kFileSize);
}

void RunSpill(benchmark::State& state, ChecksumKind kind) {
  absl::StatusOr<TempDirectory> temp_dir = TempDirectory::Open(BenchDir());
  if (!temp_dir.ok()) {
    state.SkipWithError(std::string(temp_dir.status().message()).c_str());
    return;
  }
  UploadedFileOptions options;
  options.max_memory_size = 1024;  // Spills on the first append.
  options.checksum = kind;
  options.temp_dir = &*temp_dir;
  const std::string& chunk = Chunk();
  for (auto _ : state) {
    UploadedFile file("file", "bench.bin", "application/octet-stream", options);
    for (size_t written = 0; written < kFileSize; written += chunk.size()) {
      if (absl::Status status = file.Append(chunk); !status.ok()) {
        state.SkipWithError(std::string(status.message()).c_str());
        return;
      }
    }
    if (absl::Status status = file.Finish(); !status.ok()) {
      state.SkipWithError(std::string(status.message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(file.checksum_hex().data());
  }  // ~UploadedFile removes the temp file inside the timed region.
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kFileSize);
}

void BM_SpillChecksumNone(benchmark::State& state) {
  RunSpill(state, ChecksumKind::kNone);
}
void BM_SpillSha256(benchmark::State& state) { RunSpill(state, ChecksumKind::kSha256); }
void BM_SpillCrc32c(benchmark::State& state) { RunSpill(state, ChecksumKind::kCrc32c); }

BENCHMARK(BM_PlainWriteLoop)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SpillChecksumNone)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SpillSha256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SpillCrc32c)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace spillway

BENCHMARK_MAIN();
