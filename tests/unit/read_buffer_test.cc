#include "server/net/read_buffer.h"

#include <cstring>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace spillway {
namespace {

// Writes `bytes` the way Connection does: PrepareWrite, fill, Commit.
void Fill(ReadBuffer& buffer, std::string_view bytes, size_t room) {
  char* out = buffer.PrepareWrite(room);
  std::memcpy(out, bytes.data(), bytes.size());
  buffer.Commit(bytes.size());
}

TEST(ReadBuffer, StartsEmptyWithoutABlock) {
  ReadBuffer buffer;
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_EQ(buffer.capacity(), 0u);
  EXPECT_EQ(buffer.data(), "");
}

TEST(ReadBuffer, OffersUnconsumedBytesAgainInOrder) {
  ReadBuffer buffer;
  Fill(buffer, "hello ", 16);
  EXPECT_EQ(buffer.data(), "hello ");
  buffer.Consume(2);
  EXPECT_EQ(buffer.data(), "llo ");
  Fill(buffer, "world", 16);
  EXPECT_EQ(buffer.data(), "llo world");
  buffer.Consume(0);
  EXPECT_EQ(buffer.data(), "llo world");
  buffer.Consume(9);
  EXPECT_TRUE(buffer.empty());
}

TEST(ReadBuffer, ShortReadCommitsOnlyWhatWasWritten) {
  ReadBuffer buffer;
  char* out = buffer.PrepareWrite(64);
  std::memcpy(out, "abc", 3);
  buffer.Commit(3);
  EXPECT_EQ(buffer.data(), "abc");
  buffer.PrepareWrite(64);
  buffer.Commit(0);  // read() returned 0 or an error
  EXPECT_EQ(buffer.data(), "abc");
}

TEST(ReadBuffer, FullyConsumedBufferReusesItsBlockFromTheFront) {
  ReadBuffer buffer;
  Fill(buffer, std::string(100, 'a'), 128);
  const size_t capacity = buffer.capacity();
  EXPECT_GE(capacity, 128u);
  const char* front = buffer.data().data();
  buffer.Consume(100);
  // Room for a whole block again, at the same place: nothing moved, nothing grew.
  EXPECT_EQ(buffer.PrepareWrite(capacity), front);
  EXPECT_EQ(buffer.capacity(), capacity);
}

TEST(ReadBuffer, CompactsInsteadOfGrowingWhenConsumedSpaceMakesRoom) {
  ReadBuffer buffer;
  Fill(buffer, std::string(128, 'x'), 128);
  const size_t capacity = buffer.capacity();
  ASSERT_EQ(capacity, 128u);
  buffer.Consume(120);
  const char* front = buffer.data().data() - 120;
  Fill(buffer, "tail", 100);  // 8 left + 100 fits in 128 once compacted
  EXPECT_EQ(buffer.capacity(), capacity);
  EXPECT_EQ(buffer.data().data(), front);
  EXPECT_EQ(buffer.data(), "xxxxxxxxtail");
}

TEST(ReadBuffer, GrowsKeepingUnconsumedBytes) {
  ReadBuffer buffer;
  std::string expected;
  for (int i = 0; i < 20; ++i) {
    const std::string piece(1000, static_cast<char>('a' + i));
    Fill(buffer, piece, 1000);
    expected += piece;
  }
  buffer.Consume(500);
  expected.erase(0, 500);
  EXPECT_EQ(buffer.data(), expected);
  // Geometric growth: far fewer than 20 blocks, and never more than twice what held.
  EXPECT_GE(buffer.capacity(), 20000u);
  EXPECT_LT(buffer.capacity(), 2 * 20000u + 1000u);
}

}  // namespace
}  // namespace spillway
