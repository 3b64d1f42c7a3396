#include "server/grpc/server_message_encoder.h"

#include <google/protobuf/io/coded_stream.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/slice.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <variant>

#include "absl/strings/str_cat.h"
#include "server/grpc/proto_conversions.h"

namespace spillway {
namespace {

using google::protobuf::io::CodedOutputStream;

constexpr uint32_t kWireTypeVarint = 0;
constexpr uint32_t kWireTypeLengthDelimited = 2;

constexpr uint32_t Tag(int field_number, uint32_t wire_type) {
  return (static_cast<uint32_t>(field_number) << 3) | wire_type;
}

// Taken from the generated code, so that renumbering a field in ingest.proto cannot
// leave the hand encoding behind.
constexpr uint32_t kChunkTag =
    Tag(v1::ServerMessage::kChunkFieldNumber, kWireTypeLengthDelimited);
constexpr uint32_t kOffsetTag = Tag(v1::Chunk::kOffsetFieldNumber, kWireTypeVarint);
constexpr uint32_t kDataTag = Tag(v1::Chunk::kDataFieldNumber, kWireTypeLengthDelimited);
static_assert(kChunkTag < 0x80 && kOffsetTag < 0x80 && kDataTag < 0x80,
              "EncodeChunkHeader writes each tag as one byte");

// Three one-byte tags and three varints of at most 10 bytes each.
constexpr size_t kMaxChunkHeaderSize = 3 + 3 * 10;

// Writes ServerMessage{chunk = Chunk{offset, data}} up to the first byte of the data
// into `header` (kMaxChunkHeaderSize bytes); returns the bytes written. Chunk.offset
// comes before Chunk.data, unlike protobuf's field-number order, so that the data
// ends the message; parsers accept fields in any order.
size_t EncodeChunkHeader(uint64_t offset, size_t data_size, uint8_t* header) {
  size_t chunk_size = 1 + CodedOutputStream::VarintSize64(data_size) + data_size;
  // Omitted when 0, as protobuf does for a proto3 scalar.
  if (offset != 0) chunk_size += 1 + CodedOutputStream::VarintSize64(offset);
  uint8_t* p = header;
  *p++ = static_cast<uint8_t>(kChunkTag);
  p = CodedOutputStream::WriteVarint64ToArray(chunk_size, p);
  if (offset != 0) {
    *p++ = static_cast<uint8_t>(kOffsetTag);
    p = CodedOutputStream::WriteVarint64ToArray(offset, p);
  }
  *p++ = static_cast<uint8_t>(kDataTag);
  p = CodedOutputStream::WriteVarint64ToArray(data_size, p);
  return static_cast<size_t>(p - header);
}

}  // namespace

absl::Status ServerMessageEncoder::Encode(const UploadEvent& event,
                                          grpc::ByteBuffer* out) {
  out->Clear();  // protobuf serialization below wants an empty buffer
  const auto* chunk = std::get_if<ChunkEvent>(&event);
  if (chunk == nullptr) {
    ToServerMessage(event, &scratch_);
    bool own_buffer;
    const grpc::Status status = grpc::SerializationTraits<v1::ServerMessage>::Serialize(
        scratch_, out, &own_buffer);
    if (!status.ok()) {
      out->Clear();
      return absl::InternalError(
          absl::StrCat("cannot serialize a ServerMessage: ", status.error_message()));
    }
    return absl::OkStatus();
  }

  uint8_t header[kMaxChunkHeaderSize];
  if (chunk->buffer != nullptr) {
    // The whole buffer is the chunk (`data` views all of it). The source gets a
    // buffer gRPC is done with in exchange, for a later chunk.
    std::string taken = chunk_buffers_->Take();
    taken.swap(*chunk->buffer);
    const size_t header_size = EncodeChunkHeader(chunk->offset, taken.size(), header);
    if (taken.empty()) {  // never sent by the source, but valid
      grpc::Slice slice(header, header_size);
      grpc::ByteBuffer buffer(&slice, 1);
      out->Swap(&buffer);
      return absl::OkStatus();
    }
    const grpc::Slice slices[2] = {grpc::Slice(header, header_size),
                                   chunk_buffers_->Wrap(std::move(taken))};
    grpc::ByteBuffer buffer(slices, 2);
    out->Swap(&buffer);
    return absl::OkStatus();
  }

  // Views that die at the consumer's next call on the delivery: one copy, into a
  // slice that carries the header too (protobuf would copy twice: into the message
  // and into the slices).
  const size_t header_size = EncodeChunkHeader(chunk->offset, chunk->data.size(), header);
  grpc::Slice slice(header_size + chunk->data.size());
  // A fresh slice is ours to fill, as gRPC's own serializer does.
  auto* p = const_cast<uint8_t*>(slice.begin());
  std::memcpy(p, header, header_size);
  if (!chunk->data.empty()) {
    std::memcpy(p + header_size, chunk->data.data(), chunk->data.size());
  }
  grpc::ByteBuffer buffer(&slice, 1);
  out->Swap(&buffer);
  return absl::OkStatus();
}

}  // namespace spillway
