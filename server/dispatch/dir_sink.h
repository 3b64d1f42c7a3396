// DirSink (`--sink=dir:PATH`): stores each file under PATH atomically: it is written
// to a hidden temporary name in PATH (".partial-…"), flushed with fsync, then renamed
// to its stored name (stored_name.h) in the same directory, so a reader of PATH sees
// either nothing or the whole file. The renames wait for the whole upload (SinkFile):
// an upload cut short stores none of its files, even in stream mode. Its receipt
// always gives each file's SHA-256 (the upload's own when FILE_UPLOAD_CHECKSUM is
// sha256). The uploader's filename never becomes a path.
//
// Ownership: owns only the directory's path. Threading: thread-safe (immutable).
#ifndef SPILLWAY_SERVER_DISPATCH_DIR_SINK_H_
#define SPILLWAY_SERVER_DISPATCH_DIR_SINK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/dispatch/sink.h"

namespace spillway {

class DirSink final : public Sink {
 public:
  // Creates `dir` (and its parents) if missing; fails if it is not a writable
  // directory.
  static absl::StatusOr<std::unique_ptr<DirSink>> Open(std::string dir);

  std::string_view name() const override { return "dir"; }
  int success_status() const override { return 201; }
  // DESIGN.md §3: each file is stored "with its SHA-256", whatever the upload computed.
  bool needs_sha256() const override { return true; }
  absl::StatusOr<std::unique_ptr<SinkFile>> NewFile(std::string_view upload_id,
                                                    size_t index,
                                                    std::string_view filename) override;

  const std::string& dir() const { return dir_; }

 private:
  explicit DirSink(std::string dir) : dir_(std::move(dir)) {}
  const std::string dir_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_DIR_SINK_H_
