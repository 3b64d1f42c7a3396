// StreamUploadSource: the UploadSource of a streamed upload (DESIGN.md §1 stream
// mode): the request is dispatched when its headers arrive and its body flows to the
// consumer in STREAM_BODY_CHUNK_SIZE chunks as it arrives. A multipart body is still
// parsed as it goes: Field for each plain part, and FileStarted (mode stream, size
// unknown), Chunks and FileFinished (size and checksum computed on the way) per file;
// any other body is one unnamed file. It can be read once: a consumer that breaks
// cannot be replaced (502).
//
// The one place bytes wait. Events queue here between the producer (the connection's
// loop thread: Feed/Finish) and the consumer (its own thread: the cursor's Next). The
// queue is bounded by watermarks on the bytes it holds: at or above high_watermark
// (4 chunks) the producer asks StreamFlow::Pause(); when the consumer has brought it
// down to low_watermark (high / 2) the source asks StreamFlow::Resume(), once per
// Pause. In between, the session stops reading the socket (HTTP/1.1) or withholds
// WINDOW_UPDATE (HTTP/2). A consumer that does not pull therefore holds the uploader
// still, and memory stays at a few chunks whatever the body size. Until a consumer
// has the upload (OpenCursor) the source counts as full: Create() asks Pause() at
// once, so the body is not read before then (DESIGN.md §3), beyond what the client
// may already send (its HTTP/2 window, the socket's buffers).
//
// Chunk buffers are recycled: once the consumer moves past a chunk (its next Next()),
// the chunk's buffer goes to a free list that the producer fills its next chunk from,
// so a long stream reuses a few buffers instead of allocating (and page-faulting in)
// a fresh STREAM_BODY_CHUNK_SIZE block per chunk. The free list holds at most
// high_watermark / chunk_size buffers, so queued plus free chunk memory stays within
// twice the high watermark. A consumer may take a chunk's buffer instead
// (ChunkEvent::buffer; the gRPC Consume stream does, to hand the bytes to gRPC
// uncopied) and leave another string in its place: one with a chunk's capacity is
// recycled like the original (Consume leaves a buffer gRPC has finished with), an
// empty one makes the producer allocate afresh. The bytes the consumer's transport
// still holds are bounded by that consumer (one write in flight, for Consume).
//
// Reading in place: the chunk being filled is a whole chunk long, and FeedSpace()
// lends the producer its unfilled end. A producer that reads raw body bytes from
// the socket straight there (HTTP/1.1, Connection) passes them to Feed() as they lie,
// and Feed() recognizes them and copies nothing: the copy from a read buffer into
// the chunk was 15% of the server's CPU when a 1 GiB raw body streamed to a gRPC
// consumer.
//
// Hand-off: one Mutex guards the queue, the watermark state and the consumer's
// pending Next() callback. A callback is never run with the mutex held: the producer
// runs a waiting consumer's callback itself, after unlocking, when it pushes the event
// the consumer waits for (so the callback must not block, as delivery.h requires).
//
// Ownership: shared by the exchange (producer), the dispatcher and the delivery's
// cursor. `flow` is not owned; the producer must Detach() it before it goes away.
// Threading: Feed, FeedSpace, Finish and the Replay* calls on the producer's thread
// (which alone touches the chunk being filled); the cursor on the consumer's; Abort
// and Detach from any thread.
#ifndef SPILLWAY_SERVER_DISPATCH_STREAM_UPLOAD_SOURCE_H_
#define SPILLWAY_SERVER_DISPATCH_STREAM_UPLOAD_SOURCE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "server/common/mutex.h"
#include "server/dispatch/upload_source.h"
#include "server/upload/checksum.h"
#include "server/upload/multipart_parser.h"

