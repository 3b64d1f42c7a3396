// The `spillway` CLI end to end (issue 5 §2, §4): the real spillwayd with no built-in
// sink, `spillway consume --to DIR` or `--exec CMD` as its consumer, and curl or
// `spillway upload` as uploaders. What lands in DIR must be byte for byte what was sent.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/upload/checksum.h"
#include "tests/integration/spillwayd_process.h"
#include "tests/integration/test_clients.h"
#include "tests/integration/test_data.h"
#include "tests/integration/upload_fixture.h"
#include "tests/unit/scoped_test_dir.h"

extern char** environ;

namespace spillway {
namespace {

using ::spillway::testing::ListDir;
using ::spillway::testing::RandomishBytes;
using ::spillway::testing::ReadWholeFile;
using ::spillway::testing::ScopedTestDir;
using ::spillway::testing::Sha256Hex;
using ::testing::HasSubstr;
using ::testing::StartsWith;




std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

// The value of the first "key":"value" in a JSON text (enough for receipts).
std::string JsonString(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":\"";
  const size_t start = json.find(needle);
  if (start == std::string::npos) return "";
  const size_t from = start + needle.size();
  return json.substr(from, json.find('"', from) - from);
}

// A long-running `spillway` process (consume), its stdout and stderr going to files.
class CliProcess {
 public:
  CliProcess(const std::vector<std::string>& args, const std::string& log_dir,
             const std::string& binary = SPILLWAY_CLI_PATH) {
    out_ = log_dir + "/cli.out";
    err_ = log_dir + "/cli.err";
    std::vector<std::string> argv = {binary};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c_argv;
    for (std::string& arg : argv) c_argv.push_back(arg.data());
    c_argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (posix_spawn(&pid_, c_argv[0], &actions, nullptr, c_argv.data(), environ) != 0) {
      ADD_FAILURE() << "cannot spawn " << binary;
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
  }
  ~CliProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // SIGTERM, then the exit status (-1 if it had to be killed).
  int Stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    int status = 0;
    while (absl::Now() < deadline) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return -1;
  }

  std::string stdout_text() const { return ReadWholeFile(out_); }
  std::string stderr_text() const { return ReadWholeFile(err_); }

 private:
  pid_t pid_ = -1;
  std::string out_;
  std::string err_;
};

using ::spillway::testing::HttpResult;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spill_ = work_.path() + "/spill";
    out_ = work_.path() + "/out";
    std::filesystem::create_directory(spill_);
    std::filesystem::create_directory(out_);
  }

  void StartServer() {
    SpillwaydProcess::Options options;
    // Small thresholds, so that 10 KiB stays in memory, 300 KiB spills and 3 MiB streams.
    options.args = {"--file-upload-temp-dir=" + spill_, "--file-upload-max-memory-size=64Ki",
                    "--max-body-size=1Mi", "--stream-body-chunk-size=64Ki"};
    auto server = SpillwaydProcess::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_NE(server_->grpc_port(), 0);
  }

  std::string GrpcTarget() const { return absl::StrCat("127.0.0.1:", server_->grpc_port()); }

  // Starts `spillway consume` with `args` and waits until its streams are attached.
  std::unique_ptr<CliProcess> StartConsumer(std::vector<std::string> args, int workers = 2) {
    std::vector<std::string> argv = {"consume", "--target", GrpcTarget(), "--workers",
                                     absl::StrCat(workers)};
    argv.insert(argv.end(), args.begin(), args.end());
    auto process = std::make_unique<CliProcess>(argv, work_.path());
    attached_ += workers;
    EXPECT_TRUE(WaitForMetric("spillway_grpc_consumers_attached", attached_))
        << process->stderr_text();
    return process;
  }

  std::string Metrics() {
    absl::StatusOr<CommandResult> result = RunCommand(
        {"curl", "-sS", absl::StrCat("http://127.0.0.1:", server_->http_port(), "/metrics")});
    return result.ok() ? result->output : "";
  }

