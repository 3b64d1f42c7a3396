// BufferedUpload: an upload received whole (DESIGN.md §1 memory and spill modes), as
// UploadAssembler produces it and the dispatcher delivers it: the request's metadata,
// its plain form fields, and its files, in the order they arrived.
//
// Ownership: the value owns its files through unique_ptr; each spilled file's temp
// file is removed when the BufferedUpload (or the file) is destroyed, so an upload's
// disk usage ends exactly when its last holder lets go of it. Move-only.
//
// Threading: built by one thread; once complete it is never modified, so several
// threads may read it (and open FileChunkReaders on its files) at once, provided it
// outlives them. The dispatcher shares it through std::shared_ptr<const ...>.
#ifndef SPILLWAY_SERVER_UPLOAD_BUFFERED_UPLOAD_H_
#define SPILLWAY_SERVER_UPLOAD_BUFFERED_UPLOAD_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/upload/request_info.h"
#include "server/upload/upload_mode.h"
#include "server/upload/uploaded_file.h"

namespace spillway {

// A plain (non-file) multipart field.
struct FormField {
  std::string name;
  std::string value;
};

struct BufferedUpload {
  // One entry of `order`: fields[index] or files[index].
  struct PartRef {
    bool is_file = false;
    size_t index = 0;
  };

  RequestInfo request;
  // True when the body was not multipart/form-data: then `files` holds exactly one
  // file, the whole body, with field name "" and filename "".
  bool raw = false;
  std::vector<FormField> fields;
  // Every file is finished (UploadedFile::Finish() succeeded).
  std::vector<std::unique_ptr<UploadedFile>> files;
  // Parts in the order the uploader sent them.
  std::vector<PartRef> order;
  // Body bytes received (the whole multipart body, delimiters included).
  uint64_t total_bytes = 0;

  // kSpill if any file spilled to disk, else kMemory.
  UploadMode mode() const {
    for (const auto& file : files) {
      if (!file->in_memory()) return UploadMode::kSpill;
    }
    return UploadMode::kMemory;
  }
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_BUFFERED_UPLOAD_H_
