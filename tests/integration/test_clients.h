// Clients for integration tests: the real curl binary, and a raw TCP connection for
// bytes no well-behaved client sends. Blocking, with timeouts; one thread each.
#ifndef SPILLWAY_TESTS_INTEGRATION_TEST_CLIENTS_H_
#define SPILLWAY_TESTS_INTEGRATION_TEST_CLIENTS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/common/unique_fd.h"

namespace spillway {

struct CommandResult {
  int exit_code = -1;   // 128 + signal if killed
  std::string output;   // stdout
  std::string errors;   // stderr
};

// Runs `argv` (argv[0] looked up in PATH) to completion, capturing its output.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv);

// A blocking TCP connection to 127.0.0.1:port.
class RawConnection {
 public:
  static absl::StatusOr<RawConnection> Connect(uint16_t port);

  absl::Status Send(std::string_view bytes);
  // Half-closes: the peer reads EOF, and this side can still read its answer.
  absl::Status ShutdownWrite();
  // Reads until `needle` has been received (returns everything read so far), the
  // peer closes, or `timeout`.
  std::string ReadUntil(std::string_view needle, absl::Duration timeout = absl::Seconds(5));
  // Reads until the peer closes or `timeout`; true if it closed.
  bool ReadToClose(std::string* out, absl::Duration timeout = absl::Seconds(5));

 private:
  explicit RawConnection(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// The status code of the first response in `response` ("HTTP/1.1 200 OK" -> 200), or 0.
int StatusCodeOf(std::string_view response);

}  // namespace spillway

#endif  // SPILLWAY_TESTS_INTEGRATION_TEST_CLIENTS_H_
