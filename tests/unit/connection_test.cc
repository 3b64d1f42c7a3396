// Drives a Connection over a socketpair, with a scripted session, calling its readiness
// callback directly (the bytes are in the socket by then): what the session is offered
// and from where.
#include "server/net/connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <span>
#include <string>

#include "gtest/gtest.h"
#include "server/net/event_loop.h"

namespace spillway {
namespace {

// What a session was told of the end of input; kept by the test, since the
// connection destroys its session when it closes.
struct InputEndRecord {
  int calls = 0;
  std::string received_by_then;  // the input the session had been offered
};

// Takes at most `take_per_call` bytes per OnRead() (as a session that pauses does),
// pausing the connection's reading after each while `pause_on_read` is set, and
// offers `room` as its InputBuffer() while `offer_room` is set.
class ScriptedSession final : public ProtocolSession {
 public:
  ScriptedSession(ConnectionIo* io, InputEndRecord* input_end)
      : io(io), input_end_(input_end) {}

  absl::StatusOr<size_t> OnRead(std::string_view data) override {
    if (data.data() == room.data()) ++in_place_reads;
    const size_t n = std::min(data.size(), take_per_call);
    received.append(data.substr(0, n));
    if (pause_on_read) io->PauseReading();
    return n;
  }
  std::span<char> InputBuffer() override {
    return offer_room ? std::span<char>(room) : std::span<char>();
  }
  void OnWritable() override {}
  bool OnInputEnd() override {
    input_end_->received_by_then = received;
    ++input_end_->calls;
    return answer_after_input_end;
  }
  void OnClose() override {}

  ConnectionIo* const io;
  std::string room = std::string(64, '\0');
  bool offer_room = false;
  size_t take_per_call = 1 << 20;
  bool pause_on_read = false;
  bool answer_after_input_end = false;
  std::string received;
  int in_place_reads = 0;

 private:
  InputEndRecord* const input_end_;
};

class ScriptedFactory final : public SessionFactory {
 public:
  absl::StatusOr<std::unique_ptr<ProtocolSession>> CreateHttp1(ConnectionIo* io) override {
    auto session = std::make_unique<ScriptedSession>(io, &input_end);
    created = session.get();
    return session;
  }
  absl::StatusOr<std::unique_ptr<ProtocolSession>> CreateHttp2(ConnectionIo*) override {
    return absl::UnimplementedError("HTTP/1.1 only");
  }
  void Drain(ProtocolSession*) override {}

  ScriptedSession* created = nullptr;  // owned by the connection
  InputEndRecord input_end;
};

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    peer_ = UniqueFd(fds[1]);
    connection_ = std::make_shared<Connection>(loop_.get(), UniqueFd(fds[0]), "peer",
                                               &factory_, Connection::Options(),
                                               [this](Connection*) { closed_ = true; });
    ASSERT_TRUE(connection_->Start().ok());
  }

  // The peer sends `bytes`; the connection reads them as on a readiness event.
  void Send(std::string_view bytes) {
    ASSERT_EQ(::write(peer_.get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    connection_->OnIoEvent(EPOLLIN);
  }

  // The peer half-closes: it sends nothing more but still reads.
  void SendEof() {
    ASSERT_EQ(::shutdown(peer_.get(), SHUT_WR), 0);
    connection_->OnIoEvent(EPOLLIN | EPOLLRDHUP);
  }

  // What the peer has received until the connection closed its side.
  std::string ReadToEof() {
    std::string out;
    char buffer[256];
    for (;;) {
      const ssize_t n = ::read(peer_.get(), buffer, sizeof(buffer));
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

  std::unique_ptr<EventLoop> loop_;
  ScriptedFactory factory_;
  UniqueFd peer_;
  std::shared_ptr<Connection> connection_;
  bool closed_ = false;
};

TEST_F(ConnectionTest, ReadsIntoTheRoomTheSessionOffers) {
  Send("G");  // chooses the session: read into the connection's own buffer
  ScriptedSession* session = factory_.created;
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->in_place_reads, 0);
  session->offer_room = true;
  Send("ET /");
  EXPECT_EQ(session->received, "GET /");
  EXPECT_EQ(session->in_place_reads, 1);
  EXPECT_EQ(std::string_view(session->room.data(), 4), "ET /");
}

TEST_F(ConnectionTest, InputTheSessionLeavesInItsRoomIsOfferedAgainInOrder) {
  Send("G");
  ScriptedSession* session = factory_.created;
  ASSERT_NE(session, nullptr);
  session->offer_room = true;
  session->take_per_call = 3;
  // Read into the room; the session takes "ET " of it, the rest is kept and
  // offered again from the connection's buffer, before anything read later.
  Send("ET /upload HTTP/1.1");
  EXPECT_EQ(session->received, "GET /upload HTTP/1.1");
  EXPECT_EQ(session->in_place_reads, 1);
  Send("\r\n");
  EXPECT_EQ(session->received, "GET /upload HTTP/1.1\r\n");
  EXPECT_EQ(session->in_place_reads, 2);
}

TEST_F(ConnectionTest, PeerEofClosesAtOnceWhenTheSessionHasNothingToAnswer) {
  Send("GET /");
  ASSERT_NE(factory_.created, nullptr);
  SendEof();
  EXPECT_TRUE(closed_);
}

TEST_F(ConnectionTest, HalfClosedPeerGetsItsAnswerBeforeTheConnectionCloses) {
  Send("GET /");
  ScriptedSession* session = factory_.created;
  ASSERT_NE(session, nullptr);
  session->answer_after_input_end = true;
  SendEof();
  EXPECT_EQ(factory_.input_end.calls, 1);
  ASSERT_FALSE(closed_);
  session->io->Write("answer");
  session->io->CloseAfterWrite();  // the peer's EOF ends the linger at once
  connection_->OnIoEvent(EPOLLIN);  // finalizes the close
  EXPECT_TRUE(closed_);
  EXPECT_EQ(ReadToEof(), "answer");
}

TEST_F(ConnectionTest, EofIsToldOnlyOnceAPausedSessionHasTakenEveryByte) {
  Send("G");
  ScriptedSession* session = factory_.created;
  ASSERT_NE(session, nullptr);
  session->take_per_call = 1;
  session->pause_on_read = true;
  session->io->PauseReading();  // as if "G" had paused it
  // Buffered while reading is paused: the session has to resume for them.
  ASSERT_EQ(::write(peer_.get(), "ET /", 4), 4);
  session->io->ResumeReading();
  connection_->OnIoEvent(EPOLLIN);
  EXPECT_EQ(session->received, "GE");
  SendEof();  // not even read while paused
  EXPECT_EQ(factory_.input_end.calls, 0);
  session->io->ResumeReading();
  connection_->OnIoEvent(EPOLLIN);  // reads the EOF; "T" pauses the session again
  EXPECT_EQ(session->received, "GET");
  EXPECT_EQ(factory_.input_end.calls, 0);
  EXPECT_FALSE(closed_);
  session->pause_on_read = false;
  session->io->ResumeReading();
  connection_->OnIoEvent(EPOLLIN);  // the session answers nothing: closed, destroyed
  EXPECT_EQ(factory_.input_end.calls, 1);
  EXPECT_EQ(factory_.input_end.received_by_then, "GET /");
  EXPECT_TRUE(closed_);
}

}  // namespace
}  // namespace spillway
