#include "server/http/upload_exchange.h"

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/notification.h"
#include "server/net/event_loop.h"
#include "server/upload/temp_directory.h"
#include "tests/unit/dispatch_test_util.h"
#include "tests/unit/scoped_test_dir.h"

namespace spillway {
namespace {

using ::spillway::testing::Drain;
using ::spillway::testing::MultipartBody;
using ::spillway::testing::MultipartContentType;
using ::spillway::testing::QueueConsumer;
using ::spillway::testing::ScopedTestDir;
using ::spillway::testing::Sha256Hex;
using ::spillway::testing::TestBytes;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Key;
using ::testing::Not;
using ::testing::Pair;
using ::testing::SizeIs;

// The session's side of one stream, recorded. Loop thread only.
class FakeResponder final : public Responder {
 public:
  void Respond(HttpResponse response) override {
    EXPECT_FALSE(response_.has_value()) << "responded twice";
    response_ = std::move(response);
  }
  void PauseBody() override { ++pauses_; }
  void ResumeBody() override { ++resumes_; }
  void ConsumeBody(size_t bytes) override { consumed_ += bytes; }

  const std::optional<HttpResponse>& response() const { return response_; }
  int paused() const { return pauses_ - resumes_; }
  int pauses() const { return pauses_; }
  size_t consumed() const { return consumed_; }

 private:
  std::optional<HttpResponse> response_;
  int pauses_ = 0;
  int resumes_ = 0;
  size_t consumed_ = 0;
};

class UploadExchangeTest : public ::testing::Test {
 protected:
  UploadExchangeTest() : temp_dir_(*TempDirectory::Open(dir_.path())) {
    DispatchSettings dispatch;
    dispatch.dispatch_timeout = absl::Seconds(5);
    dispatch.reply_timeout = absl::Seconds(5);
    dispatch.chunk_size = 1024;
    dispatcher_ = std::make_unique<Dispatcher>(dispatch);
    consumer_ = std::make_shared<QueueConsumer>();
    dispatcher_->Register(consumer_, ConsumerSpec{});

    options_.settings.max_body_size = 64 * 1024;
    options_.settings.file_upload_max_memory_size = 1000;
    options_.settings.stream_body_chunk_size = 1024;
    options_.temp_dir = &temp_dir_;
    options_.dispatcher = dispatcher_.get();
    loop_ = *EventLoop::Create();
    thread_ = std::thread([this] { loop_->Run(); });
  }

  ~UploadExchangeTest() override {
    InLoop([this] {
      if (exchange_ != nullptr) exchange_->OnStreamClosed();
      exchange_.reset();
    });
    loop_->Stop();
    thread_.join();
  }

  // Runs `task` on the loop thread and waits for it.
  template <typename F>
  void InLoop(F task) {
    Notification done;
    loop_->Post([&] {
      task();
      done.Notify();
    });
    done.WaitForNotification();
  }

  void Start(std::string method, std::string content_type,
             std::optional<uint64_t> content_length) {
    handler_ = MakeUploadHandler(options_);
    RequestHead head;
    head.protocol = "HTTP/1.1";
    head.method = std::move(method);
    head.path = "/upload";
    head.content_type = std::move(content_type);
    head.content_length = content_length;
    InLoop([&] { exchange_ = handler_->Start(head, &responder_, loop_.get()); });
  }

  // Feeds the body in slices on the loop thread; returns the first error.
  absl::Status Send(std::string_view body, size_t slice = 700, bool end = true) {
    absl::Status result;
    InLoop([&] {
      for (size_t i = 0; i < body.size() && result.ok(); i += slice) {
        result = exchange_->OnBodyData(body.substr(i, slice));
      }
      if (result.ok() && end) exchange_->OnBodyEnd();
    });
    return result;
  }

