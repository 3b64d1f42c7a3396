// The gRPC Ingest service end to end (DESIGN.md §2, §3): the real spillwayd with no
// built-in sink, real gRPC C++ consumers on Consume streams, curl (and a gRPC Upload
// client) as uploaders. Consumers check every byte and the SHA-256 they are given and
// reply; the uploader must see exactly that reply.
#include <signal.h>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/mutex.h"
#include "server/upload/checksum.h"
#include "spillway/v1/ingest.grpc.pb.h"
#include "tests/integration/spillwayd_process.h"
#include "tests/integration/test_clients.h"
#include "tests/integration/test_data.h"
#include "tests/integration/upload_fixture.h"
#include "tests/unit/scoped_test_dir.h"
#include "tests/unit/upload_request_builders.h"

namespace spillway {
namespace {

using ::spillway::testing::FieldMessage;
using ::spillway::testing::FileMessage;
using ::spillway::testing::ListDir;
using ::spillway::testing::RandomishBytes;
using ::spillway::testing::ReadWholeFile;
using ::spillway::testing::ScopedTestDir;
using ::spillway::testing::Sha256Hex;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;





// What a consumer received of one upload (one delivery attempt).
struct ReceivedFile {
  v1::UploadedFile meta;
  std::string data;  // from Chunks, or read from meta.path() when path_only
  uint64_t size = 0;   // bytes received (even when not kept)
  std::string sha256;  // of the bytes received, computed by the consumer
  bool offsets_ok = true;
  v1::FileFinished finished;
};

struct ReceivedUpload {
  v1::RequestStarted started;
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<ReceivedFile> files;
  bool finished = false;  // RequestFinished came
  bool aborted = false;   // RequestAborted came
  std::string abort_reason;
  bool replied_early = false;
  std::string reply_body;  // what the consumer answered
};

// A gRPC consumer on its own thread, using the synchronous client API.
class TestConsumer {
 public:
  struct Options {
    std::string name = "test-consumer";
    std::vector<std::string> path_prefixes;
    bool paths_only = false;
    // First stream only: cancel it after this many Chunks (-1: never). The consumer
    // then attaches again on a fresh stream.
    int break_after_chunks = -1;
    // After RequestStarted: a status to reply at once (0: none).
    uint32_t early_reply_status = 0;
    // After RequestFinished: the status to reply (0: never reply).
    uint32_t reply_status = 201;
    // The first this many uploads get no Reply at all, whatever reply_status says.
    int unanswered_uploads = 0;
    // On each RequestStarted after the first, a Reply (status 418) naming the upload
    // before is sent first: a late answer the server must drop.
    bool stale_reply_on_start = false;
    // False: only the size and SHA-256 of the files are kept (for huge bodies).
    bool keep_data = true;
    // Sleeps this long after each Chunk: a slow consumer.
    absl::Duration sleep_per_chunk = absl::ZeroDuration();
    // Added to every Reply, after its content-type.
    std::vector<std::pair<std::string, std::string>> reply_headers;
  };

  TestConsumer(uint16_t port, Options options) : options_(std::move(options)) {
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials());
    thread_ = std::thread([this] { Run(); });
  }
  ~TestConsumer() { Stop(); }

  void Stop() {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

  // Uploads that reached an end (finished, aborted or answered early), in order.
  std::vector<ReceivedUpload> uploads() {
    MutexLock lock(&mu_);
    return uploads_;
  }

  bool WaitForUploads(size_t n, absl::Duration timeout = absl::Seconds(20)) {
    MutexLock lock(&mu_);
    return cv_.AwaitWithTimeout(
        &mu_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return uploads_.size() >= n; },
        timeout);
  }

 private:
  void Run() {
    auto stub = v1::Ingest::NewStub(channel_);
    for (int session = 0;; ++session) {
      grpc::ClientContext context;
      {
        MutexLock lock(&mu_);
        if (stopping_) return;
        context_ = &context;
      }
      RunStream(*stub, context, session == 0 ? options_.break_after_chunks : -1);
      MutexLock lock(&mu_);
      context_ = nullptr;
      if (stopping_) return;
    }
  }

  void RunStream(v1::Ingest::Stub& stub, grpc::ClientContext& context,
                 int break_after_chunks) {
    auto stream = stub.Consume(&context);
    v1::ConsumerMessage attach;
    attach.mutable_attach()->set_name(options_.name);
    for (const std::string& prefix : options_.path_prefixes) {
      attach.mutable_attach()->add_path_prefixes(prefix);
    }
    attach.mutable_attach()->set_paths_only(options_.paths_only);
    if (!stream->Write(attach)) return;

    v1::ServerMessage message;
    ReceivedUpload current;
    Checksum sha256 = Checksum::Create(ChecksumKind::kSha256);
    int chunks = 0;
    int finished_uploads = 0;
    while (stream->Read(&message)) {
      // After an early reply, what the server had already sent of that upload is
      // ignored until the next RequestStarted.
      if (current.replied_early &&
          message.kind_case() != v1::ServerMessage::kRequestStarted) {
        continue;
      }
      switch (message.kind_case()) {
        case v1::ServerMessage::kRequestStarted:
          if (options_.stale_reply_on_start && !current.started.upload_id().empty()) {
            stream->Write(MakeReply(current, 418));
          }
          current = ReceivedUpload();
          current.started = message.request_started();
          if (options_.early_reply_status != 0) {
            current.replied_early = true;
            current.reply_body = "{\"early\":true}";
            stream->Write(MakeReply(current, options_.early_reply_status));
            Record(current);
          }
          break;
        case v1::ServerMessage::kField:
          current.fields.emplace_back(message.field().name(), message.field().value());
          break;
        case v1::ServerMessage::kFileStarted:
          current.files.emplace_back();
          current.files.back().meta = message.file_started().file();
          sha256 = Checksum::Create(ChecksumKind::kSha256);
          break;
        case v1::ServerMessage::kChunk: {
          if (current.files.empty()) current.files.emplace_back();  // malformed: noticed
          ReceivedFile& file = current.files.back();
          if (message.chunk().offset() != file.size) file.offsets_ok = false;
          file.size += message.chunk().data().size();
          sha256.Update(message.chunk().data());
          if (options_.keep_data) file.data += message.chunk().data();
          if (options_.sleep_per_chunk > absl::ZeroDuration()) {
            absl::SleepFor(options_.sleep_per_chunk);
          }
          if (break_after_chunks >= 0 && ++chunks >= break_after_chunks) {
            context.TryCancel();  // the consumer "dies" mid-delivery
            return;
          }
          break;
        }
        case v1::ServerMessage::kFileFinished: {
          ReceivedFile& file = current.files.back();
          file.finished = message.file_finished();
          if (file.meta.path_only()) {
            file.data = ReadWholeFile(file.meta.path());
            file.size = file.data.size();
            sha256.Update(file.data);
          }
          file.sha256 = sha256.FinishHex();
          break;
        }
        case v1::ServerMessage::kRequestFinished: {
          current.finished = true;
          std::string body = absl::StrCat("{\"upload_id\":\"",
                                          current.started.upload_id(), "\",\"files\":[");
          for (const ReceivedFile& file : current.files) {
            absl::StrAppend(&body, "{\"size\":", file.size, ",\"sha256\":\"",
                            file.sha256, "\"}");
          }
          absl::StrAppend(&body, "]}");
          current.reply_body = body;
          Record(current);
          const bool unanswered = finished_uploads++ < options_.unanswered_uploads;
          if (options_.reply_status != 0 && !unanswered) {
            stream->Write(MakeReply(current, options_.reply_status));
          }
          break;
        }
        case v1::ServerMessage::kRequestAborted:
          current.aborted = true;
          current.abort_reason = message.request_aborted().reason();
          Record(current);
          break;
        default:
          break;
      }
    }
  }

