// MultipartParser throughput against memchr, the speed limit of any scan over the same
// bytes. Targets: one 100 MiB file part >= 0.7x memchr; 25,600 parts of 4 KiB >= 0.4x.
// Bodies are built once, outside the timed loops; every body is fed in 256 KiB slices
// (STREAM_BODY_CHUNK_SIZE). Run with --benchmark_repetitions=5
// --benchmark_report_aggregates_only=true for medians.
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "benchmark/benchmark.h"
#include "server/upload/boundary_finder.h"
#include "server/upload/multipart_parser.h"

namespace spillway {
namespace {

constexpr size_t kMiB = 1024 * 1024;
constexpr size_t kSlice = 256 * 1024;
constexpr std::string_view kBoundary = "------------------------4f454ede7def462b";  // curl's
constexpr unsigned char kAbsentByte = 0xA5;  // never in the payloads: memchr's target

class CountingHandler : public MultipartParser::Handler {
 public:
  absl::Status OnPartBegin(const PartHeaders& headers) override {
    ++parts_;
    benchmark::DoNotOptimize(headers.name.data());
    return absl::OkStatus();
  }
  absl::Status OnPartData(std::string_view data) override {
    bytes_ += data.size();
    benchmark::DoNotOptimize(data.data());
    return absl::OkStatus();
  }
  absl::Status OnPartEnd() override { return absl::OkStatus(); }
  absl::Status OnBodyEnd() override { return absl::OkStatus(); }

  size_t parts() const { return parts_; }
  size_t bytes() const { return bytes_; }

 private:
  size_t parts_ = 0;
  size_t bytes_ = 0;
};

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t r = rng();
    std::memcpy(&out[i], &r, std::min<size_t>(8, n - i));
  }
  for (char& c : out) {
    if (static_cast<unsigned char>(c) == kAbsentByte) c = 0x5A;
  }
  return out;
}

void AppendFilePart(std::string* body, size_t index, std::string_view data) {
  body->append("--").append(kBoundary).append("\r\n");
  body->append("Content-Disposition: form-data; name=\"file\"; filename=\"file")
      .append(std::to_string(index))
      .append(".bin\"\r\nContent-Type: application/octet-stream\r\n\r\n");
  body->append(data).append("\r\n");
}

void AppendClose(std::string* body) { body->append("--").append(kBoundary).append("--\r\n"); }

const std::string& OneLargePartBody() {
  static const std::string* body = [] {
    auto* b = new std::string;
    b->reserve(100 * kMiB + 4096);
    AppendFilePart(b, 0, RandomBytes(100 * kMiB, 1));
    AppendClose(b);
    return b;
  }();
  return *body;
}

const std::string& ManySmallPartsBody() {
  static const std::string* body = [] {
    auto* b = new std::string;
    const std::string payload = RandomBytes(100 * kMiB, 2);
    b->reserve(payload.size() + 25600 * 160);
    for (size_t i = 0; i < 25600; ++i) {
      AppendFilePart(b, i, std::string_view(payload).substr(i * 4096, 4096));
    }
    AppendClose(b);
    return b;
  }();
  return *body;
}

const std::string& SmallFieldsBody() {
  static const std::string* body = [] {
    auto* b = new std::string;
    for (size_t i = 0; i < 10000; ++i) {
      b->append("--").append(kBoundary).append("\r\n");
      b->append("Content-Disposition: form-data; name=\"field").append(std::to_string(i));
      b->append("\"\r\n\r\nvalue number ").append(std::to_string(i)).append("\r\n");
    }
    AppendClose(b);
    return b;
  }();
  return *body;
}

void Parse(benchmark::State& state, const std::string& body, size_t want_parts) {
  for (auto _ : state) {
    CountingHandler handler;
    MultipartParser parser(kBoundary, MultipartLimits{.max_parts = 100000}, &handler);
    for (size_t at = 0; at < body.size(); at += kSlice) {
      const absl::Status s = parser.Feed(std::string_view(body).substr(at, kSlice));
      if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    }
    if (!parser.Finish().ok() || handler.parts() != want_parts) {
      state.SkipWithError("parse did not produce the expected parts");
    }
    benchmark::DoNotOptimize(handler.bytes());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

void BM_Memchr(benchmark::State& state) {
  const std::string& body = OneLargePartBody();
  for (auto _ : state) {
    const void* hit = std::memchr(body.data(), kAbsentByte, body.size());
    benchmark::DoNotOptimize(hit);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_Memchr)->Unit(benchmark::kMillisecond);

void BM_ParseOneLargePart(benchmark::State& state) { Parse(state, OneLargePartBody(), 1); }
BENCHMARK(BM_ParseOneLargePart)->Unit(benchmark::kMillisecond);

void BM_ParseManySmallParts(benchmark::State& state) {
  Parse(state, ManySmallPartsBody(), 25600);
}
BENCHMARK(BM_ParseManySmallParts)->Unit(benchmark::kMillisecond);

void BM_ParseSmallFields(benchmark::State& state) { Parse(state, SmallFieldsBody(), 10000); }
BENCHMARK(BM_ParseSmallFields)->Unit(benchmark::kMillisecond);

// The delimiter searches alone over the same payload, for reference: Find() is the
// AVX2 or SSE2 one on x86-64, Horspool elsewhere.
enum class Search { kHorspool, kSse2, kAvx2 };
template <Search kSearch>
void BM_Finder(benchmark::State& state) {
  const std::string& body = OneLargePartBody();
  const BoundaryFinder finder(std::string("\r\n--") + std::string(kBoundary));
  const size_t payload_end = body.size() - kBoundary.size() - 8;  // stop before the close
  auto search = [&](const char* b, const char* e) {
#if defined(SPILLWAY_BOUNDARY_FINDER_AVX2)
    if (kSearch == Search::kAvx2) return finder.FindWithAvx2(b, e);
#endif
#if defined(__SSE2__)
    if (kSearch == Search::kSse2) return finder.FindWithSse2(b, e);
#endif
    return finder.FindWithHorspool(b, e);
  };
  for (auto _ : state) {
    for (size_t at = 0; at < payload_end; at += kSlice) {
      const char* hit = search(body.data() + at, body.data() + std::min(payload_end, at + kSlice));
      benchmark::DoNotOptimize(hit);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * payload_end));
}
BENCHMARK(BM_Finder<Search::kHorspool>)->Name("BM_FindHorspool")->Unit(benchmark::kMillisecond);
#if defined(__SSE2__)
BENCHMARK(BM_Finder<Search::kSse2>)->Name("BM_FindSse2")->Unit(benchmark::kMillisecond);
#endif
#if defined(SPILLWAY_BOUNDARY_FINDER_AVX2)
BENCHMARK(BM_Finder<Search::kAvx2>)->Name("BM_FindAvx2")->Unit(benchmark::kMillisecond);
#endif

}  // namespace
}  // namespace spillway

BENCHMARK_MAIN();
