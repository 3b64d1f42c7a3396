#include "server/dispatch/buffered_upload_source.h"

#include <optional>
#include <utility>

namespace spillway {
namespace {

class BufferedCursor final : public EventCursor {
 public:
  BufferedCursor(std::shared_ptr<const BufferedUpload> upload, CursorOptions options)
      : upload_(std::move(upload)), options_(options) {}

  void Next(Delivery::NextCallback callback) override {
    std::move(callback)(Advance());
  }

 private:
  enum class Step { kPartStart, kChunks, kFileEnd, kOver };

  absl::StatusOr<UploadEvent> Advance() {
    switch (step_) {
      case Step::kPartStart:
        return StartPart();
      case Step::kChunks:
        return NextChunk();
      case Step::kFileEnd: {
        const UploadedFile& file = *upload_->files[upload_->order[part_].index];
        reader_.reset();
        ++part_;
        step_ = Step::kPartStart;
        return FileFinishedEvent{file.size(), file.checksum_kind(), file.checksum_hex()};
      }
      case Step::kOver:
        break;
    }
    return absl::FailedPreconditionError("Next() after the last event");
  }

  absl::StatusOr<UploadEvent> StartPart() {
    if (part_ == upload_->order.size()) {
      step_ = Step::kOver;
      return RequestFinishedEvent{upload_->total_bytes};
    }
    const BufferedUpload::PartRef& ref = upload_->order[part_];
    if (!ref.is_file) {
      const FormField& field = upload_->fields[ref.index];
      ++part_;
      return FieldEvent{field.name, field.value};
    }
    const UploadedFile& file = *upload_->files[ref.index];
    FileStartedEvent event;
    event.field_name = file.field_name();
    event.filename = file.filename();
    event.content_type = file.content_type();
    event.size = file.size();
    event.in_memory = file.in_memory();
    event.path = file.path();
    event.mode = file.in_memory() ? UploadMode::kMemory : UploadMode::kSpill;
    event.path_only = options_.paths_only && !file.in_memory();
    event.checksum_kind = file.checksum_kind();
    if (event.path_only) {
      step_ = Step::kFileEnd;
    } else {
      absl::StatusOr<FileChunkReader> reader = file.NewReader(options_.chunk_size);
      if (!reader.ok()) {
        step_ = Step::kOver;
        return reader.status();
      }
      reader_.emplace(*std::move(reader));
      step_ = Step::kChunks;
    }
    return event;
  }

  absl::StatusOr<UploadEvent> NextChunk() {
    const uint64_t offset = reader_->offset();
    absl::StatusOr<std::string_view> data = reader_->Next();
    if (!data.ok()) {
      step_ = Step::kOver;
      return data.status();
    }
    if (data->empty()) {
      step_ = Step::kFileEnd;
      return Advance();
    }
    return ChunkEvent{*data, offset};
  }

  const std::shared_ptr<const BufferedUpload> upload_;
  const CursorOptions options_;
  Step step_ = Step::kPartStart;
  size_t part_ = 0;  // index into upload_->order
  std::optional<FileChunkReader> reader_;
};

}  // namespace

BufferedUploadSource::BufferedUploadSource(BufferedUpload upload)
    : upload_(std::make_shared<const BufferedUpload>(std::move(upload))),
      mode_(upload_->mode()) {}

std::unique_ptr<EventCursor> BufferedUploadSource::OpenCursor(
    const CursorOptions& options) {
  return std::make_unique<BufferedCursor>(upload_, options);
}

}  // namespace spillway