  v1::ConsumerMessage MakeReply(const ReceivedUpload& upload, uint32_t status) const {
    v1::ConsumerMessage message;
    v1::Reply* reply = message.mutable_reply();
    reply->set_upload_id(upload.started.upload_id());
    reply->set_status(status);
    v1::Header* header = reply->add_headers();
    header->set_name("Content-Type");
    header->set_value("application/json");
    for (const auto& [name, value] : options_.reply_headers) {
      header = reply->add_headers();
      header->set_name(name);
      header->set_value(value);
    }
    reply->set_body(upload.reply_body);
    return message;
  }

  void Record(const ReceivedUpload& upload) {
    MutexLock lock(&mu_);
    uploads_.push_back(upload);
    cv_.SignalAll();
  }

  const Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::thread thread_;
  Mutex mu_;
  CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<ReceivedUpload> uploads_ ABSL_GUARDED_BY(mu_);
};

using ::spillway::testing::HttpResult;

class GrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spill_ = work_.path() + "/spill";
    std::filesystem::create_directory(spill_);
  }

  void StartServer(std::vector<std::string> args = {},
                   std::vector<std::pair<std::string, std::string>> env = {}) {
    SpillwaydProcess::Options options;
    options.env = std::move(env);
    // Defaults for these tests, unless `args` sets the same flag.
    for (const std::string& arg : {"--file-upload-temp-dir=" + spill_,
                                   std::string("--file-upload-max-memory-size=64Ki"),
                                   std::string("--max-body-size=1Mi"),
                                   std::string("--stream-body-chunk-size=64Ki")}) {
      const std::string flag = arg.substr(0, arg.find('=') + 1);
      bool overridden = false;
      for (const std::string& given : args) overridden |= given.starts_with(flag);
      if (!overridden) options.args.push_back(arg);
    }
    options.args.insert(options.args.end(), args.begin(), args.end());
    auto server = SpillwaydProcess::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_NE(server_->grpc_port(), 0) << "no grpc_port on the listening line";
  }

  // A server with low multipart limits (see the Upload RPC limit tests) and one
  // consumer, on /grpc.
  std::unique_ptr<TestConsumer> StartWithSmallPartLimits() {
    StartServer({"--max-parts=4", "--max-part-header-bytes=256", "--max-field-size=1Ki"});
    TestConsumer::Options options;
    options.path_prefixes = {"/grpc"};
    return AddConsumer(options);
  }

  std::unique_ptr<TestConsumer> AddConsumer(TestConsumer::Options options = {}) {
    auto consumer = std::make_unique<TestConsumer>(server_->grpc_port(), options);
    EXPECT_TRUE(WaitForMetric("spillway_grpc_consumers_attached", ++attached_));
    return consumer;
  }

  std::string Metrics() {
    absl::StatusOr<CommandResult> result = RunCommand(
        {"curl", "-sS", absl::StrCat("http://127.0.0.1:", server_->http_port(), "/metrics")});
    return result.ok() ? result->output : "";
  }

  // Waits until the metrics show `line` followed by `value`.
  bool WaitForMetric(const std::string& line, int value) {
    const std::string wanted = absl::StrCat(line, " ", value, "\n");
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (Metrics().find(wanted) != std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "metrics never showed " << wanted << Metrics();
    return false;
  }

  std::string WriteInput(const std::string& name, const std::string& data) {
    return testing::WriteInputFile(work_.path(), name, data);
  }

  HttpResult Curl(const std::vector<std::string>& args,
                  const std::string& path = "/upload") {
    return testing::CurlFor(args,
                            absl::StrCat("http://127.0.0.1:", server_->http_port(), path));
  }

  ScopedTestDir work_;
  std::string spill_;
  std::unique_ptr<SpillwaydProcess> server_;
  int attached_ = 0;
};

void ExpectIntact(const ReceivedFile& file, const std::string& sent) {
  EXPECT_EQ(file.size, sent.size());
  EXPECT_EQ(file.sha256, Sha256Hex(sent));
  EXPECT_EQ(file.data.size(), sent.size());
  EXPECT_TRUE(file.data == sent) << "bytes differ";
  EXPECT_TRUE(file.offsets_ok);
  EXPECT_EQ(file.finished.size(), sent.size());
  EXPECT_EQ(file.finished.checksum_algorithm(), "sha256");
  EXPECT_EQ(file.finished.checksum(), Sha256Hex(sent));
}

TEST_F(GrpcTest, EachModeEndToEndOverHttp1AndHttp2) {
  StartServer();
  auto consumer = AddConsumer();
  struct Case {
    size_t size;
    v1::Mode mode;
  };
  const Case cases[] = {{10 * 1024, v1::MODE_MEMORY},
                        {300 * 1024, v1::MODE_SPILL},
                        {3 * 1024 * 1024, v1::MODE_STREAM}};
  size_t expected_uploads = 0;
  int seed = 0;
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(absl::StrCat(protocol, " ", c.size));
      const std::string data = RandomishBytes(c.size, ++seed);
      const std::string path = WriteInput("in.bin", data);
      const HttpResult result =
          Curl({protocol, "-F", "note=hello", "-F", "file=@" + path}, "/in/x");
      ASSERT_TRUE(consumer->WaitForUploads(++expected_uploads));
      const ReceivedUpload upload = consumer->uploads().back();
      EXPECT_EQ(result.status, 201);
      EXPECT_EQ(result.body, upload.reply_body);
      EXPECT_TRUE(upload.finished);
      EXPECT_EQ(upload.started.path(), "/in/x");
      EXPECT_EQ(upload.started.attempt(), 1u);
      EXPECT_EQ(upload.started.mode(), c.mode);
      ASSERT_EQ(upload.fields.size(), 1u);
      EXPECT_EQ(upload.fields[0], std::make_pair(std::string("note"), std::string("hello")));
      ASSERT_EQ(upload.files.size(), 1u);
      EXPECT_EQ(upload.files[0].meta.mode(), c.mode);
      EXPECT_EQ(upload.files[0].meta.filename(), "in.bin");
      EXPECT_EQ(upload.files[0].meta.in_memory(), c.mode == v1::MODE_MEMORY);
      ExpectIntact(upload.files[0], data);
    }
  }
  // A raw body, buffered.
  const std::string raw = RandomishBytes(200 * 1024, 99);
  const HttpResult result = Curl({"--data-binary", "@" + WriteInput("raw.bin", raw), "-H",
                                  "content-type: application/octet-stream"});
  ASSERT_TRUE(consumer->WaitForUploads(++expected_uploads));
  const ReceivedUpload upload = consumer->uploads().back();
  EXPECT_EQ(result.status, 201);
  ASSERT_EQ(upload.files.size(), 1u);
  ExpectIntact(upload.files[0], raw);

  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat(
                           "spillway_grpc_deliveries_total{outcome=\"replied\"} ",
                           expected_uploads, "\n")));
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat("spillway_deliveries_total{outcome=\"replied\"} ",
                                              expected_uploads, "\n")));
  EXPECT_THAT(metrics, HasSubstr("spillway_grpc_delivered_bytes_total "));
  EXPECT_THAT(ListDir(spill_), IsEmpty());
}