  std::optional<HttpResponse> WaitForResponse(absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time deadline = absl::Now() + timeout;
    std::optional<HttpResponse> response;
    while (absl::Now() < deadline) {
      InLoop([&] { response = responder_.response(); });
      if (response.has_value()) break;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return response;
  }

  void SendPastMaxBodySize(std::string_view body, size_t slice,
                           std::vector<std::string>* log, std::string* bytes);

  std::optional<HttpResponse> ResponseNow() {
    std::optional<HttpResponse> response;
    InLoop([&] { response = responder_.response(); });
    return response;
  }

  ScopedTestDir dir_;
  TempDirectory temp_dir_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::shared_ptr<QueueConsumer> consumer_;
  UploadHandlerOptions options_;
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
  std::unique_ptr<RequestHandler> handler_;
  FakeResponder responder_;  // loop thread only
  std::shared_ptr<Exchange> exchange_;
};

TEST_F(UploadExchangeTest, BufferedUploadIsDispatchedWholeAndTheReplyIsTheResponse) {
  const std::string data = TestBytes(3000);  // spills past 1000
  const std::string body =
      MultipartBody().Field("k", "v").File("f", "a.bin", "x/y", data).Build();
  Start("POST", MultipartContentType(), body.size());
  ASSERT_TRUE(Send(body).ok());

  std::unique_ptr<Delivery> delivery = consumer_->Take();
  ASSERT_NE(delivery, nullptr);
  std::string bytes;
  EXPECT_THAT(Drain(*delivery, &bytes),
              ElementsAre("started attempt=1 mode=spill path=/upload", "field k=v",
                          "file f a.bin x/y size=3000 spill", "chunk 0 +1024",
                          "chunk 1024 +1024", "chunk 2048 +952",
                          "finished-file 3000 " + Sha256Hex(data),
                          "finished " + std::to_string(body.size())));
  EXPECT_TRUE(bytes == data);
  EXPECT_FALSE(ResponseNow().has_value());  // no answer before the consumer's
  ConsumerReply reply;
  reply.status = 201;
  reply.headers = {{"content-type", "application/json"}, {"connection", "close"}};
  reply.body = "{}";
  const std::string id(delivery->upload_id());
  delivery->Reply(reply);
  delivery.reset();

  std::optional<HttpResponse> response = WaitForResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, "{}");
  EXPECT_THAT(response->headers, Contains(Pair("x-upload-id", id)));
  EXPECT_THAT(response->headers, Contains(Pair("content-type", "application/json")));
  EXPECT_THAT(response->headers, Not(Contains(Key("connection"))));
  InLoop([&] { EXPECT_EQ(responder_.consumed(), body.size()); });
  EXPECT_THAT(dir_.List(), IsEmpty());  // answered: the spilled file is gone
}

TEST_F(UploadExchangeTest, ConsumerReplyThatIsNotValidHttpBecomes502) {
  Start("POST", "application/octet-stream", 5);
  ASSERT_TRUE(Send("hello").ok());
  std::unique_ptr<Delivery> delivery = consumer_->Take();
  ASSERT_NE(delivery, nullptr);
  Drain(*delivery);
  ConsumerReply reply;
  reply.status = 201;
  reply.headers.emplace_back("x-ok", "fine\r\nset-cookie: injected=1");
  delivery->Reply(reply);
  std::optional<HttpResponse> response = WaitForResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 502);
  EXPECT_THAT(response->body, HasSubstr("x-ok"));
  EXPECT_THAT(response->headers, Not(Contains(Key("x-ok"))));
}

TEST_F(UploadExchangeTest, RawBodyIsOneUnnamedFile) {
  const std::string data = TestBytes(500);
  Start("PUT", "application/octet-stream", data.size());
  ASSERT_TRUE(Send(data).ok());
  std::unique_ptr<Delivery> delivery = consumer_->Take();
  ASSERT_NE(delivery, nullptr);
  EXPECT_THAT(Drain(*delivery),
              ElementsAre(HasSubstr("mode=memory"),
                          "file   application/octet-stream size=500 memory",
                          "chunk 0 +500", "finished-file 500 " + Sha256Hex(data),
                          "finished 500"));
}

TEST_F(UploadExchangeTest, FileOverMaxSizeIs413AtOnceAndLeavesNoTempFile) {
  options_.settings.file_upload_max_size = 2000;
  const std::string body =
      MultipartBody().File("f", "big.bin", "x/y", TestBytes(5000)).Build();
  Start("POST", MultipartContentType(), body.size());
  absl::Status status = Send(body, 700, /*end=*/false);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  std::optional<HttpResponse> response = ResponseNow();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 413);
  EXPECT_THAT(response->body, HasSubstr("maximum file size"));
  EXPECT_THAT(dir_.List(), IsEmpty());
  EXPECT_EQ(consumer_->started(), 0);
}

