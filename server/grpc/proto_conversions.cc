#include "server/grpc/proto_conversions.h"

#include <string>
#include <variant>

#include "server/upload/checksum.h"

namespace spillway {
namespace {

void AddHeaders(const std::vector<std::pair<std::string, std::string>>& headers,
                google::protobuf::RepeatedPtrField<v1::Header>* out) {
  for (const auto& [name, value] : headers) {
    v1::Header* header = out->Add();
    header->set_name(name);
    header->set_value(value);
  }
}

struct EventWriter {
  v1::ServerMessage* out;

  void operator()(const RequestStartedEvent& event) const {
    v1::RequestStarted* started = out->mutable_request_started();
    const RequestInfo& request = *event.request;
    started->set_upload_id(std::string(event.upload_id));
    started->set_attempt(event.attempt);
    started->set_method(request.method);
    started->set_path(request.path);
    started->set_query(request.query);
    AddHeaders(request.headers, started->mutable_headers());
    started->set_remote_address(request.remote_address);
    started->set_content_type(request.content_type);
    if (request.content_length.has_value()) {
      started->set_content_length(*request.content_length);
    }
    started->set_mode(ToProtoMode(event.mode));
    started->set_protocol(request.protocol);
  }
  void operator()(const FieldEvent& event) const {
    v1::Field* field = out->mutable_field();
    field->set_name(std::string(event.name));
    field->set_value(std::string(event.value));
  }
  void operator()(const FileStartedEvent& event) const {
    v1::UploadedFile* file = out->mutable_file_started()->mutable_file();
    file->set_field_name(std::string(event.field_name));
    file->set_filename(std::string(event.filename));
    file->set_content_type(std::string(event.content_type));
    if (event.size.has_value()) file->set_size(*event.size);
    file->set_in_memory(event.in_memory);
    file->set_path(std::string(event.path));
    file->set_mode(ToProtoMode(event.mode));
    file->set_path_only(event.path_only);
  }
  void operator()(const ChunkEvent& event) const {
    // Copied, even from a streamed chunk's buffer: the Consume stream does not come
    // here for chunks (ServerMessageEncoder hands their bytes to gRPC uncopied).
    v1::Chunk* chunk = out->mutable_chunk();
    chunk->set_data(event.data.data(), event.data.size());
    chunk->set_offset(event.offset);
  }
  void operator()(const FileFinishedEvent& event) const {
    v1::FileFinished* finished = out->mutable_file_finished();
    finished->set_size(event.size);
    if (event.checksum_kind != ChecksumKind::kNone) {
      finished->set_checksum_algorithm(std::string(ChecksumKindName(event.checksum_kind)));
      finished->set_checksum(std::string(event.checksum_hex));
    }
  }
  void operator()(const RequestFinishedEvent& event) const {
    out->mutable_request_finished()->set_total_bytes(event.total_bytes);
  }
  void operator()(const RequestAbortedEvent& event) const {
    out->mutable_request_aborted()->set_reason(std::string(event.reason));
  }
};

}  // namespace

v1::Mode ToProtoMode(UploadMode mode) {
  switch (mode) {
    case UploadMode::kMemory:
      return v1::MODE_MEMORY;
    case UploadMode::kSpill:
      return v1::MODE_SPILL;
    case UploadMode::kStream:
      return v1::MODE_STREAM;
  }
  return v1::MODE_UNSPECIFIED;
}

void ToServerMessage(const UploadEvent& event, v1::ServerMessage* out) {
  out->Clear();
  std::visit(EventWriter{out}, event);
}

ConsumerReply FromProtoReply(const v1::Reply& reply) {
  ConsumerReply out;
  out.status = static_cast<int>(reply.status());
  for (const v1::Header& header : reply.headers()) {
    std::string name = header.name();
    for (char& c : name) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    out.headers.emplace_back(std::move(name), header.value());
  }
  out.body = reply.body();
  return out;
}

void ToProtoReply(const ConsumerReply& reply, v1::Reply* out) {
  out->Clear();
  out->set_status(static_cast<uint32_t>(reply.status));
  AddHeaders(reply.headers, out->mutable_headers());
  out->set_body(reply.body);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace spillway
