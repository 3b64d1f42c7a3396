// Specification of BoundaryFinder, checked against a brute-force search.
#include "server/upload/boundary_finder.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace spillway {
namespace {

const char* BruteFind(std::string_view hay, std::string_view pattern) {
  const size_t at = hay.find(pattern);
  return at == std::string_view::npos ? nullptr : hay.data() + at;
}

size_t BrutePartial(std::string_view hay, std::string_view pattern) {
  for (size_t len = std::min(hay.size(), pattern.size() - 1); len > 0; --len) {
    if (hay.substr(hay.size() - len) == pattern.substr(0, len)) return len;
  }
  return 0;
}

const char* Find(const BoundaryFinder& f, std::string_view hay) {
  return f.Find(hay.data(), hay.data() + hay.size());
}

size_t Partial(const BoundaryFinder& f, std::string_view hay) {
  return f.PartialMatchAtEnd(hay.data(), hay.data() + hay.size());
}

TEST(BoundaryFinder, FindsFirstOccurrenceAnywhere) {
  const BoundaryFinder f("\r\n--abc");
  const std::string hay = "\r\n--abc middle \r\n--abc end \r\n--abc";
  EXPECT_EQ(Find(f, hay), hay.data());
  EXPECT_EQ(Find(f, std::string_view(hay).substr(1)), hay.data() + hay.find("\r\n--abc", 1));
  const std::string_view last = std::string_view(hay).substr(hay.size() - 7);
  EXPECT_EQ(Find(f, last), last.data());
}

TEST(BoundaryFinder, NotFound) {
  const BoundaryFinder f("\r\n--abc");
  EXPECT_EQ(Find(f, ""), nullptr);
  EXPECT_EQ(Find(f, "\r\n--ab"), nullptr);
  EXPECT_EQ(Find(f, "\r\n--abd\r\n-abc\n--abc"), nullptr);
}

TEST(BoundaryFinder, PartialMatchAtEnd) {
  const BoundaryFinder f("\r\n--abc");
  EXPECT_EQ(Partial(f, ""), 0u);
  EXPECT_EQ(Partial(f, "xyz"), 0u);
  EXPECT_EQ(Partial(f, "xyz\r"), 1u);
  EXPECT_EQ(Partial(f, "xyz\r\n--ab"), 6u);
  EXPECT_EQ(Partial(f, "\r\n--ab"), 6u);
  EXPECT_EQ(Partial(f, "xyz\r\n--ax"), 0u);
  EXPECT_EQ(Partial(f, "\r\n--a\r\n"), 2u);  // only the last CR can start one
  EXPECT_EQ(Partial(f, "\r\n--abc"), 0u);    // a whole match is Find's business
}

// Every search method, on inputs long enough for the vector path and with near matches
// common (an alphabet of the pattern's own bytes, inserted prefixes and copies).
TEST(BoundaryFinder, AllMethodsMatchBruteForceOnRandomInput) {
  std::mt19937_64 rng(20240611);
  for (std::string_view pattern :
       {std::string_view("\r"), std::string_view("\r\n"), std::string_view("\r\n--a"),
        std::string_view("\r\n--ab-a"),
        std::string_view("\r\n----------------------------4f454ede7def462b")}) {
    const BoundaryFinder f(pattern);
    const std::string alphabet = std::string(pattern) + "x";
    for (int round = 0; round < 3000; ++round) {
      std::string hay(rng() % 700, '\0');
      for (char& c : hay) c = alphabet[rng() % alphabet.size()];
      if (rng() % 2 == 0 && !hay.empty()) {
        const size_t at = rng() % hay.size();
        const std::string_view piece = rng() % 2 ? pattern : pattern.substr(0, 1 + rng() % pattern.size());
        hay.replace(at, std::min(piece.size(), hay.size() - at), piece);
      }
      const char* begin = hay.data();
      const char* end = hay.data() + hay.size();
      const char* want = BruteFind(hay, pattern);
      ASSERT_EQ(f.Find(begin, end), want) << round;
      ASSERT_EQ(f.FindWithHorspool(begin, end), want) << round;
#if defined(__SSE2__)
      ASSERT_EQ(f.FindWithSse2(begin, end), want) << round;
#endif
#if defined(SPILLWAY_BOUNDARY_FINDER_AVX2)
      if (BoundaryFinder::HasAvx2()) {
        ASSERT_EQ(f.FindWithAvx2(begin, end), want) << round;
      }
#endif
      ASSERT_EQ(Partial(f, hay), BrutePartial(hay, pattern)) << round;
    }
  }
}

TEST(BoundaryFinder, FindsAMatchAtEveryOffsetOfALongRange) {
  const std::string pattern = "\r\n--XyZ123";
  const BoundaryFinder f(pattern);
  for (size_t at = 0; at + pattern.size() <= 300; ++at) {
    std::string hay(300, 'x');
    hay.replace(at, pattern.size(), pattern);
    EXPECT_EQ(Find(f, hay), hay.data() + at) << at;
    EXPECT_EQ(f.FindWithHorspool(hay.data(), hay.data() + hay.size()), hay.data() + at) << at;
  }
}

}  // namespace
}  // namespace spillway
