// What the two protocol-session fuzzers (http1_session_fuzzer.cc, http2_session_fuzzer.cc)
// share: the input's control header, a fake connection that feeds a session the way
// server/net/connection.cc does, and a handler whose exchanges behave as the control
// header says (respond at body end, at once, mid-body or later from outside the session;
// pause; hold bytes; refuse the body).
//
// Input layout, so that seeds are easy to write (tests/fuzz/make_session_seeds.py):
//   byte 0      session options; each fuzzer reads its own bits
//   bytes 1-3   piece sizes, used in turn; 0 feeds the rest of the input at once
//   byte 4      bit i % 8: after piece i the harness acts (see kAct* below)
//   byte 5      what those acts do (kAct*)
//   bytes 6-9   request n's behaviour is byte 6 + n % 4 (kTiming*, kPause... below)
//   the rest    bytes from the socket
//
// Beyond ASan/UBSan the harness checks only what the headers promise (exchange.h,
// http1_session.h, http2_session.h): every Exchange is told OnStreamClosed exactly once
// and nothing after it; no body after OnBodyEnd or after the exchange responded; no
// Exchange callback nested in another or inside a Responder call made from outside the
// session, which also never writes; and once the session is gone nothing of it is left
// (every Exchange released). Every other request's exchange offers a BodyBuffer(), and
// the connection reads into the session's InputBuffer() as Connection does: such input
// reaches OnBodyData from the start of the room, and the session takes all of it.
// Timeouts are not fuzzed: they need the clock to move.
#ifndef SPILLWAY_TESTS_FUZZ_SESSION_FUZZ_HARNESS_H_
#define SPILLWAY_TESTS_FUZZ_SESSION_FUZZ_HARNESS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/http/exchange.h"
#include "server/http/http2_session.h"
#include "server/http/http_response.h"
#include "server/http/request_head.h"
#include "server/net/event_loop.h"
#include "server/net/protocol_session.h"

namespace spillway::fuzz {

inline void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// HTTP/2 limits small enough for a fuzz input to cross (option "small limits").
inline Http2Options SmallHttp2Options() {
  Http2Options options;
  options.max_concurrent_streams = 2;
  options.max_header_list_size = 256;
  options.max_header_fields = 8;
  options.stream_window_size = 1024;
  options.connection_window_size = 65535;
  options.reset_burst = 3;
  options.reset_rate_per_second = 1;
  options.max_discard_after_response = 64;
  options.max_outbound_ack = 4;
  options.max_settings = 4;
  options.max_continuations = 2;
  return options;
}

// Per request (bytes 6-9).
inline constexpr uint8_t kTimingMask = 0x03;
inline constexpr uint8_t kTimingAtEnd = 0;        // respond in OnBodyEnd
inline constexpr uint8_t kTimingInStart = 1;      // respond inside Start (early)
inline constexpr uint8_t kTimingAtFirstData = 2;  // respond inside the first OnBodyData
inline constexpr uint8_t kTimingDeferred = 3;     // respond from outside (act or task)
inline constexpr uint8_t kPauseAtStart = 0x04;    // PauseBody in Start; an act resumes
inline constexpr uint8_t kHoldBytes = 0x08;       // ConsumeBody later, in an act
inline constexpr uint8_t kRefuseBody = 0x10;      // first OnBodyData: 413 and an error
inline constexpr uint8_t kBigResponse = 0x20;     // more than one HTTP/2 frame of body
inline constexpr uint8_t kOtherStatus = 0x40;     // 201/204/304/400/404/413/500/503
inline constexpr uint8_t kFramingHeaders = 0x80;  // headers the session must drop

// What an act does (byte 5). The final acts, once the input is used up, do all of it.
inline constexpr uint8_t kActRespondOne = 0x01;    // else every deferred request
inline constexpr uint8_t kActNewestFirst = 0x02;   // out of order, for pipelining
inline constexpr uint8_t kActResume = 0x04;        // release every pause
inline constexpr uint8_t kActConsume = 0x08;       // ConsumeBody what is held
inline constexpr uint8_t kActDrainOutput = 0x10;   // the socket takes the output
inline constexpr uint8_t kActRunPosted = 0x20;     // run the loop's posted tasks
inline constexpr uint8_t kAbruptClose = 0x40;      // at the end: OnClose, no final acts
// At the end, without kAbruptClose: the client half-closes after the final acts
// (kActRespondOne has no use there, so its bit says it).
inline constexpr uint8_t kHalfCloseAtEnd = kActRespondOne;
inline constexpr uint8_t kPostedReplies = 0x80;    // deferred replies as loop tasks
// The final acts: every deferred reply, oldest last; resume, consume, drain, run tasks.
inline constexpr uint8_t kFinalAct = kActNewestFirst | kActResume | kActConsume |
                                     kActDrainOutput | kActRunPosted;

struct FuzzPlan {
  static constexpr size_t kHeaderSize = 10;

