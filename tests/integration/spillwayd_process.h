// SpillwaydProcess: runs the real spillwayd binary for an integration test. Start()
// spawns it with extra flags and environment, reads its stdout until the
// {"event":"listening","http_port":N} line, and keeps collecting the lines after it
// (access log, events) on a reader thread. The destructor kills a process still
// running, so a failing test never leaks one.
//
// Typical use:
//   auto server = SpillwaydProcess::Start({.args = {"--sink=discard"}});
//   ASSERT_TRUE(server.ok()) << server.status();
//   ... talk to 127.0.0.1:(*server)->http_port() ...
//   ASSERT_TRUE((*server)->Signal(SIGTERM).ok());
//   EXPECT_EQ((*server)->Wait(absl::Seconds(10)).value_or(-1), 0);
//
// Threading: one test thread drives it; stdout_lines() may be called any time.
#ifndef SPILLWAY_TESTS_INTEGRATION_SPILLWAYD_PROCESS_H_
#define SPILLWAY_TESTS_INTEGRATION_SPILLWAYD_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/common/mutex.h"

namespace spillway {

class SpillwaydProcess {
 public:
  static std::string DefaultBinary();

  struct Options {
    // Added after the defaults "--http-port=0 --grpc-port=0
    // --listen-address=127.0.0.1".
    std::vector<std::string> args;
    // Set in the child's environment, on top of the parent's.
    std::vector<std::pair<std::string, std::string>> env;
    // The binary; by default $SPILLWAY_TEST_SPILLWAYD if set (another build, say a
    // sanitizer one, or an older one to see a test fail), else the spillwayd this
    // test tree was built with.
    std::string binary = DefaultBinary();
    // The gRPC port; 0: an ephemeral one. (Set: a restarted daemon on the same port.)
    uint16_t grpc_port = 0;
    absl::Duration start_timeout = absl::Seconds(15);
  };

  static absl::StatusOr<std::unique_ptr<SpillwaydProcess>> Start(const Options& options);
  ~SpillwaydProcess();

  SpillwaydProcess(const SpillwaydProcess&) = delete;
  SpillwaydProcess& operator=(const SpillwaydProcess&) = delete;

  uint16_t http_port() const { return http_port_; }
  // From the same line's "grpc_port" (GRPC_PORT is 0 here too); 0 if absent.
  uint16_t grpc_port() const { return grpc_port_; }
  pid_t pid() const { return pid_; }

  absl::Status Signal(int signo);
  // The exit status (0..255), or 128 + signal if killed by one; DeadlineExceeded if
  // still running after `timeout`.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // Every stdout line so far, the listening line included.
  std::vector<std::string> stdout_lines() const;
  // Waits until some stdout line contains `needle`; false on timeout.
  bool WaitForLine(const std::string& needle, absl::Duration timeout) const;

 private:
  SpillwaydProcess() = default;
  void ReadStdout(int fd);

  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  uint16_t http_port_ = 0;
  uint16_t grpc_port_ = 0;
  std::thread reader_;
  mutable Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace spillway

#endif  // SPILLWAY_TESTS_INTEGRATION_SPILLWAYD_PROCESS_H_
