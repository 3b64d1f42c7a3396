// Http2Session against a real nghttp2 client session: the two are joined by a fake
// ConnectionIo that pipes bytes in memory, so both ends speak real HTTP/2 and nothing
// of the protocol is mocked. Tasks the session posts (deferred flushes) run on a real
// EventLoop, driven step by step.
#include "server/http/http2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/net/event_loop.h"
#include "tests/unit/h2_raw_frames.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// --- The connection side -----------------------------------------------------------

class FakeIo final : public ConnectionIo {
 public:
  FakeIo() { NewLoop(); }

  void Write(std::string_view bytes) override { out.append(bytes); }
  bool write_blocked() const override { return blocked; }
  void PauseReading() override { ++pauses; }
  void ResumeReading() override { --pauses; }
  void CloseAfterWrite() override { close_after_write = true; }
  void CloseNow() override { close_now = true; }
  void ReplaceSession(std::unique_ptr<ProtocolSession> next) override {
    replaced = std::move(next);
  }
  EventLoop* loop() override { return loop_.get(); }
  const std::string& remote_address() const override { return address_; }

  // Runs what was posted so far. A stopped EventLoop cannot run again, so each call
  // uses up the loop and starts a fresh one.
  void RunPosted() {
    EventLoop* loop = loop_.get();
    loop->Post([loop] { loop->Stop(); });
    loop->Run();
    NewLoop();
  }
  bool closed() const { return close_after_write || close_now; }

  std::string out;
  bool blocked = false;
  int pauses = 0;
  bool close_after_write = false;
  bool close_now = false;
  std::unique_ptr<ProtocolSession> replaced;

 private:
  void NewLoop() {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
  }

  std::unique_ptr<EventLoop> loop_;
  std::string address_ = "127.0.0.1:5555";
};

// --- The application side ----------------------------------------------------------

struct TestExchange final : Exchange {
  absl::Status OnBodyData(std::string_view data) override {
    body.append(data);
    if (consume) responder->ConsumeBody(data.size());
    return absl::OkStatus();
  }
  void OnBodyEnd() override {
    ended = true;
    if (respond_on_end && responder != nullptr) {
      HttpResponse response;
      response.headers.emplace_back("content-type", "text/plain");
      response.body = "got " + std::to_string(body.size()) + " " + head.path;
      responder->Respond(std::move(response));
    }
  }
  void OnStreamClosed() override {
    closed = true;
    responder = nullptr;
  }

  RequestHead head;
  Responder* responder = nullptr;
  std::string body;
  bool consume = true;
  bool respond_on_end = true;
  bool ended = false;
  bool closed = false;
};

struct TestHandler final : RequestHandler {
  std::shared_ptr<Exchange> Start(RequestHead head, Responder* responder,
                                  EventLoop* loop) override {
    auto exchange = std::make_shared<TestExchange>();
    exchange->head = head;
    exchange->responder = responder;
    exchange->consume = consume;
    exchange->respond_on_end = respond_on_end;
    exchanges.push_back(exchange);
    if (on_start) on_start(*exchange);
    return exchange;
  }

  bool consume = true;
  bool respond_on_end = true;
  std::function<void(TestExchange&)> on_start;
  std::vector<std::shared_ptr<TestExchange>> exchanges;
};

// --- The client side: nghttp2's own client session ---------------------------------

struct ClientStream {
  std::string body;  // request body to send
  size_t sent = 0;
  int status = 0;
  std::string response;
  bool closed = false;
  uint32_t close_code = 0;
};