  uint8_t options = 0;
  uint8_t piece_sizes[3] = {};
  uint8_t act_mask = 0;
  uint8_t act_flavour = 0;
  uint8_t behaviours[4] = {};

  // Splits `data` into the plan and the socket bytes; false when it is too short.
  static bool Parse(const uint8_t* data, size_t size, FuzzPlan* plan,
                    std::string_view* socket_bytes) {
    if (size < kHeaderSize) return false;
    plan->options = data[0];
    std::copy(data + 1, data + 4, plan->piece_sizes);
    plan->act_mask = data[4];
    plan->act_flavour = data[5];
    std::copy(data + 6, data + 10, plan->behaviours);
    *socket_bytes = std::string_view(reinterpret_cast<const char*>(data) + kHeaderSize,
                                     size - kHeaderSize);
    return true;
  }
  size_t PieceSize(size_t piece, size_t left) const {
    const uint8_t n = piece_sizes[piece % 3];
    return n == 0 ? left : std::min<size_t>(n, left);
  }
  bool ActsAfter(size_t piece) const { return (act_mask >> (piece % 8)) & 1; }
  uint8_t Behaviour(size_t request) const { return behaviours[request % 4]; }
};

// Where the harness is, for the re-entrancy checks. The fuzzers are single-threaded.
struct Guards {
  static inline bool in_callback = false;      // inside an Exchange/handler callback
  static inline bool in_outside_call = false;  // a Responder call from outside
};

class CallbackScope {
 public:
  CallbackScope() {
    Check(!Guards::in_callback && !Guards::in_outside_call);
    Guards::in_callback = true;
  }
  ~CallbackScope() { Guards::in_callback = false; }
};

class OutsideScope {
 public:
  OutsideScope() {
    Check(!Guards::in_callback && !Guards::in_outside_call);
    Guards::in_outside_call = true;
  }
  ~OutsideScope() { Guards::in_outside_call = false; }
};

// The connection side. Input is kept and offered again while reading is not paused,
// replacement sessions take over after the OnRead that asked for them, and after a
// close nothing more is read, all as Connection does. Output is only counted: above
// `high_watermark` unsent bytes write_blocked() turns true until DrainOutput().
class FuzzIo final : public ConnectionIo {
 public:
  explicit FuzzIo(size_t high_watermark) : high_watermark_(high_watermark) { NewLoop(); }

  void Write(std::string_view bytes) override {
    Check(!Guards::in_outside_call);  // Responder calls never write
    unsent_ += bytes.size();
    if (write_blocked()) write_was_blocked_ = true;
  }
  bool write_blocked() const override { return unsent_ > high_watermark_; }
  void PauseReading() override { ++pauses_; }
  void ResumeReading() override {
    if (pauses_ > 0) --pauses_;  // Connection ignores an unbalanced resume too
  }
  void CloseAfterWrite() override { close_after_write_ = true; }
  void CloseNow() override { close_now_ = true; }
  void ReplaceSession(std::unique_ptr<ProtocolSession> next) override {
    next_ = std::move(next);
  }
  EventLoop* loop() override { return loop_.get(); }
  const std::string& remote_address() const override { return remote_address_; }

  bool closed() const { return close_now_ || close_after_write_; }
  bool closed_now() const { return close_now_; }
  bool answers_after_input_end() const { return answers_after_input_end_; }

  // The client half-closes. As Connection does, the session hears of it once it is
  // not paused (it has taken every byte it will), and a "no" closes at once.
  void EndInput(ProtocolSession* session) {
    if (closed() || pauses_ > 0 || input_ended_) return;
    input_ended_ = true;
    answers_after_input_end_ = session->OnInputEnd();
    if (!answers_after_input_end_) close_now_ = true;
  }

