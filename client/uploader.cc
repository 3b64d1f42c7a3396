#include "spillway/client/uploader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <cerrno>
#include <cstring>

#include "spillway/v1/ingest.grpc.pb.h"

namespace spillway::client {

namespace v1 = ::spillway::v1;

UploadFile UploadFile::FromPath(const std::string& path) {
  UploadFile file;
  file.path = path;
  const size_t slash = path.find_last_of('/');
  file.filename = slash == std::string::npos ? path : path.substr(slash + 1);
  return file;
}

class Uploader::Impl {
 public:
  Impl(const std::string& target, Options options) : target_(target), options_(options) {
    channel_ = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
    stub_ = v1::Ingest::NewStub(channel_);
  }

  bool Upload(const UploadSpec& spec, Reply* reply, std::string* error_text,
              Error* error) {
    auto fail = [&](Error kind, std::string text) {
      if (error != nullptr) *error = kind;
      *error_text = std::move(text);
      return false;
    };
    if (error != nullptr) *error = Error::kNone;
    // Sizes first: the total is declared so a big upload is streamed, not buffered.
    uint64_t total = 0;
    for (const auto& [name, value] : spec.fields) total += value.size();
    std::vector<uint64_t> sizes;
    for (const UploadFile& file : spec.files) {
      if (file.path.empty()) {
        sizes.push_back(file.data.size());
      } else {
        struct stat st;
        if (stat(file.path.c_str(), &st) != 0) {
          return fail(Error::kLocalFile, file.path + ": " + std::strerror(errno));
        }
        if (!S_ISREG(st.st_mode)) {
          return fail(Error::kLocalFile, file.path + ": not a regular file");
        }
        sizes.push_back(static_cast<uint64_t>(st.st_size));
      }
      total += sizes.back();
    }
    const auto connect_deadline = std::chrono::system_clock::now() + options_.connect_timeout;
    if (!channel_->WaitForConnected(connect_deadline)) {
      return fail(Error::kUnreachable,
                  "cannot connect to " + target_ + " within " +
                      std::to_string(options_.connect_timeout.count()) + " ms");
    }

    grpc::ClientContext context;
    if (options_.timeout.count() > 0) {
      context.set_deadline(std::chrono::system_clock::now() + options_.timeout);
    }
    v1::Reply proto_reply;
    std::unique_ptr<grpc::ClientWriter<v1::UploadRequest>> writer =
        stub_->Upload(&context, &proto_reply);
    uint64_t sent = 0;
    auto progress = [&] {
      if (spec.progress) spec.progress(sent, total);
    };
    v1::UploadRequest request;
    v1::UploadStart* start = request.mutable_start();
    start->set_path(spec.path);
    start->set_total_size(total);
    for (const Header& header : spec.headers) {
      v1::Header* h = start->add_headers();
      h->set_name(header.name);
      h->set_value(header.value);
    }
    bool ok = writer->Write(request);
    for (const auto& [name, value] : spec.fields) {
      if (!ok) break;
      request.Clear();
      request.mutable_field()->set_name(name);
      request.mutable_field()->set_value(value);
      ok = writer->Write(request);
      sent += value.size();
    }
    std::string local_error;
    for (size_t i = 0; ok && i < spec.files.size(); ++i) {
      const UploadFile& file = spec.files[i];
      request.Clear();
      v1::FileHeader* header = request.mutable_file();
      header->set_field_name(file.field_name);
      header->set_filename(file.filename);
      header->set_content_type(file.content_type);
      header->set_size(sizes[i]);
      ok = writer->Write(request);
      int fd = -1;
      if (!file.path.empty()) {
        fd = open(file.path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          local_error = file.path + ": " + std::strerror(errno);
          break;
        }
      }
      uint64_t offset = 0;
      while (ok && offset < sizes[i]) {
        request.Clear();
        v1::Chunk* chunk = request.mutable_chunk();
        chunk->set_offset(offset);
        const size_t want = static_cast<size_t>(
            std::min<uint64_t>(options_.chunk_size, sizes[i] - offset));
        if (fd >= 0) {
          std::string* data = chunk->mutable_data();
          data->resize(want);
          ssize_t n;
          do {
            n = read(fd, data->data(), want);
          } while (n < 0 && errno == EINTR);
          if (n <= 0) {
            local_error = file.path + (n < 0 ? ": " + std::string(std::strerror(errno))
                                             : ": file shrank while being sent");
            break;
          }
          data->resize(static_cast<size_t>(n));
        } else {
          chunk->set_data(file.data.substr(static_cast<size_t>(offset), want));
        }
        offset += chunk->data().size();
        ok = writer->Write(request);
        sent += chunk->data().size();
        progress();
      }
      if (fd >= 0) close(fd);
    }
    if (!local_error.empty()) {
      context.TryCancel();
      writer->Finish();
      return fail(Error::kLocalFile, local_error);
    }
    if (ok) writer->WritesDone();
    const grpc::Status status = writer->Finish();
    if (!status.ok()) {
      return fail(status.error_code() == grpc::StatusCode::UNAVAILABLE ? Error::kUnreachable
                                                                       : Error::kRpc,
                  "Upload RPC failed: " + status.error_message() + " (gRPC code " +
                      std::to_string(static_cast<int>(status.error_code())) + ")");
    }
    progress();
    reply->status = proto_reply.status();
    reply->headers.clear();
    for (const v1::Header& header : proto_reply.headers()) {
      reply->headers.push_back({header.name(), header.value()});
    }
    reply->body = proto_reply.body();
    return true;
  }

 private:
  const std::string target_;
  const Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Ingest::Stub> stub_;
};

Uploader::Uploader(const std::string& target, Options options)
    : impl_(std::make_unique<Impl>(target, options)) {}
Uploader::~Uploader() = default;
bool Uploader::Upload(const UploadSpec& spec, Reply* reply, std::string* error_text,
                      Error* error) {
  return impl_->Upload(spec, reply, error_text, error);
}

}  // namespace spillway::client
