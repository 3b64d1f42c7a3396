// The C++ client library (issue 5 §1, §4): spillway::client::Consumer against two
// spillwayd processes reached through one dns:/// name (resolved by a resolver hook),
// including one replica replaced by another; spillway::client::Uploader with progress.
#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/mutex.h"
#include "spillway/client/consumer.h"
#include "spillway/client/uploader.h"
#include "tests/integration/spillwayd_process.h"
#include "tests/integration/test_clients.h"

namespace spillway {
namespace {

namespace sc = ::spillway::client;

std::unique_ptr<SpillwaydProcess> StartServer(uint16_t grpc_port = 0) {
  SpillwaydProcess::Options options;
  options.grpc_port = grpc_port;
  options.args = {"--max-body-size=1Mi", "--file-upload-max-memory-size=64Ki",
                  "--dispatch-timeout=20s"};
  auto server = SpillwaydProcess::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

std::string Metrics(const SpillwaydProcess& server) {
  absl::StatusOr<CommandResult> result = RunCommand(
      {"curl", "-sS", absl::StrCat("http://127.0.0.1:", server.http_port(), "/metrics")});
  return result.ok() ? result->output : "";
}

bool WaitForAttached(const SpillwaydProcess& server, int streams) {
  const std::string wanted = absl::StrCat("spillway_grpc_consumers_attached ", streams, "\n");
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline) {
    if (Metrics(server).find(wanted) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

// Counts each upload's file bytes and replies "PATH: N bytes".
sc::Reply CountBytes(sc::Request& request) {
  uint64_t bytes = 0;
  std::vector<std::string> fields;
  while (request.Next()) {
    if (!request.is_file()) {
      fields.push_back(request.field_name() + "=" + request.field_value());
      continue;
    }
    std::string chunk;
    while (request.Read(&chunk)) bytes += chunk.size();
    EXPECT_EQ(request.file_end().size, bytes);
  }
  std::string body = absl::StrCat(request.info().path, ": ", bytes, " bytes");
  for (const std::string& field : fields) absl::StrAppend(&body, " ", field);
  return sc::Reply{201, {{"content-type", "text/plain"}}, body};
}

TEST(ClientLibrary, ConsumerFollowsEveryReplicaOfADnsName) {
  std::unique_ptr<SpillwaydProcess> a = StartServer();
  std::unique_ptr<SpillwaydProcess> b = StartServer();
  ASSERT_TRUE(a && b);
  auto address = [](const SpillwaydProcess& server) {
    return absl::StrCat("ipv4:127.0.0.1:", server.grpc_port());
  };
  // The "DNS" of this test: what the headless Service would answer right now.
  Mutex mu;
  std::vector<std::string> records = {address(*a), address(*b)};
  std::string asked;
  sc::Consumer::Options options;
  options.target = "dns:///spillway-headless:50051";
  options.workers = 2;
  options.resolve_interval = std::chrono::milliseconds(100);
  options.resolver = [&](const std::string& name_port) {
    MutexLock lock(&mu);
    asked = name_port;
    return records;
  };
  sc::Consumer consumer(options, CountBytes);
  consumer.Start();
  ASSERT_TRUE(consumer.WaitUntilConnected(std::chrono::seconds(10)));
  ASSERT_TRUE(WaitForAttached(*a, 2));
  ASSERT_TRUE(WaitForAttached(*b, 2));
  {
    MutexLock lock(&mu);
    EXPECT_EQ(asked, "spillway-headless:50051");
  }
  EXPECT_EQ(consumer.stats().replicas, 2);

  // An upload to either replica is consumed.
  for (SpillwaydProcess* server : {a.get(), b.get()}) {
    absl::StatusOr<CommandResult> curl = RunCommand(
        {"curl", "-sS", "-F", "note=x", "-F", "file=@/dev/null;filename=empty.bin",
         absl::StrCat("http://127.0.0.1:", server->http_port(), "/in/one")});
    ASSERT_TRUE(curl.ok());
    EXPECT_EQ(curl->output, "/in/one: 0 bytes note=x");
  }

  // Replica b dies and a new one (a new address, as a new pod) takes its place: the
  // consumer drops b, attaches to c by itself, and c's uploads are consumed.
  ASSERT_TRUE(b->Signal(SIGKILL).ok());
  b->Wait(absl::Seconds(10)).IgnoreError();
  std::unique_ptr<SpillwaydProcess> c = StartServer();
  ASSERT_TRUE(c);
  {
    MutexLock lock(&mu);
    records = {address(*a), address(*c)};
  }
  ASSERT_TRUE(WaitForAttached(*c, 2));
  EXPECT_TRUE(WaitForAttached(*a, 2));
  EXPECT_EQ(consumer.stats().replicas, 2);

  // The Uploader, with its progress callback, through the new replica (streamed:
  // 3 MiB declared over MAX_BODY_SIZE).
  sc::Uploader uploader(absl::StrCat("127.0.0.1:", c->grpc_port()));
  sc::UploadSpec spec;
  spec.path = "/in/two";
  spec.fields = {{"k", "v"}};
  sc::UploadFile file;
  file.filename = "three.bin";
  file.data = std::string(3 * 1024 * 1024, 'z');
  spec.files = {file};
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  spec.progress = [&](uint64_t sent, uint64_t total) { progress.emplace_back(sent, total); };
  sc::Reply reply;
  std::string error;
  ASSERT_TRUE(uploader.Upload(spec, &reply, &error)) << error;
  EXPECT_EQ(reply.status, 201u);
  EXPECT_EQ(reply.body, "/in/two: 3145728 bytes k=v");
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(uint64_t{3145729}, uint64_t{3145729}));
  for (size_t i = 1; i < progress.size(); ++i) {
    EXPECT_LE(progress[i - 1].first, progress[i].first);
  }

  consumer.Stop();
  EXPECT_TRUE(WaitForAttached(*a, 0));
  EXPECT_TRUE(WaitForAttached(*c, 0));
}

TEST(ClientLibrary, ConsumerReconnectsByItselfWhenItsServerRestarts) {
  std::unique_ptr<SpillwaydProcess> server = StartServer();
  ASSERT_TRUE(server);
  const uint16_t port = server->grpc_port();
  sc::Consumer::Options options;
  options.target = absl::StrCat("127.0.0.1:", port);
  options.workers = 2;
  sc::Consumer consumer(options, CountBytes);
  consumer.Start();
  ASSERT_TRUE(WaitForAttached(*server, 2));
  ASSERT_TRUE(server->Signal(SIGKILL).ok());
  server->Wait(absl::Seconds(10)).IgnoreError();
  server.reset();
  // The same gRPC port again (a restarted pod keeps its address).
  server = StartServer(port);
  ASSERT_TRUE(server);
  ASSERT_TRUE(WaitForAttached(*server, 2));  // backoff is at most 5 s
  absl::StatusOr<CommandResult> curl = RunCommand(
      {"curl", "-sS", "--data-binary", "abcd",
       absl::StrCat("http://127.0.0.1:", server->http_port(), "/again")});
  ASSERT_TRUE(curl.ok());
  EXPECT_EQ(curl->output, "/again: 4 bytes");
  EXPECT_GE(consumer.stats().reconnects, 2u);
}

TEST(ClientLibrary, HandlerExceptionBecomes500AndTheStreamGoesOn) {
  std::unique_ptr<SpillwaydProcess> server = StartServer();
  ASSERT_TRUE(server);
  sc::Consumer::Options options;
  options.target = absl::StrCat("127.0.0.1:", server->grpc_port());
  options.workers = 3;
  std::atomic<int> calls{0};
  sc::Consumer consumer(options, [&](sc::Request& request) {
    // The first upload's handler fails mid-way with an exception: a 500 reply.
    if (calls++ == 0) throw std::runtime_error("boom");
    return CountBytes(request);
  });
  consumer.Start();
  ASSERT_TRUE(WaitForAttached(*server, 3));
  const std::string url = absl::StrCat("http://127.0.0.1:", server->http_port(), "/x");
  absl::StatusOr<CommandResult> curl =
      RunCommand({"curl", "-sS", "-w", " %{http_code}", "--data-binary", "abc", url});
  ASSERT_TRUE(curl.ok());
  EXPECT_EQ(curl->output, "handler failed: boom 500");
  curl = RunCommand({"curl", "-sS", "-w", " %{http_code}", "--data-binary", "abc", url});
  ASSERT_TRUE(curl.ok());
  EXPECT_EQ(curl->output, "/x: 3 bytes 201");
  EXPECT_EQ(consumer.stats().uploads_handled, 2u);
}

TEST(ClientLibrary, UploaderReportsAnUnreachableTarget) {
  sc::Uploader::Options options;
  options.connect_timeout = std::chrono::milliseconds(300);
  sc::Uploader uploader("127.0.0.1:1", options);
  sc::UploadSpec spec;
  spec.fields = {{"a", "b"}};
  sc::Reply reply;
  std::string error;
  sc::Uploader::Error kind = sc::Uploader::Error::kNone;
  EXPECT_FALSE(uploader.Upload(spec, &reply, &error, &kind));
  EXPECT_EQ(kind, sc::Uploader::Error::kUnreachable);
  EXPECT_THAT(error, ::testing::HasSubstr("cannot connect to 127.0.0.1:1"));
}

}  // namespace
}  // namespace spillway
