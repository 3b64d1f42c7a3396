// The front end's timeouts (DESIGN.md §4) on the sessions alone: a fake connection,
// a real EventLoop (its timers), short timeouts and generous waits. Each test runs
// the loop once (a stopped EventLoop cannot run again): it schedules what the client
// does, then runs until the expected effect or a deadline.
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/http/concurrency_limited_handler.h"
#include "server/http/http1_session.h"
#include "server/http/http2_session.h"
#include "server/net/event_loop.h"
#include "server/net/wakeup_timer.h"
#include "tests/unit/h2_raw_frames.h"

namespace spillway {
namespace {

using ::spillway::testing::H2ClientStart;
using ::spillway::testing::H2Frame;
using ::spillway::testing::H2ParseFrames;
using ::spillway::testing::H2RequestBlock;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::Duration kShort = absl::Milliseconds(60);
// Long enough for several kShort timeouts to have fired on a busy machine.
constexpr absl::Duration kQuiet = absl::Milliseconds(400);

class FakeIo final : public ConnectionIo {
 public:
  explicit FakeIo(EventLoop* loop) : loop_(loop) {}
  void Write(std::string_view bytes) override { written.append(bytes); }
  bool write_blocked() const override { return false; }
  void PauseReading() override { ++pauses; }
  void ResumeReading() override { --pauses; }
  void CloseAfterWrite() override { closed = true; }
  void CloseNow() override { closed = true; }
  void ReplaceSession(std::unique_ptr<ProtocolSession>) override {}
  EventLoop* loop() override { return loop_; }
  const std::string& remote_address() const override { return remote_; }

  // Offers bytes like Connection does: kept while reading is paused.
  void Feed(ProtocolSession* session, std::string_view bytes) {
    pending_.append(bytes);
    while (!pending_.empty() && pauses == 0 && !closed) {
      absl::StatusOr<size_t> n = session->OnRead(pending_);
      ASSERT_TRUE(n.ok()) << n.status();
      if (*n == 0) break;
      pending_.erase(0, *n);
    }
  }

  std::string written;
  int pauses = 0;
  bool closed = false;

 private:
  EventLoop* const loop_;
  const std::string remote_ = "127.0.0.1:1";
  std::string pending_;
};

// Records each request; responds 200 at the body's end unless told otherwise.
struct Request {
  Responder* responder = nullptr;
  std::string body;
  bool ended = false;
  bool closed = false;
};
class TestExchange final : public Exchange {
 public:
  TestExchange(Request* request, bool respond_at_end)
      : request_(request), respond_at_end_(respond_at_end) {}
  absl::Status OnBodyData(std::string_view data) override {
    request_->body.append(data);
    request_->responder->ConsumeBody(data.size());
    return absl::OkStatus();
  }
  void OnBodyEnd() override {
    request_->ended = true;
    if (respond_at_end_) request_->responder->Respond(HttpResponse{200, {}, "done"});
  }
  void OnStreamClosed() override { request_->closed = true; }

 private:
  Request* const request_;
  const bool respond_at_end_;
};
class TestHandler final : public RequestHandler {
 public:
  std::shared_ptr<Exchange> Start(RequestHead, Responder* responder,
                                  EventLoop*) override {
    requests.push_back(std::make_unique<Request>());
    requests.back()->responder = responder;
    if (pause_body) responder->PauseBody();
    return std::make_shared<TestExchange>(requests.back().get(), respond_at_end);
  }
  bool pause_body = false;
  bool respond_at_end = true;
  std::vector<std::unique_ptr<Request>> requests;
};

class LoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    io_ = std::make_unique<FakeIo>(loop_.get());
  }
  // Runs `action` on the loop after `delay`.
  void At(absl::Duration delay, absl::AnyInvocable<void() &&> action) {
    loop_->AddTimer(delay, std::move(action));
  }
  // Runs the loop until `done()` holds (checked every few ms) or `limit` passes.
  void RunUntil(std::function<bool()> done, absl::Duration limit = absl::Seconds(5)) {
    const absl::Time give_up = absl::Now() + limit;
    std::function<void()> check = [&] {
      if (done() || absl::Now() >= give_up) {
        loop_->Stop();
        return;
      }
      loop_->AddTimer(absl::Milliseconds(5), [&check] { check(); });
    };
    loop_->Post([&check] { check(); });
    loop_->Run();
  }
  void RunFor(absl::Duration duration) {
    RunUntil([] { return false; }, duration);
  }

  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<FakeIo> io_;
  TestHandler handler_;
};

// --- WakeupTimer ---------------------------------------------------------------------

