// StreamReplay: the first part of a body that began buffered and turned out too big
// for it (an unknown length that outgrew MAX_BODY_SIZE, DESIGN.md §1), fed to the
// StreamUploadSource that takes the body over.
//
// Why parts and not raw bytes: the assembler already holds the body parsed (fields as
// strings, files in memory or spilled). Keeping the raw bytes as well, to replay them,
// would hold (and spill) every byte twice. So a multipart body's parts are replayed as
// the parser reported them (StreamUploadSource::ReplayPart*), and its parser carries
// on in the stream; a raw body's one file is its raw bytes and is simply fed.
//
// Step() feeds one event or one chunk at a time, so the caller can stop whenever the
// stream's watermarks pause it and go on when they resume. Each file is let go of as
// soon as it has been replayed: its memory or temp file is freed then, not at the end.
//
// Ownership: owns what the assembler received (UploadAssembler::Handover::received).
// Threading: the producer's thread (the connection's loop), like Feed().
#ifndef SPILLWAY_SERVER_DISPATCH_STREAM_REPLAY_H_
#define SPILLWAY_SERVER_DISPATCH_STREAM_REPLAY_H_

#include <cstddef>
#include <optional>

#include "absl/status/statusor.h"
#include "server/dispatch/stream_upload_source.h"
#include "server/upload/buffered_upload.h"
#include "server/upload/file_chunk_reader.h"

namespace spillway {

class StreamReplay {
 public:
  // `received` and `last_part_open` as in UploadAssembler::Handover; chunks of at most
  // `chunk_size` bytes.
  StreamReplay(BufferedUpload received, bool last_part_open, size_t chunk_size);

  // Feeds the next event or chunk into `stream`. True once everything has been fed
  // (then the live body follows); an error is the stream's or a read's.
  absl::StatusOr<bool> Step(StreamUploadSource& stream);

 private:
  bool IsOpen(size_t part) const {
    return last_part_open_ && part + 1 == received_.order.size();
  }

  BufferedUpload received_;
  const bool last_part_open_;
  const size_t chunk_size_;
  size_t next_part_ = 0;  // index into received_.order
  // Of the file part being replayed, received_.files[received_.order[next_part_]];
  // borrows it, so declared after received_.
  std::optional<FileChunkReader> reader_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_STREAM_REPLAY_H_
