// ServerMessageEncoder: what the raw Consume method writes must parse as the
// v1::ServerMessage the typed method would have sent, and a streamed chunk's bytes
// must reach the ByteBuffer without a copy.
#include "server/grpc/server_message_encoder.h"

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "server/dispatch/stream_upload_source.h"
#include "server/grpc/chunk_buffer_pool.h"
#include "server/grpc/proto_conversions.h"
#include "server/upload/request_info.h"
#include "spillway/v1/ingest.pb.h"
#include "tests/unit/dispatch_test_util.h"

namespace spillway {
namespace {

using ::spillway::testing::TestBytes;

std::vector<grpc::Slice> Slices(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  return slices;
}

// The bytes gRPC would send.
std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::string bytes;
  for (const grpc::Slice& slice : Slices(buffer)) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

v1::ServerMessage Parse(const grpc::ByteBuffer& buffer) {
  v1::ServerMessage message;
  EXPECT_TRUE(message.ParseFromString(Flatten(buffer)));
  return message;
}

// What protobuf makes of the same chunk: the hand encoding must be as long (the
// field order differs, so the bytes may not be the same).
size_t ProtobufSize(uint64_t offset, const std::string& data) {
  v1::ServerMessage message;
  message.mutable_chunk()->set_offset(offset);
  message.mutable_chunk()->set_data(data);
  return message.ByteSizeLong();
}

// `out` parses as ServerMessage{chunk = Chunk{offset, data}}, as long as protobuf's.
void ExpectChunk(const grpc::ByteBuffer& out, uint64_t offset, const std::string& data) {
  EXPECT_EQ(out.Length(), ProtobufSize(offset, data));
  const v1::ServerMessage message = Parse(out);
  ASSERT_TRUE(message.has_chunk());
  EXPECT_EQ(message.chunk().offset(), offset);
  EXPECT_TRUE(message.chunk().data() == data);
}

constexpr uint64_t kOffsets[] = {0, 5, (uint64_t{1} << 32) + 7};
constexpr size_t kSizes[] = {1, 127, 128, 300000};

TEST(ServerMessageEncoder, StreamedChunkIsTakenNotCopied) {
  ServerMessageEncoder encoder;
  for (uint64_t offset : kOffsets) {
    for (size_t size : kSizes) {
      SCOPED_TRACE(::testing::Message() << "offset " << offset << " size " << size);
      const std::string expected = TestBytes(size, static_cast<int>(size % 7));
      std::string buffer = expected;
      const char* bytes = buffer.data();
      grpc::ByteBuffer out;
      ASSERT_TRUE(encoder.Encode(ChunkEvent{buffer, offset, &buffer}, &out).ok());
      // The source gets another string back (empty, or a buffer an earlier
      // iteration's slices let go of), never the bytes now on their way.
      if (size > 15) {
        EXPECT_NE(buffer.data(), bytes);
      }

      const std::vector<grpc::Slice> slices = Slices(out);
      ASSERT_EQ(slices.size(), 2u);  // header, then the chunk's own bytes
      EXPECT_EQ(slices[1].size(), size);
      if (size > 15) {  // beyond std::string's inline storage: the very same bytes
        EXPECT_EQ(reinterpret_cast<const char*>(slices[1].begin()), bytes);
      }

      ExpectChunk(out, offset, expected);
    }
  }
}

TEST(ServerMessageEncoder, BufferedChunkIsCopiedIntoOneSlice) {
  ServerMessageEncoder encoder;
  for (uint64_t offset : kOffsets) {
    for (size_t size : kSizes) {
      SCOPED_TRACE(::testing::Message() << "offset " << offset << " size " << size);
      grpc::ByteBuffer out;
      {
        // The view dies before the buffer is read.
        const std::string file = TestBytes(size, 3);
        ASSERT_TRUE(encoder.Encode(ChunkEvent{file, offset, nullptr}, &out).ok());
      }
      EXPECT_EQ(Slices(out).size(), 1u);
      const std::string expected = TestBytes(size, 3);
      ExpectChunk(out, offset, expected);
    }
  }
}

TEST(ServerMessageEncoder, TakenBufferLivesAsLongAsItsSlice) {
  ServerMessageEncoder encoder;
  const std::string expected = TestBytes(4096);
  std::string buffer = expected;
  std::vector<grpc::Slice> slices;
  {
    grpc::ByteBuffer out;
    ASSERT_TRUE(encoder.Encode(ChunkEvent{buffer, 0, &buffer}, &out).ok());
    slices = Slices(out);
    // Reused for the next event: the chunk's slice is let go here.
    ASSERT_TRUE(encoder.Encode(RequestFinishedEvent{4096}, &out).ok());
    EXPECT_TRUE(Parse(out).has_request_finished());
  }
  // As a transport still holding the slice after OnWriteDone; freed with it (ASan
  // would report a leak or a use after free).
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(slices[1].begin()), slices[1].size()),
      expected);
}

TEST(ServerMessageEncoder, BufferGrpcLetGoOfGoesBackToTheSourceWithTheNextChunk) {
  ServerMessageEncoder encoder;
  std::string first = TestBytes(300000, 1);
  const char* first_bytes = first.data();
  grpc::ByteBuffer out;
  ASSERT_TRUE(encoder.Encode(ChunkEvent{first, 0, &first}, &out).ok());
  EXPECT_EQ(first.capacity(), std::string().capacity());  // nothing to give back yet
  out.Clear();  // gRPC sent the chunk and dropped its slice

  const std::string expected = TestBytes(300000, 2);
  std::string second = expected;
  ASSERT_TRUE(encoder.Encode(ChunkEvent{second, 300000, &second}, &out).ok());
  // The source gets the first chunk's buffer back, bytes and all (it writes a
  // later chunk over them), to fill a later chunk with.
  EXPECT_EQ(second.size(), 300000u);
  EXPECT_EQ(second.data(), first_bytes);
  EXPECT_GE(second.capacity(), 300000u);
  ExpectChunk(out, 300000, expected);
}