TEST_F(GrpcTest, PathsOnlyConsumerReadsSpilledFileFromItsPath) {
  StartServer();
  TestConsumer::Options options;
  options.paths_only = true;
  auto consumer = AddConsumer(options);
  const std::string data = RandomishBytes(300 * 1024, 7);
  const HttpResult result = Curl({"-F", "file=@" + WriteInput("in.bin", data)});
  ASSERT_TRUE(consumer->WaitForUploads(1));
  const ReceivedUpload upload = consumer->uploads().back();
  EXPECT_EQ(result.status, 201);
  ASSERT_EQ(upload.files.size(), 1u);
  EXPECT_TRUE(upload.files[0].meta.path_only());
  EXPECT_THAT(upload.files[0].meta.path(), ::testing::StartsWith(spill_));
  ExpectIntact(upload.files[0], data);  // read from the path before replying
  EXPECT_FALSE(std::filesystem::exists(upload.files[0].meta.path()));
}

TEST_F(GrpcTest, BufferedUploadIsRedeliveredWhenItsConsumerBreaks) {
  StartServer();
  TestConsumer::Options options;
  options.break_after_chunks = 2;
  auto consumer = AddConsumer(options);
  const std::string data = RandomishBytes(300 * 1024, 8);  // spilled: 5 chunks
  const HttpResult result = Curl({"-F", "file=@" + WriteInput("in.bin", data)});
  EXPECT_EQ(result.status, 201);
  ASSERT_TRUE(consumer->WaitForUploads(1));
  const ReceivedUpload upload = consumer->uploads().back();
  EXPECT_EQ(upload.started.attempt(), 2u);
  EXPECT_EQ(result.body, upload.reply_body);
  ASSERT_EQ(upload.files.size(), 1u);
  ExpectIntact(upload.files[0], data);
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("spillway_grpc_deliveries_total{outcome=\"failed\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_deliveries_total{outcome=\"redelivered\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_deliveries_total{outcome=\"replied\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_deliveries_total{outcome=\"failed\"} 0\n"));
  EXPECT_THAT(ListDir(spill_), IsEmpty());
}

TEST_F(GrpcTest, StreamedUploadGets502WhenItsConsumerBreaks) {
  StartServer();
  TestConsumer::Options options;
  options.break_after_chunks = 2;
  auto consumer = AddConsumer(options);
  const std::string data = RandomishBytes(3 * 1024 * 1024, 9);  // over MAX_BODY_SIZE
  const HttpResult result = Curl({"-F", "file=@" + WriteInput("in.bin", data)});
  EXPECT_EQ(result.status, 502);
  EXPECT_THAT(result.body, HasSubstr("broke"));
  EXPECT_THAT(Metrics(), HasSubstr("spillway_deliveries_total{outcome=\"failed\"} 1\n"));
  EXPECT_THAT(ListDir(spill_), IsEmpty());
}

TEST_F(GrpcTest, WithoutConsumer503AfterDispatchTimeout) {
  StartServer({"--dispatch-timeout=300ms"});
  const absl::Time start = absl::Now();
  const HttpResult result = Curl({"--data-binary", "x"});
  EXPECT_EQ(result.status, 503);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(GrpcTest, ConsumerThatNeverReplies504AfterReplyTimeout) {
  StartServer({"--reply-timeout=500ms"});
  TestConsumer::Options options;
  options.reply_status = 0;
  auto consumer = AddConsumer(options);
  const HttpResult result = Curl({"--data-binary", "hello"});
  EXPECT_EQ(result.status, 504);
  ASSERT_TRUE(consumer->WaitForUploads(1));
  EXPECT_TRUE(consumer->uploads()[0].finished);
  EXPECT_THAT(Metrics(), HasSubstr("spillway_deliveries_total{outcome=\"timed_out\"} 1\n"));
}

TEST_F(GrpcTest, ReplyTimeoutAbortsTheDeliveryAndFreesTheConsumeStream) {
  StartServer({"--reply-timeout=1s"});
  TestConsumer::Options options;
  options.unanswered_uploads = 1;
  options.stale_reply_on_start = true;  // then answers the first upload, too late
  auto consumer = AddConsumer(options);  // the only consumer
  const std::string data = RandomishBytes(300 * 1024, 15);  // spilled
  const HttpResult timed_out = Curl({"-F", "file=@" + WriteInput("in.bin", data)});
  EXPECT_EQ(timed_out.status, 504);
  // Recorded at RequestFinished, then again at the RequestAborted that follows it.
  ASSERT_TRUE(consumer->WaitForUploads(2));
  const ReceivedUpload aborted = consumer->uploads()[1];
  EXPECT_TRUE(aborted.finished);
  EXPECT_TRUE(aborted.aborted);
  EXPECT_THAT(aborted.abort_reason, HasSubstr("reply timed out"));
  ASSERT_EQ(aborted.files.size(), 1u);
  ExpectIntact(aborted.files[0], data);

  // The same stream takes the next upload; the stale 418 for the first one, sent
  // while the second is being delivered, is not taken as the second one's answer.
  const std::string next = RandomishBytes(100 * 1024, 16);
  const HttpResult answered = Curl({"-F", "file=@" + WriteInput("next.bin", next)});
  ASSERT_TRUE(consumer->WaitForUploads(3));
  const ReceivedUpload second = consumer->uploads()[2];
  EXPECT_NE(second.started.upload_id(), aborted.started.upload_id());
  EXPECT_EQ(second.started.attempt(), 1u);
  EXPECT_EQ(answered.status, 201);
  EXPECT_EQ(answered.body, second.reply_body);
  ASSERT_EQ(second.files.size(), 1u);
  ExpectIntact(second.files[0], next);
  EXPECT_THAT(Metrics(),
              HasSubstr("spillway_grpc_deliveries_total{outcome=\"aborted\"} 1\n"));
  // The aborted upload's temp file went when its delivery was let go, before the
  // stream was free; the second one's before its answer.
  EXPECT_THAT(ListDir(spill_), IsEmpty());
}

TEST_F(GrpcTest, ConsumerThatStopsReadingLosesItsStreamAndKeepsNoTempFile) {
  // It takes one Chunk of a spilled 24 MiB upload, then nothing for seconds: the
  // server's writes back up behind gRPC flow control. At REPLY_TIMEOUT the uploader
  // gets 504, and the call is cancelled, so that the temp file and the stream do not
  // wait on the silent consumer.
  StartServer({"--reply-timeout=1s", "--max-body-size=64Mi"});
  TestConsumer::Options options;
  options.sleep_per_chunk = absl::Seconds(6);
  options.keep_data = false;
  auto consumer = AddConsumer(options);
  const std::string data = RandomishBytes(24 << 20, 17);
  const HttpResult result = Curl({"-F", "file=@" + WriteInput("in.bin", data)});
  EXPECT_EQ(result.status, 504) << result.body;
  // Well before the consumer wakes up again.
  bool empty = false;
  for (int i = 0; i < 30 && !empty; ++i) {
    empty = ListDir(spill_).empty();
    if (!empty) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(empty) << "the temp file waits for the silent consumer";
  EXPECT_THAT(Metrics(), HasSubstr("spillway_spilled_bytes 0\n"));
}

TEST_F(GrpcTest, EarlyReplyAfterRequestStartedAnswersTheUploader) {
  StartServer();
  TestConsumer::Options options;
  options.early_reply_status = 415;
  auto consumer = AddConsumer(options);
  // Buffered, then streamed: the streamed body is not read to its end.
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    for (const size_t size : {size_t{10 * 1024}, size_t{3 * 1024 * 1024}}) {
      SCOPED_TRACE(absl::StrCat(protocol, " ", size));
      const std::string data = RandomishBytes(size, 10);
      const HttpResult result =
          Curl({protocol, "-F", "file=@" + WriteInput("in.bin", data)});
      EXPECT_EQ(result.status, 415);
      EXPECT_EQ(result.body, "{\"early\":true}");
    }
  }
  ASSERT_TRUE(consumer->WaitForUploads(4));
  for (const ReceivedUpload& upload : consumer->uploads()) {
    EXPECT_TRUE(upload.replied_early);
    EXPECT_TRUE(upload.files.empty());
  }
}

std::unique_ptr<v1::Ingest::Stub> IngestStub(uint16_t port) {
  return v1::Ingest::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                                 grpc::InsecureChannelCredentials()));
}