  // Bytes from the socket: offered to `*session` now and while any are left over.
  // As Connection reads: while nothing is buffered, into the session's room if it
  // offers one.
  void Receive(std::string_view bytes, std::unique_ptr<ProtocolSession>* session) {
    while (!bytes.empty() && input_.empty() && !closed() && pauses_ == 0) {
      const std::span<char> room = (*session)->InputBuffer();
      if (room.empty()) break;
      const size_t n = std::min(room.size(), bytes.size());
      std::memcpy(room.data(), bytes.data(), n);
      bytes.remove_prefix(n);
      absl::StatusOr<size_t> consumed =
          (*session)->OnRead(std::string_view(room.data(), n));
      if (!consumed.ok()) {
        close_now_ = true;
        return;
      }
      Check(*consumed == n);  // in-place input is taken whole (http1_session.h)
      if (next_ != nullptr) *session = std::move(next_);
    }
    input_.append(bytes);
    ProcessInput(session);
  }
  void ProcessInput(std::unique_ptr<ProtocolSession>* session) {
    while (!closed() && pauses_ == 0 && !input_.empty()) {
      absl::StatusOr<size_t> consumed = (*session)->OnRead(input_);
      if (!consumed.ok()) {
        close_now_ = true;  // an OnRead error closes the connection at once
        return;
      }
      Check(*consumed <= input_.size());
      input_.erase(0, *consumed);
      if (next_ != nullptr) {
        *session = std::move(next_);  // the old session's OnRead has returned
        continue;
      }
      if (*consumed == 0) return;  // it waits for more bytes or a resume
    }
  }

  // The socket took all output; a session that saw write_blocked() hears of it.
  void DrainOutput(ProtocolSession* session) {
    unsent_ = 0;
    if (write_was_blocked_ && !closed()) {
      write_was_blocked_ = false;
      session->OnWritable();
    }
  }

  // Runs what was posted to the loop, and what those tasks post, a few rounds deep.
  // A stopped EventLoop cannot run again, so each call uses up the loop and starts a
  // fresh one (the sessions ask io->loop() each time they post).
  void RunPosted() {
    EventLoop* loop = loop_.get();
    loop->Post(StopAfter(loop, 4));
    loop->Run();
    NewLoop();
  }

 private:
  // A task re-posted `rounds` times before it stops the loop: tasks posted by earlier
  // tasks run in between.
  static EventLoop::Task StopAfter(EventLoop* loop, int rounds) {
    return [loop, rounds]() mutable {
      if (rounds == 0) {
        loop->Stop();
      } else {
        loop->Post(StopAfter(loop, rounds - 1));
      }
    };
  }
  void NewLoop() {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    Check(loop.ok());
    loop_ = std::move(*loop);
  }

  const size_t high_watermark_;
  const std::string remote_address_ = "192.0.2.1:40000";
  std::unique_ptr<EventLoop> loop_;
  std::string input_;
  size_t unsent_ = 0;
  bool write_was_blocked_ = false;
  int pauses_ = 0;
  bool close_after_write_ = false;
  bool close_now_ = false;
  bool input_ended_ = false;
  bool answers_after_input_end_ = false;
  std::unique_ptr<ProtocolSession> next_;
};

// One request's handling, as its behaviour byte says.
class FuzzExchange final : public Exchange {
 public:
  FuzzExchange(Responder* responder, uint8_t behaviour, size_t index, bool head_request)
      : responder_(responder),
        behaviour_(behaviour),
        index_(index),
        head_request_(head_request),
        room_(index % 2 == 0 ? 48 : 0, '\0') {}
  ~FuzzExchange() override { Check(closed_); }  // never released unannounced

