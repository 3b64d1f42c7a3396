#include "server/grpc/upload_part_limits.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/upload/multipart_error.h"

namespace spillway {

uint64_t PartMetadataBytes(const v1::UploadRequest& request) {
  switch (request.kind_case()) {
    case v1::UploadRequest::kField:
      return request.field().name().size();
    case v1::UploadRequest::kFile: {
      const v1::FileHeader& header = request.file();
      return header.field_name().size() + header.filename().size() +
             header.content_type().size();
    }
    default:
      return 0;
  }
}

absl::Status CheckPartLimits(const v1::UploadRequest& request, size_t parts_before,
                             const MultipartLimits& limits) {
  if (!request.has_field() && !request.has_file()) return absl::OkStatus();
  // The messages word the limits as MultipartParser does, plus the setting's name.
  if (parts_before >= limits.max_parts) {
    return MakeMultipartError(
        MultipartError::kTooManyParts,
        absl::StrCat("the upload has more than ", limits.max_parts, " parts (MAX_PARTS)"));
  }
  // In the parser's order: a part's header block is read before its value.
  if (const uint64_t metadata = PartMetadataBytes(request);
      metadata > limits.max_part_header_bytes) {
    return MakeMultipartError(
        MultipartError::kPartHeaderTooLarge,
        absl::StrCat("a part's field name, filename and content type (", metadata,
                     " bytes) are larger than ", limits.max_part_header_bytes,
                     " bytes (MAX_PART_HEADER_BYTES)"));
  }
  if (request.has_field() && request.field().value().size() > limits.max_field_size) {
    return MakeMultipartError(
        MultipartError::kFieldTooLarge,
        absl::StrCat("field \"", absl::CHexEscape(request.field().name().substr(0, 64)),
                     "\" is larger than ", limits.max_field_size,
                     " bytes (MAX_FIELD_SIZE)"));
  }
  return absl::OkStatus();
}

}  // namespace spillway
