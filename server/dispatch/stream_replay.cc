#include "server/dispatch/stream_replay.h"

#include <string_view>
#include <utility>

#include "server/common/status_macros.h"
#include "server/upload/part_headers.h"

namespace spillway {

StreamReplay::StreamReplay(BufferedUpload received, bool last_part_open,
                           size_t chunk_size)
    : received_(std::move(received)),
      last_part_open_(last_part_open),
      chunk_size_(chunk_size) {}

absl::StatusOr<bool> StreamReplay::Step(StreamUploadSource& stream) {
  if (next_part_ == received_.order.size()) return true;
  const BufferedUpload::PartRef part = received_.order[next_part_];
  if (!part.is_file) {
    FormField& field = received_.fields[part.index];
    PartHeaders headers;
    headers.name = std::move(field.name);
    RETURN_IF_ERROR(stream.ReplayPartBegin(headers));
    if (!field.value.empty()) RETURN_IF_ERROR(stream.ReplayPartData(field.value));
    if (!IsOpen(next_part_)) RETURN_IF_ERROR(stream.ReplayPartEnd());
    ++next_part_;
    return false;
  }
  std::unique_ptr<UploadedFile>& file = received_.files[part.index];
  if (!reader_.has_value()) {
    ASSIGN_OR_RETURN(FileChunkReader reader, file->NewReader(chunk_size_));
    reader_.emplace(std::move(reader));
    if (received_.raw) return false;  // Feed() starts a raw body's file itself
    PartHeaders headers;
    headers.name = file->field_name();
    headers.filename = file->filename();
    headers.content_type = file->content_type();
    RETURN_IF_ERROR(stream.ReplayPartBegin(headers));
    return false;
  }
  ASSIGN_OR_RETURN(std::string_view chunk, reader_->Next());
  if (!chunk.empty()) {
    RETURN_IF_ERROR(received_.raw ? stream.Feed(chunk) : stream.ReplayPartData(chunk));
    return false;
  }
  reader_.reset();
  file.reset();  // replayed: its memory or temp file goes now
  if (!received_.raw && !IsOpen(next_part_)) RETURN_IF_ERROR(stream.ReplayPartEnd());
  ++next_part_;
  return false;
}

}  // namespace spillway
