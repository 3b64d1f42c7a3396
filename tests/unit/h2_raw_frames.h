// Hand-made HTTP/2 frames for tests that must misbehave on purpose (stall a header
// block or a body, open more streams than allowed), where a real client would not.
// Request headers use only HPACK static-table entries and literals, so no encoder
// state is needed; responses are read frame by frame, without HPACK decoding.
#ifndef SPILLWAY_TESTS_UNIT_H2_RAW_FRAMES_H_
#define SPILLWAY_TESTS_UNIT_H2_RAW_FRAMES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::testing {

inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum H2Type : uint8_t {
  kH2Data = 0x0, kH2Headers = 0x1, kH2RstStream = 0x3, kH2Settings = 0x4,
  kH2Ping = 0x6, kH2Goaway = 0x7, kH2WindowUpdate = 0x8,
};
inline constexpr uint8_t kH2EndStream = 0x1;
inline constexpr uint8_t kH2EndHeaders = 0x4;

inline std::string H2Frame(uint8_t type, uint8_t flags, uint32_t stream_id,
                           std::string_view payload) {
  std::string frame;
  const size_t n = payload.size();
  frame += static_cast<char>((n >> 16) & 0xff);
  frame += static_cast<char>((n >> 8) & 0xff);
  frame += static_cast<char>(n & 0xff);
  frame += static_cast<char>(type);
  frame += static_cast<char>(flags);
  for (int shift = 24; shift >= 0; shift -= 8) {
    frame += static_cast<char>((stream_id >> shift) & 0xff);
  }
  frame.append(payload);
  return frame;
}

// The client preface and an empty SETTINGS frame.
inline std::string H2ClientStart() {
  return std::string(kH2Preface) + H2Frame(kH2Settings, 0, 0, "");
}

// A HEADERS block for `method` (GET or POST) on `path` with scheme http and an
// :authority, plus an optional content-length; literal fields, never indexed.
inline std::string H2RequestBlock(std::string_view method, std::string_view path,
                                  std::string_view content_length = "") {
  std::string block;
  block += static_cast<char>(method == "POST" ? 0x83 : 0x82);  // static 3 / 2
  auto literal = [&block](uint8_t name_index, std::string_view value) {
    block += static_cast<char>(name_index);  // literal without indexing, indexed name
    block += static_cast<char>(value.size());  // < 127, no Huffman
    block.append(value);
  };
  literal(0x04, path);          // :path
  block += static_cast<char>(0x86);  // :scheme http
  literal(0x01, "test");        // :authority
  if (!content_length.empty()) {
    block += static_cast<char>(0x0f);  // content-length: static index 28 = 15 + 13
    block += static_cast<char>(0x0d);
    block += static_cast<char>(content_length.size());
    block.append(content_length);
  }
  return block;
}

struct H2ParsedFrame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;
  std::string payload;
  // RST_STREAM and GOAWAY: the error code.
  uint32_t ErrorCode() const {
    const size_t at = type == kH2Goaway ? 4 : 0;
    if (payload.size() < at + 4) return 0xffffffff;
    uint32_t code = 0;
    for (size_t i = 0; i < 4; ++i) {
      code = (code << 8) | static_cast<uint8_t>(payload[at + i]);
    }
    return code;
  }
};

// Splits server output into frames; a trailing partial frame is left out.
inline std::vector<H2ParsedFrame> H2ParseFrames(std::string_view bytes) {
  std::vector<H2ParsedFrame> frames;
  while (bytes.size() >= 9) {
    const auto u = [&bytes](size_t i) { return static_cast<uint8_t>(bytes[i]); };
    const size_t length = (size_t{u(0)} << 16) | (size_t{u(1)} << 8) | u(2);
    if (bytes.size() < 9 + length) break;
    H2ParsedFrame frame;
    frame.type = u(3);
    frame.flags = u(4);
    frame.stream_id = ((uint32_t{u(5)} & 0x7f) << 24) | (uint32_t{u(6)} << 16) |
                      (uint32_t{u(7)} << 8) | u(8);
    frame.payload = std::string(bytes.substr(9, length));
    frames.push_back(std::move(frame));
    bytes.remove_prefix(9 + length);
  }
  return frames;
}

}  // namespace spillway::testing

#endif  // SPILLWAY_TESTS_UNIT_H2_RAW_FRAMES_H_