  absl::Status OnBodyData(std::string_view data) override {
    CallbackScope scope;
    Check(!closed_ && !ended_ && !responded_);
    // Bytes read into the room come from its start (exchange.h).
    if (!room_.empty() && data.data() >= room_.data() &&
        data.data() < room_.data() + room_.size()) {
      Check(data.data() == room_.data() && data.size() <= room_.size());
    }
    body_bytes_ += data.size();
    if ((behaviour_ & kHoldBytes) != 0) {
      held_ += data.size();
    } else {
      responder_->ConsumeBody(data.size());
    }
    if ((behaviour_ & kRefuseBody) != 0) {
      Respond(413);
      return absl::ResourceExhaustedError("body refused");
    }
    if (timing() == kTimingAtFirstData) Respond(0);
    return absl::OkStatus();
  }
  void OnBodyEnd() override {
    CallbackScope scope;
    Check(!closed_ && !ended_);
    ended_ = true;
    if (timing() == kTimingAtEnd || timing() == kTimingAtFirstData) Respond(0);
  }
  void OnStreamClosed() override {
    CallbackScope scope;
    Check(!closed_);
    closed_ = true;
    responder_ = nullptr;  // gone after this call
  }
  void OnSessionResponded(const HttpResponse& response) override {
    CallbackScope scope;
    Check(!closed_);
  }
  std::span<char> BodyBuffer() override {
    Check(!closed_ && !ended_ && !responded_);  // asked only while the body flows
    return std::span<char>(room_);
  }

  // Called by the handler from Start (inside the session).
  void StartActions() {
    if ((behaviour_ & kPauseAtStart) != 0) {
      ++pauses_;
      responder_->PauseBody();
    }
    if (timing() == kTimingInStart) Respond(0);
  }

  // Outside the session: an act of the harness or a task on the loop.
  bool waits_for_reply() const {
    return !closed_ && !responded_ && timing() == kTimingDeferred;
  }
  void RespondFromOutside() {
    if (!waits_for_reply()) return;
    OutsideScope scope;
    Respond(0);
  }
  void ResumeFromOutside() {
    if (closed_) return;
    OutsideScope scope;
    for (; pauses_ > 0 && !closed_; --pauses_) responder_->ResumeBody();
  }
  void ConsumeFromOutside() {
    if (closed_ || held_ == 0) return;
    OutsideScope scope;
    responder_->ConsumeBody(std::exchange(held_, 0));
  }

 private:
  uint8_t timing() const { return behaviour_ & kTimingMask; }

  // `status` 0: the behaviour's own choice.
  void Respond(int status) {
    if (closed_ || responded_) return;
    responded_ = true;
    HttpResponse response;
    if (status != 0) {
      response.status = status;
    } else if ((behaviour_ & kOtherStatus) != 0) {
      static constexpr int kStatuses[] = {201, 204, 304, 400, 404, 413, 500, 503};
      response.status = kStatuses[index_ % std::size(kStatuses)];
    }
    response.headers.emplace_back("content-type", "text/plain");
    if ((behaviour_ & kFramingHeaders) != 0) {
      response.headers.emplace_back("content-length", "3");
      response.headers.emplace_back("connection", "close");
      response.headers.emplace_back("transfer-encoding", "chunked");
      response.headers.emplace_back("keep-alive", "timeout=5");
      response.headers.emplace_back("upgrade", "h2c");
      response.headers.emplace_back("x-upload-id", std::to_string(index_));
    }
    const size_t size = (behaviour_ & kBigResponse) != 0 ? 20000 : 16;
    response.body.assign(size, head_request_ ? 'h' : 'b');
    responder_->Respond(std::move(response));
  }

  Responder* responder_;  // not owned; null once closed
  const uint8_t behaviour_;
  const size_t index_;
  const bool head_request_;
  bool responded_ = false;
  bool ended_ = false;
  bool closed_ = false;
  int pauses_ = 0;       // PauseBody calls not yet resumed
  size_t held_ = 0;      // body bytes not yet given back (kHoldBytes)
  size_t body_bytes_ = 0;
  std::string room_;     // offered as BodyBuffer(), by every other request
};

class FuzzHandler final : public RequestHandler {
 public:
  explicit FuzzHandler(const FuzzPlan& plan) : plan_(plan) {}

  std::shared_ptr<Exchange> Start(RequestHead head, Responder* responder,
                                  EventLoop* loop) override {
    auto exchange = std::make_shared<FuzzExchange>(
        responder, plan_.Behaviour(exchanges_.size()), exchanges_.size(),
        head.method == "HEAD");
    exchanges_.push_back(exchange);
    {
      CallbackScope scope;
      Check(head.protocol == "HTTP/1.1" || head.protocol == "HTTP/2");
      exchange->StartActions();
    }
    if (exchange->waits_for_reply() && (plan_.act_flavour & kPostedReplies) != 0 &&
        loop != nullptr) {
      // As a consumer's reply comes back: a task on the loop, holding a weak_ptr.
      loop->Post([weak = std::weak_ptr<FuzzExchange>(exchange)] {
        if (auto e = weak.lock()) e->RespondFromOutside();
      });
    }
    return exchange;
  }

