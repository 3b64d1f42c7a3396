#include "server/dispatch/json_escape.h"

#include <string>

#include "gtest/gtest.h"

namespace spillway {
namespace {

TEST(JsonEscape, QuotesPlainText) { EXPECT_EQ(JsonString("abc"), "\"abc\""); }

TEST(JsonEscape, EscapesQuoteAndBackslash) {
  EXPECT_EQ(JsonString("a\"b\\c"), R"("a\"b\\c")");
}

TEST(JsonEscape, EscapesControlCharacters) {
  EXPECT_EQ(JsonString("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(JsonString(std::string("\0\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
}

TEST(JsonEscape, KeepsValidUtf8) {
  EXPECT_EQ(JsonString("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\"");
}

TEST(JsonEscape, EscapesLineAndParagraphSeparators) {
  EXPECT_EQ(JsonString("\xE2\x80\xA8\xE2\x80\xA9"), R"("\u2028\u2029")");
}

TEST(JsonEscape, ReplacesEachInvalidByteWithReplacementCharacter) {
  const std::string kFffd = "\xEF\xBF\xBD";
  EXPECT_EQ(JsonString("\xFF"), "\"" + kFffd + "\"");
  EXPECT_EQ(JsonString("a\x80z"), "\"a" + kFffd + "z\"");             // stray continuation
  EXPECT_EQ(JsonString("\xC0\xAF"), "\"" + kFffd + kFffd + "\"");     // overlong '/'
  EXPECT_EQ(JsonString("\xED\xA0\x80"), "\"" + kFffd + kFffd + kFffd + "\"");  // surrogate
  EXPECT_EQ(JsonString("\xF4\x90\x80\x80"),
            "\"" + kFffd + kFffd + kFffd + kFffd + "\"");  // past U+10FFFF
  EXPECT_EQ(JsonString("\xE2\x82"), "\"" + kFffd + kFffd + "\"");  // truncated
}

}  // namespace
}  // namespace spillway
