// BufferedUploadSource: the UploadSource of an upload received whole (memory and
// spill modes). Every attempt replays the same BufferedUpload from its first part:
// Field for plain fields; FileStarted, Chunks read through the file's FileChunkReader,
// FileFinished for files (paths-only consumers get no Chunks for spilled files); then
// RequestFinished.
//
// Ownership: holds the BufferedUpload through shared_ptr<const>; each cursor holds it
// too, so a consumer still reading when the upload is answered elsewhere never reads
// freed memory or a removed temp file. The temp files go when the last holder does.
// Threading: immutable; cursors are independent and each is used by one thread.
// Cursor::Next() completes inline, on the consumer's thread.
#ifndef SPILLWAY_SERVER_DISPATCH_BUFFERED_UPLOAD_SOURCE_H_
#define SPILLWAY_SERVER_DISPATCH_BUFFERED_UPLOAD_SOURCE_H_

#include <memory>

#include "server/dispatch/upload_source.h"
#include "server/upload/buffered_upload.h"

namespace spillway {

class BufferedUploadSource final : public UploadSource {
 public:
  explicit BufferedUploadSource(BufferedUpload upload);

  const RequestInfo& request() const override { return upload_->request; }
  UploadMode mode() const override { return mode_; }
  bool replayable() const override { return true; }
  std::unique_ptr<EventCursor> OpenCursor(const CursorOptions& options) override;

 private:
  const std::shared_ptr<const BufferedUpload> upload_;
  const UploadMode mode_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_BUFFERED_UPLOAD_SOURCE_H_
