#include "tests/integration/spillwayd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace spillway {
namespace {

// The port `name` from {"event":"listening","http_port":N,...}, or 0.
uint16_t ParseListeningPort(const std::string& line,
                            const std::string& name = "http_port") {
  if (line.find("\"event\":\"listening\"") == std::string::npos) return 0;
  const std::string key = absl::StrCat("\"", name, "\":");
  size_t at = line.find(key);
  if (at == std::string::npos) return 0;
  at += key.size();
  size_t end = at;
  while (end < line.size() && line[end] >= '0' && line[end] <= '9') ++end;
  uint32_t port = 0;
  if (!absl::SimpleAtoi(line.substr(at, end - at), &port) || port > 65535) return 0;
  return static_cast<uint16_t>(port);
}

}  // namespace

std::string SpillwaydProcess::DefaultBinary() {
  const char* binary = std::getenv("SPILLWAY_TEST_SPILLWAYD");
  return binary != nullptr && *binary != '\0' ? binary : SPILLWAYD_PATH;
}

absl::StatusOr<std::unique_ptr<SpillwaydProcess>> SpillwaydProcess::Start(
    const Options& options) {
  // An ephemeral gRPC port too, so that daemons of parallel tests never collide.
  std::vector<std::string> argv_storage = {options.binary, "--http-port=0",
                                           absl::StrCat("--grpc-port=", options.grpc_port),
                                           "--listen-address=127.0.0.1"};
  for (const std::string& arg : options.args) argv_storage.push_back(arg);
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  for (const auto& [name, value] : options.env) {
    env_storage.push_back(absl::StrCat(name, "=", value));
  }
  std::vector<char*> envp;
  for (std::string& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  // The child starts with no signals blocked, whatever the test runner does.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);

  std::unique_ptr<SpillwaydProcess> process(new SpillwaydProcess());
  const int error = ::posix_spawn(&process->pid_, options.binary.c_str(), &actions, &attr,
                                  argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(pipe_fds[1]);
  if (error != 0) {
    ::close(pipe_fds[0]);
    return absl::InternalError(
        absl::StrCat("spawn ", options.binary, ": ", std::strerror(error)));
  }
  const int read_fd = pipe_fds[0];
  SpillwaydProcess* raw = process.get();
  process->reader_ = std::thread([raw, read_fd] { raw->ReadStdout(read_fd); });

  // Wait for the listening line (or the process ending first).
  const absl::Time deadline = absl::Now() + options.start_timeout;
  while (absl::Now() < deadline) {
    {
      MutexLock lock(&process->mu_);
      for (const std::string& line : process->lines_) {
        if (uint16_t port = ParseListeningPort(line); port != 0) {
          process->http_port_ = port;
          process->grpc_port_ = ParseListeningPort(line, "grpc_port");
          return process;
        }
      }
      if (process->eof_) break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  std::string output;
  for (const std::string& line : process->stdout_lines()) {
    absl::StrAppend(&output, line, "\n");
  }
  return absl::UnavailableError(
      absl::StrCat("spillwayd did not report listening; stdout:\n", output));
}

SpillwaydProcess::~SpillwaydProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  if (reader_.joinable()) reader_.join();
}

void SpillwaydProcess::ReadStdout(int fd) {
  std::string partial;
  char buffer[4096];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buffer, n);
    size_t newline;
    while ((newline = partial.find('\n')) != std::string::npos) {
      MutexLock lock(&mu_);
      lines_.push_back(partial.substr(0, newline));
      partial.erase(0, newline + 1);
    }
  }
  ::close(fd);
  MutexLock lock(&mu_);
  if (!partial.empty()) lines_.push_back(partial);
  eof_ = true;
}

absl::Status SpillwaydProcess::Signal(int signo) {
  if (reaped_) return absl::FailedPreconditionError("spillwayd already exited");
  if (::kill(pid_, signo) != 0) return absl::InternalError(std::strerror(errno));
  return absl::OkStatus();
}

absl::StatusOr<int> SpillwaydProcess::Wait(absl::Duration timeout) {
  if (reaped_) return exit_code_;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      reaped_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (reader_.joinable()) reader_.join();  // stdout closes with the process
      return exit_code_;
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("spillwayd still running");
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

std::vector<std::string> SpillwaydProcess::stdout_lines() const {
  MutexLock lock(&mu_);
  return lines_;
}

bool SpillwaydProcess::WaitForLine(const std::string& needle,
                                   absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    {
      MutexLock lock(&mu_);
      for (const std::string& line : lines_) {
        if (line.find(needle) != std::string::npos) return true;
      }
      if (eof_) return false;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

}  // namespace spillway