// A raw body is one file, so its declared length alone breaks FILE_UPLOAD_MAX_SIZE:
// answered from the headers (before an Expect: 100-continue would invite the body),
// in buffered and stream mode alike. A multipart body of that length may hold small
// files: it is read.
TEST_F(UploadExchangeTest, RawBodyDeclaredOverMaxFileSizeIs413FromTheHeaders) {
  options_.settings.file_upload_max_size = 2000;
  for (const uint64_t length : {uint64_t{5000}, options_.settings.max_body_size + 1}) {
    SCOPED_TRACE(length);
    Start("PUT", "application/octet-stream", length);
    std::optional<HttpResponse> response = ResponseNow();
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->status, 413);
    EXPECT_THAT(response->body, HasSubstr("maximum file size of 2000 bytes"));
    InLoop([&] { exchange_->OnStreamClosed(); });
    InLoop([&] { responder_ = FakeResponder(); });
  }
  Start("POST", MultipartContentType(), 5000);
  EXPECT_FALSE(ResponseNow().has_value());
  EXPECT_EQ(consumer_->started(), 0);
}

TEST_F(UploadExchangeTest, MalformedMultipartIs400) {
  Start("POST", MultipartContentType(), std::nullopt);
  ASSERT_TRUE(Send("--" + std::string(testing::kBoundary) + "\r\nno colon here\r\n\r\n", 5,
                   /*end=*/false)
                  .code() == absl::StatusCode::kInvalidArgument);
  std::optional<HttpResponse> response = ResponseNow();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 400);
}

TEST_F(UploadExchangeTest, MultipartWithoutBoundaryIsAnsweredFromTheHeaders) {
  Start("POST", "multipart/form-data", 10);
  std::optional<HttpResponse> response = ResponseNow();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 400);
  EXPECT_FALSE(Send("0123456789").ok());  // the body is unwanted
}

TEST_F(UploadExchangeTest, GetIs405) {
  Start("GET", "", std::nullopt);
  std::optional<HttpResponse> response = ResponseNow();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 405);
  EXPECT_THAT(response->headers, Contains(Pair("allow", "POST, PUT")));
}

TEST_F(UploadExchangeTest, StreamClosedMidBodyLeavesNoTempFileAndDispatchesNothing) {
  const std::string body = MultipartBody().File("f", "a", "x/y", TestBytes(5000)).Build();
  Start("POST", MultipartContentType(), body.size());
  ASSERT_TRUE(Send(body.substr(0, 3000), 700, /*end=*/false).ok());
  EXPECT_THAT(dir_.List(), SizeIs(1));  // spilled
  InLoop([&] {
    exchange_->OnStreamClosed();
    exchange_.reset();
  });
  EXPECT_THAT(dir_.List(), IsEmpty());
  EXPECT_EQ(consumer_->Take(absl::Milliseconds(50)), nullptr);
}

TEST_F(UploadExchangeTest, StreamClosedAfterDispatchAbortsTheDeliveryAndFreesFiles) {
  const std::string body = MultipartBody().File("f", "a", "x/y", TestBytes(5000)).Build();
  Start("POST", MultipartContentType(), body.size());
  ASSERT_TRUE(Send(body).ok());
  std::unique_ptr<Delivery> delivery = consumer_->Take();
  ASSERT_NE(delivery, nullptr);
  InLoop([&] {
    exchange_->OnStreamClosed();
    exchange_.reset();
  });
  EXPECT_THAT(Drain(*delivery), ElementsAre("aborted the uploader went away"));
  EXPECT_THAT(dir_.List(), SizeIs(1));  // the consumer still holds it...
  delivery.reset();
  EXPECT_THAT(dir_.List(), IsEmpty());  // ...until it lets go
}

