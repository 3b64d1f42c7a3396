// ConsumeReactor: the server side of one Consume stream (ingest.proto), on the gRPC
// callback API. A downstream consumer attaches (first message: Attach), becomes a
// Consumer of the Dispatcher (one upload at a time) and, for each Delivery it is
// given, receives the upload's events as ServerMessages and answers with a Reply.
// The method is raw (IngestService): the reactor parses each ConsumerMessage itself
// and writes ServerMessages already encoded (ServerMessageEncoder), so that a
// streamed chunk's bytes go to gRPC as a slice of their own instead of being copied
// by protobuf serialization. A message that does not parse ends the stream with
// INVALID_ARGUMENT, which fails the delivery as any broken stream does.
//
// Backpressure: exactly one write in flight, and the next event is pulled
// (Delivery::Next) only once the previous write completed (OnWriteDone). A stream-mode
// upload is thereby read from its uploader no faster than this consumer takes it.
//
// Answers: a Reply (early or not) goes to Delivery::Reply. A stream that breaks, is
// cancelled or half-closes before replying makes the delivery Fail(): the dispatcher
// redelivers a buffered upload and answers a streamed one with 502. RequestAborted
// (timeout, uploader gone) is written and the delivery let go; no Reply is wanted.
// A paths_only consumer gets FileStarted.path_only and no Chunks for spilled files
// (the cursor does that, from ConsumerSpec).
//
// Once RequestFinished has gone out nothing more is pulled, so the reactor asks the
// delivery to say if the upload ends before the consumer replies
// (Delivery::NotifyWhenOver): the reply timed out (504) or the uploader went away.
// Then one more Next() yields RequestAborted, which is written like any other, and
// the stream is free for the next upload. The watch is set from the delivery's start,
// so an upload that ends while the consumer has not even taken the message being
// written (for REPLY_TIMEOUT: it stopped reading) cancels the call: otherwise that
// write, and with it the upload's temp files and the stream, would be held for as
// long as the consumer stays silent. A late Reply naming the aborted upload is
// dropped. A Reply naming no upload ends the stream (INVALID_ARGUMENT): it could be a
// second answer to the upload before, arriving when the next one is held.
//
// Ownership: gRPC owns nothing here; the reactor is heap-allocated by
// IngestService::Consume and deletes itself in OnDone(), and only there. It leaves
// the Dispatcher's registry as soon as the stream breaks (not only in OnDone), so no
// upload is offered to a dying stream for longer than necessary. The
// Dispatcher holds a StreamConsumer (shared_ptr) that points back to the reactor; the
// reactor detaches it in OnDone() and waits for any Start() running through it, so a
// late Start() finds no reactor and lets the delivery go (it is redelivered). Next()
// callbacks carry a token the reactor counts; OnDone() waits until every token is
// gone, since a stream-mode callback may still run on the producer's thread after the
// delivery was let go.
//
// Threading: gRPC reactions (OnReadDone, OnWriteDone, OnCancel, OnDone) come on
// gRPC's threads, possibly concurrently; Start() comes on any thread; a Next()
// callback comes inline or on an HTTP loop thread. All state is guarded by mu_.
// Calls on the Delivery and the gRPC operations (StartWrite, Finish) are made by
// exactly one thread at a time, the "driver" (Drive()), never with mu_ held: whoever
// changes the state calls Drive(), which either becomes the driver or leaves the
// work to the running one. So Delivery calls never overlap, a callback never calls
// Next() from inside itself, and nothing blocks under the lock.
#ifndef SPILLWAY_SERVER_GRPC_CONSUME_REACTOR_H_
#define SPILLWAY_SERVER_GRPC_CONSUME_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/common/mutex.h"
#include "server/dispatch/consumer.h"
#include "server/dispatch/dispatcher.h"
#include "server/grpc/server_message_encoder.h"
#include "spillway/v1/ingest.pb.h"