class Client {
 public:
  Client() {
    nghttp2_session_callbacks* callbacks;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnData);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnClose);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrame);
    nghttp2_session_client_new(&session_, callbacks, this);
    nghttp2_session_callbacks_del(callbacks);
  }
  ~Client() { nghttp2_session_del(session_); }

  void SendPreface() {
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, 1);
  }

  // Submits a request; `headers` beyond the pseudo-headers are added as given.
  int32_t Submit(const std::string& method, const std::string& path, std::string body,
                 std::vector<std::pair<std::string, std::string>> headers = {},
                 bool with_path = true) {
    std::vector<std::pair<std::string, std::string>> fields = {
        {":method", method}, {":scheme", "http"}, {":authority", "example.test"}};
    if (with_path) fields.emplace_back(":path", path);
    for (auto& field : headers) fields.push_back(std::move(field));
    std::vector<nghttp2_nv> nva;
    for (auto& [name, value] : fields) {
      nva.push_back({reinterpret_cast<uint8_t*>(name.data()),
                     reinterpret_cast<uint8_t*>(value.data()), name.size(), value.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    auto stream = std::make_unique<ClientStream>();
    stream->body = std::move(body);
    nghttp2_data_provider provider{};
    provider.source.ptr = stream.get();
    provider.read_callback = &ReadBody;
    const bool has_body = !stream->body.empty();
    const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                              has_body ? &provider : nullptr, nullptr);
    EXPECT_GT(id, 0) << nghttp2_strerror(id);
    streams_[id] = std::move(stream);
    return id;
  }

  ClientStream& stream(int32_t id) { return *streams_.at(id); }
  // For streams opened outside Submit (stream 1 of an Upgrade).
  void Track(int32_t id) { streams_[id] = std::make_unique<ClientStream>(); }
  nghttp2_session* session() { return session_; }
  // Bytes the client wants to send now.
  std::string Drain() {
    std::string bytes;
    for (;;) {
      const uint8_t* data;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      EXPECT_GE(n, 0) << nghttp2_strerror(static_cast<int>(n));
      if (n <= 0) break;
      bytes.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    return bytes;
  }
  void Receive(std::string_view bytes) {
    const ssize_t n = nghttp2_session_mem_recv(
        session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    EXPECT_EQ(n, static_cast<ssize_t>(bytes.size())) << nghttp2_strerror(static_cast<int>(n));
  }

  bool got_goaway = false;
  uint32_t goaway_code = 0;

 private:
  static Client* Self(void* user_data) { return static_cast<Client*>(user_data); }
  ClientStream* Find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }
  static ssize_t ReadBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* s = static_cast<ClientStream*>(source->ptr);
    const size_t n = std::min(length, s->body.size() - s->sent);
    std::memcpy(buf, s->body.data() + s->sent, n);
    s->sent += n;
    if (s->sent == s->body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_len, const uint8_t* value, size_t value_len, uint8_t,
                      void* user_data) {
    ClientStream* s = Self(user_data)->Find(frame->hd.stream_id);
    if (s != nullptr && std::string_view(reinterpret_cast<const char*>(name), name_len) ==
                            ":status") {
      s->status = std::stoi(std::string(reinterpret_cast<const char*>(value), value_len));
    }
    return 0;
  }
  static int OnData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user_data) {
    ClientStream* s = Self(user_data)->Find(id);
    if (s != nullptr) s->response.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int OnClose(nghttp2_session*, int32_t id, uint32_t code, void* user_data) {
    ClientStream* s = Self(user_data)->Find(id);
    if (s != nullptr) {
      s->closed = true;
      s->close_code = code;
    }
    return 0;
  }
  static int OnFrame(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      Self(user_data)->got_goaway = true;
      Self(user_data)->goaway_code = frame->goaway.error_code;
    }
    return 0;
  }

  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::unique_ptr<ClientStream>> streams_;
};

// --- Fixture -------------------------------------------------------------------------

class Http2SessionTest : public ::testing::Test {
 protected:
  void StartServer() {
    auto session = Http2Session::Create(&io_, &handler_, options_);
    ASSERT_TRUE(session.ok()) << session.status();
    server_ = std::move(*session);
    client_.SendPreface();
  }

  // Moves bytes both ways and runs posted tasks until nothing moves.
  void Pump() {
    for (int round = 0; round < 100000; ++round) {
      bool moved = false;
      to_server_ += client_.Drain();
      if (!to_server_.empty() && !io_.closed()) {
        absl::StatusOr<size_t> n = server_->OnRead(to_server_);
        if (!n.ok()) {
          read_error_ = n.status();
          io_.close_now = true;
          to_server_.clear();
        } else {
          moved = moved || *n > 0;
          to_server_.erase(0, *n);
        }
      }
      io_.RunPosted();
      if (!io_.out.empty()) {
        std::string out = std::move(io_.out);
        io_.out.clear();
        client_.Receive(out);
        moved = true;
      }
      if (!moved && !nghttp2_session_want_write(client_.session())) return;
    }
    ADD_FAILURE() << "Pump did not settle";
  }

  Http2Options options_;
  FakeIo io_;
  TestHandler handler_;
  Client client_;
  std::unique_ptr<Http2Session> server_;
  std::string to_server_;  // client bytes the server has not consumed yet
  absl::Status read_error_;
};

std::string Pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// --- Tests ---------------------------------------------------------------------------

TEST_F(Http2SessionTest, RequestWithBodyReachesHandlerAndResponseReturns) {
  StartServer();
  const std::string body = Pattern(300 * 1024);
  const int32_t id = client_.Submit(
      "POST", "/upload/raw?name=a%20b&x=1", body,
      {{"content-type", "application/octet-stream"},
       {"content-length", std::to_string(body.size())},
       {"x-custom", "yes"}});
  Pump();

  ASSERT_EQ(handler_.exchanges.size(), 1u);
  const TestExchange& exchange = *handler_.exchanges[0];
  EXPECT_EQ(exchange.head.protocol, "HTTP/2");
  EXPECT_EQ(exchange.head.method, "POST");
  EXPECT_EQ(exchange.head.path, "/upload/raw");
  EXPECT_EQ(exchange.head.query, "name=a%20b&x=1");
  EXPECT_EQ(exchange.head.content_length, body.size());
  EXPECT_EQ(exchange.head.content_type, "application/octet-stream");
  EXPECT_EQ(exchange.head.remote_address, "127.0.0.1:5555");
  EXPECT_EQ(exchange.head.Header("x-custom"), "yes");
  EXPECT_EQ(exchange.head.Header("host"), "example.test");
  EXPECT_TRUE(exchange.body == body);
  EXPECT_TRUE(exchange.ended);
  EXPECT_TRUE(exchange.closed);

  const ClientStream& s = client_.stream(id);
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.response, "got 307200 /upload/raw");
  EXPECT_TRUE(s.closed);
  EXPECT_EQ(s.close_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(server_->open_streams(), 0u);
  EXPECT_FALSE(io_.closed());
}

TEST_F(Http2SessionTest, ResponseHeadersStayOutOfTheHpackDynamicTable) {
  StartServer();
  // In spillwayd each response carries a value of its own (x-upload-id), so nothing
  // a response sends is indexed: the table would fill with those values.
  std::vector<int32_t> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(client_.Submit("PUT", "/r" + std::to_string(i), Pattern(10)));
  }
  Pump();
  for (int32_t id : ids) EXPECT_EQ(client_.stream(id).status, 200);
  EXPECT_EQ(nghttp2_session_get_hd_inflate_dynamic_table_size(client_.session()), 0u);
}

