// Drives Http1Session through a fake ConnectionIo (the session never touches a
// socket), with a real EventLoop for the flushes it posts.
#include "server/http/http1_session.h"

#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/net/event_loop.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Records what the session asks of its connection, and feeds it like Connection
// does: unconsumed bytes are kept and offered again while reading is not paused.
class FakeConnectionIo final : public ConnectionIo {
 public:
  explicit FakeConnectionIo(EventLoop* loop) : loop_(loop) {}

  void Write(std::string_view bytes) override { written.append(bytes); }
  bool write_blocked() const override { return false; }
  void PauseReading() override { ++pauses; }
  void ResumeReading() override { --pauses; }
  void CloseAfterWrite() override { close_after_write = true; }
  void CloseNow() override { closed_now = true; }
  void ReplaceSession(std::unique_ptr<ProtocolSession> next) override {
    replacement = std::move(next);
  }
  EventLoop* loop() override { return loop_; }
  const std::string& remote_address() const override { return remote_; }

  void Feed(ProtocolSession* session, std::string_view bytes) {
    pending_.append(bytes);
    while (!pending_.empty() && pauses == 0) {
      absl::StatusOr<size_t> consumed = session->OnRead(pending_);
      ASSERT_TRUE(consumed.ok()) << consumed.status();
      if (*consumed == 0) break;
      pending_.erase(0, *consumed);
    }
  }

  std::string written;
  int pauses = 0;
  bool close_after_write = false;
  bool closed_now = false;
  std::unique_ptr<ProtocolSession> replacement;

 private:
  EventLoop* const loop_;
  const std::string remote_ = "127.0.0.1:5555";
  std::string pending_;
};

struct Request {
  RequestHead head;
  std::string body;
  int data_calls = 0;
  bool ended = false;
  bool stream_closed = false;
  Responder* responder = nullptr;
  std::string room;        // offered as BodyBuffer(), past the body so far
  int in_place_calls = 0;  // OnBodyData calls whose bytes lay in `room`
  bool pause_on_data = false;  // PauseBody() in each OnBodyData, as a full stream does
};

enum class Mode {
  kRespondAtEnd,    // 200 with "path=<path> body=<body>" at OnBodyEnd
  kRespondInStart,  // `start_status` from Start()
  kDefer,           // the test responds through Request::responder
};

class RecordingExchange final : public Exchange {
 public:
  RecordingExchange(Request* request, Mode mode) : request_(request), mode_(mode) {}
  absl::Status OnBodyData(std::string_view data) override {
    if (!request_->room.empty() &&
        data.data() == request_->room.data() + request_->body.size()) {
      ++request_->in_place_calls;
    }
    request_->body.append(data);
    ++request_->data_calls;
    if (request_->pause_on_data) request_->responder->PauseBody();
    return absl::OkStatus();
  }
  void OnBodyEnd() override {
    request_->ended = true;
    if (mode_ == Mode::kRespondAtEnd) {
      HttpResponse response;
      response.body = "path=" + request_->head.path + " body=" + request_->body;
      request_->responder->Respond(std::move(response));
    }
  }
  void OnStreamClosed() override { request_->stream_closed = true; }
  std::span<char> BodyBuffer() override {
    if (request_->room.size() <= request_->body.size()) return {};
    return std::span<char>(request_->room).subspan(request_->body.size());
  }

 private:
  Request* const request_;
  const Mode mode_;
};

class RecordingHandler final : public RequestHandler {
 public:
  std::shared_ptr<Exchange> Start(RequestHead head, Responder* responder,
                                  EventLoop* loop) override {
    requests.push_back(std::make_unique<Request>());
    Request* request = requests.back().get();
    request->head = head;
    request->responder = responder;
    request->room.resize(room);
    if (mode == Mode::kRespondInStart) {
      responder->Respond(HttpResponse::Error(start_status, "refused"));
    }
    return std::make_shared<RecordingExchange>(request, mode);
  }

  Mode mode = Mode::kRespondAtEnd;
  int start_status = 413;
  size_t room = 0;  // bytes each exchange offers as its BodyBuffer()
  std::vector<std::unique_ptr<Request>> requests;
};