TEST(ChunkBufferPool, KeepsAtMostItsLimitAndOutlivesNoSlice) {
  std::vector<grpc::Slice> slices;
  {
    std::shared_ptr<ChunkBufferPool> pool = ChunkBufferPool::Create(2);
    for (int i = 0; i < 3; ++i) slices.push_back(pool->Wrap(TestBytes(100000, i)));
    EXPECT_EQ(pool->free_buffers(), 0u);
    slices.pop_back();
    slices.pop_back();
    EXPECT_EQ(pool->free_buffers(), 2u);
    const std::string taken = pool->Take();
    // Handed back as it was, not cleared: one of the two dropped slices' bytes.
    EXPECT_TRUE(taken == TestBytes(100000, 1) || taken == TestBytes(100000, 2));
    EXPECT_EQ(pool->free_buffers(), 1u);
  }
  // The pool's last owner is this slice now; dropping it frees both (ASan would
  // report a leak or a use after free).
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(slices[0].begin()), 100000),
            TestBytes(100000, 0));
  slices.clear();
}

TEST(ServerMessageEncoder, OtherEventsRoundTripThroughProtobuf) {
  RequestInfo request;
  request.protocol = "HTTP/2";
  request.method = "PUT";
  request.path = "/raw";
  request.headers = {{"content-type", "application/octet-stream"}};
  request.content_length = 300000;
  ServerMessageEncoder encoder;
  grpc::ByteBuffer out;

  RequestStartedEvent started;
  started.upload_id = "0123456789abcdef";
  started.attempt = 2;
  started.mode = UploadMode::kStream;
  started.request = &request;
  ASSERT_TRUE(encoder.Encode(started, &out).ok());
  v1::ServerMessage message = Parse(out);
  v1::ServerMessage expected;
  ToServerMessage(started, &expected);
  EXPECT_EQ(message.SerializeAsString(), expected.SerializeAsString());
  ASSERT_TRUE(message.has_request_started());
  EXPECT_EQ(message.request_started().upload_id(), "0123456789abcdef");
  EXPECT_EQ(message.request_started().attempt(), 2u);
  EXPECT_EQ(message.request_started().mode(), v1::MODE_STREAM);
  EXPECT_EQ(message.request_started().content_length(), 300000u);
  ASSERT_EQ(message.request_started().headers_size(), 1);

  // A chunk in between leaves no trace in the next message.
  std::string buffer = TestBytes(1000);
  ASSERT_TRUE(encoder.Encode(ChunkEvent{buffer, 0, &buffer}, &out).ok());
  ASSERT_TRUE(
      encoder.Encode(FileFinishedEvent{1000, ChecksumKind::kSha256, "ab12"}, &out).ok());
  message = Parse(out);
  ASSERT_TRUE(message.has_file_finished());
  EXPECT_EQ(message.file_finished().size(), 1000u);
  EXPECT_EQ(message.file_finished().checksum_algorithm(), "sha256");
  EXPECT_EQ(message.file_finished().checksum(), "ab12");
}

// The source refills its chunk buffer when a consumer takes every one (no buffer
// comes back for it to recycle), and the bytes arrive whole and in order.
TEST(ServerMessageEncoder, StreamSourceKeepsWorkingWhenEveryBufferIsTaken) {
  RequestInfo request;
  request.path = "/s";
  StreamUploadOptions options;
  options.chunk_size = 100;
  std::shared_ptr<StreamUploadSource> source =
      *StreamUploadSource::Create(request, options, nullptr);
  std::unique_ptr<EventCursor> cursor = source->OpenCursor({});
  ServerMessageEncoder encoder;
  const std::string body = TestBytes(100 * 20 + 30);
  std::string received;
  int chunks = 0;
  bool finished = false;
  auto take = [&] {
    absl::StatusOr<UploadEvent> event;
    cursor->Next([&](absl::StatusOr<UploadEvent> e) { event = std::move(e); });
    ASSERT_TRUE(event.ok());
    grpc::ByteBuffer out;
    ASSERT_TRUE(encoder.Encode(*event, &out).ok());
    const v1::ServerMessage message = Parse(out);
    if (message.has_chunk()) {
      ++chunks;
      EXPECT_EQ(message.chunk().offset(), received.size());
      EXPECT_LE(message.chunk().data().size(), options.chunk_size);
      received.append(message.chunk().data());
    }
    finished = message.has_request_finished();
  };
  std::string_view rest = body;
  while (!rest.empty()) {
    const size_t n = std::min<size_t>(rest.size(), 70);
    ASSERT_TRUE(source->Feed(rest.substr(0, n)).ok());
    rest.remove_prefix(n);
    while (source->queued_bytes() > 0) take();
  }
  ASSERT_TRUE(source->Finish().ok());
  for (int i = 0; i < 5 && !finished; ++i) take();  // the last chunk, FileFinished...
  ASSERT_TRUE(finished);
  EXPECT_EQ(chunks, 21);
  EXPECT_TRUE(received == body);
}

}  // namespace
}  // namespace spillway
