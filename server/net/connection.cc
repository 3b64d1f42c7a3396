#include "server/net/connection.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace spillway {
namespace {

constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// Reads per readiness event before yielding to other connections on the loop.
constexpr int kMaxReadsPerEvent = 16;

}  // namespace

class Connection::Scope {
 public:
  explicit Scope(Connection* connection) : connection_(connection) {
    ++connection_->depth_;
  }
  ~Scope() {
    if (--connection_->depth_ == 0) connection_->AfterCallbacks();
  }

 private:
  Connection* const connection_;
};

Connection::Connection(EventLoop* loop, UniqueFd fd, std::string remote_address,
                       SessionFactory* factory, const Options& options,
                       ClosedCallback on_closed)
    : loop_(loop),
      fd_(std::move(fd)),
      remote_address_(std::move(remote_address)),
      factory_(factory),
      options_(options),
      on_closed_(std::move(on_closed)),
      read_size_(options.read_chunk) {}

Connection::~Connection() {
  // Normally Finalize() already ran; this covers a registry torn down at exit.
  if (linger_timer_ != 0) loop_->CancelTimer(linger_timer_);
  if (first_bytes_timer_ != 0) loop_->CancelTimer(first_bytes_timer_);
  if (send_timer_ != 0) loop_->CancelTimer(send_timer_);
  if (watching_) loop_->Unwatch(fd_.get());
  if (session_ != nullptr && !finalized_) session_->OnClose();
}

absl::Status Connection::Start() {
  if (options_.tls != nullptr) {
    absl::StatusOr<std::unique_ptr<TlsStream>> tls = options_.tls->NewStream(fd_.get());
    if (!tls.ok()) return tls.status();
    tls_ = std::move(*tls);
  }
  interest_ = EPOLLIN | EPOLLRDHUP;
  absl::Status status = loop_->Watch(fd_.get(), interest_, this);
  watching_ = status.ok();
  if (watching_ && options_.first_bytes_timeout > absl::ZeroDuration() &&
      options_.first_bytes_timeout != absl::InfiniteDuration()) {
    // A client that connects and says nothing (or only part of the HTTP/2 preface)
    // has no session to time it out yet. Nothing is answered: no protocol is known.
    std::weak_ptr<Connection> weak = weak_from_this();
    first_bytes_timer_ = loop_->AddTimer(options_.first_bytes_timeout, [weak] {
      if (auto self = weak.lock()) {
        self->first_bytes_timer_ = 0;
        if (self->session_ == nullptr && !self->lingering_) self->CloseNow();
      }
    });
  }
  return status;
}

void Connection::Drain() {
  if (closed_) return;
  if (session_ == nullptr) {
    CloseNow();
    return;
  }
  Scope scope(this);
  factory_->Drain(session_.get());
}

void Connection::OnIoEvent(uint32_t events) {
  Scope scope(this);
  if (events & EPOLLERR) {
    CloseNow();
    return;
  }
  if (events & EPOLLOUT) FlushOutput();
  if (!closed_ && (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))) ReadFromSocket();
  // TLS: a read that waited for the socket to take output, or a write that waited
  // for input, goes on now.
  if (!closed_ && tls_ != nullptr) {
    if ((events & EPOLLOUT) && tls_->read_wants_write()) ReadFromSocket();
    if ((events & EPOLLIN) && tls_->write_wants_read()) FlushOutput();
  }
  // EPOLLHUP is reported even when we do not ask for input (reading paused): both
  // directions are gone, so nothing can be sent or read any more. Without this a
  // paused connection would spin on it.
  if (!closed_ && (events & EPOLLHUP) && pause_count_ > 0) CloseNow();
}

