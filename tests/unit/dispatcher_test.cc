#include "server/dispatch/dispatcher.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/notification.h"
#include "server/dispatch/buffered_upload_source.h"
#include "server/dispatch/stream_upload_source.h"
#include "server/upload/temp_directory.h"
#include "tests/unit/dispatch_test_util.h"
#include "tests/unit/scoped_test_dir.h"

namespace spillway {
namespace {

using ::spillway::testing::Drain;
using ::spillway::testing::QueueConsumer;
using ::spillway::testing::ScopedTestDir;
using ::spillway::testing::Sha256Hex;
using ::spillway::testing::TestBytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::Contains;

// Where an upload's answer lands; waits for it.
class Outcome {
 public:
  Dispatcher::DoneCallback Callback() {
    return [this](ConsumerReply reply) {
      reply_ = std::move(reply);
      done_.Notify();
    };
  }
  bool Wait(absl::Duration timeout = absl::Seconds(5)) {
    return done_.WaitForNotificationWithTimeout(timeout);
  }
  bool HasReply() const { return done_.HasBeenNotified(); }
  const ConsumerReply& reply() const { return reply_; }

 private:
  Notification done_;
  ConsumerReply reply_;
};

std::shared_ptr<UploadSource> FieldUpload(std::string path, std::string value = "v") {
  BufferedUpload upload;
  upload.request.method = "POST";
  upload.request.path = std::move(path);
  upload.fields.push_back({"name", std::move(value)});
  upload.order.push_back({false, 0});
  upload.total_bytes = 42;
  return std::make_shared<BufferedUploadSource>(std::move(upload));
}

ConsumerReply Created(std::string body = "ok") {
  ConsumerReply reply;
  reply.status = 201;
  reply.body = std::move(body);
  return reply;
}

ConsumerSpec Prefixes(std::vector<std::string> prefixes) {
  ConsumerSpec spec;
  spec.name = "test";
  spec.path_prefixes = std::move(prefixes);
  return spec;
}

DispatchSettings ShortTimeouts() {
  DispatchSettings settings;
  settings.dispatch_timeout = absl::Milliseconds(200);
  settings.reply_timeout = absl::Milliseconds(200);
  settings.max_delivery_attempts = 3;
  settings.chunk_size = 1024;
  return settings;
}

TEST(Dispatcher, DeliversEventsAndTheConsumersReplyReachesTheUploader) {
  Dispatcher dispatcher(ShortTimeouts());
  auto consumer = std::make_shared<QueueConsumer>();
  dispatcher.Register(consumer, Prefixes({}));
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(FieldUpload("/a", "hello"), outcome.Callback());

  std::unique_ptr<Delivery> delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  EXPECT_EQ(delivery->upload_id(), handle.upload_id());
  EXPECT_THAT(Drain(*delivery), ElementsAre("started attempt=1 mode=memory path=/a",
                                            "field name=hello", "finished 42"));
  EXPECT_FALSE(outcome.HasReply());  // nothing is acknowledged before the consumer
  delivery->Reply(Created("receipt"));
  ASSERT_TRUE(outcome.Wait());
  EXPECT_EQ(outcome.reply().status, 201);
  EXPECT_EQ(outcome.reply().body, "receipt");
}

TEST(Dispatcher, LongestPrefixWins) {
  Dispatcher dispatcher(ShortTimeouts());
  auto general = std::make_shared<QueueConsumer>();
  auto images = std::make_shared<QueueConsumer>();
  dispatcher.Register(general, Prefixes({"/"}));
  dispatcher.Register(images, Prefixes({"/up", "/up/images"}));
  Outcome a, b;
  UploadHandle h1 = dispatcher.Submit(FieldUpload("/up/images/x.png"), a.Callback());
  std::unique_ptr<Delivery> d1 = images->Take();
  ASSERT_NE(d1, nullptr);
  // /upload is not under /up (whole segments only): the general consumer takes it.
  UploadHandle h2 = dispatcher.Submit(FieldUpload("/upload"), b.Callback());
  std::unique_ptr<Delivery> d2 = general->Take();
  ASSERT_NE(d2, nullptr);
  EXPECT_EQ(images->started(), 1);
  EXPECT_EQ(general->started(), 1);
}

TEST(Dispatcher, LongerPrefixGroupWaitsRatherThanFallingBackToShorterOne) {
  Dispatcher dispatcher(ShortTimeouts());
  auto general = std::make_shared<QueueConsumer>();
  auto images = std::make_shared<QueueConsumer>();
  dispatcher.Register(general, Prefixes({"/"}));
  dispatcher.Register(images, Prefixes({"/images"}));
  Outcome first, second;
  UploadHandle h1 = dispatcher.Submit(FieldUpload("/images/1"), first.Callback());
  UploadHandle h2 = dispatcher.Submit(FieldUpload("/images/2"), second.Callback());
  std::unique_ptr<Delivery> d1 = images->Take();
  ASSERT_NE(d1, nullptr);
  EXPECT_EQ(images->Take(absl::Milliseconds(50)), nullptr);  // busy: /images/2 waits
  EXPECT_EQ(general->started(), 0);
  d1->Reply(Created());
  std::unique_ptr<Delivery> d2 = images->Take();  // freed: it gets the next one
  ASSERT_NE(d2, nullptr);
  d2->Reply(Created());
  EXPECT_TRUE(second.Wait());
}

TEST(Dispatcher, RoundRobinAmongFreeConsumersOfTheSamePrefix) {
  Dispatcher dispatcher(ShortTimeouts());
  std::vector<std::shared_ptr<QueueConsumer>> consumers;
  for (int i = 0; i < 3; ++i) {
    consumers.push_back(std::make_shared<QueueConsumer>());
    dispatcher.Register(consumers.back(), Prefixes({"/"}));
  }
  for (int round = 0; round < 6; ++round) {
    Outcome outcome;
    UploadHandle handle = dispatcher.Submit(FieldUpload("/x"), outcome.Callback());
    std::unique_ptr<Delivery> delivery = consumers[round % 3]->Take(absl::Seconds(1));
    ASSERT_NE(delivery, nullptr) << "round " << round;
    delivery->Reply(Created());
    ASSERT_TRUE(outcome.Wait());
  }
  for (const auto& consumer : consumers) EXPECT_EQ(consumer->started(), 2);
}

TEST(Dispatcher, NoFreeConsumerWithinDispatchTimeoutIs503WithRetryAfter) {
  Dispatcher dispatcher(ShortTimeouts());
  Outcome outcome;
  const absl::Time start = absl::Now();
  UploadHandle handle = dispatcher.Submit(FieldUpload("/a"), outcome.Callback());
  ASSERT_TRUE(outcome.Wait());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(190));
  EXPECT_EQ(outcome.reply().status, 503);
  EXPECT_THAT(outcome.reply().headers, Contains(Pair("retry-after", "1")));
  EXPECT_THAT(outcome.reply().body, HasSubstr("no consumer"));
}

TEST(Dispatcher, ConsumerRegisteringWhileUploadWaitsGetsIt) {
  Dispatcher dispatcher(ShortTimeouts());
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(FieldUpload("/a"), outcome.Callback());
  auto consumer = std::make_shared<QueueConsumer>();
  dispatcher.Register(consumer, Prefixes({}));
  std::unique_ptr<Delivery> delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  delivery->Reply(Created());
  ASSERT_TRUE(outcome.Wait());
  EXPECT_EQ(outcome.reply().status, 201);
}

TEST(Dispatcher, NoReplyWithinReplyTimeoutIs504AndConsumerSeesAbort) {
  Dispatcher dispatcher(ShortTimeouts());
  auto consumer = std::make_shared<QueueConsumer>();
  dispatcher.Register(consumer, Prefixes({}));
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(FieldUpload("/a"), outcome.Callback());
  std::unique_ptr<Delivery> delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  ASSERT_TRUE(outcome.Wait());
  EXPECT_EQ(outcome.reply().status, 504);
  std::vector<std::string> log = Drain(*delivery);
  EXPECT_THAT(log, ElementsAre(HasSubstr("aborted")));
  delivery->Reply(Created());  // too late: ignored
  EXPECT_EQ(outcome.reply().status, 504);
}

TEST(Dispatcher, NotifyWhenOverTellsAConsumerWaitingToReplyThatTheUploadEnded) {
  Dispatcher dispatcher(ShortTimeouts());
  auto consumer = std::make_shared<QueueConsumer>();
  dispatcher.Register(consumer, Prefixes({}));

  // No reply within REPLY_TIMEOUT: told, after the uploader has its 504.
  Outcome timed_out;
  UploadHandle first = dispatcher.Submit(FieldUpload("/a"), timed_out.Callback());
  std::unique_ptr<Delivery> delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  EXPECT_THAT(Drain(*delivery), Contains("finished 42"));
  Notification over;
  delivery->NotifyWhenOver([&] { over.Notify(); });
  ASSERT_TRUE(over.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(timed_out.HasReply());
  EXPECT_EQ(timed_out.reply().status, 504);
  // Asked once the upload is already over: told at once.
  bool told_at_once = false;
  delivery->NotifyWhenOver([&] { told_at_once = true; });
  EXPECT_TRUE(told_at_once);
  delivery.reset();  // the consumer is free again

  // The uploader goes away while the reply is awaited: told too.
  UploadHandle second = dispatcher.Submit(FieldUpload("/a"), [](ConsumerReply) {});
  delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  Notification gone;
  delivery->NotifyWhenOver([&] { gone.Notify(); });
  second.Cancel("client closed");
  EXPECT_TRUE(gone.WaitForNotificationWithTimeout(absl::Seconds(5)));
  delivery.reset();

  // Answered by the consumer: never told.
  Outcome answered;
  UploadHandle third = dispatcher.Submit(FieldUpload("/a"), answered.Callback());
  delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  std::atomic<bool> told{false};
  delivery->NotifyWhenOver([&] { told = true; });
  delivery->Reply(Created());
  ASSERT_TRUE(answered.Wait());
  EXPECT_EQ(answered.reply().status, 201);
  delivery.reset();
  absl::SleepFor(absl::Milliseconds(300));  // past REPLY_TIMEOUT: still not told
  EXPECT_FALSE(told);
}

TEST(Dispatcher, ConsumerPullingEventsIsNotTimedOut) {
  DispatchSettings settings = ShortTimeouts();
  Dispatcher dispatcher(settings);
  auto consumer = std::make_shared<QueueConsumer>();
  dispatcher.Register(consumer, Prefixes({}));
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(FieldUpload("/a"), outcome.Callback());
  std::unique_ptr<Delivery> delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  // Three events, each pulled after 120 ms: 360 ms in all, more than REPLY_TIMEOUT,
  // but never 200 ms without progress.
  for (int i = 0; i < 3; ++i) {
    absl::SleepFor(absl::Milliseconds(120));
    ASSERT_TRUE(NextEventBlocking(*delivery).ok());
  }
  EXPECT_FALSE(outcome.HasReply());
  delivery->Reply(Created());
  ASSERT_TRUE(outcome.Wait());
  EXPECT_EQ(outcome.reply().status, 201);
}

TEST(Dispatcher, FailedDeliveryIsRedeliveredToAnotherConsumerWithNextAttempt) {
  Dispatcher dispatcher(ShortTimeouts());
  auto first = std::make_shared<QueueConsumer>();
  auto second = std::make_shared<QueueConsumer>();
  dispatcher.Register(first, Prefixes({}));
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(FieldUpload("/a"), outcome.Callback());
  std::unique_ptr<Delivery> d1 = first->Take();
  ASSERT_NE(d1, nullptr);
  const std::string id(d1->upload_id());
  dispatcher.Register(second, Prefixes({}));
  d1->Fail(absl::UnavailableError("stream broke"));
  std::unique_ptr<Delivery> d2 = second->Take();
  ASSERT_NE(d2, nullptr);
  EXPECT_EQ(d2->upload_id(), id);  // same id: consumers can deduplicate
  EXPECT_THAT(Drain(*d2), Contains("started attempt=2 mode=memory path=/a"));
  d2->Reply(Created());
  ASSERT_TRUE(outcome.Wait());
  EXPECT_EQ(outcome.reply().status, 201);
}

TEST(Dispatcher, ReleasingDeliveryWithoutReplyCountsAsFailure) {
  Dispatcher dispatcher(ShortTimeouts());
  auto consumer = std::make_shared<QueueConsumer>();
  dispatcher.Register(consumer, Prefixes({}));
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(FieldUpload("/a"), outcome.Callback());
  consumer->Take().reset();  // dropped on the floor
  // The only consumer is tried again, since no other handles the path.
  std::unique_ptr<Delivery> again = consumer->Take();
  ASSERT_NE(again, nullptr);
  EXPECT_THAT(Drain(*again), Contains(HasSubstr("attempt=2")));
  again->Reply(Created());
  ASSERT_TRUE(outcome.Wait());
}

TEST(Dispatcher, AfterMaxDeliveryAttemptsIs502) {
  Dispatcher dispatcher(ShortTimeouts());
  auto consumer = std::make_shared<QueueConsumer>();
  dispatcher.Register(consumer, Prefixes({}));
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(FieldUpload("/a"), outcome.Callback());
  for (int attempt = 1; attempt <= 3; ++attempt) {
    std::unique_ptr<Delivery> delivery = consumer->Take();
    ASSERT_NE(delivery, nullptr) << "attempt " << attempt;
    EXPECT_FALSE(outcome.HasReply());
    delivery->Fail(absl::UnavailableError("broke"));
  }
  ASSERT_TRUE(outcome.Wait());
  EXPECT_EQ(outcome.reply().status, 502);
  EXPECT_THAT(outcome.reply().body, HasSubstr("3 attempts"));
  EXPECT_EQ(consumer->Take(absl::Milliseconds(50)), nullptr);
}

TEST(Dispatcher, EarlyReplyEndsTheDeliveryAtOnce) {
  Dispatcher dispatcher(ShortTimeouts());
  auto consumer = std::make_shared<QueueConsumer>();
  dispatcher.Register(consumer, Prefixes({}));
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(FieldUpload("/a"), outcome.Callback());
  std::unique_ptr<Delivery> delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  ASSERT_TRUE(NextEventBlocking(*delivery).ok());  // RequestStarted only
  ConsumerReply unsupported;
  unsupported.status = 415;
  delivery->Reply(unsupported);
  ASSERT_TRUE(outcome.Wait());
  EXPECT_EQ(outcome.reply().status, 415);
  EXPECT_FALSE(NextEventBlocking(*delivery).ok());  // nothing more after a reply
  // The consumer is free again at once.
  Outcome next;
  UploadHandle second = dispatcher.Submit(FieldUpload("/b"), next.Callback());
  EXPECT_NE(consumer->Take(), nullptr);
}

TEST(Dispatcher, InvalidReplyStatusBecomes502) {
  Dispatcher dispatcher(ShortTimeouts());
  auto consumer = std::make_shared<QueueConsumer>();
  dispatcher.Register(consumer, Prefixes({}));
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(FieldUpload("/a"), outcome.Callback());
  ConsumerReply bogus;
  bogus.status = 99;
  consumer->Take()->Reply(bogus);
  ASSERT_TRUE(outcome.Wait());
  EXPECT_EQ(outcome.reply().status, 502);
}

TEST(Dispatcher, CancelledUploadLeavesTheQueueAndAbortsItsDelivery) {
  Dispatcher dispatcher(ShortTimeouts());
  auto consumer = std::make_shared<QueueConsumer>();
  Outcome waiting;
  {
    UploadHandle handle = dispatcher.Submit(FieldUpload("/a"), waiting.Callback());
  }  // the uploader went away while it waited
  dispatcher.Register(consumer, Prefixes({}));
  EXPECT_EQ(consumer->Take(absl::Milliseconds(50)), nullptr);

  Outcome delivered;
  UploadHandle handle = dispatcher.Submit(FieldUpload("/b"), delivered.Callback());
  std::unique_ptr<Delivery> delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  handle.Cancel("client closed");
  EXPECT_THAT(Drain(*delivery), ElementsAre("aborted client closed"));
  absl::SleepFor(absl::Milliseconds(300));  // past both timeouts
  EXPECT_FALSE(waiting.HasReply());
  EXPECT_FALSE(delivered.HasReply());
}

TEST(Dispatcher, UploadIdsAreUnique128BitHex) {
  Dispatcher dispatcher(ShortTimeouts());
  std::set<std::string> ids;
  std::vector<UploadHandle> handles;
  for (int i = 0; i < 100; ++i) {
    handles.push_back(dispatcher.Submit(FieldUpload("/a"), [](ConsumerReply) {}));
    const std::string& id = handles.back().upload_id();
    EXPECT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 100u);
}

TEST(Dispatcher, UnregisteredConsumerGetsNoMoreUploads) {
  Dispatcher dispatcher(ShortTimeouts());
  auto consumer = std::make_shared<QueueConsumer>();
  Dispatcher::ConsumerId id = dispatcher.Register(consumer, Prefixes({}));
  dispatcher.Unregister(id);
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(FieldUpload("/a"), outcome.Callback());
  ASSERT_TRUE(outcome.Wait());
  EXPECT_EQ(outcome.reply().status, 503);
  EXPECT_EQ(consumer->started(), 0);
}

TEST(Dispatcher, ManyConcurrentUploadsAreEachAnsweredOnce) {
  DispatchSettings settings;  // default timeouts: this is not about them
  settings.chunk_size = 1024;
  Dispatcher dispatcher(settings);
  std::vector<std::shared_ptr<QueueConsumer>> consumers;
  std::vector<std::thread> workers;
  std::atomic<bool> stop{false};
  for (int i = 0; i < 4; ++i) {
    consumers.push_back(std::make_shared<QueueConsumer>());
    dispatcher.Register(consumers.back(), Prefixes({}));
    workers.emplace_back([&stop, consumer = consumers.back()] {
      while (!stop) {
        std::unique_ptr<Delivery> delivery = consumer->Take(absl::Milliseconds(20));
        if (delivery == nullptr) continue;
        Drain(*delivery);
        delivery->Reply(Created(std::string(delivery->upload_id())));
      }
    });
  }
  constexpr int kUploads = 200;
  std::vector<std::unique_ptr<Outcome>> outcomes;
  std::vector<UploadHandle> handles;
  for (int i = 0; i < kUploads; ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    handles.push_back(dispatcher.Submit(FieldUpload("/a"), outcomes.back()->Callback()));
  }
  for (int i = 0; i < kUploads; ++i) {
    ASSERT_TRUE(outcomes[i]->Wait()) << i;
    EXPECT_EQ(outcomes[i]->reply().status, 201);
    EXPECT_EQ(outcomes[i]->reply().body, handles[i].upload_id());
  }
  stop = true;
  for (auto& worker : workers) worker.join();
}

// ---- BufferedUploadSource ----

class BufferedUploadSourceTest : public ::testing::Test {
 protected:
  BufferedUploadSourceTest() : temp_dir_(*TempDirectory::Open(dir_.path())) {}

  std::unique_ptr<UploadedFile> File(std::string name, std::string_view data,
                                     uint64_t memory_limit) {
    UploadedFileOptions options;
    options.max_memory_size = memory_limit;
    options.temp_dir = &temp_dir_;
    auto file = std::make_unique<UploadedFile>(name, name + ".bin", "x/y", options);
    EXPECT_TRUE(file->Append(data).ok());
    EXPECT_TRUE(file->Finish().ok());
    return file;
  }

  ScopedTestDir dir_;
  TempDirectory temp_dir_;
};

TEST_F(BufferedUploadSourceTest, FilesComeInChunksWithOffsetsAndChecksums) {
  const std::string small = TestBytes(100);
  const std::string big = TestBytes(2500, 3);
  BufferedUpload upload;
  upload.request.path = "/p";
  upload.fields.push_back({"a", "1"});
  upload.files.push_back(File("s", small, 1000));
  upload.files.push_back(File("b", big, 1000));
  upload.order = {{false, 0}, {true, 0}, {true, 1}};
  upload.total_bytes = 9999;
  BufferedUploadSource source(std::move(upload));
  EXPECT_EQ(source.mode(), UploadMode::kSpill);

  std::unique_ptr<EventCursor> cursor = source.OpenCursor({.chunk_size = 1024, .paths_only = false});
  std::vector<std::string> log;
  std::string bytes;
  for (;;) {
    absl::StatusOr<UploadEvent> event;
    cursor->Next([&](absl::StatusOr<UploadEvent> e) { event = std::move(e); });
    ASSERT_TRUE(event.ok()) << event.status();
    log.push_back(testing::Describe(*event, &bytes));
    if (IsLastEvent(*event)) break;
  }
  EXPECT_THAT(log, ElementsAre("field a=1", "file s s.bin x/y size=100 memory",
                               "chunk 0 +100", "finished-file 100 " + Sha256Hex(small),
                               "file b b.bin x/y size=2500 spill", "chunk 0 +1024",
                               "chunk 1024 +1024", "chunk 2048 +452",
                               "finished-file 2500 " + Sha256Hex(big), "finished 9999"));
  EXPECT_EQ(bytes, small + big);
}

TEST_F(BufferedUploadSourceTest, PathsOnlyConsumerGetsNoChunksForSpilledFiles) {
  BufferedUpload upload;
  upload.files.push_back(File("s", "tiny", 1000));
  upload.files.push_back(File("b", TestBytes(2000), 1000));
  upload.order = {{true, 0}, {true, 1}};
  BufferedUploadSource source(std::move(upload));
  std::unique_ptr<EventCursor> cursor =
      source.OpenCursor({.chunk_size = 1024, .paths_only = true});
  std::vector<std::string> log;
  for (;;) {
    absl::StatusOr<UploadEvent> event;
    cursor->Next([&](absl::StatusOr<UploadEvent> e) { event = std::move(e); });
    ASSERT_TRUE(event.ok());
    if (auto* file = std::get_if<FileStartedEvent>(&*event); file && file->path_only) {
      EXPECT_EQ(file->path.substr(0, dir_.path().size()), dir_.path());
    }
    log.push_back(testing::Describe(*event));
    if (IsLastEvent(*event)) break;
  }
  EXPECT_THAT(log, ElementsAre("file s s.bin x/y size=4 memory", "chunk 0 +4",
                               HasSubstr("finished-file 4"),
                               "file b b.bin x/y size=2000 spill path-only",
                               HasSubstr("finished-file 2000"), "finished 0"));
}

// ---- StreamUploadSource ----

class CountingFlow final : public StreamFlow {
 public:
  void Pause() override { ++pauses; }
  void Resume() override { ++resumes; }
  std::atomic<int> pauses{0};
  std::atomic<int> resumes{0};
};

std::shared_ptr<StreamUploadSource> RawStream(StreamFlow* flow, size_t chunk_size) {
  RequestInfo request;
  request.path = "/s";
  StreamUploadOptions options;
  options.chunk_size = chunk_size;
  return *StreamUploadSource::Create(request, options, flow);
}

TEST(StreamUploadSource, PausesAtHighWatermarkOnceAndResumesAtLowWatermark) {
  CountingFlow flow;
  auto source = RawStream(&flow, 100);
  std::unique_ptr<EventCursor> cursor = source->OpenCursor({});
  ASSERT_EQ(flow.pauses, 1);  // held until the consumer came (next test)
  ASSERT_EQ(flow.resumes, 1);
  // 400 bytes of chunks (the high watermark) plus the FileStarted event's bytes.
  ASSERT_TRUE(source->Feed(TestBytes(399)).ok());
  EXPECT_EQ(flow.pauses, 1);
  ASSERT_TRUE(source->Feed(TestBytes(301)).ok());  // 7 chunks queued
  EXPECT_EQ(flow.pauses, 2);                        // once, not per chunk
  auto take = [&] {
    std::string line;
    cursor->Next([&](absl::StatusOr<UploadEvent> e) { line = testing::Describe(*e); });
    return line;
  };
  EXPECT_EQ(take(), "file    size=? stream");
  for (int i = 0; i < 4; ++i) take();  // 3 chunks left: above the low watermark (200)
  EXPECT_EQ(flow.resumes, 1);
  EXPECT_EQ(take(), "chunk 400 +100");  // 2 left: at it
  EXPECT_EQ(flow.resumes, 2);
  EXPECT_LE(source->queued_bytes(), source->low_watermark());
}

TEST(StreamUploadSource, BodyIsHeldUntilAConsumerHasTheUpload) {
  // DESIGN.md §3: paused from creation; the consumer opening its cursor resumes it,
  // unless what arrived meanwhile is above the low watermark: then its draining does.
  for (size_t early_bytes : {0, 150, 450}) {
    SCOPED_TRACE(early_bytes);
    CountingFlow flow;
    auto source = RawStream(&flow, 100);
    EXPECT_EQ(flow.pauses, 1);
    if (early_bytes > 0) {
      ASSERT_TRUE(source->Feed(TestBytes(early_bytes)).ok());
    }
    EXPECT_EQ(flow.pauses, 1);  // already held: not asked again
    EXPECT_EQ(flow.resumes, 0);
    std::unique_ptr<EventCursor> cursor = source->OpenCursor({});
    const bool room = source->queued_bytes() <= source->low_watermark();
    EXPECT_EQ(flow.resumes, room ? 1 : 0);
    std::string bytes;
    for (int i = 0; i < 10 && flow.resumes == 0; ++i) {
      cursor->Next([&](absl::StatusOr<UploadEvent> e) { testing::Describe(*e, &bytes); });
    }
    EXPECT_EQ(flow.resumes, 1);
    EXPECT_LE(source->queued_bytes(), source->low_watermark());
  }
}

TEST(StreamUploadSource, RecyclesChunkBuffersTheConsumerIsDoneWith) {
  auto source = RawStream(nullptr, 100);
  std::unique_ptr<EventCursor> cursor = source->OpenCursor({});
  const std::string body = TestBytes(100 * 50 + 30);
  std::set<const char*> buffers;
  std::string received;
  auto take = [&] {
    absl::StatusOr<UploadEvent> event;
    cursor->Next([&](absl::StatusOr<UploadEvent> e) { event = std::move(e); });
    ASSERT_TRUE(event.ok());
    if (auto* file = std::get_if<FileStartedEvent>(&*event)) {
      EXPECT_EQ(file->checksum_kind, ChecksumKind::kSha256);  // told up front
    }
    if (auto* chunk = std::get_if<ChunkEvent>(&*event)) {
      EXPECT_EQ(chunk->offset, received.size());
      received.append(chunk->data);
      buffers.insert(chunk->data.data());
    }
  };
  // After each chunk the consumer moves on, the test allocates a block of the same
  // size and keeps it: a chunk buffer that was freed rather than recycled would be
  // handed to the test, and the producer's next chunk would get a new address.
  std::vector<std::string> blockers;
  std::string_view rest = body;
  ASSERT_TRUE(source->Feed("").ok());  // FileStarted queued
  take();
  while (!rest.empty()) {
    const size_t n = std::min<size_t>(rest.size(), 70);
    ASSERT_TRUE(source->Feed(rest.substr(0, n)).ok());
    rest.remove_prefix(n);
    while (source->queued_bytes() > 0) {
      take();
      blockers.emplace_back().reserve(100);
    }
  }
  ASSERT_TRUE(source->Finish().ok());
  for (int i = 0; i < 3; ++i) take();  // the last chunk, FileFinished, RequestFinished
  EXPECT_TRUE(received == body);
  // 51 chunks out of a handful of buffers, not one allocation each.
  EXPECT_LE(buffers.size(), source->high_watermark() / 100 + 2);
}

TEST(StreamUploadSource, BytesReadIntoFeedSpaceBecomeChunksWhereTheyLie) {
  auto source = RawStream(nullptr, 100);
  std::unique_ptr<EventCursor> cursor = source->OpenCursor({});
  EXPECT_TRUE(source->FeedSpace().empty());  // until the body has begun
  const std::string body = TestBytes(460);
  std::string_view rest = body;
  auto feed_copied = [&](size_t n) {
    ASSERT_TRUE(source->Feed(rest.substr(0, n)).ok());
    rest.remove_prefix(n);
  };
  std::set<const char*> read_into;  // where in-place reads began
  auto feed_in_place = [&](size_t n) {
    std::span<char> space = source->FeedSpace();
    ASSERT_GE(space.size(), n);
    std::memcpy(space.data(), rest.data(), n);  // as read() would
    read_into.insert(space.data());
    ASSERT_TRUE(source->Feed(std::string_view(space.data(), n)).ok());
    rest.remove_prefix(n);
  };
  feed_copied(3);
  EXPECT_EQ(source->FeedSpace().size(), 97u);  // the rest of the first chunk
  feed_in_place(40);
  feed_in_place(57);   // fills the chunk: it goes out
  feed_copied(150);    // copied across a chunk boundary
  feed_in_place(50);   // the rest of that chunk
  feed_in_place(100);  // a whole chunk read in place
  feed_copied(60);
  ASSERT_TRUE(rest.empty());
  ASSERT_TRUE(source->Finish().ok());

  std::string received;
  std::vector<std::string> log;
  std::set<const char*> chunk_starts;
  for (;;) {
    absl::StatusOr<UploadEvent> event;
    cursor->Next([&](absl::StatusOr<UploadEvent> e) { event = std::move(e); });
    ASSERT_TRUE(event.ok());
    if (auto* chunk = std::get_if<ChunkEvent>(&*event)) {
      received.append(chunk->data);
      chunk_starts.insert(chunk->data.data());
    }
    log.push_back(testing::Describe(*event));
    if (IsLastEvent(*event)) break;
  }
  EXPECT_TRUE(received == body);
  EXPECT_THAT(log, ElementsAre("file    size=? stream", "chunk 0 +100", "chunk 100 +100",
                               "chunk 200 +100", "chunk 300 +100", "chunk 400 +60",
                               "finished-file 460 " + Sha256Hex(body), "finished 460"));
  // The whole chunk read in place went out from where it was read, not a copy.
  EXPECT_EQ(read_into.size(), 4u);
  EXPECT_EQ(std::count_if(read_into.begin(), read_into.end(),
                          [&](const char* p) { return chunk_starts.count(p) > 0; }),
            1);
}

TEST(StreamUploadSource, MultipartBodyIsNeverReadInPlace) {
  RequestInfo request;
  request.path = "/s";
  request.content_type = "multipart/form-data; boundary=xyz";
  auto source = *StreamUploadSource::Create(request, StreamUploadOptions{}, nullptr);
  std::unique_ptr<EventCursor> cursor = source->OpenCursor({});
  ASSERT_TRUE(source->Feed("--xyz\r\ncontent-disposition: form-data; name=\"f\"; "
                           "filename=\"a\"\r\n\r\nsome bytes").ok());
  // Its parser holds back what may be a boundary: bytes must come through Feed().
  EXPECT_TRUE(source->FeedSpace().empty());
}

TEST(StreamUploadSource, ConsumerWaitingForBytesIsHandedThemByTheProducer) {
  auto source = RawStream(nullptr, 100);
  std::unique_ptr<EventCursor> cursor = source->OpenCursor({});
  ASSERT_TRUE(source->Feed("").ok());  // FileStarted queued
  std::vector<std::string> log;
  auto record = [&](absl::StatusOr<UploadEvent> e) { log.push_back(testing::Describe(*e)); };
  cursor->Next(record);
  cursor->Next(record);  // nothing queued: waits
  EXPECT_THAT(log, ElementsAre("file    size=? stream"));
  ASSERT_TRUE(source->Feed(TestBytes(100)).ok());  // the producer runs the callback
  EXPECT_THAT(log, ElementsAre("file    size=? stream", "chunk 0 +100"));
  cursor->Next(record);
  source->Abort("client closed");  // wakes the waiting consumer
  EXPECT_THAT(log.back(), "aborted client closed");
}

TEST(StreamUploadSource, ReleasedDeliveryWithPendingNextGetsNoCallbackAndUploadIs502) {
  Dispatcher dispatcher(ShortTimeouts());
  auto consumer = std::make_shared<QueueConsumer>();
  dispatcher.Register(consumer, Prefixes({}));
  auto source = RawStream(nullptr, 100);
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(source, outcome.Callback());
  std::unique_ptr<Delivery> delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  ASSERT_TRUE(NextEventBlocking(*delivery).ok());  // RequestStarted
  bool called = false;
  delivery->Next([&](absl::StatusOr<UploadEvent>) { called = true; });  // waits
  delivery.reset();
  EXPECT_FALSE(called);
  ASSERT_TRUE(outcome.Wait());
  EXPECT_EQ(outcome.reply().status, 502);  // a stream cannot be replayed
  ASSERT_TRUE(source->Feed(TestBytes(300)).ok());  // dropped, no crash
  EXPECT_FALSE(called);
}

TEST(StreamUploadSource, ProducerErrorIsAnsweredByTheProducerNotByA502) {
  // A Feed() error (here a file over FILE_UPLOAD_MAX_SIZE) is the producer's to
  // answer (413, RESOURCE_EXHAUSTED). Nothing may reach the consumer before the
  // producer cancels the upload: a consumer that sees RequestAborted lets the
  // delivery go, and the dispatcher's 502 for that would race the producer's answer
  // (a gRPC Upload call lost that race about once in 60).
  Dispatcher dispatcher(ShortTimeouts());
  auto consumer = std::make_shared<QueueConsumer>();
  dispatcher.Register(consumer, Prefixes({}));
  RequestInfo request;
  request.path = "/s";
  StreamUploadOptions options;
  options.chunk_size = 100;
  options.max_file_size = 150;
  std::shared_ptr<StreamUploadSource> source =
      *StreamUploadSource::Create(request, options, nullptr);
  Outcome outcome;
  UploadHandle handle = dispatcher.Submit(source, outcome.Callback());
  std::unique_ptr<Delivery> delivery = consumer->Take();
  ASSERT_NE(delivery, nullptr);
  ASSERT_TRUE(NextEventBlocking(*delivery).ok());  // RequestStarted
  ASSERT_TRUE(source->Feed(TestBytes(100)).ok());
  ASSERT_TRUE(NextEventBlocking(*delivery).ok());  // FileStarted
  ASSERT_TRUE(NextEventBlocking(*delivery).ok());  // the first chunk
  std::vector<std::string> seen;
  // Like ConsumeReactor: RequestAborted means the upload is over; let it go.
  delivery->Next([&](absl::StatusOr<UploadEvent> event) {
    seen.push_back(event.ok() ? testing::Describe(*event) : event.status().ToString());
    delivery.reset();
  });
  EXPECT_EQ(source->Feed(TestBytes(100)).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(seen, ElementsAre());
  EXPECT_FALSE(outcome.HasReply());
  handle.Cancel("file too large");  // what the producer does with its error
  EXPECT_THAT(seen, ElementsAre("aborted file too large"));
  EXPECT_FALSE(outcome.HasReply());  // the producer answered, not the dispatcher
}

}  // namespace
}  // namespace spillway
