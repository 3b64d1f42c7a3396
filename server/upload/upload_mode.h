// UploadMode: how Spillway buffered an upload or one of its files (DESIGN.md §1),
// as consumers see it (ingest.proto `Mode`). Plain enum and a free function; safe
// from any thread.
#ifndef SPILLWAY_SERVER_UPLOAD_UPLOAD_MODE_H_
#define SPILLWAY_SERVER_UPLOAD_UPLOAD_MODE_H_

#include <string_view>

namespace spillway {

enum class UploadMode {
  kMemory,  // held in RAM; no disk I/O
  kSpill,   // written to a temp file while parsing
  kStream,  // passed through in chunks as it arrives
};

// "memory", "spill" or "stream": the spelling used in receipts and logs.
constexpr std::string_view UploadModeName(UploadMode mode) {
  switch (mode) {
    case UploadMode::kMemory:
      return "memory";
    case UploadMode::kSpill:
      return "spill";
    case UploadMode::kStream:
      return "stream";
  }
  return "unknown";
}

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_UPLOAD_MODE_H_