TEST_F(UploadExchangeTest, UnknownLengthBodyGrowingPastMaxBodySizeIs413WithoutStreamMode) {
  options_.settings.max_body_size = 4000;
  options_.stream_mode = false;
  Start("POST", "application/octet-stream", std::nullopt);
  EXPECT_EQ(Send(TestBytes(5000), 1000, /*end=*/false).code(),
            absl::StatusCode::kResourceExhausted);
  std::optional<HttpResponse> response = ResponseNow();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 413);
  EXPECT_THAT(dir_.List(), IsEmpty());
}

// A body of unknown length sent in `slice`-byte pieces, as a session would: it stops
// feeding while paused. Once past MAX_BODY_SIZE the upload is dispatched, and a
// consumer drains it into `log` and `bytes` and replies 201.
void UploadExchangeTest::SendPastMaxBodySize(std::string_view body, size_t slice,
                                             std::vector<std::string>* log,
                                             std::string* bytes) {
  Start("POST", MultipartContentType(), std::nullopt);
  std::thread reader;
  for (size_t offset = 0; offset < body.size(); offset += slice) {
    for (int i = 0; i < 2000; ++i) {
      int paused = 0;
      InLoop([&] { paused = responder_.paused(); });
      if (paused == 0) break;
      absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_TRUE(Send(body.substr(offset, slice), slice, /*end=*/false).ok()) << offset;
    if (!reader.joinable() && offset + slice > options_.settings.max_body_size) {
      std::unique_ptr<Delivery> delivery = consumer_->Take();
      ASSERT_NE(delivery, nullptr);
      reader = std::thread([log, bytes, delivery = std::move(delivery)]() mutable {
        *log = Drain(*delivery, bytes);
        ConsumerReply reply;
        reply.status = 201;
        delivery->Reply(reply);
      });
    }
  }
  InLoop([&] { exchange_->OnBodyEnd(); });
  ASSERT_TRUE(reader.joinable()) << "never dispatched";
  reader.join();
  std::optional<HttpResponse> response = WaitForResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 201);
  InLoop([&] { EXPECT_EQ(responder_.consumed(), body.size()); });
}

TEST_F(UploadExchangeTest, UnknownLengthBodyGrowingPastMaxBodySizeSwitchesToStream) {
  options_.settings.max_body_size = 4000;  // and 1000 in memory: the file spills
  const std::string data = TestBytes(30 * 1024);
  const std::string body = MultipartBody().Field("k", "v").File("f", "a", "x/y", data).Build();
  std::vector<std::string> log;
  std::string bytes;
  SendPastMaxBodySize(body, 1500, &log, &bytes);
  ASSERT_THAT(log, SizeIs(3 + 30 + 2));  // 30 KiB in 1 KiB chunks
  EXPECT_EQ(log[0], "started attempt=1 mode=stream path=/upload");
  EXPECT_EQ(log[1], "field k=v");
  EXPECT_EQ(log[2], "file f a x/y size=? stream");
  EXPECT_EQ(log[3], "chunk 0 +1024");
  EXPECT_EQ(log[32], "chunk 29696 +1024");
  EXPECT_EQ(log[33], "finished-file 30720 " + Sha256Hex(data));
  EXPECT_EQ(log[34], "finished " + std::to_string(body.size()));
  EXPECT_TRUE(bytes == data);
  EXPECT_THAT(dir_.List(), IsEmpty());  // the replayed file's temp file is gone
}

TEST_F(UploadExchangeTest, SwitchToStreamCarriesOnFromAnyPointOfTheParse) {
  const std::string first = TestBytes(1500);  // spills (1000 in memory)
  const std::string second = TestBytes(6000, /*seed=*/7);
  const std::string long_value(300, 'v');
  const std::string body = MultipartBody()
                               .Field("k", "v")
                               .File("f1", "one.bin", "x/one", first)
                               .Field("k2", long_value)
                               .File("f2", "two.bin", "x/two", second)
                               .Build();
  // The switch lands in the first headers, a field's value, a spilled file's data,
  // between parts, the second field and the second file.
  for (size_t max_body_size : {10, 150, 300, 1000, 1650, 1780, 1900, 2100, 5000}) {
    SCOPED_TRACE(max_body_size);
    options_.settings.max_body_size = max_body_size;
    std::vector<std::string> log;
    std::string bytes;
    SendPastMaxBodySize(body, 97, &log, &bytes);
    std::erase_if(log, [](const std::string& line) { return line.starts_with("chunk "); });
    EXPECT_THAT(log, ElementsAre("started attempt=1 mode=stream path=/upload", "field k=v",
                                 "file f1 one.bin x/one size=? stream",
                                 "finished-file 1500 " + Sha256Hex(first),
                                 "field k2=" + long_value,
                                 "file f2 two.bin x/two size=? stream",
                                 "finished-file 6000 " + Sha256Hex(second),
                                 "finished " + std::to_string(body.size())));
    EXPECT_TRUE(bytes == first + second);
    EXPECT_THAT(dir_.List(), IsEmpty());
    InLoop([&] { exchange_.reset(); });
    responder_ = FakeResponder();
  }
}