// Sends the field note=hi and then `files` (the first named `big "quoted".bin`, the
// others partN.bin) in an Upload RPC to /grpc/files, 1 MiB per Chunk;
// `declared_total`, if set, goes into UploadStart.total_size.
grpc::Status UploadFilesOverGrpc(uint16_t port, const std::vector<std::string>& files,
                                 std::optional<uint64_t> declared_total,
                                 v1::Reply* reply) {
  auto stub = IngestStub(port);
  grpc::ClientContext context;
  auto writer = stub->Upload(&context, reply);
  v1::UploadRequest request;
  request.mutable_start()->set_path("/grpc/files");
  if (declared_total.has_value()) request.mutable_start()->set_total_size(*declared_total);
  v1::Header* header = request.mutable_start()->add_headers();
  header->set_name("X-Tenant");
  header->set_value("acme");
  bool ok = writer->Write(request);
  request.Clear();
  request.mutable_field()->set_name("note");
  request.mutable_field()->set_value("hi");
  ok = ok && writer->Write(request);
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& data = files[i];
    request.Clear();
    request.mutable_file()->set_field_name("file");
    request.mutable_file()->set_filename(i == 0 ? "big \"quoted\".bin"
                                                : absl::StrCat("part", i, ".bin"));
    request.mutable_file()->set_content_type("application/octet-stream");
    request.mutable_file()->set_size(data.size());
    ok = ok && writer->Write(request);
    for (size_t offset = 0; ok && offset < data.size(); offset += 1024 * 1024) {
      request.Clear();
      request.mutable_chunk()->set_offset(offset);
      request.mutable_chunk()->set_data(data.substr(offset, 1024 * 1024));
      ok = writer->Write(request);
    }
  }
  if (ok) writer->WritesDone();
  return writer->Finish();
}

// Sends `data` as the one file of an Upload RPC (UploadFilesOverGrpc).
grpc::Status UploadOverGrpc(uint16_t port, const std::string& data,
                            std::optional<uint64_t> declared_total, v1::Reply* reply) {
  return UploadFilesOverGrpc(port, {data}, declared_total, reply);
}

TEST_F(GrpcTest, UploadRpcReachesConsumerIntactBufferedAndStreamed) {
  StartServer();
  TestConsumer::Options options;
  options.path_prefixes = {"/grpc"};
  options.sleep_per_chunk = absl::Milliseconds(1);  // slower than the uploader
  auto consumer = AddConsumer(options);
  // Undeclared and within MAX_BODY_SIZE (1Mi): buffered (spilled); declared over it:
  // streamed.
  const std::string datas[] = {RandomishBytes(300 * 1024 + 123, 11),
                               RandomishBytes(5 * 1024 * 1024 + 123, 11)};
  const std::optional<uint64_t> totals[] = {std::nullopt, datas[1].size() + 2};
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    const std::string& data = datas[i];
    v1::Reply reply;
    const grpc::Status status = UploadOverGrpc(server_->grpc_port(), data, totals[i], &reply);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_TRUE(consumer->WaitForUploads(i + 1));
    const ReceivedUpload upload = consumer->uploads().back();
    EXPECT_EQ(reply.status(), 201u);
    EXPECT_EQ(reply.body(), upload.reply_body);
    EXPECT_EQ(upload.started.protocol(), "gRPC");
    EXPECT_EQ(upload.started.path(), "/grpc/files");
    EXPECT_EQ(upload.started.mode(), i == 0 ? v1::MODE_SPILL : v1::MODE_STREAM);
    ASSERT_EQ(upload.started.headers_size(), 1);
    EXPECT_EQ(upload.started.headers(0).name(), "x-tenant");
    ASSERT_EQ(upload.fields.size(), 1u);
    EXPECT_EQ(upload.fields[0].second, "hi");
    ASSERT_EQ(upload.files.size(), 1u);
    EXPECT_EQ(upload.files[0].meta.filename(), "big \"quoted\".bin");
    EXPECT_EQ(upload.files[0].meta.mode(), i == 0 ? v1::MODE_SPILL : v1::MODE_STREAM);
    ExpectIntact(upload.files[0], data);
    EXPECT_THAT(ListDir(spill_), IsEmpty());
  }
}

// MAX_BODY_SIZE=0 means the same over gRPC as over HTTP: every upload that has a byte
// streams (gRPC once took 0 for "never").
TEST_F(GrpcTest, MaxBodySizeZeroStreamsEveryUploadLikeHttp) {
  StartServer({"--max-body-size=0", "--sink=discard"});
  TestConsumer::Options options;
  options.path_prefixes = {"/grpc"};
  auto consumer = AddConsumer(options);
  const std::string data = RandomishBytes(30 * 1024, 5);
  const std::optional<uint64_t> totals[] = {std::nullopt, data.size() + 2};
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    v1::Reply reply;
    ASSERT_TRUE(UploadOverGrpc(server_->grpc_port(), data, totals[i], &reply).ok());
    ASSERT_TRUE(consumer->WaitForUploads(i + 1));
    EXPECT_EQ(consumer->uploads().back().started.mode(), v1::MODE_STREAM);
  }
  const HttpResult http = Curl({"--data-binary", "@" + WriteInput("small.bin", data)});
  EXPECT_EQ(http.status, 200) << http.body;
  EXPECT_THAT(http.body, HasSubstr(R"("mode":"stream")"));
}

