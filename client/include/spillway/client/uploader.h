// spillway::client::Uploader: sends fields and files to spillwayd with the
// Ingest.Upload RPC and returns the consumer's Reply (DESIGN.md §2).
//
//   spillway::client::Uploader uploader("127.0.0.1:50051");
//   spillway::client::UploadSpec spec;
//   spec.path = "/in";
//   spec.fields = {{"note", "hello"}};
//   spec.files = {spillway::client::UploadFile::FromPath("report.pdf")};
//   spillway::client::Reply reply;
//   std::string error;
//   if (!uploader.Upload(spec, &reply, &error)) { /* error says why */ }
//
// The upload declares its total size, so one over the server's MAX_BODY_SIZE is
// streamed to a consumer as it is sent (memory bounded on both sides) and a smaller one
// is buffered and dispatched at the end, exactly like an HTTP upload.
//
// Ownership: the Uploader owns its channel; files are read from disk while sending.
// Threading: Upload() may be called from several threads at once (one RPC each); the
// progress callback runs on the calling thread.
#ifndef SPILLWAY_CLIENT_UPLOADER_H_
#define SPILLWAY_CLIENT_UPLOADER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "spillway/client/types.h"

namespace spillway::client {

// One file of an upload: its bytes come from `path` on disk, or from `data` when `path`
// is empty.
struct UploadFile {
  std::string field_name = "file";
  std::string filename;      // sent as is; the server never uses it as a path
  std::string content_type = "application/octet-stream";
  std::string path;
  std::string data;

  // field "file", filename = the last component of `path`.
  static UploadFile FromPath(const std::string& path);
};

struct UploadSpec {
  std::string path = "/";  // routes the upload to consumers, like an HTTP path
  std::vector<Header> headers;
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<UploadFile> files;
  // Called after each chunk is handed to gRPC, and once at the end:
  // (bytes sent so far, total bytes of fields and files).
  std::function<void(uint64_t sent, uint64_t total)> progress;
};

class Uploader {
 public:
  struct Options {
    size_t chunk_size = 1024 * 1024;
    // How long to wait for a connection before failing with "unreachable".
    std::chrono::milliseconds connect_timeout{10000};
    // Deadline of the whole RPC; zero: none.
    std::chrono::milliseconds timeout{0};
  };

  explicit Uploader(const std::string& target) : Uploader(target, Options()) {}
  Uploader(const std::string& target, Options options);
  ~Uploader();
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  enum class Error {
    kNone,
    kUnreachable,  // no connection within connect_timeout
    kLocalFile,    // a file could not be read
    kRpc,          // the RPC failed (its gRPC status is in the message)
  };

  // Sends `spec` and waits for the Reply. On failure returns false, fills *error_text
  // and, if given, *error.
  bool Upload(const UploadSpec& spec, Reply* reply, std::string* error_text,
              Error* error = nullptr);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spillway::client

#endif  // SPILLWAY_CLIENT_UPLOADER_H_
