// UploadReactor: the server side of one Upload RPC (ingest.proto), on the gRPC
// callback API. The client streams UploadStart, then fields and files (per file a
// FileHeader and its Chunks). Two modes, as for HTTP (DESIGN.md §1):
//  - Buffered (no declared UploadStart.total_size, or one within MAX_BODY_SIZE): the
//    reactor assembles a BufferedUpload as messages arrive (each file in memory up to
//    FILE_UPLOAD_MAX_MEMORY_SIZE, spilled to a temp file past it, refused past
//    FILE_UPLOAD_MAX_SIZE) and submits it to the Dispatcher when the client
//    half-closes. No multipart parser sees its parts, so each Field and FileHeader
//    is held to the parser's limits before it is kept (upload_part_limits.h):
//    MAX_PARTS, MAX_FIELD_SIZE, and MAX_PART_HEADER_BYTES over the sum of a part's
//    field name, filename and content type, what an HTTP part carries in its header
//    block.
//  - Stream (declared total_size over MAX_BODY_SIZE): dispatched at UploadStart; the
//    messages are framed as a multipart/form-data body (MultipartFramer) and fed to a
//    StreamUploadSource, the same one HTTP uploads stream through. When its queue is
//    over the high watermark the reactor stops reading (no StartRead, so gRPC flow
//    control holds the client back) and reads again on Resume(). total_bytes in
//    RequestFinished then counts the framed body.
//  - Undeclared size grown past MAX_BODY_SIZE: switched to stream mode as
//    UploadExchange does for an HTTP body of unknown length. What counts toward it is
//    the field and file bytes plus the parts' metadata (field names, filenames,
//    content types), as an HTTP body's length counts its part headers. The upload is
//    dispatched as a stream at once, and what was buffered so far (the "prefix":
//    fields, finished files and the open file's first bytes) is replayed into the
//    stream source, framed, one chunk at a time under its watermarks while no read
//    is started; then the live messages follow, the open file's chunks
//    continuing its part. Resume() comes under the source's lock, where Feed() cannot
//    be called, so a paused replay is picked up again on a gRPC thread through a
//    grpc::Alarm set to fire at once (the gRPC counterpart of posting to the loop).
// A declared total_size counts field and file bytes only (ingest.proto) and decides
// the mode up front, as Content-Length does; a declared buffered upload's metadata is
// then bounded by MAX_PARTS times MAX_PART_HEADER_BYTES rather than by MAX_BODY_SIZE.
// The answer (the consumer's Reply, or the dispatcher's own 502/503/504 in the same
// shape) is the RPC's response, with gRPC status OK: the HTTP-style status travels in
// Reply.status. It may come before the client has finished sending (an early reply).
//
// Errors in the stream itself end the RPC with a gRPC status, converted once from
// absl::Status here: a malformed sequence (no start, chunk before a file, a size or
// offset that does not add up) is INVALID_ARGUMENT, a file over its limit, a part over
// a multipart limit (the parser's error in stream mode; worded alike, naming the
// setting, in buffered mode) or a full spill volume RESOURCE_EXHAUSTED, a cancelled
// call CANCELLED, an uploader silent for BODY_TIMEOUT while a message is awaited
// DEADLINE_EXCEEDED (checked by an alarm, like the replay's). A refused buffered
// upload's memory and temp files are freed before the client hears of it.
//
// Ownership: heap-allocated by IngestService::Upload, deletes itself in OnDone() and
// only there. The dispatcher's DoneCallback and the alarms reach it through a
// small shared Link that OnDone() cuts (under the link's mutex), so a late answer or
// alarm never touches a deleted reactor; OnDone() also waits for a replay step an
// alarm is running. The assembled upload's files (and temp files) go with the
// reactor, or, once submitted, with the dispatcher's last holder of the upload; a
// replayed prefix's as soon as it has been replayed.
//
// Threading: read reactions are serialized by gRPC and own the assembly state; the
// replay is run by one thread at a time (the read reaction that switched, then
// alarm callbacks), handed over under mu_ (pumping_), and no read is outstanding
// meanwhile, so it owns that state too. The DoneCallback (any thread), OnCancel (a
// gRPC thread) and Resume() (the consumer's thread, under the stream source's lock)
// meet them under mu_, which guards the one-time Finish(), the parked read and the
// replay hand-over. StartRead() is only called with mu_ held and finished_ false, so
// no read starts after Finish(). Lock order: the link's mutex, the stream source's
// lock, then mu_; the source is never called with mu_ held.
#ifndef SPILLWAY_SERVER_GRPC_UPLOAD_REACTOR_H_
#define SPILLWAY_SERVER_GRPC_UPLOAD_REACTOR_H_

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "server/common/mutex.h"
#include "server/dispatch/dispatcher.h"
#include "server/dispatch/stream_upload_source.h"
#include "server/dispatch/upload_slots.h"
#include "server/grpc/multipart_framer.h"
#include "server/upload/buffered_upload.h"
#include "server/upload/file_chunk_reader.h"
#include "server/upload/uploaded_file.h"
#include "spillway/v1/ingest.pb.h"