TEST_F(UploadExchangeTest, SwitchToStreamSpillsNothingTwice) {
  // Before the switch the spilled part of the file is on disk once: what a raw copy
  // for replay would have doubled. A budget between the two must let the body through.
  // Slices of 20 KiB go to disk as they come, not through the file's write buffer.
  SpillBudget budget(300 * 1024);
  options_.spill_budget = &budget;
  options_.settings.max_body_size = 200 * 1024;
  const std::string data = TestBytes(400 * 1024);
  const std::string body = MultipartBody().File("f", "a", "x/y", data).Build();
  std::vector<std::string> log;
  std::string bytes;
  SendPastMaxBodySize(body, 20 * 1024, &log, &bytes);
  EXPECT_TRUE(bytes == data);
  EXPECT_THAT(log, Contains("finished-file " + std::to_string(data.size()) + " " +
                            Sha256Hex(data)));
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_THAT(dir_.List(), IsEmpty());
}

TEST_F(UploadExchangeTest, LargeBodyStreamsWithBoundedQueueAndBackpressure) {
  options_.settings.max_body_size = 4000;
  const std::string data = TestBytes(40 * 1024);
  Start("POST", "application/octet-stream", data.size());
  // Dispatched from the headers alone.
  std::unique_ptr<Delivery> delivery = consumer_->Take();
  ASSERT_NE(delivery, nullptr);
  ASSERT_THAT(testing::Describe(*NextEventBlocking(*delivery)), HasSubstr("mode=stream"));

  // The consumer does not pull: past the high watermark (4 chunks) the body pauses.
  ASSERT_TRUE(Send(data.substr(0, 8 * 1024), 512, /*end=*/false).ok());
  InLoop([&] { EXPECT_EQ(responder_.paused(), 1); });

  // 8 chunks wait. Taking 5 leaves 3, still above the low watermark (2 chunks)...
  std::string bytes;
  std::vector<std::string> log;
  for (int i = 0; i < 6; ++i) {
    log.push_back(testing::Describe(*NextEventBlocking(*delivery), &bytes));
  }
  absl::SleepFor(absl::Milliseconds(20));
  InLoop([&] { EXPECT_EQ(responder_.paused(), 1); });
  // ...taking one more reaches it: the body resumes.
  log.push_back(testing::Describe(*NextEventBlocking(*delivery), &bytes));
  EXPECT_EQ(log[0], "file   application/octet-stream size=40960 stream");
  absl::SleepFor(absl::Milliseconds(20));  // the resume is posted to the loop
  InLoop([&] { EXPECT_EQ(responder_.paused(), 0); });

  // The rest, pulled by a consumer thread as it arrives.
  std::thread reader([&] {
    for (;;) {
      absl::StatusOr<UploadEvent> event = NextEventBlocking(*delivery);
      ASSERT_TRUE(event.ok());
      log.push_back(testing::Describe(*event, &bytes));
      if (IsLastEvent(*event)) break;
    }
  });
  for (size_t offset = 8 * 1024; offset < data.size(); offset += 4096) {
    // A real session would stop feeding while paused; this one waits for resumes.
    for (int i = 0; i < 1000; ++i) {
      int paused = 0;
      InLoop([&] { paused = responder_.paused(); });
      if (paused == 0) break;
      absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_TRUE(Send(data.substr(offset, 4096), 4096, /*end=*/false).ok());
  }
  InLoop([&] { exchange_->OnBodyEnd(); });
  reader.join();
  EXPECT_TRUE(bytes == data);
  EXPECT_EQ(log.back(), "finished 40960");
  EXPECT_EQ(log[log.size() - 2], "finished-file 40960 " + Sha256Hex(data));
  EXPECT_FALSE(ResponseNow().has_value());
  ConsumerReply reply;
  reply.status = 200;
  delivery->Reply(reply);
  std::optional<HttpResponse> response = WaitForResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
}

TEST_F(UploadExchangeTest, StreamedBodyIsHeldUntilAConsumerHasTheUpload) {
  // DESIGN.md §3: dispatched from the headers, but not read before a consumer has it.
  DispatchSettings dispatch;
  dispatch.dispatch_timeout = absl::Seconds(5);
  dispatch.chunk_size = 1024;
  Dispatcher no_consumer_yet(dispatch);
  options_.dispatcher = &no_consumer_yet;
  options_.settings.max_body_size = 4000;
  Start("POST", "application/octet-stream", 100'000);
  InLoop([&] { EXPECT_EQ(responder_.paused(), 1); });
  // Bytes the session had already read are taken; the body stays held.
  ASSERT_TRUE(Send(TestBytes(1000), 1000, /*end=*/false).ok());
  absl::SleepFor(absl::Milliseconds(20));
  InLoop([&] { EXPECT_EQ(responder_.paused(), 1); });

  auto consumer = std::make_shared<QueueConsumer>();
  no_consumer_yet.Register(consumer, ConsumerSpec{});
  std::unique_ptr<Delivery> delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  int paused = 1;
  for (int i = 0; i < 1000 && paused != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(1));  // the resume is posted to the loop
    InLoop([&] { paused = responder_.paused(); });
  }
  EXPECT_EQ(paused, 0);
  InLoop([&] {
    exchange_->OnStreamClosed();
    exchange_.reset();
  });
}

TEST_F(UploadExchangeTest, EarlyReplyToAStreamAnswersBeforeTheBodyEnds) {
  options_.settings.max_body_size = 4000;
  Start("POST", "application/octet-stream", 1'000'000);
  std::unique_ptr<Delivery> delivery = consumer_->Take();
  ASSERT_NE(delivery, nullptr);
  ASSERT_TRUE(NextEventBlocking(*delivery).ok());  // RequestStarted
  ConsumerReply reply;
  reply.status = 415;
  delivery->Reply(reply);
  std::optional<HttpResponse> response = WaitForResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 415);
  EXPECT_FALSE(Send(TestBytes(1000), 1000, /*end=*/false).ok());
}