TEST_F(GrpcTest, UploadRpcOfUndeclaredSizeSwitchesToStreamPastMaxBodySize) {
  StartServer();  // MAX_BODY_SIZE 1Mi, FILE_UPLOAD_MAX_MEMORY_SIZE 64Ki
  TestConsumer::Options options;
  options.path_prefixes = {"/grpc"};
  options.sleep_per_chunk = absl::Milliseconds(1);  // slower than the uploader
  auto consumer = AddConsumer(options);
  // The field, the first file (spilled) and the second's first MiB are buffered
  // when the total passes 1Mi; they are replayed into the stream, the rest follows.
  const std::string first = RandomishBytes(100 * 1024, 17);
  const std::string second = RandomishBytes(5 * 1024 * 1024 + 123, 18);
  v1::Reply reply;
  const grpc::Status status =
      UploadFilesOverGrpc(server_->grpc_port(), {first, second}, std::nullopt, &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(consumer->WaitForUploads(1));
  const ReceivedUpload upload = consumer->uploads().back();
  EXPECT_EQ(reply.status(), 201u);
  EXPECT_EQ(reply.body(), upload.reply_body);
  EXPECT_EQ(upload.started.mode(), v1::MODE_STREAM);
  EXPECT_FALSE(upload.started.has_content_length());
  ASSERT_EQ(upload.fields.size(), 1u);
  EXPECT_EQ(upload.fields[0], std::make_pair(std::string("note"), std::string("hi")));
  ASSERT_EQ(upload.files.size(), 2u);
  const std::string* sent[] = {&first, &second};
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    const v1::UploadedFile& meta = upload.files[i].meta;
    EXPECT_EQ(meta.filename(), i == 0 ? "big \"quoted\".bin" : "part1.bin");
    EXPECT_EQ(meta.mode(), v1::MODE_STREAM);
    EXPECT_FALSE(meta.in_memory());
    EXPECT_THAT(meta.path(), IsEmpty());
    EXPECT_FALSE(meta.path_only());
    ExpectIntact(upload.files[i], *sent[i]);
  }
  EXPECT_THAT(ListDir(spill_), IsEmpty());
}

// A declared total_size is a limit like Content-Length: a client may not declare a
// small upload (buffered) and then send more, nor end short of it.
TEST_F(GrpcTest, UploadRpcThatBreaksItsDeclaredTotalIsInvalidArgument) {
  StartServer();  // MAX_BODY_SIZE 1Mi, FILE_UPLOAD_MAX_MEMORY_SIZE 64Ki
  TestConsumer::Options options;
  options.path_prefixes = {"/grpc"};
  auto consumer = AddConsumer(options);
  const std::string data = RandomishBytes(300 * 1024, 19);  // spills past 64Ki
  // The field "hi" counts too: data.size() + 2 is exact.
  for (const uint64_t declared : {uint64_t{1000}, data.size() + 2 + 10}) {
    SCOPED_TRACE(declared);
    v1::Reply reply;
    const grpc::Status status =
        UploadOverGrpc(server_->grpc_port(), data, declared, &reply);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("total_size"));
    EXPECT_THAT(ListDir(spill_), IsEmpty());
  }
  {
    // Refused as soon as the total is passed, not at the end: the client's writes
    // start failing long before it has sent 64 MiB.
    auto stub = IngestStub(server_->grpc_port());
    grpc::ClientContext context;
    v1::Reply reply;
    auto writer = stub->Upload(&context, &reply);
    v1::UploadRequest request;
    request.mutable_start()->set_path("/grpc/files");
    request.mutable_start()->set_total_size(1000);
    bool ok = writer->Write(request);
    request.Clear();
    request.mutable_file()->set_filename("endless.bin");
    ok = ok && writer->Write(request);
    const std::string mib = RandomishBytes(1024 * 1024, 20);
    int chunks_written = 0;
    for (; ok && chunks_written < 64; ++chunks_written) {
      request.Clear();
      request.mutable_chunk()->set_data(mib);
      ok = writer->Write(request);
    }
    EXPECT_FALSE(ok);
    EXPECT_LT(chunks_written, 64);
    const grpc::Status status = writer->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("larger than its declared total_size"));
    EXPECT_THAT(ListDir(spill_), IsEmpty());
  }
  EXPECT_EQ(consumer->uploads().size(), 0u);
  // The server still takes an upload that keeps its word.
  v1::Reply reply;
  const grpc::Status status =
      UploadOverGrpc(server_->grpc_port(), data, data.size() + 2, &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply.status(), 201u);
  ASSERT_TRUE(consumer->WaitForUploads(1));
  ExpectIntact(consumer->uploads().back().files[0], data);
  EXPECT_THAT(ListDir(spill_), IsEmpty());
}

TEST_F(GrpcTest, UploadRpcWithChunkBeforeFileIsInvalidArgument) {
  StartServer();
  auto stub = IngestStub(server_->grpc_port());
  grpc::ClientContext context;
  v1::Reply reply;
  auto writer = stub->Upload(&context, &reply);
  v1::UploadRequest request;
  request.mutable_start()->set_path("/x");
  writer->Write(request);
  request.Clear();
  request.mutable_chunk()->set_data("oops");
  writer->Write(request);
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// A buffered Upload RPC's parts are held to the multipart limits of an HTTP upload
// (DESIGN.md §4), which a streamed one's parser applies: RESOURCE_EXHAUSTED naming the
// limit. The servers below set them low (StartWithSmallPartLimits): 4 parts, 256
// bytes of part header, 1 KiB per field.

// A buffered Upload RPC to /grpc/files: a 100 KiB file, spilled past the tests' 64Ki
// FILE_UPLOAD_MAX_MEMORY_SIZE (so a refusal has a temp file to remove), then `parts`,
// then the half-close.
grpc::Status UploadPartsOverGrpc(uint16_t port, const std::vector<v1::UploadRequest>& parts) {
  auto stub = IngestStub(port);
  grpc::ClientContext context;
  v1::Reply reply;
  auto writer = stub->Upload(&context, &reply);
  v1::UploadRequest request;
  request.mutable_start()->set_path("/grpc/files");
  bool ok = writer->Write(request);
  ok = ok && writer->Write(FileMessage("file", "spilled.bin", ""));
  request.Clear();
  request.mutable_chunk()->set_data(RandomishBytes(100 * 1024, 21));
  ok = ok && writer->Write(request);
  for (const v1::UploadRequest& part : parts) ok = ok && writer->Write(part);
  if (ok) writer->WritesDone();
  return writer->Finish();
}

// After a refused upload: nothing of it is left on disk, nothing of it reached the
// consumer, and the server still takes a valid Upload RPC.
void ExpectServesAfterRefusal(uint16_t port, TestConsumer& consumer,
                              const std::string& spill_dir) {
  EXPECT_THAT(ListDir(spill_dir), IsEmpty());
  const std::string data = RandomishBytes(100 * 1024, 22);
  v1::Reply reply;
  const grpc::Status status = UploadOverGrpc(port, data, std::nullopt, &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply.status(), 201u);
  ASSERT_TRUE(consumer.WaitForUploads(1));
  const std::vector<ReceivedUpload> uploads = consumer.uploads();
  ASSERT_EQ(uploads.size(), 1u);
  ASSERT_EQ(uploads[0].files.size(), 1u);
  ExpectIntact(uploads[0].files[0], data);
  EXPECT_THAT(ListDir(spill_dir), IsEmpty());
}

TEST_F(GrpcTest, BufferedUploadRpcWithMorePartsThanMaxPartsIsResourceExhausted) {
  auto consumer = StartWithSmallPartLimits();
  // The file and four fields: five parts.
  const grpc::Status status =
      UploadPartsOverGrpc(server_->grpc_port(), std::vector(4, FieldMessage("f", "v")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("more than 4 parts (MAX_PARTS)"));
  ExpectServesAfterRefusal(server_->grpc_port(), *consumer, spill_);
}

TEST_F(GrpcTest, BufferedUploadRpcWithFieldOverMaxFieldSizeIsResourceExhausted) {
  auto consumer = StartWithSmallPartLimits();
  const grpc::Status status = UploadPartsOverGrpc(
      server_->grpc_port(), {FieldMessage("big", std::string(1025, 'x'))});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("larger than 1024 bytes (MAX_FIELD_SIZE)"));
  ExpectServesAfterRefusal(server_->grpc_port(), *consumer, spill_);
}

// The same limit, crossed after the call switched to stream mode (its 100 KiB file
// passed MAX_BODY_SIZE): the consumer already holds the upload and gets
// RequestAborted, yet the uploader must still hear RESOURCE_EXHAUSTED, never the 502
// the dispatcher gives a stream its consumer let go of (that answer once won about
// one race in 60). Repeated to give the race its chances.
TEST_F(GrpcTest, StreamedUploadRpcOverMaxPartsIsResourceExhaustedEveryTime) {
  StartServer({"--max-parts=4", "--max-body-size=64Ki"});
  TestConsumer::Options options;
  options.path_prefixes = {"/grpc"};
  auto consumer = AddConsumer(options);
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE(i);
    const grpc::Status status =
        UploadPartsOverGrpc(server_->grpc_port(), std::vector(4, FieldMessage("f", "v")));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("more than 4 parts (MAX_PARTS)"));
  }
  ASSERT_TRUE(consumer->WaitForUploads(20));
  for (const ReceivedUpload& upload : consumer->uploads()) {
    EXPECT_EQ(upload.started.mode(), v1::MODE_STREAM);
    EXPECT_TRUE(upload.aborted && !upload.finished);
    EXPECT_THAT(upload.abort_reason, HasSubstr("MAX_PARTS"));
  }
  EXPECT_THAT(ListDir(spill_), IsEmpty());
  const grpc::Status status = UploadPartsOverGrpc(server_->grpc_port(), {});
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// A part's field name, filename and content type are what an HTTP part carries in its
// header block: MAX_PART_HEADER_BYTES caps them together, a field's name alone.
TEST_F(GrpcTest, BufferedUploadRpcWithPartMetadataOverMaxPartHeaderBytesIsResourceExhausted) {
  auto consumer = StartWithSmallPartLimits();
  // 300 bytes of metadata each, none of a file's three over 256 on its own.
  const v1::UploadRequest parts[] = {
      FileMessage(std::string(100, 'n'), std::string(100, 'f'), std::string(100, 't')),
      FieldMessage(std::string(300, 'n'), "v")};
  for (const v1::UploadRequest& part : parts) {
    SCOPED_TRACE(part.has_file() ? "file" : "field");
    const grpc::Status status = UploadPartsOverGrpc(server_->grpc_port(), {part});
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << status.error_message();
    EXPECT_THAT(status.error_message(),
                HasSubstr("larger than 256 bytes (MAX_PART_HEADER_BYTES)"));
    EXPECT_THAT(ListDir(spill_), IsEmpty());
  }
  ExpectServesAfterRefusal(server_->grpc_port(), *consumer, spill_);
}