  bool WaitForMetric(const std::string& line, int value) {
    const std::string wanted = absl::StrCat(line, " ", value, "\n");
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (Metrics().find(wanted) != std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "metrics never showed " << wanted;
    return false;
  }

  std::string WriteInput(const std::string& name, const std::string& data) {
    return testing::WriteInputFile(work_.path(), name, data);
  }

  HttpResult Curl(const std::vector<std::string>& args,
                  const std::string& path = "/in/files") {
    return testing::CurlFor(args,
                            absl::StrCat("http://127.0.0.1:", server_->http_port(), path));
  }

  std::vector<std::string> OutFiles() {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(out_)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

  absl::StatusOr<CommandResult> Cli(std::vector<std::string> args) {
    args.insert(args.begin(), SPILLWAY_CLI_PATH);
    return RunCommand(args);
  }

  ScopedTestDir work_;
  std::string spill_;
  std::string out_;
  std::unique_ptr<SpillwaydProcess> server_;
  int attached_ = 0;
};

TEST_F(CliTest, ConsumeToDirStoresIdenticalFilesInEachMode) {
  StartServer();
  auto consumer = StartConsumer({"--to", out_, "--prefix", "/in"});
  struct Case {
    size_t size;
    const char* mode;
  };
  const Case cases[] = {{10 * 1024, "memory"}, {300 * 1024, "spill"}, {3 * 1024 * 1024, "stream"}};
  int seed = 0;
  size_t stored = 0;
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(absl::StrCat(protocol, " ", c.size));
      const std::string data = RandomishBytes(c.size, ++seed);
      const std::string path = WriteInput("in.bin", data);
      const HttpResult result = Curl({protocol, "-F", "note=hello", "-F", "file=@" + path});
      ASSERT_EQ(result.status, 201) << result.body << consumer->stderr_text();
      EXPECT_EQ(JsonString(result.body, "mode"), c.mode);
      EXPECT_EQ(JsonString(result.body, "sha256"), Sha256Hex(data));
      EXPECT_THAT(result.body, HasSubstr("{\"name\":\"note\",\"value\":\"hello\"}"));
      const std::string name = JsonString(result.body, "stored_name");
      EXPECT_EQ(name, JsonString(result.body, "upload_id") + "-0-in.bin");
      EXPECT_TRUE(ReadWholeFile(out_ + "/" + name) == data) << "bytes differ: " << name;
      ++stored;
    }
  }
  // A raw body is one unnamed file; a hostile filename never becomes a path.
  const std::string raw = RandomishBytes(200 * 1024, 99);
  const std::string raw_path = WriteInput("raw.bin", raw);
  HttpResult result = Curl({"--data-binary", "@" + raw_path, "-H",
                            "Content-Type: application/octet-stream"});
  ASSERT_EQ(result.status, 201) << result.body;
  EXPECT_TRUE(ReadWholeFile(out_ + "/" + JsonString(result.body, "stored_name")) == raw);
  result = Curl({"-F", "file=@" + raw_path + ";filename=../../x/.evil name"});
  ASSERT_EQ(result.status, 201) << result.body;
  EXPECT_EQ(JsonString(result.body, "stored_name"),
            JsonString(result.body, "upload_id") + "-0-evil_name");
  stored += 2;
  // Only the final names: no partial file is left, nothing outside DIR.
  EXPECT_EQ(OutFiles().size(), stored);
  for (const std::string& name : OutFiles()) EXPECT_THAT(name, ::testing::Not(StartsWith(".")));
  EXPECT_FALSE(std::filesystem::exists(work_.path() + "/x"));
  // Each answered upload printed its receipt line.
  EXPECT_EQ(consumer->Stop(), 0);
  const std::string receipts = consumer->stdout_text();
  EXPECT_EQ(static_cast<size_t>(std::count(receipts.begin(), receipts.end(), '\n')), stored);
}

TEST_F(CliTest, ConsumePathsOnlyReadsSpilledFilesFromTheServersTempDir) {
  StartServer();
  auto consumer = StartConsumer({"--to", out_, "--paths-only"});
  const std::string data = RandomishBytes(300 * 1024, 8);  // spilled
  const HttpResult result = Curl({"-F", "file=@" + WriteInput("in.bin", data)});
  ASSERT_EQ(result.status, 201) << result.body;
  EXPECT_EQ(JsonString(result.body, "mode"), "spill");
  EXPECT_TRUE(ReadWholeFile(out_ + "/" + JsonString(result.body, "stored_name")) == data);
}

TEST_F(CliTest, ConsumeExecPipesEachFileToTheCommand) {
  StartServer();
  const std::string dest = work_.path() + "/exec";
  std::filesystem::create_directory(dest);
  auto consumer = StartConsumer(
      {"--exec", "cat > '" + dest + "/'\"$SPILLWAY_SAFE_FILENAME\" && "
                 "printf '%s|%s|%s' \"$SPILLWAY_FILENAME\" \"$SPILLWAY_CONTENT_TYPE\" "
                 "\"$SPILLWAY_SIZE\" > '" + dest + "/env.txt'"});
  const std::string data = RandomishBytes(300 * 1024, 5);
  const std::string path = WriteInput("in.bin", data);
  const HttpResult result = Curl({"-F", "file=@" + path + ";type=image/png"});
  ASSERT_EQ(result.status, 201) << result.body << consumer->stderr_text();
  EXPECT_EQ(JsonString(result.body, "sha256"), Sha256Hex(data));
  EXPECT_TRUE(ReadWholeFile(dest + "/in.bin") == data);
  EXPECT_EQ(ReadWholeFile(dest + "/env.txt"), absl::StrCat("in.bin|image/png|", data.size()));
}

