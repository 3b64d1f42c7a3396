#include "server/upload/upload_assembler.h"

#include <utility>

#include "server/common/status_macros.h"
#include "server/upload/multipart_error.h"

namespace spillway {

UploadAssemblerOptions UploadAssemblerOptions::FromSettings(
    const UploadSettings& settings, TempDirectory* temp_dir) {
  UploadAssemblerOptions options;
  options.file.max_memory_size = settings.file_upload_max_memory_size;
  options.file.max_size = settings.file_upload_max_size;
  options.file.checksum = settings.file_upload_checksum;
  options.file.temp_dir = temp_dir;
  options.multipart = settings.multipart_limits();
  return options;
}

absl::StatusOr<std::unique_ptr<UploadAssembler>> UploadAssembler::Create(
    RequestInfo request, const UploadAssemblerOptions& options) {
  ASSIGN_OR_RETURN(std::optional<std::string> boundary,
                   MultipartParser::BoundaryIfMultipart(request.content_type));
  return std::unique_ptr<UploadAssembler>(
      new UploadAssembler(std::move(request), options, std::move(boundary)));
}

UploadAssembler::UploadAssembler(RequestInfo request,
                                 const UploadAssemblerOptions& options,
                                 std::optional<std::string> boundary)
    : options_(options) {
  upload_.request = std::move(request);
  if (boundary.has_value()) {
    parser_ = std::make_unique<MultipartParser>(
        *boundary, options_.multipart, static_cast<MultipartParser::Handler*>(this));
  } else {
    upload_.raw = true;
    upload_.files.push_back(std::make_unique<UploadedFile>(
        "", "", upload_.request.content_type, options_.file));
    upload_.order.push_back({true, 0});
    current_file_ = upload_.files.back().get();
  }
}

UploadAssembler::~UploadAssembler() = default;

absl::Status UploadAssembler::Fail(absl::Status status) {
  status_ = status;
  // Let go of memory and temp files now rather than when the exchange is destroyed.
  current_file_ = nullptr;
  current_field_ = nullptr;
  upload_.files.clear();
  upload_.fields.clear();
  upload_.order.clear();
  return status;
}

absl::Status UploadAssembler::Append(std::string_view data) {
  RETURN_IF_ERROR(status_);
  if (finished_) return absl::FailedPreconditionError("Append() after Finish()");
  upload_.total_bytes += data.size();
  absl::Status status =
      parser_ != nullptr ? parser_->Feed(data) : current_file_->Append(data);
  if (!status.ok()) return Fail(std::move(status));
  return absl::OkStatus();
}

absl::Status UploadAssembler::BeginFinishing() {
  RETURN_IF_ERROR(status_);
  if (finished_) return absl::FailedPreconditionError("the body was already finished");
  finished_ = true;
  return absl::OkStatus();
}

absl::StatusOr<BufferedUpload> UploadAssembler::Finish() {
  RETURN_IF_ERROR(BeginFinishing());
  absl::Status status =
      parser_ != nullptr ? parser_->Finish() : current_file_->Finish();
  if (!status.ok()) return Fail(std::move(status));
  current_file_ = nullptr;
  return std::move(upload_);
}

absl::StatusOr<UploadAssembler::Handover> UploadAssembler::HandOver() {
  RETURN_IF_ERROR(BeginFinishing());
  Handover handover;
  handover.last_part_open = current_file_ != nullptr || current_field_ != nullptr;
  if (current_file_ != nullptr) {
    // Finished as it stands, to be read back; the stream goes on with the rest.
    if (absl::Status status = current_file_->Finish(); !status.ok()) {
      return Fail(std::move(status));
    }
  }
  current_file_ = nullptr;
  current_field_ = nullptr;
  handover.received = std::move(upload_);
  handover.parser = std::move(parser_);
  return handover;
}

absl::Status UploadAssembler::OnPartBegin(const PartHeaders& headers) {
  if (headers.is_file()) {
    upload_.files.push_back(std::make_unique<UploadedFile>(
        headers.name, *headers.filename, headers.content_type, options_.file));
    upload_.order.push_back({true, upload_.files.size() - 1});
    current_file_ = upload_.files.back().get();
  } else {
    upload_.fields.push_back(FormField{headers.name, ""});
    upload_.order.push_back({false, upload_.fields.size() - 1});
    current_field_ = &upload_.fields.back();
  }
  return absl::OkStatus();
}

absl::Status UploadAssembler::OnPartData(std::string_view data) {
  if (current_file_ != nullptr) return current_file_->Append(data);
  // The parser enforces max_field_size on plain parts.
  current_field_->value.append(data);
  return absl::OkStatus();
}

absl::Status UploadAssembler::OnPartEnd() {
  absl::Status status;
  if (current_file_ != nullptr) status = current_file_->Finish();
  current_file_ = nullptr;
  current_field_ = nullptr;
  return status;
}

absl::Status UploadAssembler::OnBodyEnd() { return absl::OkStatus(); }

}  // namespace spillway