// Field names, filenames and content types count toward MAX_BODY_SIZE as an HTTP
// body's part headers do: an upload of undeclared size that they take past it streams.
TEST_F(GrpcTest, UploadRpcWhosePartMetadataPassesMaxBodySizeSwitchesToStream) {
  StartServer();  // MAX_BODY_SIZE 1Mi; parts up to 16Ki of header, 1000 of them
  TestConsumer::Options options;
  options.path_prefixes = {"/grpc"};
  auto consumer = AddConsumer(options);
  // 100 KiB of file, then 80 empty fields with 15 KiB names: 1.3 MiB in all.
  std::vector<v1::UploadRequest> parts;
  for (int i = 0; i < 80; ++i) {
    parts.push_back(FieldMessage(absl::StrCat(i, std::string(15 * 1024, 'n')), ""));
  }
  const grpc::Status status = UploadPartsOverGrpc(server_->grpc_port(), parts);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(consumer->WaitForUploads(1));
  const ReceivedUpload upload = consumer->uploads().back();
  EXPECT_EQ(upload.started.mode(), v1::MODE_STREAM);
  ASSERT_EQ(upload.fields.size(), 80u);
  EXPECT_EQ(upload.fields[79].first, parts[79].field().name());
  EXPECT_THAT(ListDir(spill_), IsEmpty());
}

TEST_F(GrpcTest, ManyConcurrentUploadsOverEightStreamsAreEachAnsweredOnce) {
  StartServer();
  std::vector<std::unique_ptr<TestConsumer>> consumers;
  for (int i = 0; i < 8; ++i) consumers.push_back(AddConsumer());
  constexpr int kThreads = 20;
  constexpr int kPerThread = 10;
  const std::string small = WriteInput("small.bin", RandomishBytes(5000, 12));
  const std::string spilled = WriteInput("spilled.bin", RandomishBytes(100 * 1024, 13));
  std::vector<int> statuses(kThreads * kPerThread, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string& file = (i % 2 == 0) ? small : spilled;
        statuses[t * kPerThread + i] =
            Curl({"-F", absl::StrCat("n=", t, "-", i), "-F", "f=@" + file}).status;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int status : statuses) EXPECT_EQ(status, 201);
  std::set<std::string> ids;
  std::set<std::string> names;
  size_t total = 0;
  for (auto& consumer : consumers) {
    for (const ReceivedUpload& upload : consumer->uploads()) {
      ++total;
      ids.insert(upload.started.upload_id());
      ASSERT_EQ(upload.fields.size(), 1u);
      names.insert(upload.fields[0].second);
    }
  }
  EXPECT_EQ(total, statuses.size());
  EXPECT_EQ(ids.size(), statuses.size());
  EXPECT_EQ(names.size(), statuses.size());
}

// Peak resident set size of `pid` in KiB (VmHWM), or -1.
int64_t VmHwmKiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmHWM:")) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

TEST_F(GrpcTest, SlowConsumerThrottlesOneGiBUploadWithBoundedMemory) {
  // Under ASan (SPILLWAY_TEST_SPILLWAYD), freed memory sits in a 256 MiB quarantine
  // that would count as resident: keep it small. Ignored by other builds.
  const char* asan = std::getenv("ASAN_OPTIONS");
  StartServer({"--stream-body-chunk-size=256Ki"},
              {{"ASAN_OPTIONS", absl::StrCat(asan != nullptr ? asan : "",
                                             asan != nullptr && *asan ? ":" : "",
                                             "quarantine_size_mb=8")}});
  TestConsumer::Options options;
  options.keep_data = false;
  options.sleep_per_chunk = absl::Microseconds(300);
  auto consumer = AddConsumer(options);
  constexpr uint64_t kSize = uint64_t{1} << 30;
  const std::string path = work_.path() + "/zeros.bin";
  { std::ofstream create(path); }
  std::filesystem::resize_file(path, kSize);  // sparse: no disk used
  Checksum expected = Checksum::Create(ChecksumKind::kSha256);
  const std::string mebibyte(1 << 20, '\0');
  for (uint64_t i = 0; i < kSize / mebibyte.size(); ++i) expected.Update(mebibyte);

  const int64_t hwm_before = VmHwmKiB(server_->pid());
  const absl::Time start = absl::Now();
  const HttpResult result = Curl({"-T", path});
  const absl::Duration took = absl::Now() - start;
  const int64_t hwm_after = VmHwmKiB(server_->pid());
  EXPECT_EQ(result.status, 201);
  ASSERT_TRUE(consumer->WaitForUploads(1));
  const ReceivedUpload upload = consumer->uploads().back();
  EXPECT_EQ(upload.started.mode(), v1::MODE_STREAM);
  ASSERT_EQ(upload.files.size(), 1u);
  EXPECT_EQ(upload.files[0].size, kSize);
  EXPECT_EQ(upload.files[0].sha256, expected.FinishHex());
  EXPECT_EQ(upload.files[0].finished.checksum(), upload.files[0].sha256);
  // 4096 chunks at 300 us each: the uploader could not have finished sooner. The
  // memory bound below is what proves it was held back rather than buffered.
  EXPECT_GE(took, absl::Microseconds(4096 * 300));
  EXPECT_LT(hwm_after - hwm_before, 64 * 1024)
      << "VmHWM grew from " << hwm_before << " KiB to " << hwm_after << " KiB";
  std::cerr << "1 GiB through a slow consumer in " << took << ", VmHWM " << hwm_before
            << " -> " << hwm_after << " KiB\n";
}

