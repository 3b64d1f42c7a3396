// UploadReactor: the server side of one Upload RPC (ingest.proto), on the gRPC
// callback API. The client streams UploadStart, then fields and files (per file a
// FileHeader and its Chunks). Two modes, as for HTTP (DESIGN.md §1):
//  - Buffered (no declared UploadStart.total_size, or one within MAX_BODY_SIZE): the
//    reactor assembles a BufferedUpload as messages arrive (each file in memory up to
//    FILE_UPLOAD_MAX_MEMORY_SIZE, spilled to a temp file past it, refused past
//    FILE_UPLOAD_MAX_SIZE) and submits it to the Dispatcher when the client
//    half-closes. A body that only turns out larger than MAX_BODY_SIZE stays buffered
//    (on disk): there is no switch to stream mode midway yet.
//  - Stream (declared total_size over MAX_BODY_SIZE): dispatched at UploadStart; the
//    messages are framed as a multipart/form-data body (MultipartFramer) and fed to a
//    StreamUploadSource, the same one HTTP uploads stream through. When its queue is
//    over the high watermark the reactor stops reading (no StartRead, so gRPC flow
//    control holds the client back) and reads again on Resume(). total_bytes in
//    RequestFinished then counts the framed body.
// The answer (the consumer's Reply, or the dispatcher's own 502/503/504 in the same
// shape) is the RPC's response, with gRPC status OK: the HTTP-style status travels in
// Reply.status. It may come before the client has finished sending (an early reply).
//
// Errors in the stream itself end the RPC with a gRPC status, converted once from
// absl::Status here: a malformed sequence (no start, chunk before a file, a size or
// offset that does not add up) is INVALID_ARGUMENT, a file over its limit or a full
// spill volume RESOURCE_EXHAUSTED, a cancelled call CANCELLED.
//
// This slice is buffered only: there is no stream mode for gRPC uploads yet, so an
// upload over MAX_BODY_SIZE is still received whole (its files spill to disk, memory
// stays bounded) before it is dispatched.
//
// Ownership: heap-allocated by IngestService::Upload, deletes itself in OnDone() and
// only there. The dispatcher's DoneCallback reaches it through a small shared Link
// that OnDone() cuts (under the link's mutex), so a late answer never touches a
// deleted reactor. The assembled upload's files (and temp files) go with the reactor,
// or, once submitted, with the dispatcher's last holder of the upload.
//
// Threading: read reactions are serialized by gRPC and own the assembly state; the
// DoneCallback (any thread), OnCancel (a gRPC thread) and Resume() (the consumer's
// thread, under the stream source's lock) meet them under mu_, which guards the
// one-time Finish() and the parked read. StartRead() is only called with mu_ held and
// finished_ false, so no read starts after Finish(). Lock order: the stream source's
// lock, then mu_; the source is never called with mu_ held.
#ifndef SPILLWAY_SERVER_GRPC_UPLOAD_REACTOR_H_
#define SPILLWAY_SERVER_GRPC_UPLOAD_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "server/common/mutex.h"
#include "server/dispatch/dispatcher.h"
#include "server/dispatch/stream_upload_source.h"
#include "server/grpc/multipart_framer.h"
#include "server/upload/buffered_upload.h"
#include "server/upload/uploaded_file.h"
#include "spillway/v1/ingest.pb.h"

namespace spillway {

struct UploadRpcOptions {
  Dispatcher* dispatcher = nullptr;  // not owned; outlives the gRPC server
  // Memory threshold, size limit, checksum, temp directory and spill budget of each
  // file (the same as for HTTP uploads); the pointers inside are not owned.
  UploadedFileOptions file;
  // MAX_BODY_SIZE: a declared total_size over it streams; 0 never streams.
  uint64_t max_body_size = 0;
  StreamUploadOptions stream;  // chunk size, file limit, checksum, multipart limits
};

class UploadReactor final : public grpc::ServerReadReactor<v1::UploadRequest>,
                            private StreamFlow {
 public:
  // `context`, `response` and `options` must outlive the reactor (gRPC's, and the
  // service's).
  UploadReactor(grpc::CallbackServerContext* context, v1::Reply* response,
                const UploadRpcOptions* options);

  void OnReadDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What the DoneCallback holds instead of the reactor.
  struct Link {
    Mutex mu;
    UploadReactor* reactor ABSL_GUARDED_BY(mu);  // null once OnDone() ran
  };

  ~UploadReactor() override = default;  // only through OnDone()

  absl::Status Handle(const v1::UploadRequest& request);
  absl::Status HandleStart(const v1::UploadStart& start);
  absl::Status HandleStreamed(const v1::UploadRequest& request);
  absl::Status EndFile();
  absl::Status EndStreamFile();
  // Buffered: at the client's half-close. Stream: at UploadStart.
  void Submit();
  void Dispatch(std::shared_ptr<UploadSource> source);
  // Ends the RPC with `status` and cancels a dispatched upload.
  void Fail(const absl::Status& status);
  // Starts the next read unless the RPC is finished or the stream source is full.
  void ReadNext();

  // StreamFlow: Pause() inside Feed() (read thread), Resume() from the consumer's.
  void Pause() override;
  void Resume() override;
  void OnAnswer(ConsumerReply reply);
  // Finishes the RPC unless it already was; `reply` is the response when status OK.
  void FinishOnce(const grpc::Status& status, const ConsumerReply* reply);

  grpc::CallbackServerContext* const context_;  // not owned
  v1::Reply* const response_;                   // not owned
  const UploadRpcOptions* const options_;       // not owned
  const std::shared_ptr<Link> link_;

  // Read-reaction state.
  v1::UploadRequest in_;
  bool started_ = false;
  BufferedUpload upload_;
  UploadedFile* current_file_ = nullptr;  // in upload_.files
  std::optional<uint64_t> declared_size_;  // of current_file_
  // Stream mode.
  std::optional<MultipartFramer> framer_;
  std::shared_ptr<StreamUploadSource> stream_;
  bool in_stream_file_ = false;
  uint64_t stream_file_size_ = 0;

  Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;       // the stream source is full
  bool read_parked_ ABSL_GUARDED_BY(mu_) = false;  // a read waits for Resume()
  UploadHandle handle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_UPLOAD_REACTOR_H_
