#include "server/http/http2_stream.h"

#include <algorithm>
#include <utility>

#include "server/http/http2_session.h"

namespace spillway {

void Http2Stream::Respond(HttpResponse response) {
  if (closed_ || responded_) return;
  responded_ = true;
  response_ = std::move(response);
  session_->SubmitResponse(this);
  session_->RequestFlush();
}

void Http2Stream::PauseBody() {
  if (closed_) return;
  ++pause_count_;
}

void Http2Stream::ResumeBody() {
  if (closed_ || pause_count_ == 0) return;
  if (--pause_count_ > 0) return;
  session_->Touch(this);  // the uploader may send again: its clock starts over
  if (withheld_ == 0) return;
  // The last pauser let go: give the stream back what the exchange took meanwhile.
  const size_t bytes = std::exchange(withheld_, 0);
  session_->ConsumeStream(id_, bytes);
  session_->RequestFlush();
}

void Http2Stream::ConsumeBody(size_t bytes) {
  if (closed_) return;
  // Clamped: bytes already given back (a discard) must not be given back twice, or
  // the window would grow past what the client was promised.
  bytes = std::min(bytes, unconsumed_);
  if (bytes == 0) return;
  unconsumed_ -= bytes;
  session_->Touch(this);  // the window reopens: the clock starts over
  // The connection window always reopens, so a paused stream never stalls the
  // others; the stream's own window waits for the last ResumeBody.
  session_->ConsumeConnection(bytes);
  if (pause_count_ > 0) {
    withheld_ += bytes;
  } else {
    session_->ConsumeStream(id_, bytes);
  }
  session_->RequestFlush();
}

}  // namespace spillway
