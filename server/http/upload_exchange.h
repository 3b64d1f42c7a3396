// UploadExchange: the upload pipeline's side of one HTTP request (exchange.h), on the
// connection's loop thread, between the session and the Dispatcher.
//
// Modes (DESIGN.md §1, §3):
//  - Buffered: a body within MAX_BODY_SIZE is received whole through an
//    UploadAssembler (multipart parsed as it arrives, files spilling past
//    FILE_UPLOAD_MAX_MEMORY_SIZE), each slice acknowledged with ConsumeBody as it is
//    absorbed; at the end the BufferedUpload is submitted to the Dispatcher.
//  - Stream: a Content-Length over MAX_BODY_SIZE is handed to a StreamUploadSource
//    (stream_upload_source.h) and dispatched from the headers; see there for the
//    watermarks. A body of unknown length (chunked, HTTP/2 without content-length)
//    starts buffered; if it grows past MAX_BODY_SIZE the assembler hands over what it
//    holds (UploadAssembler::HandOver), the upload is dispatched as a stream, and
//    that is replayed into it part by part (StreamReplay) under the same watermarks
//    while the body is held (PauseBody); then the live body follows, a multipart one
//    through the assembler's parser, which carries on in the stream.
// The dispatcher's answer (the consumer's reply, or its 502/503/504) comes back
// through EventLoop::Post to a weak_ptr, and becomes the response. Errors found here
// (a malformed body, a limit) are answered at once with HttpStatusFromStatus and a
// JSON body.
//
// Lifetime: the session owns the exchange (shared_ptr); nothing else keeps it alive.
// When the stream closes, whatever way, OnStreamClosed() drops the assembler (memory
// and temp files of a half-received upload) and cancels the upload in the dispatcher;
// a buffered upload's files then live only as long as a consumer still reading them.
//
// Metrics (MetricsRegistry::Global()): spillway_upload_bytes_received_total{mode}
// counts body bytes (uploads in flight are UploadSlots'): stream bytes as they are
// handed on, a buffered body's bytes once complete, under "spill" if any of its files
// spilled, else "memory".
//
// Threading: loop thread only, except the DoneCallback, which only posts.
#ifndef SPILLWAY_SERVER_HTTP_UPLOAD_EXCHANGE_H_
#define SPILLWAY_SERVER_HTTP_UPLOAD_EXCHANGE_H_

#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "server/dispatch/dispatcher.h"
#include "server/dispatch/stream_replay.h"
#include "server/dispatch/stream_upload_source.h"
#include "server/http/exchange.h"
#include "server/upload/multipart_parser.h"
#include "server/upload/spill_budget.h"
#include "server/upload/temp_directory.h"
#include "server/upload/upload_assembler.h"
#include "server/upload/upload_settings.h"

namespace spillway {

struct UploadHandlerOptions {
  UploadSettings settings;
  MultipartLimits multipart;
  TempDirectory* temp_dir = nullptr;  // not owned; outlives the handler
  // MAX_SPILL_BYTES; not owned, outlives the handler and every upload; null: uncounted.
  SpillBudget* spill_budget = nullptr;
  Dispatcher* dispatcher = nullptr;   // not owned; outlives the handler
  // Stream mode for bodies over MAX_BODY_SIZE; when false they get 413.
  bool stream_mode = true;
};

// The RequestHandler for uploads. Thread-safe (immutable): one instance serves every
// loop. REQUIRES: options.temp_dir and options.dispatcher outlive it and every
// exchange it creates.
std::unique_ptr<RequestHandler> MakeUploadHandler(UploadHandlerOptions options);

class UploadExchange final : public Exchange,
                             public std::enable_shared_from_this<UploadExchange>,
                             private StreamFlow {
 public:
  // Use UploadHandler::Start (MakeUploadHandler); public for make_shared and tests.
  UploadExchange(const UploadHandlerOptions* options, Responder* responder,
                 EventLoop* loop);
  ~UploadExchange() override;

  // Called once right after construction (needs shared_from_this).
  void Begin(RequestHead head);

  absl::Status OnBodyData(std::string_view data) override;
  std::span<char> BodyBuffer() override;
  void OnBodyEnd() override;
  void OnStreamClosed() override;

  // The upload's id once dispatched, "" before.
  const std::string& upload_id() const { return upload_.upload_id(); }

 private:
  // The request body's lifecycle.
  enum class State {
    kReceiving,   // buffered: bytes go into the assembler
    kReplaying,   // unknown length grown past MAX_BODY_SIZE: replay_ is being fed
                  // to the stream source, the live body is held
    kStreaming,   // stream mode: bytes go to the stream source; already dispatched
    kDispatched,  // buffered body complete, waiting for the dispatcher's answer
    kResponded,   // the response has been sent; the body, if any, is unwanted
    kClosed,      // the stream is gone
  };

  void Submit(std::shared_ptr<UploadSource> source);
  // `continued_parser`, `bytes_before`: as StreamUploadSource::Create.
  void StartStreaming(std::unique_ptr<MultipartParser> continued_parser = nullptr,
                      uint64_t bytes_before = 0);
  absl::Status SwitchToStream();
  void PumpReplay();
  void OnDispatcherReply(ConsumerReply reply);
  // Sends `response` unless already responded or closed, and lets go of whatever is
  // still being received.
  void Respond(HttpResponse response);
  // Answers an error found here and cancels the upload in the dispatcher.
  void RespondError(const absl::Status& status);

  // StreamFlow: Pause() comes inside OnBodyData (loop thread), Resume() from the
  // consumer's thread (posted).
  void Pause() override;
  void Resume() override;

  const UploadHandlerOptions* const options_;  // not owned (the handler's)
  Responder* responder_;                       // null once closed
  EventLoop* const loop_;                      // not owned
  State state_ = State::kReceiving;
  // Until the assembler takes it (buffered uploads), and again for a stream.
  RequestInfo request_;
  std::unique_ptr<UploadAssembler> assembler_;
  std::shared_ptr<StreamUploadSource> stream_;
  bool stream_paused_ = false;  // the stream source is above its high watermark
  std::optional<StreamReplay> replay_;  // while kReplaying
  std::string held_tail_;       // body bytes that arrived during the replay anyway
  bool end_after_replay_ = false;
  UploadHandle upload_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_UPLOAD_EXCHANGE_H_
