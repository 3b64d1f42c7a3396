// BoundaryFinder: finds a multipart delimiter ("\r\n--" + boundary) in a byte range.
//
// This is the only code that looks at every region of a file part's payload, so it
// must never walk the payload byte by byte. Two searches, same answers:
// - Boyer-Moore-Horspool with a 256-entry skip table: for the 40-odd byte delimiters
//   that curl and browsers generate it reads about one payload byte in forty. Portable.
// - On x86-64, a vector filter (SSE2, part of the base ISA) that tests 64 candidate
//   positions per step for the pattern's first and last bytes and compares in full only
//   where both match. It reads every byte but has no chain of dependent loads, so it
//   runs at memchr speed, about 1.5x Horspool (bench/multipart_parser_bench.cc), and
//   does not slow down for short boundaries. Find() uses it where available, in its
//   AVX2 form when the CPU has AVX2 (checked once, at run time).
//
// Streaming callers also need to know how much of a range's tail could be the start of
// a delimiter completed by the next read (PartialMatchAtEnd), so that only those few
// bytes are held back.
//
// Immutable after construction; safe to share between threads. Holds its own copy of
// the pattern.
#ifndef SPILLWAY_SERVER_UPLOAD_BOUNDARY_FINDER_H_
#define SPILLWAY_SERVER_UPLOAD_BOUNDARY_FINDER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

// x86-64 with GCC or Clang: an AVX2 search is compiled in beside the SSE2 one.
#if defined(__x86_64__) && defined(__GNUC__)
#define SPILLWAY_BOUNDARY_FINDER_AVX2 1
#endif

namespace spillway {

class BoundaryFinder {
 public:
  // The longest pattern: "\r\n--" + a 70-byte boundary (RFC 2046), with room to spare.
  static constexpr size_t kMaxPatternSize = 255;

  // REQUIRES: 1 <= pattern.size() <= kMaxPatternSize, and pattern[0] occurs nowhere
  // else in the pattern (true of "\r\n--boundary": bchars exclude CR). That uniqueness
  // is what lets PartialMatchAtEnd look at a single candidate, and lets callers resume
  // a search just past a failed match.
  explicit BoundaryFinder(std::string_view pattern);

  BoundaryFinder(const BoundaryFinder&) = delete;
  BoundaryFinder& operator=(const BoundaryFinder&) = delete;

  // The first complete occurrence of the pattern in [begin, end), or nullptr.
  const char* Find(const char* begin, const char* end) const;

  // The same answer as Find(), by one particular method (for tests and benchmarks).
  const char* FindWithHorspool(const char* begin, const char* end) const;
#if defined(__SSE2__)
  const char* FindWithSse2(const char* begin, const char* end) const;
#endif
#if defined(SPILLWAY_BOUNDARY_FINDER_AVX2)
  // REQUIRES: HasAvx2().
  const char* FindWithAvx2(const char* begin, const char* end) const;
  static bool HasAvx2();
#endif

  // The length of the longest suffix of [begin, end) that is a proper prefix of the
  // pattern (0 if none): the bytes that a following range could turn into a match.
  size_t PartialMatchAtEnd(const char* begin, const char* end) const;

  std::string_view pattern() const { return pattern_; }

 private:
  // The vector searches' last step: the first position k (lowest set bit of
  // `candidates` first) where the pattern's first and last bytes matched at `at + k`
  // and the bytes between match too, or nullptr.
  const char* FirstMatchAmong(const char* at, uint64_t candidates) const;

  std::string pattern_;
  // skip_[c]: how far the pattern may slide when the byte under its last position is c.
  std::array<uint8_t, 256> skip_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_BOUNDARY_FINDER_H_
