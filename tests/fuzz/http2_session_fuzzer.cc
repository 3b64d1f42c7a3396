// libFuzzer target for Http2Session: hostile frames from a socket, fed in pieces.
//
// The input is a control header and the socket bytes (layout in
// session_fuzz_harness.h). A session made as for prior knowledge (Http2Session::Create)
// reads them through a fake connection in pieces whose sizes the header chooses; its
// requests go to a handler whose exchanges respond at body end, at once, mid-body or
// later from outside, pause and hold bytes (windows reopen late) as the header says.
// Most inputs get the client preface put in front, when they do not start with it, so
// that mutations spend their time on frames rather than on the 24 magic bytes.
//
// Option byte (byte 0) bits:
//   0-1  0: the bytes as they are; 1: preface in front; 2, 3: preface and an empty
//        SETTINGS frame (the client's first frame) in front
//   2    small limits (windows, concurrent streams, header list, floods, discard)
//   3    a socket that blocks after 64 unsent bytes until the harness drains it
//   4    StartDrain after piece number (byte 0 >> 5)
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "server/http/http2_session.h"
#include "tests/fuzz/session_fuzz_harness.h"

namespace spillway::fuzz {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// Length 0, type SETTINGS (4), no flags, stream 0.
constexpr std::string_view kEmptySettings("\0\0\0\4\0\0\0\0\0", 9);

void Run(const FuzzPlan& plan, std::string_view socket_bytes) {
  const int preface_mode = plan.options & 0x03;
  const bool small = (plan.options & 0x04) != 0;
  const bool blocking_socket = (plan.options & 0x08) != 0;
  const bool drain = (plan.options & 0x10) != 0;
  const size_t drain_after = plan.options >> 5;

  std::string bytes;
  if (preface_mode != 0 && socket_bytes.substr(0, kPreface.size()) != kPreface) {
    bytes.append(kPreface);
    if (preface_mode >= 2) bytes.append(kEmptySettings);
  }
  bytes.append(socket_bytes);
  const std::string_view input = bytes;

  FuzzIo io(blocking_socket ? 64 : std::numeric_limits<size_t>::max());
  FuzzHandler handler(plan);
  absl::StatusOr<std::unique_ptr<Http2Session>> created =
      Http2Session::Create(&io, &handler, small ? SmallHttp2Options() : Http2Options());
  Check(created.ok());
  PlayAndClose(
      plan, input, drain, drain_after,
      [](ProtocolSession* session) { static_cast<Http2Session*>(session)->StartDrain(); },
      [](ProtocolSession* session) {
        Check(static_cast<Http2Session*>(session)->open_streams() == 0);
      },
      io, handler, std::move(*created));
}

}  // namespace
}  // namespace spillway::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  spillway::fuzz::FuzzPlan plan;
  std::string_view socket_bytes;
  if (!spillway::fuzz::FuzzPlan::Parse(data, size, &plan, &socket_bytes)) return 0;
  spillway::fuzz::Run(plan, socket_bytes);
  return 0;
}