// The proto outside C++: a consumer on Debian's python3-grpcio, with stubs that protoc
// and grpc_python_plugin generate here.
TEST_F(GrpcTest, PythonConsumerOnAnotherGrpcStack) {
  absl::StatusOr<CommandResult> probe = RunCommand({"/usr/bin/python3", "-c", "import grpc"});
  if (!std::filesystem::exists("/usr/bin/grpc_python_plugin") || !probe.ok() ||
      probe->exit_code != 0) {
    GTEST_SKIP() << "needs python3-grpcio and grpc_python_plugin (scripts/setup.sh)";
  }
  const std::string gen = work_.path() + "/py";
  std::filesystem::create_directory(gen);
  const std::string proto_dir = std::string(SPILLWAY_SOURCE_DIR) + "/proto";
  absl::StatusOr<CommandResult> protoc = RunCommand(
      {"protoc", "--proto_path=" + proto_dir, "--python_out=" + gen, "--grpc_out=" + gen,
       "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
       proto_dir + "/spillway/v1/ingest.proto"});
  ASSERT_TRUE(protoc.ok() && protoc->exit_code == 0)
      << (protoc.ok() ? protoc->errors : protoc.status().ToString());

  StartServer();
  absl::StatusOr<CommandResult> python;
  std::thread consumer([&] {
    python = RunCommand({"/usr/bin/python3",
                         std::string(SPILLWAY_SOURCE_DIR) +
                             "/tests/integration/python_consumer.py",
                         gen, absl::StrCat(server_->grpc_port())});
  });
  const std::string data = RandomishBytes(300 * 1024, 14);
  const HttpResult result = Curl({"-F", "f=@" + WriteInput("py.bin", data)}, "/py/in");
  consumer.join();
  ASSERT_TRUE(python.ok()) << python.status();
  EXPECT_EQ(python->exit_code, 0) << python->errors;
  EXPECT_EQ(result.status, 201);
  EXPECT_THAT(result.body, HasSubstr("\"consumer\":\"python\""));
  EXPECT_THAT(result.body, HasSubstr(absl::StrCat("\"filename\":\"py.bin\",\"size\":",
                                                  data.size(), ",\"sha256\":\"",
                                                  Sha256Hex(data), "\"")));
  EXPECT_EQ(python->output, result.body + "\n");
}

// An Upload RPC left open after its UploadStart and one field (the caller ends it).
struct OpenUploadRpc {
  explicit OpenUploadRpc(uint16_t port) : stub(IngestStub(port)) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    writer = stub->Upload(&context, &reply);
    v1::UploadRequest request;
    request.mutable_start()->set_path("/grpc/open");
    sent = writer->Write(request);
    request.Clear();
    request.mutable_field()->set_name("note");
    request.mutable_field()->set_value("hi");
    sent = sent && writer->Write(request);
  }
  grpc::Status End() {
    writer->WritesDone();
    return writer->Finish();
  }

  std::unique_ptr<v1::Ingest::Stub> stub;
  grpc::ClientContext context;
  v1::Reply reply;
  std::unique_ptr<grpc::ClientWriter<v1::UploadRequest>> writer;
  bool sent = false;
};

TEST_F(GrpcTest, UploadRpcsAndHttpUploadsShareMaxConcurrentUploads) {
  StartServer({"--max-concurrent-uploads=1"});
  auto consumer = AddConsumer();
  OpenUploadRpc holder(server_->grpc_port());
  ASSERT_TRUE(holder.sent);
  ASSERT_TRUE(WaitForMetric("spillway_uploads_in_flight", 1));  // the call is in
  // The one slot is taken, by gRPC: another call and an HTTP upload are refused.
  v1::Reply reply;
  const grpc::Status refused =
      UploadOverGrpc(server_->grpc_port(), "x", std::nullopt, &reply);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("MAX_CONCURRENT_UPLOADS"));
  EXPECT_EQ(Curl({"--data-binary", "x"}).status, 503);
  EXPECT_THAT(Metrics(),
              AllOf(HasSubstr("spillway_uploads_rejected_total 2\n"),
                    HasSubstr("spillway_grpc_upload_rpcs_total{code=\"RESOURCE_EXHAUSTED\"} 1\n")));
  // Done, it gives the slot back.
  EXPECT_TRUE(holder.End().ok());
  EXPECT_EQ(holder.reply.status(), 201u);
  // The call holds its slot until gRPC is done with it (OnDone), just after the
  // status went out; the client may hear the status first.
  EXPECT_TRUE(WaitForMetric("spillway_uploads_in_flight", 0));
  EXPECT_EQ(Curl({"--data-binary", "x"}).status, 201);
}

TEST_F(GrpcTest, UploadRpcThatGoesSilentEndsAfterBodyTimeout) {
  // Mid-file and spilled (past the tests' 64Ki in memory), then nothing more: as an
  // HTTP body would get 408, the call ends, and its temp file goes.
  StartServer({"--body-timeout=500ms"});
  auto consumer = AddConsumer();
  OpenUploadRpc upload(server_->grpc_port());
  v1::UploadRequest request = FileMessage("file", "half.bin", "");
  ASSERT_TRUE(upload.writer->Write(request));
  request.Clear();
  request.mutable_chunk()->set_data(RandomishBytes(100 * 1024, 18));
  ASSERT_TRUE(upload.writer->Write(request));
  ASSERT_TRUE(WaitForMetric("spillway_uploads_in_flight", 1));
  const grpc::Status status = upload.writer->Finish();  // no WritesDone: silent
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(status.error_message(), HasSubstr("BODY_TIMEOUT"));
  EXPECT_TRUE(WaitForMetric("spillway_uploads_in_flight", 0));
  EXPECT_THAT(ListDir(spill_), IsEmpty());
  EXPECT_TRUE(consumer->uploads().empty()) << "a half upload was dispatched";
  // A steady uploader is not taken for a silent one.
  v1::Reply reply;
  EXPECT_TRUE(UploadOverGrpc(server_->grpc_port(), RandomishBytes(300 * 1024, 19),
                             std::nullopt, &reply)
                  .ok());
  EXPECT_EQ(reply.status(), 201u);
}