TEST_F(Http2SessionTest, BodyWithoutContentLengthHasNoLength) {
  StartServer();
  const int32_t id = client_.Submit("PUT", "/x", Pattern(1000));
  Pump();
  ASSERT_EQ(handler_.exchanges.size(), 1u);
  EXPECT_FALSE(handler_.exchanges[0]->head.content_length.has_value());
  EXPECT_EQ(handler_.exchanges[0]->body.size(), 1000u);
  EXPECT_EQ(client_.stream(id).status, 200);
}

TEST_F(Http2SessionTest, ManyConcurrentStreamsAllComplete) {
  StartServer();
  std::vector<int32_t> ids;
  for (int i = 0; i < 250; ++i) {
    ids.push_back(client_.Submit("POST", "/s/" + std::to_string(i), Pattern(10000 + i)));
  }
  Pump();
  ASSERT_EQ(handler_.exchanges.size(), 250u);
  for (int i = 0; i < 250; ++i) {
    const ClientStream& s = client_.stream(ids[i]);
    EXPECT_EQ(s.status, 200) << i;
    EXPECT_EQ(s.response, "got " + std::to_string(10000 + i) + " /s/" + std::to_string(i));
  }
  EXPECT_EQ(server_->open_streams(), 0u);
}

TEST_F(Http2SessionTest, PauseBodyWithholdsWindowWithoutStallingOtherStreams) {
  // Stream and connection windows the same size: a paused stream that kept its
  // bytes' connection credit would pin the whole connection.
  options_.stream_window_size = 65535;
  options_.connection_window_size = 65535;
  handler_.on_start = [](TestExchange& exchange) {
    if (exchange.head.path == "/paused") exchange.responder->PauseBody();
  };
  StartServer();
  const size_t size = 1024 * 1024;
  const int32_t paused = client_.Submit("POST", "/paused", Pattern(size));
  Pump();
  ASSERT_EQ(handler_.exchanges.size(), 1u);
  TestExchange& held = *handler_.exchanges[0];
  // The paused stream got its window and no more, although its exchange consumed
  // every byte at once.
  EXPECT_EQ(held.body.size(), 65535u);
  EXPECT_FALSE(held.ended);

  // The connection window was given back, so another upload runs to the end.
  const int32_t other = client_.Submit("POST", "/other", Pattern(size));
  Pump();
  EXPECT_EQ(client_.stream(other).status, 200);
  EXPECT_EQ(handler_.exchanges[1]->body.size(), size);
  EXPECT_EQ(held.body.size(), 65535u);

  held.responder->ResumeBody();
  Pump();
  EXPECT_TRUE(held.ended);
  EXPECT_EQ(held.body.size(), size);
  EXPECT_EQ(client_.stream(paused).status, 200);
}

