// libFuzzer target for Http1Session: hostile bytes from a socket, fed in pieces.
//
// The input is a control header and the socket bytes (layout in
// session_fuzz_harness.h). The session reads them through a fake connection, in
// pieces whose sizes the header chooses, so every parser state meets a read boundary;
// its requests go to a handler whose exchanges respond at body end, at once, mid-body
// or later from outside, pause and hold bytes as the header says, which reaches
// pipelining, Expect: 100-continue, early responses, smuggling and size limits. With
// option bit 2 an h2c Upgrade is taken and the rest of the input goes to the
// Http2Session that replaces it.
//
// Option byte (byte 0) bits:
//   0  small limits (header bytes, pipelining depth; HTTP/2 ones after an Upgrade)
//   1  a socket that blocks after 64 unsent bytes until the harness drains it
//   2  h2c Upgrade offered
//   3  StartDrain after piece number (byte 0 >> 4)
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "server/http/http1_session.h"
#include "server/http/http2_session.h"
#include "tests/fuzz/session_fuzz_harness.h"

namespace spillway::fuzz {
namespace {

void StartDrain(ProtocolSession* session) {
  if (auto* http1 = dynamic_cast<Http1Session*>(session)) {
    http1->StartDrain();
  } else if (auto* http2 = dynamic_cast<Http2Session*>(session)) {
    http2->StartDrain();
  }
}

void Run(const FuzzPlan& plan, std::string_view socket_bytes) {
  const bool small = (plan.options & 0x01) != 0;
  const bool blocking_socket = (plan.options & 0x02) != 0;
  const bool offer_upgrade = (plan.options & 0x04) != 0;
  const bool drain = (plan.options & 0x08) != 0;
  const size_t drain_after = plan.options >> 4;

  FuzzIo io(blocking_socket ? 64 : std::numeric_limits<size_t>::max());
  FuzzHandler handler(plan);
  Http1Options options;
  if (small) {
    options.max_header_bytes = 200;
    options.max_pipelined = 2;
  }
  const Http2Options http2_options = small ? SmallHttp2Options() : Http2Options();
  H2cUpgrade upgrade;
  if (offer_upgrade) {
    // As HttpSessionFactory wires it.
    upgrade = [&handler, &http2_options](ConnectionIo* io, std::string_view settings,
                                         const RequestHead& head)
        -> absl::StatusOr<std::unique_ptr<ProtocolSession>> {
      absl::StatusOr<std::unique_ptr<Http2Session>> session =
          Http2Session::CreateFromUpgrade(io, &handler, http2_options, settings, head);
      if (!session.ok()) return session.status();
      return std::unique_ptr<ProtocolSession>(std::move(*session));
    };
  }
  std::unique_ptr<ProtocolSession> session =
      std::make_unique<Http1Session>(&io, &handler, options, std::move(upgrade));

  PlayAndClose(plan, socket_bytes, drain, drain_after, &StartDrain,
               [](ProtocolSession*) {}, io, handler, std::move(session));
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