namespace spillway {

// What the source asks of the HTTP side. Pause() is called on the producer's thread
// (inside Create and Feed); Resume() on the consumer's thread (post it to the loop).
class StreamFlow {
 public:
  virtual ~StreamFlow() = default;
  virtual void Pause() = 0;
  virtual void Resume() = 0;
};

struct StreamUploadOptions {
  size_t chunk_size = 256 * 1024;
  uint64_t max_file_size = 0;  // FILE_UPLOAD_MAX_SIZE; 0 = unlimited
  ChecksumKind checksum = ChecksumKind::kSha256;
  MultipartLimits multipart;
};

class StreamUploadSource final
    : public UploadSource,
      public std::enable_shared_from_this<StreamUploadSource>,
      private MultipartParser::Handler {
 public:
  // As UploadAssembler::Create: multipart/form-data is parsed (a bad boundary is
  // kInvalidArgument), any other body is raw.
  //
  // Taking over a body an UploadAssembler began (an unknown length that outgrew
  // MAX_BODY_SIZE; UploadAssembler::HandOver): a raw body's bytes so far are simply
  // fed first. A multipart body's parser is passed as `continued_parser`, with the
  // body bytes it has read (`bytes_before`), and goes on here; before the next Feed()
  // the producer replays the parts the assembler kept, in order, through
  // ReplayPartBegin/Data/End (StreamReplay), leaving open the part the parser is in.
  static absl::StatusOr<std::shared_ptr<StreamUploadSource>> Create(
      RequestInfo request, const StreamUploadOptions& options, StreamFlow* flow,
      std::unique_ptr<MultipartParser> continued_parser = nullptr,
      uint64_t bytes_before = 0);
  ~StreamUploadSource() override;

  // UploadSource
  const RequestInfo& request() const override { return request_; }
  UploadMode mode() const override { return UploadMode::kStream; }
  bool replayable() const override { return false; }
  std::unique_ptr<EventCursor> OpenCursor(const CursorOptions& options) override;
  void Abort(std::string_view reason) override;

  // Producer side. Errors (malformed body, file too large) end the upload: every
  // later call fails, and the caller answers the uploader and cancels the upload
  // (UploadHandle::Cancel), which gives the consumer RequestAborted.
  absl::Status Feed(std::string_view data);
  // Room at the end of the chunk being filled: bytes written there and then passed
  // to Feed() from the start of the room are taken uncopied. Empty when bytes must
  // come through Feed() from elsewhere: a multipart body (its parser holds back what
  // may be a boundary), before the first Feed() of a raw body, after an error. Valid
  // until the next producer call.
  std::span<char> FeedSpace();
  absl::Status Finish();
  // Parts parsed before this source took over (see Create), as the parser reported
  // them. Errors as Feed's.
  absl::Status ReplayPartBegin(const PartHeaders& headers);
  absl::Status ReplayPartData(std::string_view data);
  absl::Status ReplayPartEnd();
  // No more flow callbacks after this returns.
  void Detach();

  size_t high_watermark() const { return 4 * options_.chunk_size; }
  size_t low_watermark() const { return high_watermark() / 2; }
  // Bytes waiting in the queue, for tests and metrics.
  size_t queued_bytes() const;

 private:
  class Cursor;
  struct Event;  // an owned UploadEvent

  StreamUploadSource(RequestInfo request, const StreamUploadOptions& options,
                     StreamFlow* flow, std::unique_ptr<MultipartParser> parser,
                     uint64_t bytes_before);

  // MultipartParser::Handler
  absl::Status OnPartBegin(const PartHeaders& headers) override;
  absl::Status OnPartData(std::string_view data) override;
  absl::Status OnPartEnd() override;
  absl::Status OnBodyEnd() override;

  void BeginFile(std::string field_name, std::string filename, std::string content_type,
                 std::optional<uint64_t> size);
  absl::Status FileData(std::string_view data);
  void EndFile();
  void FlushChunk();
  void Push(Event event);
  // Keeps the chunk buffer of the event the consumer held (current_) for reuse, if
  // the consumer left it a chunk's capacity and the free list has room. Called
  // before current_ is overwritten.
  void RecycleCurrentLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A string a chunk long, its bytes unspecified: a recycled buffer if there is one.
  std::string TakeChunkBuffer();
  // Consumer side: takes the next event into current_, or keeps `callback` for the
  // producer to run when one arrives.
  void CursorNext(Delivery::NextCallback callback);
  // Resume()s the flow once the queue is down to the low watermark. A consumer exists.
  void MaybeResumeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Producer errors end the upload for the consumer, too.
  absl::Status CheckProducer(absl::Status status);

  const RequestInfo request_;
  const StreamUploadOptions options_;

  // Producer-only state (loop thread).
  std::unique_ptr<MultipartParser> parser_;  // null for a raw body
  bool raw_started_ = false;
  bool in_file_ = false;
  std::string field_name_;   // current plain part
  std::string field_value_;
  std::string chunk_;        // the chunk being filled: a chunk long, or empty if none
  size_t chunk_fill_ = 0;    // bytes of chunk_ filled
  uint64_t file_offset_ = 0;  // of chunk_[0]
  uint64_t file_size_ = 0;
  Checksum checksum_ = Checksum::Create(ChecksumKind::kNone);
  uint64_t total_bytes_ = 0;
  absl::Status producer_status_;

  mutable Mutex mu_;
  StreamFlow* flow_ ABSL_GUARDED_BY(mu_);  // not owned; null once detached
  std::deque<Event> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<std::string> abort_reason_ ABSL_GUARDED_BY(mu_);
  Delivery::NextCallback pending_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> free_chunks_ ABSL_GUARDED_BY(mu_);  // empty, chunk-sized
  // The event the consumer holds: the views it was given point here. There is only
  // one cursor, so it lives in the source, which outlives any late callback. Written
  // under mu_ when handed over; read by the consumer until its next Next(), which is
  // also when its chunk buffer can be recycled.
  std::unique_ptr<Event> current_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_STREAM_UPLOAD_SOURCE_H_
