// UploadEvent: one step of an upload as a consumer sees it, in the order of DESIGN.md
// §2 (mirrors ingest.proto's ServerMessage):
//
//   RequestStarted, then for multipart bodies, per part in body order, either
//   Field, or FileStarted Chunk* FileFinished; for other bodies Chunk* (the raw body
//   as one unnamed file: FileStarted Chunk* FileFinished with field name and filename
//   ""), then RequestFinished, or RequestAborted at any point after RequestStarted.
//
// Lifetime: events are views. The strings and pointers an event holds stay valid until
// the consumer's next call on the same Delivery (Next, Reply or Fail) or until the
// Delivery is destroyed, whichever comes first. Copy what must live longer (a gRPC
// consumer encodes into its own buffers anyway). That is what lets a chunk go from
// the uploaded file (or the socket's buffer in stream mode) to the consumer without a
// copy in between.
#ifndef SPILLWAY_SERVER_DISPATCH_UPLOAD_EVENT_H_
#define SPILLWAY_SERVER_DISPATCH_UPLOAD_EVENT_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

#include "server/upload/checksum.h"
#include "server/upload/request_info.h"
#include "server/upload/upload_mode.h"

namespace spillway {

struct RequestStartedEvent {
  std::string_view upload_id;  // unique per upload, the same on every attempt
  uint32_t attempt = 1;        // 1 for the first delivery
  UploadMode mode = UploadMode::kMemory;
  const RequestInfo* request = nullptr;  // never null
};

struct FieldEvent {
  std::string_view name;
  std::string_view value;
};

// The UploadedFile metadata (ingest.proto UploadedFile).
struct FileStartedEvent {
  std::string_view field_name;
  std::string_view filename;
  std::string_view content_type;
  std::optional<uint64_t> size;  // known in memory and spill modes
  bool in_memory = true;
  std::string_view path;  // the temp file, in spill mode
  UploadMode mode = UploadMode::kMemory;
  // True when no Chunks follow: the consumer asked for paths only and the file is on
  // disk at `path`, readable until the consumer replies.
  bool path_only = false;
  // The checksum FileFinished will carry (FILE_UPLOAD_CHECKSUM), known up front so
  // that a consumer needing a digest the upload does not compute can compute it
  // itself from the Chunks, and one content with the upload's need not hash at all.
  ChecksumKind checksum_kind = ChecksumKind::kNone;
};

struct ChunkEvent {
  std::string_view data;  // at most STREAM_BODY_CHUNK_SIZE bytes, never empty
  uint64_t offset = 0;    // of data[0] within the file
  // Stream mode: the string `data` views (all of it), which a consumer that wants
  // the bytes to outlive the event may take instead of copying them, by swapping it
  // with a string of its own (the gRPC Consume stream swaps in a buffer gRPC has
  // finished with, or an empty one, and hands the bytes to gRPC as they are). The
  // source reuses what it gets back for a later chunk if it has a chunk's capacity
  // (writing over its bytes, so they need not be cleared), and allocates afresh
  // otherwise. `data` must not be read after the swap. Null for buffered uploads.
  std::string* buffer = nullptr;
};

struct FileFinishedEvent {
  uint64_t size = 0;
  ChecksumKind checksum_kind = ChecksumKind::kNone;
  std::string_view checksum_hex;  // "" when checksum_kind is kNone
};

struct RequestFinishedEvent {
  uint64_t total_bytes = 0;  // body bytes received
};

// Terminal: the upload ended without a reply from this consumer being wanted (the
// uploader went away, a limit was crossed, or the server gave up waiting for the
// reply). The consumer should let go of the Delivery.
struct RequestAbortedEvent {
  std::string_view reason;
};

using UploadEvent =
    std::variant<RequestStartedEvent, FieldEvent, FileStartedEvent, ChunkEvent,
                 FileFinishedEvent, RequestFinishedEvent, RequestAbortedEvent>;

// True for RequestFinished and RequestAborted: no event follows.
inline bool IsLastEvent(const UploadEvent& event) {
  return std::holds_alternative<RequestFinishedEvent>(event) ||
         std::holds_alternative<RequestAbortedEvent>(event);
}

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_UPLOAD_EVENT_H_
