// UploadSource: where a delivery's events come from. The dispatcher does not know how
// an upload was buffered: a BufferedUploadSource (buffered_upload_source.h) replays a
// BufferedUpload for every attempt, a stream-mode source hands on chunks as they
// arrive and can be read once. Each attempt reads the source through its own
// EventCursor.
//
// Ownership: the dispatcher shares a source with the deliveries reading it
// (std::shared_ptr); the bytes live as long as the last of them.
// Threading: every method is thread-safe. A cursor is used by one thread at a time.
#ifndef SPILLWAY_SERVER_DISPATCH_UPLOAD_SOURCE_H_
#define SPILLWAY_SERVER_DISPATCH_UPLOAD_SOURCE_H_

#include <memory>
#include <string_view>

#include "server/dispatch/delivery.h"
#include "server/upload/request_info.h"
#include "server/upload/upload_mode.h"

namespace spillway {

// Yields the events after RequestStarted (which the Delivery makes itself), with the
// contract of Delivery::Next() (event lifetimes, callback exactly once, inline or
// not).
class EventCursor {
 public:
  virtual ~EventCursor() = default;
  virtual void Next(Delivery::NextCallback callback) = 0;
};

struct CursorOptions {
  size_t chunk_size = 256 * 1024;  // STREAM_BODY_CHUNK_SIZE
  bool paths_only = false;         // spilled files as path only, no Chunks
};

class UploadSource {
 public:
  virtual ~UploadSource() = default;
  virtual const RequestInfo& request() const = 0;
  virtual UploadMode mode() const = 0;
  // Whether a new cursor may be opened after an earlier one was used (buffered
  // uploads can be redelivered; streamed ones cannot).
  virtual bool replayable() const = 0;
  virtual std::unique_ptr<EventCursor> OpenCursor(const CursorOptions& options) = 0;
  // The upload is over without the consumer's reply being wanted (uploader gone,
  // timeout): a cursor waiting for bytes answers its pending Next() with
  // RequestAborted. Buffered sources have nothing to wake.
  virtual void Abort(std::string_view reason) {}
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_UPLOAD_SOURCE_H_