TEST_F(GrpcTest, SigtermLetsAnUploadRpcInFlightFinish) {
  StartServer({"--drain-timeout=20s"});
  auto consumer = AddConsumer();
  OpenUploadRpc upload(server_->grpc_port());
  ASSERT_TRUE(upload.sent);
  ASSERT_TRUE(WaitForMetric("spillway_uploads_in_flight", 1));  // the call is in
  ASSERT_TRUE(server_->Signal(SIGTERM).ok());
  ASSERT_TRUE(server_->WaitForLine(R"("event":"draining")", absl::Seconds(5)));
  // A new call is turned away, as a new HTTP connection is: the client retries
  // elsewhere instead of starting an upload this server is about to stop serving.
  v1::Reply refused_reply;
  const grpc::Status refused =
      UploadOverGrpc(server_->grpc_port(), "late", std::nullopt, &refused_reply);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("draining"));
  absl::SleepFor(absl::Milliseconds(800));  // past the gRPC grace the drain once gave
  const grpc::Status status = upload.End();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(upload.reply.status(), 201u);
  EXPECT_EQ(server_->Wait(absl::Seconds(10)).value_or(-1), 0);
}

TEST_F(GrpcTest, SigtermWithConsumersAttachedExitsPromptly) {
  StartServer();
  auto consumer = AddConsumer();
  ASSERT_TRUE(server_->Signal(SIGTERM).ok());
  EXPECT_EQ(server_->Wait(absl::Seconds(10)).value_or(-1), 0);
}

TEST_F(GrpcTest, ConsumeStreamMustStartWithAttach) {
  StartServer();
  auto stub = IngestStub(server_->grpc_port());
  grpc::ClientContext context;
  auto stream = stub->Consume(&context);
  v1::ConsumerMessage reply;
  reply.mutable_reply()->set_status(200);
  stream->Write(reply);
  v1::ServerMessage message;
  EXPECT_FALSE(stream->Read(&message));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcTest, ReplyHeaderThatWouldSplitTheResponseGets502) {
  StartServer();
  TestConsumer::Options options;
  options.reply_headers = {{"x-ok", "fine\r\nset-cookie: injected=1"}};
  auto consumer = AddConsumer(options);
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    SCOPED_TRACE(protocol);
    const HttpResult result = Curl({protocol, "-i", "--data-binary", "hello"});
    EXPECT_EQ(result.status, 502) << result.body << result.errors;
    EXPECT_THAT(result.body, HasSubstr("cannot be sent as HTTP"));
    EXPECT_THAT(result.body, Not(HasSubstr("set-cookie: injected")));
    EXPECT_THAT(result.body, Not(HasSubstr("x-ok: fine")));
  }
}

TEST_F(GrpcTest, ReplyWithoutUploadIdEndsTheConsumeStream) {
  // Such a Reply could be a late second answer to the upload before; taken for the
  // one the stream holds now, it would answer an upload the consumer has not seen.
  StartServer({"--dispatch-timeout=1s"});
  auto stub = IngestStub(server_->grpc_port());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->Consume(&context);
  v1::ConsumerMessage attach;
  attach.mutable_attach()->set_name("no-ids");
  ASSERT_TRUE(stream->Write(attach));
  HttpResult result;
  std::thread uploader([&] { result = Curl({"--data-binary", "hello"}); });
  v1::ServerMessage message;
  ASSERT_TRUE(stream->Read(&message));
  ASSERT_TRUE(message.has_request_started());
  v1::ConsumerMessage reply;
  reply.mutable_reply()->set_status(201);  // no upload_id
  ASSERT_TRUE(stream->Write(reply));
  while (stream->Read(&message)) {
  }
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("upload_id"));
  uploader.join();
  // Not the 201: the upload went back to the queue, where no consumer was left.
  EXPECT_EQ(result.status, 503) << result.body;
}

// Waits for `tag` on `cq`; false if the operation failed.
bool Await(grpc::CompletionQueue& cq, intptr_t tag) {
  void* got = nullptr;
  bool ok = false;
  if (!cq.Next(&got, &ok)) return false;
  EXPECT_EQ(reinterpret_cast<intptr_t>(got), tag);
  return ok;
}

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

// A streaming call of `method` in raw bytes (grpc::GenericStub), for what a typed stub
// cannot send; tags are the step numbers. Started on construction; the queue is
// drained on destruction.
struct RawStreamingCall {
  RawStreamingCall(uint16_t port, const std::string& method)
      : stub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                 grpc::InsecureChannelCredentials())) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    call = stub.PrepareCall(&context, method, &cq);
    call->StartCall(reinterpret_cast<void*>(1));
  }
  ~RawStreamingCall() {
    cq.Shutdown();
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
    }
  }
  void Write(const std::string& bytes, intptr_t tag) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer message(&slice, 1);
    call->Write(message, reinterpret_cast<void*>(tag));
  }

  grpc::GenericStub stub;
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call;
};

TEST_F(GrpcTest, ServerReflectionListsTheIngestService) {
  StartServer();
  RawStreamingCall raw(server_->grpc_port(),
                       "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
  ASSERT_TRUE(Await(raw.cq, 1));
  // ServerReflectionRequest{list_services: ""}: field 7, length 0.
  raw.Write(std::string("\x3a\x00", 2), 2);
  ASSERT_TRUE(Await(raw.cq, 2));
  raw.call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(Await(raw.cq, 3));
  grpc::ByteBuffer response;
  raw.call->Read(&response, reinterpret_cast<void*>(4));
  ASSERT_TRUE(Await(raw.cq, 4));
  EXPECT_THAT(Bytes(response), HasSubstr("spillway.v1.Ingest"));
  EXPECT_THAT(Bytes(response), HasSubstr("grpc.health.v1.Health"));
  grpc::Status status;
  raw.call->Finish(&status, reinterpret_cast<void*>(5));
  Await(raw.cq, 5);
}

// Consume is a raw method (the server parses ConsumerMessages itself): bytes that are
// not one end the stream with INVALID_ARGUMENT, as a typed method's failed parse
// ends it.
TEST_F(GrpcTest, ConsumeStreamThatIsNotConsumerMessagesIsInvalidArgument) {
  StartServer();
  RawStreamingCall raw(server_->grpc_port(), "/spillway.v1.Ingest/Consume");
  ASSERT_TRUE(Await(raw.cq, 1));
  // Field 1 (attach) announcing 5 bytes, followed by 2.
  raw.Write(std::string("\x0a\x05" "ab", 4), 2);
  Await(raw.cq, 2);  // may fail if the server has finished already
  grpc::ByteBuffer response;
  raw.call->Read(&response, reinterpret_cast<void*>(3));
  EXPECT_FALSE(Await(raw.cq, 3));
  grpc::Status status;
  raw.call->Finish(&status, reinterpret_cast<void*>(4));
  ASSERT_TRUE(Await(raw.cq, 4));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();
  // The server still takes consumers, and uploads reach them.
  auto consumer = AddConsumer();
  EXPECT_EQ(Curl({"-F", "file=@" + WriteInput("in.bin", "after")}).status, 201);
  EXPECT_TRUE(consumer->WaitForUploads(1));
  EXPECT_THAT(ListDir(spill_), IsEmpty());
}

TEST_F(GrpcTest, HealthSaysServing) {
  StartServer();
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer request;  // HealthCheckRequest{service: ""} is empty on the wire
  grpc::Slice empty;
  request = grpc::ByteBuffer(&empty, 1);
  auto call = stub.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  ASSERT_TRUE(ok);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));  // status: SERVING
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace
}  // namespace spillway
