// Specification of ChunkedDecoder: RFC 9112 §7.1 by the letter.
#include "server/http/chunked_decoder.h"

#include <random>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway {
namespace {

using ::testing::StrEq;

struct Outcome {
  std::string data;
  size_t consumed = 0;
  bool done = false;
  std::string error;
};

// Feeds `input` in pieces of at most `piece` bytes, as a connection would.
Outcome DecodeAll(std::string_view input, size_t piece = SIZE_MAX,
                  size_t max_trailer_bytes = 1024) {
  ChunkedDecoder decoder(max_trailer_bytes);
  Outcome out;
  size_t fed = 0;  // bytes made available so far
  while (!decoder.done() && decoder.error() == nullptr && out.consumed < input.size()) {
    fed = std::min(input.size(), std::max(fed, out.consumed) + piece);
    const ChunkedDecoder::Step step =
        decoder.Decode(input.substr(out.consumed, fed - out.consumed));
    out.consumed += step.consumed;
    out.data.append(step.data);
    if (step.consumed == 0 && fed == input.size()) break;
  }
  out.done = decoder.done();
  if (decoder.error() != nullptr) out.error = decoder.error();
  return out;
}

TEST(ChunkedDecoder, DecodesChunksWithExtensionsAndTrailersInAnyPieces) {
  const std::string body =
      "5\r\nhello\r\n"
      "6;name=value;flag\r\n world\r\n"
      "A ; q=\"quoted; \\\"x\\\"\"\r\n0123456789\r\n"
      "000\r\n"
      "Checksum: abc\r\nX-Other:\tz \r\n"
      "\r\n";
  for (size_t piece : {size_t{1}, size_t{2}, size_t{7}, SIZE_MAX}) {
    SCOPED_TRACE(piece);
    const Outcome out = DecodeAll(body + "GET / HTTP/1.1\r\n", piece);
    EXPECT_EQ(out.error, "");
    EXPECT_TRUE(out.done);
    EXPECT_EQ(out.data, "hello world0123456789");
    EXPECT_EQ(out.consumed, body.size()) << "the next request is not the body's";
  }
}

TEST(ChunkedDecoder, HandsOutDataUncopiedAsViewsIntoTheInput) {
  ChunkedDecoder decoder(1024);
  const std::string input = "5\r\nhello\r\n0\r\n\r\n";
  const ChunkedDecoder::Step step = decoder.Decode(input);
  EXPECT_EQ(step.data, "hello");
  EXPECT_EQ(step.data.data(), input.data() + 3);
  EXPECT_EQ(step.consumed, 8u);
}

// Each of these is read differently by some parser: libhttp-parser (not strict)
// accepted all of the first five.
TEST(ChunkedDecoder, RefusesWhatAnotherParserCouldFrameDifferently) {
  struct Case {
    std::string input;
    const char* error;
  };
  const Case cases[] = {
      {"5\r\nhelloXX0\r\n\r\n", "chunk data not followed by CRLF"},
      {"5\r\nhello\r0\r\n\r\n", "chunk data not followed by CRLF"},
      {"5\r\nhelloX\n0\r\n\r\n", "chunk data not followed by CRLF"},
      {"5\r\nhello\n0\r\n\r\n", "chunk data not followed by CRLF"},
      {"5\rXhello\r\n0\r\n\r\n", "chunk-size line not ended by CRLF"},
      {"2;\nxx\r\nhi\r\n0\r\n\r\n", "control character in a chunk extension"},
      {"5 junk\"\x01\r\nhello\r\n0\r\n\r\n", "invalid chunk size"},
      {"5\nhello\r\n0\r\n\r\n", "invalid chunk size"},
      {"\r\nhello\r\n", "invalid chunk size"},
      {"-5\r\nhello\r\n", "invalid chunk size"},
      {"0x5\r\nhello\r\n", "invalid chunk size"},
      {"+5\r\nhello\r\n", "invalid chunk size"},
      {"10000000000000000\r\n", "chunk size too large"},
      {"0\r\n obs-fold\r\n\r\n", "malformed trailer field"},
      {"0\r\nNo-Colon\r\n\r\n", "malformed trailer field"},
      {"0\r\nX: a\x01\r\n\r\n", "control character in a trailer field"},
      {"0\r\nX: a\nY: b\r\n\r\n", "control character in a trailer field"},
      {"0\r\n\rX", "chunked body not ended by CRLF"},
      {"1;" + std::string(ChunkedDecoder::kMaxLineBytes, 'e') + "\r\n",
       "chunk-size line too long"},
      {"0\r\nX: " + std::string(2000, 'v') + "\r\n\r\n", "trailer fields too large"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::CEscape(c.input.substr(0, 40)));
    for (size_t piece : {size_t{1}, SIZE_MAX}) {
      const Outcome out = DecodeAll(c.input, piece);
      EXPECT_FALSE(out.done);
      EXPECT_THAT(out.error, StrEq(c.error));
    }
  }
}

// The limit is on the trailer fields themselves: exactly that many bytes of them (CRLFs
// included, the final one not) pass; one more does not.
TEST(ChunkedDecoder, TrailerLimitIsExact) {
  auto body = [](size_t value_bytes) {
    return "0\r\nX: " + std::string(value_bytes, 'v') + "\r\n\r\n";
  };
  const size_t fits = 1024 - std::string_view("X: \r\n").size();
  EXPECT_TRUE(DecodeAll(body(fits), SIZE_MAX, 1024).done);
  EXPECT_EQ(DecodeAll(body(fits + 1), SIZE_MAX, 1024).error, "trailer fields too large");
}

TEST(ChunkedDecoder, UsesNoInputAfterTheEndOrAnError) {
  ChunkedDecoder done(1024);
  EXPECT_EQ(done.Decode("0\r\n\r\nmore").consumed, 5u);
  EXPECT_TRUE(done.done());
  EXPECT_EQ(done.Decode("more").consumed, 0u);

  ChunkedDecoder failed(1024);
  failed.Decode("z");
  ASSERT_NE(failed.error(), nullptr);
  EXPECT_EQ(failed.Decode("5\r\nhello").consumed, 0u);
}

// Random bodies, framed in random chunk sizes (with extensions now and then), fed in
// random pieces: the data comes out whole and in order.
TEST(ChunkedDecoder, RandomFramingsAndPiecesGiveTheDataBack) {
  std::mt19937_64 rng(20261207);
  for (int round = 0; round < 300; ++round) {
    std::string data(rng() % 3000, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    std::string framed;
    for (size_t at = 0; at < data.size();) {
      const size_t n = std::min<size_t>(data.size() - at, 1 + rng() % 700);
      absl::StrAppend(&framed, absl::Hex(n), rng() % 4 == 0 ? ";ext=1" : "", "\r\n",
                      data.substr(at, n), "\r\n");
      at += n;
    }
    framed += rng() % 2 ? "0\r\n\r\n" : "0\r\nT: v\r\n\r\n";
    const Outcome out = DecodeAll(framed, 1 + rng() % 900);
    ASSERT_EQ(out.error, "") << round;
    ASSERT_TRUE(out.done) << round;
    ASSERT_EQ(out.data, data) << round;
    ASSERT_EQ(out.consumed, framed.size()) << round;
  }
}

}  // namespace
}  // namespace spillway