  // What the harness does between reads (see kAct*); `flavour` picks which.
  void Act(uint8_t flavour, FuzzIo* io, std::unique_ptr<ProtocolSession>* session) {
    if ((flavour & kActResume) != 0) {
      ForEachLive([](FuzzExchange* e) { e->ResumeFromOutside(); });
    }
    if ((flavour & kActConsume) != 0) {
      ForEachLive([](FuzzExchange* e) { e->ConsumeFromOutside(); });
    }
    std::vector<std::shared_ptr<FuzzExchange>> waiting;
    for (const auto& weak : exchanges_) {
      std::shared_ptr<FuzzExchange> e = weak.lock();
      if (e != nullptr && e->waits_for_reply()) waiting.push_back(std::move(e));
    }
    if ((flavour & kActNewestFirst) != 0) std::reverse(waiting.begin(), waiting.end());
    if ((flavour & kActRespondOne) != 0 && waiting.size() > 1) waiting.resize(1);
    for (const auto& e : waiting) e->RespondFromOutside();
    waiting.clear();  // only the session may keep an Exchange alive
    if ((flavour & kActDrainOutput) != 0) io->DrainOutput(session->get());
    if ((flavour & kActRunPosted) != 0) io->RunPosted();
    // Connection offers buffered input again once reading resumes.
    io->ProcessInput(session);
  }

  // After the session is gone: it released every Exchange.
  void CheckNothingLeft() const {
    for (const auto& weak : exchanges_) Check(weak.expired());
  }

 private:
  template <typename F>
  void ForEachLive(F f) {
    // By index: acting may start no new request, but stay safe if it did.
    for (size_t i = 0; i < exchanges_.size(); ++i) {
      if (std::shared_ptr<FuzzExchange> e = exchanges_[i].lock()) f(e.get());
    }
  }

  const FuzzPlan& plan_;
  std::vector<std::weak_ptr<FuzzExchange>> exchanges_;
};

// Plays `input` into `session` piece by piece as `plan` says, with the harness's acts
// in between and `start_drain` called on the current session (an h2c Upgrade may
// have replaced it) after piece `drain_after` when `drain`; then, unless the plan
// hangs up abruptly, the final acts (and maybe a half-close, after which a session
// that still answers must ask to close); then closes the connection. `after_close`
// checks the closed session before it is destroyed; afterwards the session's late
// tasks run and nothing may be left of it.
inline void PlayAndClose(const FuzzPlan& plan, std::string_view input, bool drain,
                         size_t drain_after,
                         const std::function<void(ProtocolSession*)>& start_drain,
                         const std::function<void(ProtocolSession*)>& after_close,
                         FuzzIo& io, FuzzHandler& handler,
                         std::unique_ptr<ProtocolSession> session) {
  size_t offset = 0;
  for (size_t piece = 0; offset < input.size() && !io.closed(); ++piece) {
    const size_t n = plan.PieceSize(piece, input.size() - offset);
    io.Receive(input.substr(offset, n), &session);
    offset += n;
    if (drain && piece == drain_after && !io.closed_now()) start_drain(session.get());
    if (plan.ActsAfter(piece) && !io.closed_now()) handler.Act(plan.act_flavour, &io, &session);
  }
  // The client has sent everything and waits: deferred replies, resumes, window
  // updates and output go their way, unless it hangs up at once.
  if ((plan.act_flavour & kAbruptClose) == 0) {
    for (int round = 0; round < 3 && !io.closed_now(); ++round) {
      handler.Act(kFinalAct, &io, &session);
    }
    if ((plan.act_flavour & kHalfCloseAtEnd) != 0) {
      io.EndInput(session.get());
      if (io.answers_after_input_end()) {
        // It still answers what it received whole, then asks to close.
        for (int round = 0; round < 3 && !io.closed(); ++round) {
          handler.Act(kFinalAct, &io, &session);
        }
        Check(io.closed());
      }
    }
  }
  session->OnClose();
  after_close(session.get());
  session.reset();
  io.RunPosted();  // tasks of the dead session must find it gone
  handler.CheckNothingLeft();
}

}  // namespace spillway::fuzz

#endif  // SPILLWAY_TESTS_FUZZ_SESSION_FUZZ_HARNESS_H_
