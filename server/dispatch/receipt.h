// Receipt: the JSON body a built-in sink replies with, describing what it took:
//
//   {"upload_id":"…","total_bytes":N,
//    "fields":[{"name":"…","value":"…"}],
//    "files":[{"field_name":"…","filename":"…","content_type":"…","size":N,
//              "sha256":"…","mode":"memory|spill|stream","stored_name":"…"}]}
//
// The checksum is keyed by its algorithm: "sha256" (always from dir:, and from any
// sink when FILE_UPLOAD_CHECKSUM is sha256), "crc32c", or absent when the file has
// none (discard with FILE_UPLOAD_CHECKSUM=none: nothing is hashed just for the
// receipt). "stored_name" appears only for sinks that store files (dir:). A raw body is one
// entry of "files" with empty field_name and filename. Strings are escaped with
// json_escape.h, so binary field values and odd filenames give valid JSON.
// A plain value; not thread-safe.
#ifndef SPILLWAY_SERVER_DISPATCH_RECEIPT_H_
#define SPILLWAY_SERVER_DISPATCH_RECEIPT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/upload/checksum.h"
#include "server/upload/upload_mode.h"

namespace spillway {

struct FileReceipt {
  std::string field_name;
  std::string filename;
  std::string content_type;
  uint64_t size = 0;
  ChecksumKind checksum_kind = ChecksumKind::kNone;  // kNone: no checksum key
  std::string checksum;                              // lower-case hex
  UploadMode mode = UploadMode::kMemory;
  std::optional<std::string> stored_name;
};

struct Receipt {
  std::string upload_id;
  uint64_t total_bytes = 0;
  std::vector<std::pair<std::string, std::string>> fields;  // name, value
  std::vector<FileReceipt> files;

  std::string ToJson() const;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_RECEIPT_H_