TEST_F(CliTest, ConsumeExecFailingCommandGives422WithItsStderr) {
  StartServer();
  auto consumer = StartConsumer(
      {"--exec", "cat > /dev/null; echo \"rejected $SPILLWAY_FILENAME\" >&2; exit 3"});
  const std::string path = WriteInput("bad.csv", RandomishBytes(100 * 1024, 7));
  // Over HTTP with curl ...
  HttpResult result = Curl({"-F", "file=@" + path});
  EXPECT_EQ(result.status, 422);
  EXPECT_EQ(result.body, "rejected bad.csv\n");
  // ... and over gRPC with `spillway upload`, whose exit status is then 1.
  absl::StatusOr<CommandResult> upload =
      Cli({"upload", "--target", GrpcTarget(), "--path", "/in", path});
  ASSERT_TRUE(upload.ok()) << upload.status();
  EXPECT_EQ(upload->exit_code, 1);
  EXPECT_EQ(upload->output, "rejected bad.csv\n");
  EXPECT_THAT(upload->errors, HasSubstr("422"));
}

TEST_F(CliTest, Upload100MiBReachesTheConsumerIntact) {
  StartServer();
  auto consumer = StartConsumer({"--to", out_});
  const std::string data = RandomishBytes(100 * 1024 * 1024, 42);
  const std::string path = WriteInput("big.bin", data);
  const std::string sha256 = Sha256Hex(data);
  absl::StatusOr<CommandResult> upload = Cli({"upload", "--target", GrpcTarget(), "--path",
                                              "/big", "--field", "note=big", path});
  ASSERT_TRUE(upload.ok()) << upload.status();
  ASSERT_EQ(upload->exit_code, 0) << upload->errors << consumer->stderr_text();
  EXPECT_EQ(JsonString(upload->output, "mode"), "stream");  // declared over MAX_BODY_SIZE
  EXPECT_EQ(JsonString(upload->output, "sha256"), sha256);
  const std::string stored = out_ + "/" + JsonString(upload->output, "stored_name");
  EXPECT_EQ(std::filesystem::file_size(stored), data.size());
  EXPECT_EQ(Sha256Hex(ReadWholeFile(stored)), sha256);
  EXPECT_EQ(upload->errors, "");  // stderr is not a terminal: no progress bar
}

TEST_F(CliTest, UploadDrawsAProgressBarOnATerminal) {
  StartServer();
  auto consumer = StartConsumer({"--to", out_});
  const std::string path = WriteInput("p.bin", RandomishBytes(5 * 1024 * 1024, 9));
  // script(1) runs the upload on a pseudo-terminal: stderr is a terminal there.
  absl::StatusOr<CommandResult> result = RunCommand(
      {"script", "-qec",
       absl::StrCat(SPILLWAY_CLI_PATH, " upload --target ", GrpcTarget(), " ", path),
       "/dev/null"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->output;
  EXPECT_THAT(result->output, HasSubstr("100% [##############################] 5.0 MiB / 5.0 MiB"));
  EXPECT_THAT(result->output, HasSubstr("\"stored_name\""));
}

TEST_F(CliTest, ClearErrorsForBadArgumentsAndUnreachableTargets) {
  // --help for each command, exit 0.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--help"}, {"consume", "--help"}, {"upload", "--help"}}) {
    absl::StatusOr<CommandResult> help = Cli(args);
    ASSERT_TRUE(help.ok());
    EXPECT_EQ(help->exit_code, 0);
    EXPECT_THAT(help->output, HasSubstr("Usage: spillway"));
    EXPECT_THAT(help->output, HasSubstr("Exit codes:"));
  }
  // Bad arguments: 2 and a message naming the problem.
  struct Bad {
    std::vector<std::string> args;
    std::string message;
  };
  const std::string file = WriteInput("f.txt", "x");
  const Bad bad[] = {
      {{}, "a command is needed"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"consume", "--to", out_}, "--target is required"},
      {{"consume", "--target", "127.0.0.1:1"}, "exactly one of --to DIR and --exec CMD"},
      {{"consume", "--target", "127.0.0.1:1", "--to", out_, "--workers", "0"}, "--workers"},
      {{"consume", "--target", "127.0.0.1:1", "--to", out_, "--prefix", "in"}, "--prefix"},
      {{"upload", "--target", "127.0.0.1:1"}, "nothing to upload"},
      {{"upload", "--target", "127.0.0.1:1", "--field", "novalue", file}, "NAME=VALUE"},
      {{"upload", "--target", "127.0.0.1:1", "--bogus", file}, "unknown option '--bogus'"},
  };
  for (const Bad& b : bad) {
    absl::StatusOr<CommandResult> result = Cli(b.args);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->exit_code, 2) << b.message;
    EXPECT_THAT(result->errors, HasSubstr(b.message));
  }
  // Unreachable target: 3. Unreadable file: 4.
  absl::StatusOr<CommandResult> result =
      Cli({"upload", "--target", "127.0.0.1:1", "--connect-timeout", "500ms", file});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_THAT(result->errors, HasSubstr("cannot connect to 127.0.0.1:1"));
  result = Cli({"consume", "--target", "127.0.0.1:1", "--to", out_, "--connect-timeout",
                "500ms"});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_THAT(result->errors, HasSubstr("cannot reach 127.0.0.1:1"));
  result = Cli({"upload", "--target", "127.0.0.1:1", work_.path() + "/missing"});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 4);
  EXPECT_THAT(result->errors, HasSubstr("missing: No such file or directory"));
  result = Cli({"consume", "--target", "127.0.0.1:1", "--to", work_.path() + "/missing"});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 4);
}

