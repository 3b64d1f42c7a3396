#include "server/dispatch/receipt.h"

#include "absl/strings/str_cat.h"
#include "server/dispatch/json_escape.h"

namespace spillway {

std::string Receipt::ToJson() const {
  // Sized up front: a receipt is built for every upload, and growing it step by step
  // cost several allocations each time.
  size_t size = 96 + upload_id.size();
  for (const auto& [name, value] : fields) size += 24 + 2 * (name.size() + value.size());
  for (const FileReceipt& file : files) {
    size += 192 + 2 * (file.field_name.size() + file.filename.size() +
                       file.content_type.size()) +
            file.checksum.size() +
            (file.stored_name.has_value() ? file.stored_name->size() : 0);
  }
  std::string out;
  out.reserve(size);
  out.append("{\"upload_id\":");
  AppendJsonString(upload_id, &out);
  absl::StrAppend(&out, ",\"total_bytes\":", total_bytes, ",\"fields\":[");
  for (size_t i = 0; i < fields.size(); ++i) {
    out.append(i == 0 ? "{\"name\":" : ",{\"name\":");
    AppendJsonString(fields[i].first, &out);
    out.append(",\"value\":");
    AppendJsonString(fields[i].second, &out);
    out.push_back('}');
  }
  out.append("],\"files\":[");
  for (size_t i = 0; i < files.size(); ++i) {
    const FileReceipt& file = files[i];
    out.append(i == 0 ? "{\"field_name\":" : ",{\"field_name\":");
    AppendJsonString(file.field_name, &out);
    out.append(",\"filename\":");
    AppendJsonString(file.filename, &out);
    out.append(",\"content_type\":");
    AppendJsonString(file.content_type, &out);
    absl::StrAppend(&out, ",\"size\":", file.size);
    if (file.checksum_kind != ChecksumKind::kNone) {
      out.append(",\"");
      out.append(ChecksumKindName(file.checksum_kind));
      out.append("\":");
      AppendJsonString(file.checksum, &out);
    }
    out.append(",\"mode\":");
    AppendJsonString(UploadModeName(file.mode), &out);
    if (file.stored_name.has_value()) {
      out.append(",\"stored_name\":");
      AppendJsonString(*file.stored_name, &out);
    }
    out.push_back('}');
  }
  out.append("]}\n");
  return out;
}

}  // namespace spillway