void Connection::ReadFromSocket() {
  for (int i = 0; i < kMaxReadsPerEvent && !closed_ && !eof_; ++i) {
    if (lingering_) {
      // Discard: the session is done; we only wait for the peer to see our FIN.
      char sink[16 * 1024];
      ssize_t n = ::read(fd_.get(), sink, sizeof(sink));
      if (n > 0) continue;
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      CloseNow();  // EOF or error: the peer has what we sent
      return;
    }
    if (pause_count_ > 0 || close_after_write_) return;
    if (in_.size() >= options_.max_read_buffer) return;
    // Straight into the session's room when it offers one (nothing is buffered, so
    // the order holds); else into our buffer.
    std::span<char> target;
    if (in_.empty() && session_ != nullptr) target = session_->InputBuffer();
    const bool direct = !target.empty();
    if (!direct) target = std::span<char>(in_.PrepareWrite(read_size_), read_size_);
    target = target.first(std::min(target.size(), read_size_));
    ssize_t n = ReadSome(target.data(), target.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      CloseNow();
      return;
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    if (direct) {
      OfferInPlace(std::string_view(target.data(), static_cast<size_t>(n)));
    } else {
      in_.Commit(static_cast<size_t>(n));
    }
    ProcessInput();
    // Likely drained; not so with TLS, which hands out one record per read.
    if (tls_ == nullptr && static_cast<size_t>(n) < target.size()) break;
  }
  if (closed_) return;
  // Input OpenSSL holds raises no epoll event: come back for it.
  if (tls_input_pending() && CanReadInput()) PostProcessInput();
  if (eof_) {
    if (lingering_) {
      CloseNow();  // the peer has what we sent
      return;
    }
    ProcessInput();
    EndInputIfConsumed();
  }
  UpdateInterest();
}

ssize_t Connection::ReadSome(char* buffer, size_t size) {
  return tls_ != nullptr ? tls_->Read(buffer, size) : ::read(fd_.get(), buffer, size);
}

ssize_t Connection::SendSome(const char* data, size_t size) {
  return tls_ != nullptr ? tls_->Write(data, size)
                         : ::send(fd_.get(), data, size, MSG_NOSIGNAL);
}

void Connection::EndInputIfConsumed() {
  // Paused, the session has not seen all the input yet: asked after it resumes.
  if (!eof_ || input_ended_ || closed_ || close_after_write_ || pause_count_ > 0) return;
  input_ended_ = true;
  if (session_ == nullptr || !session_->OnInputEnd()) CloseNow();
}

void Connection::ExpectInput(uint64_t bytes) {
  // Only a long wait is worth the two setsockopt calls (on, then off at the body's
  // tail): smaller bodies keep the default and never make one.
  read_size_ = bytes >= 2 * options_.bulk_read_chunk ? options_.bulk_read_chunk
                                                       : options_.read_chunk;
  // Not over TLS: a close_notify or an alert is a few bytes, which the low-water
  // mark would hide until BODY_TIMEOUT (a plain peer's FIN wakes epoll regardless).
  const int low_water = tls_ == nullptr && bytes >= 2 * options_.read_chunk
                            ? static_cast<int>(read_size_)
                            : 1;
  if (low_water == receive_low_water_ || closed_) return;
  if (::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVLOWAT, &low_water, sizeof(low_water)) ==
      0) {
    receive_low_water_ = low_water;
  }
}

size_t Connection::UnreadBytes() const {
  int bytes = 0;
  if (closed_ || ::ioctl(fd_.get(), FIONREAD, &bytes) != 0 || bytes < 0) return 0;
  if (bytes == 0 && tls_input_pending()) return 1;  // some, inside OpenSSL
  return static_cast<size_t>(bytes);
}

std::optional<Connection::Offered> Connection::Offer(std::string_view data) {
  absl::StatusOr<size_t> consumed;
  {
    Scope scope(this);
    consumed = session_->OnRead(data);
  }
  if (!consumed.ok()) {
    CloseNow();
    return std::nullopt;
  }
  Offered offered{std::min(*consumed, data.size()), next_session_ != nullptr};
  // The old session's OnRead has returned: it can be destroyed now.
  if (offered.session_replaced) session_ = std::move(next_session_);
  return offered;
}

void Connection::OfferInPlace(std::string_view data) {
  const std::optional<Offered> offered = Offer(data);
  if (!offered.has_value()) return;
  // What the session did not take (it paused) waits in our buffer like any input.
  data.remove_prefix(offered->consumed);
  if (!data.empty()) {
    std::memcpy(in_.PrepareWrite(data.size()), data.data(), data.size());
    in_.Commit(data.size());
  }
}

void Connection::ProcessInput() {
  while (!closed_ && !close_after_write_ && pause_count_ == 0 && !in_.empty()) {
    if (session_ == nullptr && !ChooseSession()) return;
    const std::optional<Offered> offered = Offer(in_.data());
    if (!offered.has_value()) return;
    in_.Consume(offered->consumed);
    if (offered->session_replaced) continue;  // the new session reads on
    if (offered->consumed == 0) return;  // the session waits for more bytes or a resume
  }
}