class Http1SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    Reset();
  }

  // A fresh connection and no requests seen (for tables of cases).
  void Reset() {
    session_.reset();
    handler_.requests.clear();
    io_ = std::make_unique<FakeConnectionIo>(loop_.get());
    Http1Options options;
    options.max_header_bytes = 16 * 1024;
    session_ = std::make_unique<Http1Session>(io_.get(), &handler_, options);
  }

  void Feed(std::string_view bytes) { io_->Feed(session_.get(), bytes); }
  void FeedBytewise(std::string_view bytes) {
    for (char c : bytes) Feed(std::string_view(&c, 1));
  }
  // Reads as a connection might deliver them: split in two at `split`, or a byte per
  // read when `split` is past the end. For tests that try every split.
  void FeedSplit(std::string_view bytes, size_t split) {
    if (split > bytes.size()) {
      FeedBytewise(bytes);
      return;
    }
    Feed(bytes.substr(0, split));
    Feed(bytes.substr(split));
  }
  // Runs the tasks posted so far (flushes of responses sent from "outside").
  void RunPostedTasks() {
    loop_->Post([this] { loop_->Stop(); });
    loop_->Run();
  }

  std::unique_ptr<EventLoop> loop_;
  RecordingHandler handler_;
  std::unique_ptr<FakeConnectionIo> io_;
  std::unique_ptr<Http1Session> session_;
};

