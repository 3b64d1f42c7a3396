#include "server/common/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace spillway {
namespace {

TEST(Utf8, WellFormedTextIsValid) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii, long enough for the eight-byte path"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9"));                  // é
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC and \xF0\x9F\x98\x80"));  // € and an emoji
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));                  // U+D7FF, before surrogates
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));              // U+10FFFF
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0inside", 10)));
}

TEST(Utf8, MalformedSequencesAreInvalid) {
  for (const std::string bad : {
           "caf\xE9",                  // Latin-1
           "\x80",                     // a lone continuation byte
           "\xC3",                     // truncated
           "12345678\xE2\x82",         // truncated after the fast path
           "\xC0\xAF",                 // overlong '/'
           "\xC1\xBF",                 // overlong
           "\xE0\x80\xAF",             // overlong
           "\xF0\x80\x80\xAF",         // overlong
           "\xED\xA0\x80",             // a surrogate (U+D800)
           "\xF4\x90\x80\x80",         // past U+10FFFF
           "\xF5\x80\x80\x80",         // no such lead byte
           "\xE2\x28\xA1",             // bad continuation
           "\xFF"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << testing::PrintToString(bad);
  }
}

}  // namespace
}  // namespace spillway
