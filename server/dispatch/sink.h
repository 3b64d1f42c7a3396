// Sink: where a built-in consumer (DESIGN.md §3: `--sink=dir:PATH`, `--sink=discard`)
// puts the files of the uploads it takes. The event handling, checksum and receipt are
// the same for every sink (sink_runner.h); a Sink only says what happens to a file's
// bytes, and whether its receipt must give a SHA-256 the upload did not compute.
//
// Ownership: one Sink is shared (std::shared_ptr) by the SINK_WORKERS workers of a
// SinkPool; each SinkFile belongs to the worker writing it.
// Threading: Sink methods are thread-safe (they touch only immutable state and the
// file system); a SinkFile is used by one thread.
#ifndef SPILLWAY_SERVER_DISPATCH_SINK_H_
#define SPILLWAY_SERVER_DISPATCH_SINK_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace spillway {

// One file on its way into a sink. Nothing of it is visible before Publish(), and
// destroying it before then leaves nothing behind (a dir: sink removes its partial
// file): the files of an upload are published together once the whole upload has
// arrived, so an upload that fails or is abandoned halfway stores none of them.
class SinkFile {
 public:
  virtual ~SinkFile() = default;
  virtual absl::Status Write(std::string_view data) = 0;
  // After the last Write(): makes the bytes durable and lets go of what only writing
  // needs (a dir: sink fsyncs and closes its partial file, so an upload of many files
  // does not hold a descriptor per file). Returns the name Publish() will store it
  // under, or nullopt for sinks that store nothing.
  virtual absl::StatusOr<std::optional<std::string>> Finish() = 0;
  // After Finish(): makes the file visible under its stored name.
  virtual absl::Status Publish() = 0;
  // After Publish(): removes the file again (best effort), when another file of the
  // same upload could not be published.
  virtual void Withdraw() = 0;
};

class Sink {
 public:
  virtual ~Sink() = default;
  // "dir" or "discard": the consumer name seen in logs and metrics.
  virtual std::string_view name() const = 0;
  // The status of a successful reply: 201 when something was created, else 200.
  virtual int success_status() const = 0;
  // True when every file's receipt must carry its SHA-256 even if the upload computes
  // another checksum (FILE_UPLOAD_CHECKSUM crc32c or none): the runner then hashes
  // the bytes itself. Otherwise the receipt gives the upload's own checksum, if any,
  // and the runner hashes nothing.
  virtual bool needs_sha256() const = 0;
  // True for a sink that ignores the bytes and never blocks (discard without a rate).
  // It is registered for paths only, so spilled files are not read back for it, and its
  // uploads run on the threads that deliver their events (RunSinkDeliveryInline(): the
  // event loop, usually): no hand-off to a worker thread and back, which is most of the
  // cost of a small upload, and no wake-up per streamed chunk.
  virtual bool ignores_bytes() const { return false; }
  // The `index`th file (0-based) of upload `upload_id`; `filename` is the uploader's,
  // to be sanitized before any use on disk.
  virtual absl::StatusOr<std::unique_ptr<SinkFile>> NewFile(std::string_view upload_id,
                                                            size_t index,
                                                            std::string_view filename) = 0;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_SINK_H_