TEST_F(Http1SessionTest, KeepAliveServesTwoRequestsOnOneConnection) {
  Feed("GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
  Feed("GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 2u);
  EXPECT_EQ(handler_.requests[0]->head.path, "/a");
  EXPECT_EQ(handler_.requests[0]->head.query, "x=1");
  EXPECT_EQ(handler_.requests[0]->head.protocol, "HTTP/1.1");
  EXPECT_EQ(handler_.requests[0]->head.remote_address, "127.0.0.1:5555");
  EXPECT_EQ(io_->written,
            "HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\npath=/a body="
            "HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\npath=/b body=");
  EXPECT_FALSE(io_->close_after_write);
  EXPECT_TRUE(handler_.requests[0]->stream_closed);
  EXPECT_TRUE(handler_.requests[1]->stream_closed);
}

TEST_F(Http1SessionTest, PipelinedResponsesKeepRequestOrder) {
  handler_.mode = Mode::kDefer;
  Feed("GET /first HTTP/1.1\r\nHost: h\r\n\r\nGET /second HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 2u);
  // The second request is answered first, from outside the session (a posted reply).
  HttpResponse second;
  second.status = 201;
  second.body = "second";
  handler_.requests[1]->responder->Respond(second);
  RunPostedTasks();
  EXPECT_EQ(io_->written, "") << "the second response must wait for the first";
  HttpResponse first;
  first.body = "first";
  handler_.requests[0]->responder->Respond(first);
  // The loop ran once already (Stop is sticky), so flush through the session.
  session_->OnWritable();
  EXPECT_EQ(io_->written,
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst"
            "HTTP/1.1 201 Created\r\ncontent-length: 6\r\n\r\nsecond");
}

TEST_F(Http1SessionTest, HeadResponseHasLengthButNoBody) {
  Feed("HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(io_->written, "HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n");
}

TEST_F(Http1SessionTest, ChunkedBodyIsDeliveredDecoded) {
  FeedBytewise(
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 1u);
  const Request& request = *handler_.requests[0];
  EXPECT_FALSE(request.head.content_length.has_value());
  EXPECT_EQ(request.body, "hello world");
  EXPECT_TRUE(request.ended);
  EXPECT_THAT(io_->written, HasSubstr("path=/c body=hello world"));
  EXPECT_FALSE(io_->close_after_write);
}

TEST_F(Http1SessionTest, ContentLengthBodyIsDelivered) {
  Feed("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: text/x\r\n\r\nab");
  ASSERT_EQ(handler_.requests.size(), 1u);
  EXPECT_EQ(handler_.requests[0]->head.content_length, 5u);
  EXPECT_EQ(handler_.requests[0]->head.content_type, "text/x");
  EXPECT_FALSE(handler_.requests[0]->ended);
  Feed("cde");
  EXPECT_EQ(handler_.requests[0]->body, "abcde");
  EXPECT_THAT(io_->written, HasSubstr("path=/p body=abcde"));
}

TEST_F(Http1SessionTest, UpgradeOfferedWithABodyIsServedOverHttp1) {
  // curl --http2 offers h2c on a POST too. The parser flags the upgrade from the
  // headers on, but only stops after the body: a body arriving in several reads must
  // not be parsed as a new request (that was HPE_INVALID_METHOD, 400).
  Feed("POST /p HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
       "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
       "Content-Length: 5\r\n\r\nab");
  ASSERT_EQ(handler_.requests.size(), 1u);
  Feed("cde");
  EXPECT_EQ(handler_.requests[0]->body, "abcde");
  EXPECT_TRUE(handler_.requests[0]->ended);
  EXPECT_THAT(io_->written, HasSubstr("path=/p body=abcde"));
  EXPECT_THAT(io_->written, Not(HasSubstr("400")));
  Feed("GET /q HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 2u);
  EXPECT_EQ(handler_.requests[1]->head.path, "/q");
}

TEST_F(Http1SessionTest, ExpectContinueGets100BeforeTheBody) {
  Feed("PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(io_->written, "HTTP/1.1 100 Continue\r\n\r\n");
  Feed("hello");
  EXPECT_EQ(io_->written,
            "HTTP/1.1 100 Continue\r\n\r\n"
            "HTTP/1.1 200 OK\r\ncontent-length: 18\r\n\r\npath=/e body=hello");
}

TEST_F(Http1SessionTest, ExpectContinueRefusedAtStartSendsOnlyTheFinalResponse) {
  handler_.mode = Mode::kRespondInStart;
  handler_.start_status = 413;
  Feed("PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 999999\r\n"
       "Expect: 100-continue\r\n\r\n");
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 413 Payload Too Large\r\n"));
  EXPECT_THAT(io_->written, Not(HasSubstr("100 Continue")));
  EXPECT_THAT(io_->written, HasSubstr("connection: close\r\n"));
  EXPECT_TRUE(io_->close_after_write);
}

TEST_F(Http1SessionTest, EarlyResponseStopsTheBodyAndCloses) {
  handler_.mode = Mode::kRespondInStart;
  handler_.start_status = 415;
  Feed("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\nsome body bytes");
  ASSERT_EQ(handler_.requests.size(), 1u);
  EXPECT_EQ(handler_.requests[0]->data_calls, 0);
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 415 "));
  EXPECT_THAT(io_->written, HasSubstr("connection: close\r\n"));
  EXPECT_TRUE(io_->close_after_write);
  EXPECT_GT(io_->pauses, 0) << "the rest of the body is not read";
  EXPECT_TRUE(handler_.requests[0]->stream_closed);
}

TEST_F(Http1SessionTest, ContentLengthWithTransferEncodingIs400AndCloses) {
  Feed("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_TRUE(handler_.requests.empty());
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(io_->written, HasSubstr("connection: close\r\n"));
  EXPECT_TRUE(io_->close_after_write);
}

TEST_F(Http1SessionTest, DifferingDuplicateContentLengthIs400) {
  Feed("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\n");
  EXPECT_TRUE(handler_.requests.empty());
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 400 "));
  EXPECT_TRUE(io_->close_after_write);
}

TEST_F(Http1SessionTest, TransferEncodingOtherThanChunkedIs400) {
  Feed("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n");
  EXPECT_TRUE(handler_.requests.empty());
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 400 "));
}

TEST_F(Http1SessionTest, WhitespaceBeforeColonIs400AndCloses) {
  // libhttp-parser (non-strict) takes "Transfer-Encoding :" as Transfer-Encoding and
  // frames a chunked body, while the head would carry a field named
  // "transfer-encoding " and no body: the smuggling checks never saw the header, and an
  // exchange told "no body" got one, even after it had responded. RFC 9112 §5.1: 400.
  Feed("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding :chunked\r\n\r\n"
       "5\r\nhello\r\n0\r\n\r\n");
  EXPECT_TRUE(handler_.requests.empty());
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 400 "));
  EXPECT_TRUE(io_->close_after_write);
}

TEST_F(Http1SessionTest, WhitespaceBeforeColonInContentLengthIs400) {
  Feed("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello");
  EXPECT_TRUE(handler_.requests.empty());
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 400 "));
  EXPECT_TRUE(io_->close_after_write);
}

// Head shapes another parser in front of us could read differently: each is refused
// with its reason, before any handler sees the request, and the connection closes.
TEST_F(Http1SessionTest, AmbiguousHeadsAreRefusedAndClose) {
  struct Case {
    const char* request;
    const char* status_line;
    const char* reason;
  };
  const Case cases[] = {
      // Two Transfer-Encoding lines are one list: "gzip, chunked" is not chunked.
      {"POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
       "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
       "HTTP/1.1 400 ", "a Transfer-Encoding other than chunked"},
      {"POST /s HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
       "HTTP/1.1 400 ", "Transfer-Encoding in an HTTP/1.0 request"},
      {"POST /s HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 400 ",
       "needs a Host header"},
      {"POST /s HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
       "HTTP/1.1 400 ", "Host given twice"},
      {"POST /s HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
       "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 0\r\n\r\n",
       "HTTP/1.1 400 ", "Content-Type given twice"},
      {"POST /a\tb HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 400 ",
       "control character in the request target"},
      {"POST /s HTTP/2.0\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 505 ",
       "HTTP version not supported"},
      // obs-fold: libhttp-parser joins the lines; a proxy may not (or may not frame a
      // body by a folded Transfer-Encoding).
      {"POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
       "5\r\nhello\r\n0\r\n\r\n",
       "HTTP/1.1 400 ", "obsolete line folding"},
      {"GET /s HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n", "HTTP/1.1 400 ",
       "obsolete line folding"},
      // A CR that libhttp-parser takes for CRLF: after an empty value (hiding the
      // Content-Length behind it from a proxy that keeps the CR in X-A), and for the
      // head's last CRLF.
      {"POST /s HTTP/1.1\r\nHost: h\r\nX-A:\rQContent-Length: 5\r\n\r\nhello",
       "HTTP/1.1 400 ", "CR without LF in the head"},
      {"POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\rXabc", "HTTP/1.1 400 ",
       "CR without LF in the head"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request);
    // Whole, a byte per read, and in two reads split at every point: the head scan
    // carries its state across reads.
    const std::string_view request = c.request;
    for (size_t split = 0; split <= request.size() + 1; ++split) {
      SCOPED_TRACE(split);
      Reset();
      FeedSplit(request, split);
      EXPECT_TRUE(handler_.requests.empty());
      EXPECT_THAT(io_->written, StartsWith(c.status_line));
      EXPECT_THAT(io_->written, HasSubstr(c.reason));
      EXPECT_TRUE(io_->close_after_write);
    }
  }
}

TEST_F(Http1SessionTest, WellFormedHeadsPassTheHeadScanWhateverTheReads) {
  // Tabs and spaces inside lines, a bare-LF line end (RFC 9112 §2.2 lets a recipient
  // take LF for CRLF), and a second request right behind the first.
  const std::string_view requests =
      "GET /a HTTP/1.1\r\nHost: h\r\nX-A: one\ttwo three\r\nX-B:\tv\n\r\n"
      "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t split = 0; split <= requests.size() + 1; ++split) {
    SCOPED_TRACE(split);
    Reset();
    FeedSplit(requests, split);
    ASSERT_EQ(handler_.requests.size(), 2u) << io_->written;
    EXPECT_EQ(handler_.requests[0]->head.Header("x-a"), "one\ttwo three");
    EXPECT_EQ(handler_.requests[1]->head.path, "/b");
  }
}

TEST_F(Http1SessionTest, Http10WithoutHostIsServed) {
  Feed("GET /s HTTP/1.0\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 1u);
  EXPECT_EQ(handler_.requests[0]->head.path, "/s");
}

TEST_F(Http1SessionTest, InvalidChunkSizeIs400AndEndsTheExchange) {
  Feed("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
       "3\r\nabc\r\nzz\r\nxx\r\n0\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 1u);
  EXPECT_EQ(handler_.requests[0]->body, "abc");
  EXPECT_FALSE(handler_.requests[0]->ended);
  EXPECT_TRUE(handler_.requests[0]->stream_closed);
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 400 "));
  EXPECT_TRUE(io_->close_after_write);
}

TEST_F(Http1SessionTest, MalformedRequestLineIs400) {
  Feed("GARBAGE\x01 / HTTP/1.1\r\n\r\n");
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 400 "));
  EXPECT_TRUE(io_->close_after_write);
}

TEST_F(Http1SessionTest, HeaderTooLargeIs431) {
  Feed("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(20 * 1024, 'a') +
       "\r\n\r\n");
  EXPECT_TRUE(handler_.requests.empty());
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  EXPECT_THAT(io_->written, HasSubstr("connection: close\r\n"));
  EXPECT_TRUE(io_->close_after_write);
}

TEST_F(Http1SessionTest, ResponsesBeforeAParseErrorStillGoOutInOrder) {
  handler_.mode = Mode::kDefer;
  Feed("GET /ok HTTP/1.1\r\nHost: h\r\n\r\nBROKEN\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 1u);
  EXPECT_EQ(io_->written, "");
  handler_.requests[0]->responder->Respond(HttpResponse{});
  RunPostedTasks();
  EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                                       "HTTP/1.1 400 "));
}

TEST_F(Http1SessionTest, ConnectionCloseRequestClosesAfterResponse) {
  Feed("GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 1u);
  EXPECT_THAT(io_->written, HasSubstr("connection: close\r\n"));
  EXPECT_TRUE(io_->close_after_write);
}

TEST_F(Http1SessionTest, Http10KeepAliveIsExplicit) {
  Feed("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_THAT(io_->written, HasSubstr("connection: keep-alive\r\n"));
  EXPECT_FALSE(io_->close_after_write);
  Feed("GET /b HTTP/1.0\r\n\r\n");
  EXPECT_THAT(io_->written, HasSubstr("connection: close\r\n"));
  EXPECT_TRUE(io_->close_after_write);
}

TEST_F(Http1SessionTest, ClosingTheConnectionClosesOpenExchanges) {
  handler_.mode = Mode::kDefer;
  Feed("POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
  ASSERT_EQ(handler_.requests.size(), 1u);
  session_->OnClose();
  EXPECT_TRUE(handler_.requests[0]->stream_closed);
  EXPECT_FALSE(handler_.requests[0]->ended);
}

TEST_F(Http1SessionTest, HalfClosedClientGetsEveryWholeRequestAnswered) {
  handler_.mode = Mode::kDefer;
  Feed("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
       "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz");
  ASSERT_EQ(handler_.requests.size(), 2u);
  EXPECT_TRUE(session_->OnInputEnd());
  EXPECT_EQ(io_->pauses, 1);  // nothing more is read
  EXPECT_FALSE(io_->closed_now);
  handler_.requests[1]->responder->Respond(HttpResponse{});
  handler_.requests[0]->responder->Respond(HttpResponse{});
  RunPostedTasks();
  EXPECT_EQ(io_->written,
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  EXPECT_TRUE(io_->close_after_write);
  EXPECT_EQ(handler_.requests[1]->body, "xyz");
  EXPECT_TRUE(handler_.requests[1]->ended);
}

TEST_F(Http1SessionTest, InputEndingMidRequestOrWhenIdleClosesAtOnce) {
  EXPECT_FALSE(session_->OnInputEnd()) << "idle: nothing to answer";
  for (std::string_view cut : {"GET /a HTTP/1.1\r\nHo",
                               "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nx",
                               "POST /c HTTP/1.1\r\nHost: h\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n"}) {
    SCOPED_TRACE(cut);
    Reset();
    handler_.mode = Mode::kDefer;
    Feed(cut);
    EXPECT_FALSE(session_->OnInputEnd());
  }
}

TEST_F(Http1SessionTest, PausedBodyIsNotConsumedUntilResumed) {
  handler_.mode = Mode::kDefer;
  Feed("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 1u);
  Responder* responder = handler_.requests[0]->responder;
  responder->PauseBody();
  EXPECT_EQ(io_->pauses, 1);
  Feed("abcdef");
  EXPECT_EQ(handler_.requests[0]->body, "");
  responder->ResumeBody();
  EXPECT_EQ(io_->pauses, 0);
  Feed("");
  EXPECT_EQ(handler_.requests[0]->body, "abcdef");
  EXPECT_TRUE(handler_.requests[0]->ended);
}

TEST_F(Http1SessionTest, ContentLengthBodyMayBeReadIntoTheExchangesRoom) {
  handler_.mode = Mode::kDefer;
  handler_.room = 64;
  EXPECT_TRUE(session_->InputBuffer().empty());  // no request yet: the head comes
  Feed("POST /r HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 1u);
  Request& request = *handler_.requests[0];
  // As Connection does: read into the room, then offer the bytes where they lie.
  auto read_in_place = [&](std::string_view bytes) {
    const std::span<char> room = session_->InputBuffer();
    ASSERT_GE(room.size(), bytes.size());
    std::memcpy(room.data(), bytes.data(), bytes.size());
    absl::StatusOr<size_t> consumed =
        session_->OnRead(std::string_view(room.data(), bytes.size()));
    ASSERT_TRUE(consumed.ok());
    EXPECT_EQ(*consumed, bytes.size());
  };
  // Cut short of the body's end, so that no byte of a next request lands there, and
  // the last byte (which the parser may leave unconsumed) comes the usual way.
  EXPECT_EQ(session_->InputBuffer().size(), 9u);
  EXPECT_EQ(session_->InputBuffer().data(), request.room.data());
  read_in_place("0123");
  EXPECT_EQ(session_->InputBuffer().size(), 5u);
  request.responder->PauseBody();
  EXPECT_TRUE(session_->InputBuffer().empty());  // paused: nothing may be read
  request.responder->ResumeBody();
  read_in_place("45678");
  EXPECT_TRUE(session_->InputBuffer().empty());
  EXPECT_FALSE(request.ended);
  Feed("9");
  EXPECT_EQ(request.body, "0123456789");
  EXPECT_EQ(request.in_place_calls, 2);
  EXPECT_TRUE(request.ended);
  EXPECT_TRUE(session_->InputBuffer().empty());  // the next head is read as usual
}

// Why InputBuffer() stops short of the body's last byte: paused right at the end,
// the parser leaves that byte unconsumed, though the exchange already has it.
TEST_F(Http1SessionTest, BodyPausedAtItsEndLeavesItsLastByteUnconsumed) {
  handler_.mode = Mode::kDefer;
  Feed("POST /r HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 1u);
  Request& request = *handler_.requests[0];
  request.pause_on_data = true;
  absl::StatusOr<size_t> consumed = session_->OnRead("0123456789");
  ASSERT_TRUE(consumed.ok());
  EXPECT_EQ(*consumed, 9u);
  EXPECT_EQ(request.body, "0123456789");
  EXPECT_FALSE(request.ended);
  request.pause_on_data = false;
  request.responder->ResumeBody();
  consumed = session_->OnRead("9");  // offered again: completes the message
  ASSERT_TRUE(consumed.ok());
  EXPECT_EQ(*consumed, 1u);
  EXPECT_EQ(request.body, "0123456789");
  EXPECT_TRUE(request.ended);
}

TEST_F(Http1SessionTest, ChunkedBodyIsNeverReadIntoTheExchangesRoom) {
  handler_.mode = Mode::kDefer;
  handler_.room = 64;
  Feed("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 1u);
  // Its bytes are framed: they must go through the chunked decoder.
  EXPECT_TRUE(session_->InputBuffer().empty());
  Feed("3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(handler_.requests[0]->body, "abc");
  EXPECT_EQ(handler_.requests[0]->in_place_calls, 0);
}

TEST_F(Http1SessionTest, PausedChunkedBodyIsNotConsumedUntilResumed) {
  handler_.mode = Mode::kDefer;
  Feed("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 1u);
  Responder* responder = handler_.requests[0]->responder;
  responder->PauseBody();
  Feed("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n");
  EXPECT_EQ(handler_.requests[0]->body, "");
  responder->ResumeBody();
  Feed("");
  EXPECT_EQ(handler_.requests[0]->body, "abcdef");
  EXPECT_TRUE(handler_.requests[0]->ended);
}

// The chunked body ends exactly at its last CRLF: what follows is the next request,
// trailers or not.
TEST_F(Http1SessionTest, RequestPipelinedAfterAChunkedBodyIsServed) {
  Feed("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
       "2\r\nhi\r\n0\r\nChecksum: x\r\n\r\n"
       "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nyo");
  ASSERT_EQ(handler_.requests.size(), 2u);
  EXPECT_EQ(handler_.requests[0]->body, "hi");
  EXPECT_EQ(handler_.requests[1]->body, "yo");
  EXPECT_THAT(io_->written, HasSubstr("path=/a body=hi"));
  EXPECT_THAT(io_->written, HasSubstr("path=/b body=yo"));
  EXPECT_FALSE(io_->close_after_write);
}

// Chunk framing that libhttp-parser (not strict) let through: 400 and close, the
// exchange having seen only the chunks before the fault.
TEST_F(Http1SessionTest, MalformedChunkFramingIs400AndCloses) {
  struct Case {
    const char* body;
    const char* delivered;
  };
  const Case cases[] = {
      {"5\r\nhelloXX0\r\n\r\n", "hello"},
      {"5\rXhello\r\n0\r\n\r\n", ""},
      {"2;\nxx\r\nhi\r\n0\r\n\r\n", ""},
      {"5 junk\r\nhello\r\n0\r\n\r\n", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    Reset();
    Feed(absl::StrCat("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
                      c.body, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"));
    ASSERT_EQ(handler_.requests.size(), 1u) << "nothing after the fault is a request";
    EXPECT_EQ(handler_.requests[0]->body, c.delivered);
    EXPECT_FALSE(handler_.requests[0]->ended);
    EXPECT_THAT(io_->written, StartsWith("HTTP/1.1 400 "));
    EXPECT_THAT(io_->written, HasSubstr("malformed chunked body: "));
    EXPECT_TRUE(io_->close_after_write);
  }
}

}  // namespace
}  // namespace spillway
