#include "server/upload/boundary_finder.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(SPILLWAY_BOUNDARY_FINDER_AVX2)
#include <immintrin.h>
#endif

namespace spillway {

BoundaryFinder::BoundaryFinder(std::string_view pattern) : pattern_(pattern) {
  const size_t m = pattern_.size();
  assert(m >= 1 && m <= kMaxPatternSize);
  assert(pattern_.find(pattern_[0], 1) == std::string::npos);
  skip_.fill(static_cast<uint8_t>(m));
  for (size_t i = 0; i + 1 < m; ++i) {
    skip_[static_cast<unsigned char>(pattern_[i])] = static_cast<uint8_t>(m - 1 - i);
  }
}

const char* BoundaryFinder::FirstMatchAmong(const char* at, uint64_t candidates) const {
  const size_t m = pattern_.size();
  while (candidates != 0) {
    const size_t k = static_cast<size_t>(__builtin_ctzll(candidates));
    if (m <= 2 || std::memcmp(at + k + 1, pattern_.data() + 1, m - 2) == 0) return at + k;
    candidates &= candidates - 1;
  }
  return nullptr;
}

const char* BoundaryFinder::Find(const char* begin, const char* end) const {
#if defined(SPILLWAY_BOUNDARY_FINDER_AVX2)
  if (HasAvx2()) return FindWithAvx2(begin, end);
#endif
#if defined(__SSE2__)
  return FindWithSse2(begin, end);
#else
  return FindWithHorspool(begin, end);
#endif
}

#if defined(SPILLWAY_BOUNDARY_FINDER_AVX2)
bool BoundaryFinder::HasAvx2() {
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  return has_avx2;
}

// FindWithSse2's filter with 32-byte vectors: the same 64 positions per step in half
// the instructions. Compiled for AVX2 on its own; Find() calls it only where the CPU
// has it.
__attribute__((target("avx2"))) const char* BoundaryFinder::FindWithAvx2(
    const char* begin, const char* end) const {
  const size_t m = pattern_.size();
  const size_t n = static_cast<size_t>(end - begin);
  if (n < m) return nullptr;
  const char* p = pattern_.data();
  const __m256i first = _mm256_set1_epi8(p[0]);
  const __m256i last = _mm256_set1_epi8(p[m - 1]);
  const size_t starts = n - m + 1;
  size_t i = 0;
  for (; i + 64 <= starts; i += 64) {
    const char* a = begin + i;
    const char* z = a + m - 1;
    const __m256i e0 = _mm256_and_si256(
        _mm256_cmpeq_epi8(first, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
        _mm256_cmpeq_epi8(last, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(z))));
    const __m256i e1 = _mm256_and_si256(
        _mm256_cmpeq_epi8(first,
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 32))),
        _mm256_cmpeq_epi8(last,
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(z + 32))));
    if (_mm256_testz_si256(_mm256_or_si256(e0, e1), _mm256_or_si256(e0, e1))) [[likely]] {
      continue;
    }
    uint64_t mask = static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(e0))) |
                    static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(e1)))
                        << 32;
    if (const char* match = FirstMatchAmong(a, mask)) return match;
  }
  return FindWithHorspool(begin + i, end);
}
#endif

#if defined(__SSE2__)
// Checks 64 candidate positions per step: the bytes that would be the pattern's first
// (CR) and last byte, compared 16 at a time. Random payload has both right by chance
// at one position in 65536, so the full comparison almost never runs. Unlike
// Horspool's chain of dependent loads, every step is independent, which lets the CPU
// stream the payload at close to memory speed (SSE2 is part of x86-64 itself).
const char* BoundaryFinder::FindWithSse2(const char* begin, const char* end) const {
  const size_t m = pattern_.size();
  const size_t n = static_cast<size_t>(end - begin);
  if (n < m) return nullptr;
  const char* p = pattern_.data();
  const __m128i first = _mm_set1_epi8(p[0]);
  const __m128i last = _mm_set1_epi8(p[m - 1]);
  const size_t starts = n - m + 1;  // candidate positions
  size_t i = 0;
  for (; i + 64 <= starts; i += 64) {
    const char* a = begin + i;
    const char* z = a + m - 1;
    const __m128i e0 = _mm_and_si128(
        _mm_cmpeq_epi8(first, _mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
        _mm_cmpeq_epi8(last, _mm_loadu_si128(reinterpret_cast<const __m128i*>(z))));
    const __m128i e1 = _mm_and_si128(
        _mm_cmpeq_epi8(first, _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 16))),
        _mm_cmpeq_epi8(last, _mm_loadu_si128(reinterpret_cast<const __m128i*>(z + 16))));
    const __m128i e2 = _mm_and_si128(
        _mm_cmpeq_epi8(first, _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 32))),
        _mm_cmpeq_epi8(last, _mm_loadu_si128(reinterpret_cast<const __m128i*>(z + 32))));
    const __m128i e3 = _mm_and_si128(
        _mm_cmpeq_epi8(first, _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 48))),
        _mm_cmpeq_epi8(last, _mm_loadu_si128(reinterpret_cast<const __m128i*>(z + 48))));
    const __m128i any = _mm_or_si128(_mm_or_si128(e0, e1), _mm_or_si128(e2, e3));
    if (_mm_movemask_epi8(any) == 0) [[likely]] continue;
    uint64_t mask = static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(e0))) |
                    static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(e1))) << 16 |
                    static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(e2))) << 32 |
                    static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(e3))) << 48;
    if (const char* match = FirstMatchAmong(a, mask)) return match;
  }
  // Fewer than 64 positions left: too short for another vector step.
  return FindWithHorspool(begin + i, end);
}
#endif

const char* BoundaryFinder::FindWithHorspool(const char* begin, const char* end) const {
  const size_t m = pattern_.size();
  const size_t n = static_cast<size_t>(end - begin);
  if (n < m) return nullptr;
  const auto* s = reinterpret_cast<const unsigned char*>(begin);
  const auto* p = reinterpret_cast<const unsigned char*>(pattern_.data());
  const unsigned char last = p[m - 1];
  const size_t last_start = n - m;  // the last window start that fits
  size_t i = 0;
  while (i <= last_start) {
    unsigned char c = s[i + m - 1];
    // The byte under the pattern's end rarely equals its last byte in payload, so the
    // loop shifts twice per trip before it pays for a comparison.
    if (c != last) {
      i += skip_[c];
      if (i > last_start) break;
      c = s[i + m - 1];
      if (c != last) {
        i += skip_[c];
        continue;
      }
    }
    if (s[i] == p[0] && (m <= 2 || std::memcmp(s + i + 1, p + 1, m - 2) == 0)) {
      return begin + i;
    }
    i += skip_[c];
  }
  return nullptr;
}

size_t BoundaryFinder::PartialMatchAtEnd(const char* begin, const char* end) const {
  const size_t n = static_cast<size_t>(end - begin);
  const size_t window = std::min(n, pattern_.size() - 1);
  if (window == 0) return 0;
  const char* tail = end - window;
  // pattern_[0] is unique in the pattern, so a partial match can only start at the last
  // occurrence of that byte in the tail: any earlier one would need a second copy of
  // it inside the matched prefix.
  const void* hit = memrchr(tail, pattern_[0], window);
  if (hit == nullptr) return 0;
  const char* start = static_cast<const char*>(hit);
  const size_t len = static_cast<size_t>(end - start);
  return std::memcmp(start, pattern_.data(), len) == 0 ? len : 0;
}

}  // namespace spillway
