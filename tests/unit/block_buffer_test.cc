// BlockBuffer holds a memory-mode file in blocks, and FileChunkReader reads it back
// in chunks of any size: the bytes must come back exactly, a chunk the size of a
// block must be a view of that block, and capacity must stay within the limit.
#include "server/upload/block_buffer.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "server/upload/file_chunk_reader.h"

namespace spillway {
namespace {

constexpr size_t kBlock = BlockBuffer::kBlockSize;

std::string Bytes(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return out;
}

// Appends `data` in uneven pieces.
BlockBuffer Fill(const std::string& data, size_t max_size) {
  BlockBuffer buffer(max_size);
  const size_t pieces[] = {1, 1000, 65536, 300000, 7};
  size_t offset = 0;
  for (size_t i = 0; offset < data.size(); ++i) {
    const size_t n = std::min(pieces[i % 5], data.size() - offset);
    buffer.Append(std::string_view(data).substr(offset, n));
    offset += n;
  }
  return buffer;
}

std::string Concat(const std::vector<std::string_view>& views) {
  std::string out;
  for (std::string_view view : views) out.append(view);
  return out;
}

TEST(BlockBufferTest, KeepsTheBytesInFullBlocksWithinTheLimit) {
  const std::string data = Bytes(2 * kBlock + 12345);
  const BlockBuffer buffer = Fill(data, data.size());
  EXPECT_EQ(buffer.size(), data.size());
  const std::vector<std::string_view> views = buffer.views();
  ASSERT_EQ(views.size(), 3u);
  EXPECT_EQ(views[0].size(), kBlock);
  EXPECT_EQ(views[1].size(), kBlock);
  EXPECT_EQ(views[2].size(), 12345u);
  EXPECT_EQ(Concat(views), data);
  EXPECT_GE(buffer.heap_bytes(), data.size());
  EXPECT_LE(buffer.heap_bytes(), data.size());  // max_size == size: no slack at all
}

TEST(BlockBufferTest, SmallFileTakesSmallBlock) {
  BlockBuffer buffer(2621440);
  buffer.Append(Bytes(4096));
  EXPECT_EQ(buffer.views().size(), 1u);
  EXPECT_LT(buffer.heap_bytes(), 2 * 4096u);
}

TEST(BlockBufferTest, ClearFreesEverything) {
  BlockBuffer buffer = Fill(Bytes(kBlock + 1), kBlock + 1);
  buffer.Clear();
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_EQ(buffer.heap_bytes(), 0u);
  EXPECT_TRUE(buffer.views().empty());
}

TEST(BlockBufferTest, ReaderGivesBackEveryByteInChunksOfAnySize) {
  const std::string data = Bytes(3 * kBlock + 777);
  const BlockBuffer buffer = Fill(data, data.size());
  for (const size_t chunk_size :
       {size_t{1}, size_t{1000}, size_t{100000}, kBlock - 1, kBlock, kBlock + 1,
        4 * kBlock}) {
    SCOPED_TRACE(chunk_size);
    FileChunkReader reader = FileChunkReader::ForMemory(buffer.views(), chunk_size);
    EXPECT_EQ(reader.size(), data.size());
    std::string out;
    for (;;) {
      absl::StatusOr<std::string_view> chunk = reader.Next();
      ASSERT_TRUE(chunk.ok()) << chunk.status();
      if (chunk->empty()) break;
      ASSERT_EQ(chunk->size(), std::min(chunk_size, data.size() - out.size()));
      out.append(*chunk);
    }
    EXPECT_EQ(out, data);
  }
}

TEST(BlockBufferTest, ChunkOfOneBlockIsAViewOfIt) {
  const std::string data = Bytes(2 * kBlock + 5);
  const BlockBuffer buffer = Fill(data, data.size());
  const std::vector<std::string_view> views = buffer.views();
  FileChunkReader reader = FileChunkReader::ForMemory(views, kBlock);
  for (std::string_view view : views) {
    absl::StatusOr<std::string_view> chunk = reader.Next();
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    EXPECT_EQ(chunk->data(), view.data());  // not copied
    EXPECT_EQ(chunk->size(), view.size());
  }
}

}  // namespace
}  // namespace spillway