bool Connection::ChooseSession() {
  const std::string_view alpn = tls_ != nullptr ? tls_->alpn() : std::string_view();
  bool http2;
  if (!alpn.empty()) {
    http2 = alpn == "h2";  // the session checks the preface itself
  } else {
    const std::string_view data = in_.data();
    const size_t n = std::min(data.size(), kHttp2Preface.size());
    http2 = data.substr(0, n) == kHttp2Preface.substr(0, n);
    if (http2 && n < kHttp2Preface.size()) return false;  // need more bytes
  }
  absl::StatusOr<std::unique_ptr<ProtocolSession>> session =
      http2 ? factory_->CreateHttp2(this) : factory_->CreateHttp1(this);
  if (!session.ok()) {
    CloseNow();
    return false;
  }
  session_ = std::move(*session);
  if (first_bytes_timer_ != 0) {
    loop_->CancelTimer(first_bytes_timer_);
    first_bytes_timer_ = 0;
  }
  return true;
}

void Connection::Write(std::string_view bytes) {
  if (closed_ || lingering_ || bytes.empty()) return;
  if (pending_output() == 0) {
    // Fast path: write straight from the caller's bytes, buffer only the rest.
    while (!bytes.empty()) {
      ssize_t n = SendSome(bytes.data(), bytes.size());
      if (n > 0) {
        bytes.remove_prefix(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      CloseNow();  // EPIPE, ECONNRESET: the peer is gone
      return;
    }
    if (bytes.empty()) return;
    out_.clear();
    out_pos_ = 0;
    // Output starts waiting for the peer: from now on it must keep taking bytes.
    last_send_progress_ = loop_->now();
    if (send_timer_ == 0 && options_.send_timeout > absl::ZeroDuration() &&
        options_.send_timeout != absl::InfiniteDuration()) {
      ArmSendTimer(options_.send_timeout);
    }
  }
  out_.append(bytes);
  if (write_blocked()) write_was_blocked_ = true;
  UpdateInterest();
}

bool Connection::write_blocked() const {
  return pending_output() > options_.write_high_watermark;
}

void Connection::FlushOutput() {
  while (pending_output() > 0) {
    ssize_t n = SendSome(out_.data() + out_pos_, pending_output());
    if (n > 0) {
      out_pos_ += n;
      last_send_progress_ = loop_->now();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    CloseNow();
    return;
  }
  if (pending_output() == 0) {
    out_.clear();
    out_pos_ = 0;
  } else if (out_pos_ > (1 << 16) && out_pos_ > out_.size() / 2) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  if (write_was_blocked_ &&
      pending_output() <= options_.write_high_watermark / 2 && session_ != nullptr &&
      !close_after_write_) {
    write_was_blocked_ = false;
    Scope scope(this);
    session_->OnWritable();
  }
  if (closed_) return;
  if (close_after_write_ && pending_output() == 0 && !lingering_) StartLinger();
  UpdateInterest();
}

void Connection::ArmSendTimer(absl::Duration delay) {
  std::weak_ptr<Connection> weak = weak_from_this();
  send_timer_ = loop_->AddTimer(delay, [weak] {
    if (auto self = weak.lock()) self->OnSendTimer();
  });
}

void Connection::OnSendTimer() {
  send_timer_ = 0;
  if (closed_ || pending_output() == 0) return;  // re-armed when output waits again
  const absl::Time deadline = last_send_progress_ + options_.send_timeout;
  if (loop_->now() < deadline) {
    ArmSendTimer(deadline - loop_->now());
    return;
  }
  CloseNow();
}

void Connection::StartLinger() {
  lingering_ = true;
  if (tls_ != nullptr) tls_->Shutdown();
  ::shutdown(fd_.get(), SHUT_WR);
  // Discard what the peer still sends until it closes, or give up after a while.
  std::weak_ptr<Connection> weak = weak_from_this();
  linger_timer_ = loop_->AddTimer(options_.linger, [weak] {
    if (auto self = weak.lock()) {
      self->linger_timer_ = 0;
      self->CloseNow();
    }
  });
  UpdateInterest();
  ReadFromSocket();
}

void Connection::PauseReading() {
  ++pause_count_;
  UpdateInterest();
}

void Connection::ResumeReading() {
  if (pause_count_ == 0) return;  // unbalanced resume: ignore rather than go negative
  if (--pause_count_ > 0) return;
  UpdateInterest();
  if (!in_.empty() || eof_ || tls_input_pending()) {
    // Bytes already buffered are offered at once, but never from inside the caller's
    // stack (it may be the session or an Exchange).
    if (depth_ > 0) {
      reprocess_ = true;
    } else {
      PostProcessInput();
    }
  }
}

void Connection::PostProcessInput() {
  if (process_posted_) return;
  process_posted_ = true;
  std::weak_ptr<Connection> weak = weak_from_this();
  loop_->Post([weak] {
    auto self = weak.lock();
    if (self == nullptr) return;
    self->process_posted_ = false;
    Scope scope(self.get());
    self->reprocess_ = true;
  });
}

void Connection::CloseAfterWrite() {
  if (closed_ || close_after_write_) return;
  close_after_write_ = true;
  if (pending_output() == 0) {
    if (depth_ > 0) {
      // Linger starts when the callback unwinds (AfterCallbacks flushes).
      reprocess_ = true;
    } else {
      StartLinger();
    }
  }
}

void Connection::CloseNow() {
  if (closed_) return;
  closed_ = true;
  if (watching_) {
    loop_->Unwatch(fd_.get());
    watching_ = false;
  }
  if (linger_timer_ != 0) {
    loop_->CancelTimer(linger_timer_);
    linger_timer_ = 0;
  }
  if (first_bytes_timer_ != 0) {
    loop_->CancelTimer(first_bytes_timer_);
    first_bytes_timer_ = 0;
  }
  if (send_timer_ != 0) {
    loop_->CancelTimer(send_timer_);
    send_timer_ = 0;
  }
  // Finalizing calls into the session; never while one of its methods (or the
  // caller's) may be on the stack.
  if (depth_ == 0) {
    std::weak_ptr<Connection> weak = weak_from_this();
    loop_->Post([weak] {
      if (auto self = weak.lock()) self->Finalize();
    });
  }
}

void Connection::ReplaceSession(std::unique_ptr<ProtocolSession> next) {
  next_session_ = std::move(next);
}

void Connection::AfterCallbacks() {
  // Runs with depth_ held at 1 so that the scopes opened below do not come back here;
  // Finalize() runs last, at depth 0, when nothing of the session is on the stack.
  ++depth_;
  while (!closed_) {
    if (next_session_ != nullptr && session_ != nullptr) {
      session_ = std::move(next_session_);
      reprocess_ = true;
    }
    if (!reprocess_) break;
    reprocess_ = false;
    if (close_after_write_) {
      if (pending_output() == 0 && !lingering_) StartLinger();
      continue;
    }
    ProcessInput();
    // What OpenSSL still holds, once there is room for it (epoll will not tell).
    if (tls_input_pending() && CanReadInput()) ReadFromSocket();
    EndInputIfConsumed();
    if (!closed_) UpdateInterest();
  }
  --depth_;
  if (closed_ && !finalized_) Finalize();
}

void Connection::Finalize() {
  if (finalized_) return;
  finalized_ = true;
  closed_ = true;
  if (watching_) {
    loop_->Unwatch(fd_.get());
    watching_ = false;
  }
  if (session_ != nullptr) session_->OnClose();
  session_.reset();
  next_session_.reset();
  tls_.reset();  // before its socket goes
  fd_.reset();
  if (on_closed_) on_closed_(this);
}

bool Connection::CanReadInput() const {
  return !eof_ && !close_after_write_ && !lingering_ && pause_count_ == 0 &&
         in_.size() < options_.max_read_buffer;
}

void Connection::UpdateInterest() {
  if (closed_ || !watching_) return;
  uint32_t want = 0;
  if (lingering_ || CanReadInput()) want |= EPOLLIN | EPOLLRDHUP;
  if (pending_output() > 0) want |= EPOLLOUT;
  if (tls_ != nullptr) {
    // The handshake's turns: a read waiting to write, or a write waiting to read
    // (then EPOLLOUT would only spin).
    if (tls_->read_wants_write()) want |= EPOLLOUT;
    if (tls_->write_wants_read() && pending_output() > 0) {
      want = (want & ~static_cast<uint32_t>(EPOLLOUT)) | EPOLLIN | EPOLLRDHUP;
    }
  }
  if (want == interest_) return;
  if (loop_->Modify(fd_.get(), want, this).ok()) interest_ = want;
}

}  // namespace spillway