TEST_F(LoopTest, WakeupTimerKeepsTheEarliestWakeup) {
  std::vector<absl::Duration> woke;
  const absl::Time start = absl::Now();
  WakeupTimer timer(loop_.get(), [&] { woke.push_back(absl::Now() - start); });
  timer.WakeBy(loop_->now() + absl::Milliseconds(300));
  timer.WakeBy(loop_->now() + absl::Milliseconds(30));   // earlier: re-armed
  timer.WakeBy(loop_->now() + absl::Milliseconds(200));  // later: ignored
  RunFor(absl::Milliseconds(500));
  ASSERT_EQ(woke.size(), 1u);
  EXPECT_LT(woke[0], absl::Milliseconds(200));
}

// --- HTTP/1.1 ------------------------------------------------------------------------

class Http1TimeoutTest : public LoopTest {
 protected:
  void StartSession(Http1Options options) {
    session_ = std::make_unique<Http1Session>(io_.get(), &handler_, options);
  }
  void Feed(std::string_view bytes) { io_->Feed(session_.get(), bytes); }
  std::unique_ptr<Http1Session> session_;
};

TEST_F(Http1TimeoutTest, IncompleteHeaderGets408AndClose) {
  StartSession({.header_timeout = kShort});
  Feed("GET /healthz HT");
  RunUntil([&] { return io_->closed; });
  EXPECT_TRUE(io_->closed);
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 408 "));
  EXPECT_THAT(io_->written, HasSubstr("connection: close"));
  EXPECT_THAT(handler_.requests, IsEmpty());
}