TEST_F(Http2SessionTest, PauseIsCounted) {
  options_.stream_window_size = 64 * 1024;
  handler_.on_start = [](TestExchange& exchange) {
    exchange.responder->PauseBody();
    exchange.responder->PauseBody();
  };
  StartServer();
  const int32_t id = client_.Submit("POST", "/p", Pattern(512 * 1024));
  Pump();
  TestExchange& exchange = *handler_.exchanges[0];
  const size_t before = exchange.body.size();
  exchange.responder->ResumeBody();  // one pauser still holds it
  Pump();
  EXPECT_EQ(exchange.body.size(), before);
  exchange.responder->ResumeBody();
  Pump();
  EXPECT_EQ(exchange.body.size(), 512u * 1024);
  EXPECT_EQ(client_.stream(id).status, 200);
}

TEST_F(Http2SessionTest, UnconsumedBytesHoldTheStreamWindowUntilConsumed) {
  options_.stream_window_size = 64 * 1024;
  handler_.consume = false;
  StartServer();
  const int32_t id = client_.Submit("POST", "/slow", Pattern(256 * 1024));
  Pump();
  TestExchange& exchange = *handler_.exchanges[0];
  EXPECT_LE(exchange.body.size(), 64u * 1024);
  // The consumer takes the bytes one window at a time.
  for (int i = 0; i < 10 && !exchange.ended; ++i) {
    exchange.responder->ConsumeBody(exchange.body.size());  // clamped to what it holds
    Pump();
  }
  EXPECT_TRUE(exchange.ended);
  EXPECT_EQ(exchange.body.size(), 256u * 1024);
  EXPECT_EQ(client_.stream(id).status, 200);
}

