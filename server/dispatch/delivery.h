// Delivery: one consumer's handle on one attempt at delivering one upload. It is how a
// consumer pulls the upload's events (upload_event.h) and answers it.
//
// Pull-driven, one event at a time: the consumer calls Next() and gets exactly one
// event through its callback; it asks for the next only when done with the previous
// one (a gRPC consumer: after the previous write completed). That is the whole of
// backpressure: in stream mode, bytes stop being read from the uploader while the
// consumer does not ask (h2o's write/proceed).
//
// Answering: Reply() once, at any time, possibly early (after RequestStarted, say);
// the server then stops delivering the upload and answers the uploader. Fail() says the
// consumer broke (its gRPC stream died, its disk failed) before replying: a buffered
// upload is redelivered to another consumer with attempt + 1 (up to
// MAX_DELIVERY_ATTEMPTS, then 502); a streamed one ends with 502. Destroying the
// Delivery without Reply() or Fail() counts as Fail(). After Reply() or Fail(), Next()
// must not be called; the consumer is free for its next upload from that moment.
// Reply() and Fail() release the upload's bytes at once (views from earlier events
// become invalid), so that temp files are gone before the uploader sees the answer.
// They may be called while a Next() is outstanding (stream mode, waiting for bytes):
// its callback then runs, with RequestAborted, before they return.
//
// Ownership: the consumer owns its Delivery (std::unique_ptr) from Consumer::Start()
// until it lets go. Holding it keeps the upload's bytes (and temp files) alive; once
// it is answered and released they go away.
//
// Threading: all methods are thread-safe and may be called from any thread, but calls
// on one Delivery must not overlap (one Next() outstanding at a time; Reply() or
// Fail() may come while it is outstanding, once the Next() call returned). The Next()
// callback runs exactly once, either inline (buffered uploads: the bytes are read on
// the calling thread, which is where disk reads belong) or later on another thread
// (stream mode: when the bytes arrive). A callback that runs inside Next() must not
// call Next() (a buffered upload would recurse through all of its events): call it
// once Next() has returned. One that runs later (run by the stream's producer, with no
// lock held, as the bytes arrive) may call Next() again when done with its event. The
// callback must not block.
#ifndef SPILLWAY_SERVER_DISPATCH_DELIVERY_H_
#define SPILLWAY_SERVER_DISPATCH_DELIVERY_H_

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/dispatch/consumer_reply.h"
#include "server/dispatch/upload_event.h"

namespace spillway {

class Delivery {
 public:
  // Receives the next event, or an error when there is none to give: Next() after
  // the last event (kFailedPrecondition), or the bytes could not be read (kDataLoss,
  // kInternal); on an error the consumer should Fail().
  using NextCallback = absl::AnyInvocable<void(absl::StatusOr<UploadEvent>) &&>;

  virtual ~Delivery() = default;

  // The upload's unique id (the same in every attempt's RequestStarted).
  virtual std::string_view upload_id() const = 0;

  // Requests the next event. REQUIRES: no other Next() outstanding; no Reply()/Fail()
  // yet.
  virtual void Next(NextCallback callback) = 0;

  // Answers the upload. A reply HTTP cannot carry (ConsumerReply::Validate: a status
  // outside 200..599, a header with a line break) is turned into a 502. Ignored when
  // the upload was already answered (it timed out, or the uploader went away).
  virtual void Reply(ConsumerReply reply) = 0;

  // The consumer cannot finish this upload. `why` is logged and, for the final
  // attempt, named in the 502.
  virtual void Fail(absl::Status why) = 0;

  // Asks to be told once if the upload ends while this delivery still holds it, other
  // than by its own Reply() or Fail(): the reply timed out (REPLY_TIMEOUT) or the
  // uploader went away. A consumer that has taken the last event and is working on
  // its reply pulls nothing more, so this is the only way it learns that no reply is
  // wanted; its next Next() then yields RequestAborted (even after RequestFinished),
  // and once it lets go of the delivery it is free for the next upload.
  // `callback` runs on any thread with no lock held, inline before this returns if
  // the upload is already over; it must not block. It is destroyed without running
  // if this delivery answers first. A later call replaces an earlier callback.
  virtual void NotifyWhenOver(absl::AnyInvocable<void() &&> callback) = 0;
};

// Convenience for consumers that run on their own thread (the built-in sinks): waits
// for the next event. Must not be called on a thread that the event depends on (an
// event loop thread).
absl::StatusOr<UploadEvent> NextEventBlocking(Delivery& delivery);

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_DELIVERY_H_