TEST_F(Http1TimeoutTest, StalledBodyGets408AndItsExchangeIsClosed) {
  StartSession({.body_timeout = kShort});
  Feed("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
  RunUntil([&] { return io_->closed; });
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 408 "));
  ASSERT_EQ(handler_.requests.size(), 1u);
  EXPECT_TRUE(handler_.requests[0]->closed);
  EXPECT_FALSE(handler_.requests[0]->ended);
}

TEST_F(Http1TimeoutTest, BodyPausedByItsExchangeNeverTimesOut) {
  handler_.pause_body = true;
  StartSession({.header_timeout = kShort, .idle_timeout = kShort, .body_timeout = kShort});
  Feed("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
  RunFor(kQuiet);
  EXPECT_FALSE(io_->closed);
  EXPECT_THAT(io_->written, IsEmpty());
}

TEST_F(Http1TimeoutTest, BodyClockRestartsWithEveryByte) {
  // Ten bytes 40 ms apart: 400 ms in all, never 200 ms without one.
  StartSession({.body_timeout = absl::Milliseconds(200)});
  Feed("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n");
  for (int i = 1; i <= 10; ++i) {
    At(absl::Milliseconds(40) * i, [this] { Feed("x"); });
  }
  RunUntil([&] { return !io_->written.empty(); });
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 200 "));
  ASSERT_EQ(handler_.requests.size(), 1u);
  EXPECT_EQ(handler_.requests[0]->body, "xxxxxxxxxx");
}

TEST_F(Http1TimeoutTest, KeepAliveConnectionClosesWhenIdle) {
  StartSession({.header_timeout = absl::Seconds(30), .idle_timeout = kShort});
  Feed("GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
  RunUntil([&] { return io_->closed; });
  EXPECT_TRUE(io_->closed);
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 200 "));
  EXPECT_THAT(io_->written, Not(HasSubstr("408")));
}

TEST_F(Http1TimeoutTest, RequestWaitingForItsHandlerIsNotIdle) {
  handler_.respond_at_end = false;
  StartSession({.header_timeout = kShort, .idle_timeout = kShort, .body_timeout = kShort});
  Feed("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
  RunFor(kQuiet);
  EXPECT_FALSE(io_->closed);
  EXPECT_THAT(io_->written, IsEmpty());
}

// --- HTTP/2 --------------------------------------------------------------------------

class Http2TimeoutTest : public LoopTest {
 protected:
  void StartSession(Http2Options options) {
    auto session = Http2Session::Create(io_.get(), &handler_, options);
    ASSERT_TRUE(session.ok()) << session.status();
    session_ = std::move(*session);
    Feed(H2ClientStart());
  }
  void Feed(std::string_view bytes) { io_->Feed(session_.get(), bytes); }
  bool HasFrame(uint8_t type, uint32_t stream_id) const {
    for (const auto& frame : H2ParseFrames(io_->written)) {
      if (frame.type == type && frame.stream_id == stream_id) return true;
    }
    return false;
  }
  std::unique_ptr<Http2Session> session_;
};

TEST_F(Http2TimeoutTest, ConnectionWithoutStreamsGetsGoawayWhenIdle) {
  StartSession({.idle_timeout = kShort});
  RunUntil([&] { return io_->closed; });
  EXPECT_TRUE(io_->closed);
  bool goaway_no_error = false;
  for (const auto& frame : H2ParseFrames(io_->written)) {
    if (frame.type == testing::kH2Goaway) goaway_no_error = frame.ErrorCode() == 0;
  }
  EXPECT_TRUE(goaway_no_error);
}

TEST_F(Http2TimeoutTest, StalledStreamGets408ThenReset) {
  StartSession({.idle_timeout = absl::Seconds(30), .body_timeout = kShort});
  Feed(H2Frame(testing::kH2Headers, testing::kH2EndHeaders, 1,
               H2RequestBlock("POST", "/up", "10")));
  Feed(H2Frame(testing::kH2Data, 0, 1, "abc"));
  RunUntil([&] { return HasFrame(testing::kH2RstStream, 1); });
  EXPECT_TRUE(HasFrame(testing::kH2Headers, 1));
  EXPECT_THAT(io_->written, HasSubstr("request body timeout"));
  EXPECT_TRUE(HasFrame(testing::kH2RstStream, 1));
  ASSERT_EQ(handler_.requests.size(), 1u);
  EXPECT_TRUE(handler_.requests[0]->closed);
  EXPECT_FALSE(io_->closed);  // only the stream ends
}

TEST_F(Http2TimeoutTest, PausedStreamNeverTimesOut) {
  handler_.pause_body = true;
  StartSession({.header_timeout = kShort, .idle_timeout = kShort, .body_timeout = kShort});
  Feed(H2Frame(testing::kH2Headers, testing::kH2EndHeaders, 1,
               H2RequestBlock("POST", "/up", "10")));
  Feed(H2Frame(testing::kH2Data, 0, 1, "abc"));
  const size_t before = io_->written.size();
  RunFor(kQuiet);
  EXPECT_FALSE(io_->closed);
  EXPECT_EQ(io_->written.size(), before) << "nothing sent while the stream is paused";
}

TEST_F(Http2TimeoutTest, UnfinishedHeaderBlockEndsTheConnection) {
  StartSession({.header_timeout = kShort, .idle_timeout = absl::Seconds(30)});
  Feed(H2Frame(testing::kH2Headers, 0, 1, H2RequestBlock("GET", "/")));  // no END_HEADERS
  RunUntil([&] { return io_->closed; });
  EXPECT_TRUE(io_->closed);
  EXPECT_TRUE(HasFrame(testing::kH2Goaway, 0));
}

// --- MAX_CONCURRENT_UPLOADS ----------------------------------------------------------

class RecordingResponder final : public Responder {
 public:
  void Respond(HttpResponse response) override { responses.push_back(std::move(response)); }
  void PauseBody() override {}
  void ResumeBody() override {}
  void ConsumeBody(size_t) override {}
  std::vector<HttpResponse> responses;
};

TEST(ConcurrencyLimitedHandler, RefusesBeyondTheLimitUntilAStreamCloses) {
  TestHandler inner;
  inner.respond_at_end = false;
  MetricsRegistry metrics;
  UploadSlots slots(2, &metrics);
  ConcurrencyLimitedHandler limited(&inner, &slots);
  RecordingResponder first, second, third, fourth;
  auto a = limited.Start(RequestHead{}, &first, nullptr);
  auto b = limited.Start(RequestHead{}, &second, nullptr);
  auto c = limited.Start(RequestHead{}, &third, nullptr);
  ASSERT_EQ(third.responses.size(), 1u);
  EXPECT_EQ(third.responses[0].status, 503);
  EXPECT_THAT(third.responses[0].headers,
              ::testing::Contains(std::make_pair(std::string("retry-after"), std::string("1"))));
  EXPECT_EQ(inner.requests.size(), 2u) << "the refused request never reached the handler";
  c->OnStreamClosed();
  a->OnStreamClosed();  // frees a slot
  auto d = limited.Start(RequestHead{}, &fourth, nullptr);
  EXPECT_THAT(fourth.responses, IsEmpty());
  EXPECT_EQ(inner.requests.size(), 3u);
  EXPECT_EQ(slots.in_flight(), 2);
  b->OnStreamClosed();
  d.reset();  // torn down without a close: the slot still comes back
  EXPECT_EQ(slots.in_flight(), 0);
  EXPECT_THAT(metrics.Render(),
              ::testing::HasSubstr("spillway_uploads_rejected_total 1\n"));
}

}  // namespace
}  // namespace spillway