void RespondAtStartTo413(TestExchange& exchange) {
  if (exchange.head.path == "/too-big") {
    exchange.responder->Respond(HttpResponse::Error(413, "too large"));
  }
}

TEST_F(Http2SessionTest, EarlyRespondThenResetOnceTheDiscardBudgetIsSpent) {
  options_.connection_window_size = 128 * 1024;
  options_.stream_window_size = 64 * 1024;
  options_.max_discard_after_response = 256 * 1024;
  handler_.on_start = RespondAtStartTo413;
  StartServer();
  const size_t size = 4 * 1024 * 1024;
  const int32_t id = client_.Submit("POST", "/too-big", Pattern(size),
                                    {{"content-length", std::to_string(size)}});
  Pump();
  const ClientStream& s = client_.stream(id);
  EXPECT_EQ(s.status, 413);
  EXPECT_THAT(s.response, HasSubstr("too large"));
  EXPECT_TRUE(s.closed);
  EXPECT_EQ(s.close_code, NGHTTP2_NO_ERROR);
  EXPECT_GE(s.sent, 256u * 1024);
  EXPECT_LT(s.sent, size);  // the reset stopped the client early
  EXPECT_TRUE(handler_.exchanges[0]->body.empty());
  EXPECT_FALSE(handler_.exchanges[0]->ended);
  EXPECT_TRUE(handler_.exchanges[0]->closed);

  // Whatever was in flight was discarded and given back: the connection still has
  // its whole window for the next upload.
  const int32_t next = client_.Submit("POST", "/next", Pattern(1024 * 1024));
  Pump();
  EXPECT_EQ(client_.stream(next).status, 200);
}

TEST_F(Http2SessionTest, EarlyRespondWithinTheDiscardBudgetLetsTheClientFinish) {
  options_.stream_window_size = 64 * 1024;
  handler_.on_start = RespondAtStartTo413;
  StartServer();
  const size_t size = 2 * 1024 * 1024;  // within the default 4 MiB budget
  const int32_t id = client_.Submit("POST", "/too-big", Pattern(size));
  Pump();
  const ClientStream& s = client_.stream(id);
  EXPECT_EQ(s.status, 413);
  EXPECT_EQ(s.sent, size);
  EXPECT_TRUE(s.closed);
  EXPECT_EQ(s.close_code, NGHTTP2_NO_ERROR);
  EXPECT_TRUE(handler_.exchanges[0]->body.empty());
  EXPECT_EQ(server_->open_streams(), 0u);
}

TEST_F(Http2SessionTest, EarlyRespondWithNoDiscardBudgetResetsAtOnce) {
  options_.stream_window_size = 64 * 1024;
  options_.max_discard_after_response = 0;
  handler_.on_start = RespondAtStartTo413;
  StartServer();
  const int32_t id = client_.Submit("POST", "/too-big", Pattern(2 * 1024 * 1024));
  Pump();
  const ClientStream& s = client_.stream(id);
  EXPECT_EQ(s.status, 413);
  EXPECT_EQ(s.close_code, NGHTTP2_NO_ERROR);
  EXPECT_LE(s.sent, 64u * 1024);
}

TEST_F(Http2SessionTest, RespondFromOutsideMidBodyDiscardsHeldBytes) {
  options_.connection_window_size = 128 * 1024;
  options_.stream_window_size = 64 * 1024;
  handler_.consume = false;  // the exchange holds what it gets
  handler_.respond_on_end = false;
  StartServer();
  const int32_t id = client_.Submit("POST", "/held", Pattern(1024 * 1024));
  Pump();
  TestExchange& exchange = *handler_.exchanges[0];
  ASSERT_GT(exchange.body.size(), 0u);

  // As a consumer's reply would, from a task outside the session: the flush is
  // posted, so nothing is sent (and no exchange is called) inside Respond.
  exchange.responder->Respond(HttpResponse::Error(415, "unsupported"));
  EXPECT_TRUE(io_.out.empty());
  EXPECT_FALSE(exchange.closed);
  Pump();
  EXPECT_EQ(client_.stream(id).status, 415);
  EXPECT_TRUE(exchange.closed);

  handler_.consume = true;
  handler_.respond_on_end = true;
  const int32_t next = client_.Submit("POST", "/next", Pattern(1024 * 1024));
  Pump();
  EXPECT_EQ(client_.stream(next).status, 200);
}

