// Http2Stream: one request/response exchange on an Http2Session; the Exchange's
// Responder. Holds the request head while its headers arrive, the Exchange once
// started, the body's flow-control accounting and the response being sent.
//
// Ownership: owned by its Http2Session (one unique_ptr per open stream); destroyed when
// nghttp2 closes the stream or the session goes away, right after the Exchange's
// OnStreamClosed(). `session_` is a non-owning back-pointer.
// Threading: loop thread only.
//
// Body lifecycle (BodyState):
//   kReceiving   DATA goes to the Exchange; windows reopen as it ConsumeBody()s.
//   kEnded       END_STREAM seen and OnBodyEnd() delivered (or the request had none).
//   kDiscarding  the Exchange responded early or refused data: bytes are consumed
//                (window reopened) and dropped on arrival; no OnBodyEnd. Once the
//                response is out and the discard budget spent: RST_STREAM(NO_ERROR).
//
// Flow-control accounting: `unconsumed_` counts bytes handed to the Exchange that it
// has not ConsumeBody()'d yet; they hold both the stream and connection windows.
// ConsumeBody() returns them to the connection at once, and to the stream unless the
// stream is paused, in which case they wait in `withheld_` until the last ResumeBody().
#ifndef SPILLWAY_SERVER_HTTP_HTTP2_STREAM_H_
#define SPILLWAY_SERVER_HTTP_HTTP2_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "server/http/exchange.h"
#include "server/http/http_response.h"
#include "server/http/request_head.h"

namespace spillway {

class Http2Session;

class Http2Stream final : public Responder {
 public:
  enum class BodyState { kReceiving, kEnded, kDiscarding };

  Http2Stream(Http2Session* session, int32_t id) : session_(session), id_(id) {}
  Http2Stream(const Http2Stream&) = delete;
  Http2Stream& operator=(const Http2Stream&) = delete;

  // Responder. All are no-ops once the stream is closed. None sends or calls back
  // into an Exchange (see Http2Session's re-entrancy note).
  void Respond(HttpResponse response) override;
  void PauseBody() override;
  void ResumeBody() override;
  void ConsumeBody(size_t bytes) override;

  int32_t id() const { return id_; }

 private:
  friend class Http2Session;

  Http2Session* const session_;  // not owned; outlives the stream
  const int32_t id_;

  // Request headers, while they arrive (then handed to RequestHandler::Start).
  RequestHead head_;
  std::string authority_;
  size_t header_bytes_ = 0;   // RFC 7541 §4.1 sizes: name + value + 32
  size_t header_fields_ = 0;
  bool header_too_large_ = false;

  std::shared_ptr<Exchange> exchange_;  // null until Start (and for refused requests)
  BodyState body_ = BodyState::kReceiving;
  bool head_request_ = false;
  size_t unconsumed_ = 0;  // delivered to the Exchange, not yet consumed
  size_t withheld_ = 0;    // consumed while paused: stream WINDOW_UPDATE held back
  int pause_count_ = 0;

  // Response: submitted at most once; the body is read by nghttp2 from here.
  bool responded_ = false;
  std::optional<HttpResponse> response_;
  size_t response_offset_ = 0;

  bool response_sent_ = false;  // its END_STREAM is out
  // When the response was submitted or its body last handed DATA to nghttp2.
  absl::Time response_progress_at_;
  uint64_t discarded_ = 0;  // body bytes dropped after an early response
  bool reset_sent_ = false;  // RST_STREAM(NO_ERROR) submitted

  bool closed_ = false;  // nghttp2 closed it, or the session is going away

  // Timeouts (loop clock): when the stream last made progress (HEADERS begun, DATA,
  // a window reopened, a pause released).
  absl::Time progress_at_;
  bool head_done_ = false;  // END_HEADERS seen
  bool timed_out_ = false;  // answered 408 by the body timeout: reset once it is out
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_HTTP2_STREAM_H_