// README "Write a consumer": the commands shown there, with the test's port, and the
// example program shown there, which must be client/examples/count_bytes.cc verbatim.
TEST_F(CliTest, ReadmeWriteAConsumerCommandsAndExampleWork) {
  const std::string readme = ReadWholeFile(std::string(SPILLWAY_SOURCE_DIR) + "/README.md");
  const std::string example =
      ReadWholeFile(std::string(SPILLWAY_SOURCE_DIR) + "/client/examples/count_bytes.cc");
  ASSERT_FALSE(example.empty());
  EXPECT_NE(readme.find("```c++\n" + example + "```"), std::string::npos)
      << "README.md must show client/examples/count_bytes.cc verbatim";
  const std::string consume_line =
      "spillway consume --target localhost:50051 --to ./received --prefix /in";
  const std::string upload_line =
      "spillway upload --target localhost:50051 --path /in --field note=hi report.pdf";
  ASSERT_NE(readme.find(consume_line), std::string::npos);
  ASSERT_NE(readme.find(upload_line), std::string::npos);

  StartServer();
  const std::string target = GrpcTarget();
  std::filesystem::create_directory(work_.path() + "/received");
  std::vector<std::string> consume_args =
      Words(Replace(Replace(consume_line, "localhost:50051", target), "./received",
                    work_.path() + "/received"));
  consume_args.erase(consume_args.begin());  // "spillway"
  auto consumer = std::make_unique<CliProcess>(consume_args, work_.path());
  attached_ += 4;  // --workers defaults to 4
  ASSERT_TRUE(WaitForMetric("spillway_grpc_consumers_attached", attached_))
      << consumer->stderr_text();
  const std::string report = RandomishBytes(123456, 3);
  WriteInput("report.pdf", report);
  std::vector<std::string> upload_args = Words(Replace(
      Replace(upload_line, "localhost:50051", target), "report.pdf", work_.path() + "/report.pdf"));
  upload_args.erase(upload_args.begin());
  absl::StatusOr<CommandResult> upload = Cli(upload_args);
  ASSERT_TRUE(upload.ok());
  ASSERT_EQ(upload->exit_code, 0) << upload->errors;
  EXPECT_TRUE(ReadWholeFile(work_.path() + "/received/" +
                            JsonString(upload->output, "stored_name")) == report);
  EXPECT_EQ(consumer->Stop(), 0);
  attached_ -= 4;
  ASSERT_TRUE(WaitForMetric("spillway_grpc_consumers_attached", attached_));

  // The example program, attached to /in with 4 workers.
  CliProcess count_bytes({target}, work_.path(), SPILLWAY_EXAMPLE_COUNT_BYTES_PATH);
  attached_ += 4;
  ASSERT_TRUE(WaitForMetric("spillway_grpc_consumers_attached", attached_));
  const HttpResult result = Curl({"-F", "note=hi", "-F", "file=@" + work_.path() + "/report.pdf"},
                                 "/in/reports");
  EXPECT_EQ(result.status, 201);
  EXPECT_EQ(result.body, "report.pdf: 123456 bytes\n");
  EXPECT_EQ(count_bytes.Stop(), 0);
}

}  // namespace
}  // namespace spillway
