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

// Takes at most `take_per_call` bytes per OnRead() (as a session that pauses does),
// and offers `room` as its InputBuffer() while `offer_room` is set.
class ScriptedSession final : public ProtocolSession {
 public:
  absl::StatusOr<size_t> OnRead(std::string_view data) override {
    if (data.data() == room.data()) ++in_place_reads;
    const size_t n = std::min(data.size(), take_per_call);
    received.append(data.substr(0, n));
    return n;
  }
  std::span<char> InputBuffer() override {
    return offer_room ? std::span<char>(room) : std::span<char>();
  }
  void OnWritable() override {}
  void OnClose() override {}

  std::string room = std::string(64, '\0');
  bool offer_room = false;
  size_t take_per_call = 1 << 20;
  std::string received;
  int in_place_reads = 0;
};

class ScriptedFactory final : public SessionFactory {
 public:
  absl::StatusOr<std::unique_ptr<ProtocolSession>> CreateHttp1(ConnectionIo*) override {
    auto session = std::make_unique<ScriptedSession>();
    created = session.get();
    return session;
  }
  absl::StatusOr<std::unique_ptr<ProtocolSession>> CreateHttp2(ConnectionIo*) override {
    return absl::UnimplementedError("HTTP/1.1 only");
  }
  void Drain(ProtocolSession*) override {}

  ScriptedSession* created = nullptr;  // owned by the connection
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
                                               [](Connection*) {});
    ASSERT_TRUE(connection_->Start().ok());
  }

  // The peer sends `bytes`; the connection reads them as on a readiness event.
  void Send(std::string_view bytes) {
    ASSERT_EQ(::write(peer_.get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    connection_->OnIoEvent(EPOLLIN);
  }

  std::unique_ptr<EventLoop> loop_;
  ScriptedFactory factory_;
  UniqueFd peer_;
  std::shared_ptr<Connection> connection_;
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

}  // namespace
}  // namespace spillway