TEST_F(UploadExchangeTest, StreamedMultipartIsStillParsedPartByPart) {
  options_.settings.max_body_size = 1000;
  const std::string data = TestBytes(2500);
  const std::string body =
      MultipartBody().Field("k", "v").File("f", "a.bin", "x/y", data).Build();
  Start("POST", MultipartContentType(), body.size());
  std::unique_ptr<Delivery> delivery = consumer_->Take();
  ASSERT_NE(delivery, nullptr);
  std::vector<std::string> log;
  std::string bytes;
  std::thread reader([&] { log = Drain(*delivery, &bytes); });
  ASSERT_TRUE(Send(body, 300).ok());
  reader.join();
  EXPECT_THAT(log, ElementsAre("started attempt=1 mode=stream path=/upload", "field k=v",
                               "file f a.bin x/y size=? stream", "chunk 0 +1024",
                               "chunk 1024 +1024", "chunk 2048 +452",
                               "finished-file 2500 " + Sha256Hex(data),
                               "finished " + std::to_string(body.size())));
  EXPECT_TRUE(bytes == data);
}

TEST_F(UploadExchangeTest, ConsumerBreakingDuringAStreamIs502) {
  options_.settings.max_body_size = 1000;
  Start("POST", "application/octet-stream", 100'000);
  std::unique_ptr<Delivery> delivery = consumer_->Take();
  ASSERT_NE(delivery, nullptr);
  delivery->Fail(absl::UnavailableError("consumer stream broke"));
  std::optional<HttpResponse> response = WaitForResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 502);
  EXPECT_EQ(consumer_->Take(absl::Milliseconds(50)), nullptr);  // not replayed
}

}  // namespace
}  // namespace spillway