namespace spillway {

class ConsumeReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // `dispatcher` is not owned and must outlive the gRPC server; `context` is the
  // call's (gRPC's, valid until OnDone).
  ConsumeReactor(Dispatcher* dispatcher, grpc::CallbackServerContext* context);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  class StreamConsumer;
  friend class StreamConsumer;
  class CallbackToken;
  friend class CallbackToken;
  struct Action;

  ~ConsumeReactor() override = default;  // only through OnDone()

  // StreamConsumer::Start.
  void AcceptDelivery(std::unique_ptr<Delivery> delivery);
  // A Next() callback for delivery `generation`.
  void OnEvent(uint64_t generation, absl::StatusOr<UploadEvent> event);
  // The NotifyWhenOver callback for delivery `generation`.
  void OnOver(uint64_t generation);
  void ReleaseCallback();
  // Handles Attach; returns false (with finish_status_ set) on a protocol error.
  bool HandleAttach(const v1::Attach& attach);
  void HandleReply(const v1::Reply& reply);

  // Runs the pending work as the single driver, or leaves it to the running one.
  void Drive();
  Action NextActionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Perform(Action& action);
  // Forgets the per-delivery state: callbacks of earlier generations are stale.
  void StartNewGenerationLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The current delivery leaves delivery_; stale callbacks are ignored afterwards.
  std::unique_ptr<Delivery> TakeDeliveryLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishWithLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Dispatcher* const dispatcher_;  // not owned
  grpc::CallbackServerContext* const context_;  // not owned
  std::shared_ptr<StreamConsumer> consumer_;  // set by Attach

  Mutex mu_;
  CondVar idle_cv_;  // driving_ went false, or callbacks_ dropped
  // The read in flight and its parse; touched by read reactions only.
  grpc::ByteBuffer in_bytes_;
  v1::ConsumerMessage in_;
  bool attached_ ABSL_GUARDED_BY(mu_) = false;
  Dispatcher::ConsumerId consumer_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool unregistered_ ABSL_GUARDED_BY(mu_) = false;
  bool in_read_callback_ ABSL_GUARDED_BY(mu_) = false;  // may still StartRead

  // The current upload.
  std::unique_ptr<Delivery> delivery_ ABSL_GUARDED_BY(mu_);
  std::string upload_id_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool next_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool last_event_taken_ ABSL_GUARDED_BY(mu_) = false;  // no Next() after it...
  // ...unless the upload ended while its reply was awaited: one more, for
  // RequestAborted.
  bool over_ ABSL_GUARDED_BY(mu_) = false;
  bool watch_wanted_ ABSL_GUARDED_BY(mu_) = false;  // RequestFinished was taken
  bool release_after_write_ ABSL_GUARDED_BY(mu_) = false;  // RequestAborted
  absl::Time write_started_at_ ABSL_GUARDED_BY(mu_);  // of the write in flight
  std::optional<ConsumerReply> pending_reply_ ABSL_GUARDED_BY(mu_);
  absl::Status event_error_ ABSL_GUARDED_BY(mu_);

  // The write side. out_ is filled by a Next() callback (no write in flight then)
  // and read by gRPC until OnWriteDone, which lets go of it: a streamed chunk's
  // buffer is then freed as soon as gRPC has sent it, not held until the next event.
  ServerMessageEncoder encoder_;  // used under mu_ while no write is in flight
  grpc::ByteBuffer out_;          // written under mu_ while no write is in flight
  bool out_ready_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t chunk_bytes_in_flight_ ABSL_GUARDED_BY(mu_) = 0;

  // The end of the stream.
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // no Reply can come any more
  std::optional<grpc::Status> finish_status_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;

  bool driving_ ABSL_GUARDED_BY(mu_) = false;
  int callbacks_ ABSL_GUARDED_BY(mu_) = 0;  // live CallbackTokens
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_CONSUME_REACTOR_H_