namespace spillway {

struct UploadRpcOptions {
  Dispatcher* dispatcher = nullptr;  // not owned; outlives the gRPC server
  // Memory threshold, size limit, checksum, temp directory and spill budget of each
  // file (the same as for HTTP uploads); the pointers inside are not owned.
  UploadedFileOptions file;
  // MAX_BODY_SIZE: a declared total_size over it streams, as does an undeclared
  // upload once its bytes pass it (so 0 streams every upload that has a byte, as
  // over HTTP). The default never streams.
  uint64_t max_body_size = std::numeric_limits<uint64_t>::max();
  // Chunk size, file limit, checksum and multipart limits; the multipart limits hold
  // for a buffered upload's parts too.
  StreamUploadOptions stream;
  // MAX_CONCURRENT_UPLOADS, shared with HTTP uploads; not owned, outlives the gRPC
  // server. Null: no limit.
  UploadSlots* slots = nullptr;
  // BODY_TIMEOUT: no message from the uploader for this long while one is awaited
  // (not while the stream source holds it back) ends the call with DEADLINE_EXCEEDED.
  // Zero or InfiniteDuration: off.
  absl::Duration body_timeout = absl::InfiniteDuration();
};

class UploadReactor final : public grpc::ServerReadReactor<v1::UploadRequest>,
                            private StreamFlow {
 public:
  // `context`, `response` and `options` must outlive the reactor (gRPC's, and the
  // service's).
  UploadReactor(grpc::CallbackServerContext* context, v1::Reply* response,
                const UploadRpcOptions* options, std::optional<UploadSlot> slot);

  void OnReadDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What the DoneCallback and the replay alarm hold instead of the reactor.
  struct Link {
    Mutex mu;
    UploadReactor* reactor ABSL_GUARDED_BY(mu);  // null once OnDone() ran
  };

  // The buffered prefix of an upload switched to stream mode, being replayed.
  struct Replay {
    BufferedUpload prefix;
    size_t next_part = 0;  // in prefix.order
    // The last part is a file still open: the live chunks continue it.
    bool last_file_open = false;
    // Over the file being replayed; borrows it, so declared after `prefix`.
    std::optional<FileChunkReader> reader;
  };

  ~UploadReactor() override = default;  // only through OnDone()

  absl::Status Handle(const v1::UploadRequest& request);
  absl::Status HandleStart(const v1::UploadStart& start);
  // A buffered upload's next Field or FileHeader: checks the multipart limits and
  // counts its metadata.
  absl::Status BeginPart(const v1::UploadRequest& request);
  // Dispatches a StreamUploadSource for `request`, framed as multipart.
  absl::Status StartStream(RequestInfo request);
  absl::Status HandleStreamed(const v1::UploadRequest& request);
  // Whether a buffered upload of undeclared size has grown past MAX_BODY_SIZE.
  bool OverMaxBodySize() const;
  // Turns the buffered upload into a stream and starts replaying it.
  absl::Status SwitchToStream();
  // Replays while the source has room, then hands back to reading. REQUIRES: this
  // thread owns the replay (pumping_ set).
  void PumpReplay();
  // One piece of the prefix into the source; false once it is all in.
  absl::StatusOr<bool> ReplayStep();
  // A paused replay goes on on a gRPC thread.
  void ScheduleReplayLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void RunScheduledReplay(const std::shared_ptr<Link>& link);
  absl::Status EndFile();
  absl::Status EndStreamFile();
  // Buffered: at the client's half-close. Stream: at UploadStart.
  void Submit();
  void Dispatch(std::shared_ptr<UploadSource> source);
  // Ends the RPC with `status` and cancels a dispatched upload.
  void Fail(const absl::Status& status);
  // Fail() from a read reaction: the buffered upload (its temp files) goes first.
  void FailReading(const absl::Status& status);
  // Starts the next read unless the RPC is finished or the stream source is full.
  void ReadNext();
  // StartRead, noting that the uploader's clock runs (BODY_TIMEOUT).
  void StartReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // BODY_TIMEOUT: checked by an alarm, on a gRPC thread, through the link.
  void ArmIdleAlarmLocked(absl::Time at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void RunIdleCheck(const std::shared_ptr<Link>& link);
  void CheckIdle();
  // Marks an alarm callback running on the reactor (OnDone() waits for none); null
  // once the RPC is over.
  static UploadReactor* EnterAlarm(const std::shared_ptr<Link>& link);
  void LeaveAlarm();

  // StreamFlow: Pause() inside Feed() (read or replay thread), Resume() from the
  // consumer's.
  void Pause() override;
  void Resume() override;
  void OnAnswer(ConsumerReply reply);
  // Finishes the RPC unless it already was; `reply` is the response when status OK.
  void FinishOnce(const grpc::Status& status, const ConsumerReply* reply);

  grpc::CallbackServerContext* const context_;  // not owned
  v1::Reply* const response_;                   // not owned
  const UploadRpcOptions* const options_;       // not owned
  // Held until the reactor is deleted (OnDone), with the temp files a failed or
  // cancelled call still holds: the drain waits for it. OnDone can come just after
  // the client has heard the status.
  std::optional<UploadSlot> slot_;
  const std::shared_ptr<Link> link_;

  // Read-reaction state.
  v1::UploadRequest in_;
  bool started_ = false;
  std::optional<uint64_t> declared_total_;  // UploadStart.total_size
  // Field and file bytes so far, in either mode (a buffered upload's total_bytes;
  // what a declared total_size is held to).
  uint64_t bytes_sent_ = 0;
  // The buffered parts' metadata bytes (PartMetadataBytes), toward MAX_BODY_SIZE.
  uint64_t metadata_bytes_ = 0;
  BufferedUpload upload_;
  UploadedFile* current_file_ = nullptr;  // in upload_.files
  std::optional<uint64_t> declared_size_;  // of current_file_
  // Stream mode.
  std::optional<MultipartFramer> framer_;
  std::shared_ptr<StreamUploadSource> stream_;
  bool in_stream_file_ = false;
  uint64_t stream_file_size_ = 0;
  std::unique_ptr<Replay> replay_;  // owned by whoever runs the replay

  Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;       // the stream source is full
  bool read_parked_ ABSL_GUARDED_BY(mu_) = false;  // a read waits for Resume()
  bool replaying_ ABSL_GUARDED_BY(mu_) = false;  // no reads until the prefix is in
  bool pumping_ ABSL_GUARDED_BY(mu_) = false;    // a thread runs it, or an alarm will
  int alarms_running_ ABSL_GUARDED_BY(mu_) = 0;  // OnDone() waits for none
  CondVar alarm_done_;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;  // a read is awaited from the uploader
  absl::Time reading_since_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<grpc::Alarm> idle_alarm_ ABSL_GUARDED_BY(mu_);  // fresh per arming
  // A fresh one per pause: a callback alarm must not be set again while its callback
  // may still be running.
  std::unique_ptr<grpc::Alarm> replay_alarm_ ABSL_GUARDED_BY(mu_);
  UploadHandle handle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_UPLOAD_REACTOR_H_