TEST_F(Http2SessionTest, ClientResetClosesTheExchange) {
  handler_.respond_on_end = false;
  StartServer();
  const int32_t id = client_.Submit("POST", "/abort", Pattern(200 * 1024));
  Pump();
  ASSERT_EQ(handler_.exchanges.size(), 1u);
  nghttp2_submit_rst_stream(client_.session(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  Pump();
  EXPECT_TRUE(handler_.exchanges[0]->closed);
  EXPECT_EQ(server_->open_streams(), 0u);
  EXPECT_FALSE(io_.closed());
}

TEST_F(Http2SessionTest, RapidResetFloodEndsWithGoawayEnhanceYourCalm) {
  handler_.respond_on_end = false;
  StartServer();
  Pump();
  for (int i = 0; i < 150 && !io_.closed(); ++i) {
    const int32_t id = client_.Submit("GET", "/r", "");
    Pump();
    nghttp2_submit_rst_stream(client_.session(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    Pump();
  }
  EXPECT_TRUE(client_.got_goaway);
  EXPECT_EQ(client_.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(io_.close_after_write);
  EXPECT_LE(handler_.exchanges.size(), 102u);
}

TEST_F(Http2SessionTest, FewResetsAreFine) {
  handler_.respond_on_end = false;
  StartServer();
  for (int i = 0; i < 50; ++i) {
    const int32_t id = client_.Submit("GET", "/r", "");
    Pump();
    nghttp2_submit_rst_stream(client_.session(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  }
  Pump();
  EXPECT_FALSE(client_.got_goaway);
  EXPECT_FALSE(io_.closed());
}

TEST_F(Http2SessionTest, TooLargeHeaderListGets431) {
  StartServer();
  const int32_t id =
      client_.Submit("GET", "/big", "", {{"x-big", std::string(20 * 1024, 'h')}});
  Pump();
  EXPECT_EQ(client_.stream(id).status, 431);
  EXPECT_TRUE(handler_.exchanges.empty());
  EXPECT_FALSE(io_.closed());
}

TEST_F(Http2SessionTest, TooManyHeaderFieldsGets431AndBodyIsDiscarded) {
  StartServer();
  std::vector<std::pair<std::string, std::string>> headers;
  for (int i = 0; i < 200; ++i) headers.emplace_back("x-h" + std::to_string(i), "v");
  const int32_t id = client_.Submit("POST", "/many", Pattern(100 * 1024), headers);
  Pump();
  EXPECT_EQ(client_.stream(id).status, 431);
  EXPECT_TRUE(handler_.exchanges.empty());
  const int32_t next = client_.Submit("GET", "/ok", "");
  Pump();
  EXPECT_EQ(client_.stream(next).status, 200);
}

TEST_F(Http2SessionTest, MissingPathIsAStreamError) {
  StartServer();
  const int32_t id = client_.Submit("GET", "", "", {}, /*with_path=*/false);
  Pump();
  EXPECT_TRUE(client_.stream(id).closed);
  EXPECT_EQ(client_.stream(id).close_code, NGHTTP2_PROTOCOL_ERROR);
  EXPECT_TRUE(handler_.exchanges.empty());
  EXPECT_EQ(server_->open_streams(), 0u);
  EXPECT_FALSE(io_.closed());
}

TEST_F(Http2SessionTest, PingFloodEndsTheConnection) {
  StartServer();
  Pump();
  for (int i = 0; i < 3000; ++i) nghttp2_submit_ping(client_.session(), NGHTTP2_FLAG_NONE, nullptr);
  Pump();
  EXPECT_TRUE(io_.closed());
  EXPECT_TRUE(client_.got_goaway);
  EXPECT_EQ(client_.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_F(Http2SessionTest, SettingsWithTooManyEntriesEndsTheConnection) {
  StartServer();
  Pump();
  std::vector<nghttp2_settings_entry> iv(40, {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 16384});
  ASSERT_EQ(nghttp2_submit_settings(client_.session(), NGHTTP2_FLAG_NONE, iv.data(),
                                    iv.size()),
            0);
  Pump();
  EXPECT_TRUE(io_.closed());
  EXPECT_TRUE(client_.got_goaway);
  EXPECT_EQ(client_.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_F(Http2SessionTest, ContinuationFloodEndsWithGoawayEnhanceYourCalm) {
  options_.max_continuations = 8;
  StartServer();
  Pump();
  // A header block that never ends: one small field per CONTINUATION frame.
  std::string flood = testing::H2Frame(testing::kH2Headers, 0, 1,
                                       testing::H2RequestBlock("GET", "/c"));
  const std::string field("\x00\x01"
                          "a"
                          "\x01"
                          "b",
                          5);
  constexpr uint8_t kContinuation = 0x9;
  for (int i = 0; i < 20; ++i) flood += testing::H2Frame(kContinuation, 0, 1, field);
  to_server_ += flood;
  Pump();
  EXPECT_TRUE(io_.closed());
  EXPECT_TRUE(client_.got_goaway);
  EXPECT_EQ(client_.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(handler_.exchanges.empty());
}

TEST_F(Http2SessionTest, ConcurrentStreamsBeyondTheCapAreRefused) {
  options_.max_concurrent_streams = 4;
  handler_.respond_on_end = false;  // keep them open
  StartServer();
  Pump();  // the client learns the cap
  std::vector<int32_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(client_.Submit("GET", "/c", ""));
  Pump();
  // nghttp2's client honours the cap and holds back the extra two.
  EXPECT_EQ(handler_.exchanges.size(), 4u);
  EXPECT_EQ(server_->open_streams(), 4u);
}

TEST_F(Http2SessionTest, BlockedSocketPausesReadingUntilWritable) {
  StartServer();
  Pump();
  io_.blocked = true;
  client_.Submit("GET", "/a", "");
  std::string bytes = client_.Drain();
  absl::StatusOr<size_t> n = server_->OnRead(bytes);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(io_.pauses, 1);
  io_.blocked = false;
  server_->OnWritable();
  EXPECT_EQ(io_.pauses, 0);
  to_server_ = bytes;
  Pump();
  EXPECT_EQ(handler_.exchanges.size(), 1u);
}

TEST_F(Http2SessionTest, ConnectionCloseReleasesOpenStreams) {
  handler_.respond_on_end = false;
  StartServer();
  client_.Submit("POST", "/a", Pattern(10000));
  client_.Submit("GET", "/b", "");
  Pump();
  ASSERT_EQ(handler_.exchanges.size(), 2u);
  server_->OnClose();
  EXPECT_TRUE(handler_.exchanges[0]->closed);
  EXPECT_TRUE(handler_.exchanges[1]->closed);
  EXPECT_EQ(server_->open_streams(), 0u);
}

TEST_F(Http2SessionTest, DrainSendsGoawayAndClosesWhenStreamsFinish) {
  handler_.respond_on_end = false;
  StartServer();
  const int32_t id = client_.Submit("GET", "/inflight", "");
  Pump();
  server_->StartDrain();
  Pump();
  EXPECT_TRUE(client_.got_goaway);
  EXPECT_EQ(client_.goaway_code, NGHTTP2_NO_ERROR);
  EXPECT_FALSE(io_.closed());
  handler_.exchanges[0]->responder->Respond(HttpResponse{});
  Pump();
  EXPECT_EQ(client_.stream(id).status, 200);
  EXPECT_TRUE(io_.close_after_write);
}

TEST_F(Http2SessionTest, HeadResponseHasNoBody) {
  handler_.on_start = [](TestExchange& exchange) {
    HttpResponse response;
    response.body = "hello";
    exchange.responder->Respond(std::move(response));
  };
  StartServer();
  const int32_t id = client_.Submit("HEAD", "/h", "");
  Pump();
  EXPECT_EQ(client_.stream(id).status, 200);
  EXPECT_TRUE(client_.stream(id).response.empty());
  EXPECT_TRUE(client_.stream(id).closed);
}

// --- h2c Upgrade ---------------------------------------------------------------------

TEST_F(Http2SessionTest, UpgradeServesTheRequestAsStream1) {
  uint8_t payload[64];
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                 {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
  const ssize_t len = nghttp2_pack_settings_payload(payload, sizeof(payload), iv, 2);
  ASSERT_GT(len, 0);
  const std::string settings = absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(payload), len));

  RequestHead head;
  head.protocol = "HTTP/1.1";
  head.method = "GET";
  head.path = "/healthz";
  head.headers = {{"host", "example.test"}, {"upgrade", "h2c"}};
  auto session = Http2Session::CreateFromUpgrade(&io_, &handler_, options_,
                                                 std::string_view(settings), head);
  ASSERT_TRUE(session.ok()) << session.status();
  server_ = std::move(*session);
  ASSERT_EQ(handler_.exchanges.size(), 1u);
  EXPECT_EQ(handler_.exchanges[0]->head.protocol, "HTTP/2");
  EXPECT_EQ(handler_.exchanges[0]->head.path, "/healthz");
  EXPECT_TRUE(handler_.exchanges[0]->ended);

  ASSERT_THAT(io_.out, StartsWith("HTTP/1.1 101 Switching Protocols\r\n"));
  const size_t end = io_.out.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  io_.out.erase(0, end + 4);

  // The client side of the same upgrade: stream 1 is its request.
  ASSERT_EQ(nghttp2_session_upgrade2(client_.session(), payload, len, 0, nullptr), 0);
  client_.Track(1);
  const int32_t next = client_.Submit("GET", "/after-upgrade", "");
  Pump();
  EXPECT_EQ(client_.stream(1).status, 200);
  EXPECT_EQ(client_.stream(1).response, "got 0 /healthz");
  EXPECT_TRUE(handler_.exchanges[0]->closed);
  ASSERT_EQ(handler_.exchanges.size(), 2u);
  EXPECT_EQ(client_.stream(next).status, 200);
}

TEST_F(Http2SessionTest, UpgradeWithABodyIsDeclined) {
  RequestHead head;
  head.method = "POST";
  head.path = "/u";
  head.content_length = 10;
  auto session = Http2Session::CreateFromUpgrade(&io_, &handler_, options_, "AAMAAABkAAQAoAAAAAIAAAAA", head);
  EXPECT_EQ(session.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(io_.out.empty());
  EXPECT_TRUE(handler_.exchanges.empty());
}

TEST_F(Http2SessionTest, UpgradeWithBadSettingsIsDeclined) {
  RequestHead head;
  head.method = "GET";
  head.path = "/u";
  // Not base64url; a partial entry; then one forbidden value each (RFC 9113 §6.5.2):
  // INITIAL_WINDOW_SIZE 2^31, ENABLE_PUSH 2, MAX_FRAME_SIZE 100.
  for (const char* settings : {"!!!", "AAMAAGQ", "AASAAAAA", "AAIAAAAC", "AAUAAABk"}) {
    SCOPED_TRACE(settings);
    auto session =
        Http2Session::CreateFromUpgrade(&io_, &handler_, options_, settings, head);
    EXPECT_EQ(session.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(io_.out.empty());
    EXPECT_TRUE(handler_.exchanges.empty());
  }
}

}  // namespace
}  // namespace spillway
