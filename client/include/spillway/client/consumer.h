// spillway::client::Consumer: receives uploads from spillwayd's Ingest.Consume RPC and
// answers them with a handler (DESIGN.md §2, §3).
//
// Role: attaches `workers` Consume streams to a target, each handling one upload at a
// time by calling the handler on that stream's own thread. The handler pulls the
// upload's parts from a Request (fields, then files as streams of chunks) and returns
// the Reply that becomes the uploader's response. A broken stream is reopened after an
// exponential backoff with jitter; a buffered upload in flight on it is redelivered by
// the server to another stream (attempt + 1), so handlers should be idempotent on
// RequestInfo::upload_id.
//
//   spillway::client::Consumer::Options options;
//   options.target = "127.0.0.1:50051";
//   options.workers = 4;
//   options.path_prefixes = {"/in"};
//   spillway::client::Consumer consumer(options, [](spillway::client::Request& request) {
//     uint64_t bytes = 0;
//     while (request.Next()) {
//       std::string chunk;
//       if (request.is_file()) while (request.Read(&chunk)) bytes += chunk.size();
//     }
//     return spillway::client::Reply{201, {}, std::to_string(bytes)};
//   });
//   consumer.Start();
//   ...
//   consumer.Stop();
//
// Ownership: the Consumer owns its channel, streams and worker threads; the handler is
// copied in. A Request is owned by the Consumer and valid only during the handler call.
// Threading: Start(), Stop(), Wait() and stats() are thread-safe; the handler runs
// concurrently on up to `workers` threads (per replica), never twice on one Request.
//
// Targets: "host:port", "ipv4:1.2.3.4:port", or "dns:///name:port". A dns:/// target is
// resolved by the Consumer itself: it keeps `workers` streams to every resolved address
// and re-resolves every `resolve_interval`, so new replicas get consumers and gone ones
// are dropped (DESIGN.md §6).
#ifndef SPILLWAY_CLIENT_CONSUMER_H_
#define SPILLWAY_CLIENT_CONSUMER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "spillway/client/types.h"

namespace spillway::client {

// How the server buffered an upload or a file (DESIGN.md §1).
enum class Mode { kUnspecified, kMemory, kSpill, kStream };
const char* ModeName(Mode mode);  // "memory", "spill", "stream", "unspecified"

// The request's metadata (RequestStarted).
struct RequestInfo {
  std::string upload_id;  // unique; redeliveries keep it
  uint32_t attempt = 1;   // 1 for the first delivery
  std::string method;
  std::string path;       // without the query
  std::string query;      // without '?'
  std::vector<Header> headers;
  std::string remote_address;
  std::string content_type;
  std::optional<uint64_t> content_length;  // absent when unknown
  Mode mode = Mode::kUnspecified;
  std::string protocol;  // "HTTP/1.1", "HTTP/2", "gRPC"
};

// A file's metadata (FileStarted). A raw (non-multipart) body is one file with an
// empty field_name and filename.
struct FileInfo {
  std::string field_name;
  std::string filename;  // as the uploader sent it: never use it as a path unsanitized
  std::string content_type;
  std::optional<uint64_t> size;  // known up front in memory and spill modes
  bool in_memory = false;
  std::string path;        // the server's temp file, in spill mode
  bool path_only = false;  // paths_only consumer: Read() reads `path` itself
  Mode mode = Mode::kUnspecified;
};

// What the server reported at the end of a file (FileFinished).
struct FileEnd {
  uint64_t size = 0;
  std::string checksum_algorithm;  // "sha256", "crc32c" or ""
  std::string checksum;            // lower-case hex
};

// One upload being delivered, as a pull stream. Typical loop:
//   while (request.Next()) {
//     if (!request.is_file()) { use(request.field_name(), request.field_value()); continue; }
//     std::string chunk;
//     while (request.Read(&chunk)) write(chunk);
//     if (request.aborted()) break;  // the uploader went away: the reply is discarded
//   }
// Returning from the handler before the end is an early reply: the server stops
// delivering the upload and answers the uploader at once.
class Request {
 public:
  class Impl;
  explicit Request(Impl* impl) : impl_(impl) {}
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  const RequestInfo& info() const;

  // Moves to the next field or file, skipping what is left of the current file.
  // False at the end of the upload (finished or aborted).
  bool Next();
  bool is_file() const;
  const std::string& field_name() const;   // when !is_file()
  const std::string& field_value() const;  // when !is_file()
  const FileInfo& file() const;            // when is_file()

  // Replaces *chunk with the next bytes of the current file (at most the server's
  // STREAM_BODY_CHUNK_SIZE); false at the end of the file, then file_end() is set.
  // For a path_only file it reads the server's temp file at FileInfo::path.
  bool Read(std::string* chunk);
  const FileEnd& file_end() const;

  // True when the upload ended with RequestAborted (or the stream broke): the Reply
  // the handler returns is not sent.
  bool aborted() const;
  const std::string& abort_reason() const;
  uint64_t total_bytes() const;  // RequestFinished.total_bytes once finished

 private:
  Impl* impl_;
};

using Handler = std::function<Reply(Request&)>;

class Consumer {
 public:
  struct Options {
    std::string target;                      // see "Targets" above
    std::string name = "spillway-client";    // for the server's logs and metrics
    std::vector<std::string> path_prefixes;  // each starts with '/'; empty: every path
    int workers = 1;                         // Consume streams (per resolved address)
    bool paths_only = false;  // spilled files by path, read from a shared volume
    std::chrono::milliseconds initial_backoff{100};
    std::chrono::milliseconds max_backoff{5000};
    std::chrono::milliseconds resolve_interval{30000};  // dns:/// targets only
    // Resolves the "name:port" of a dns:/// target into gRPC addresses
    // ("ipv4:10.0.0.7:50051"). Default (empty): getaddrinfo. A hook for tests and for
    // other service discovery; called on the Consumer's resolver thread.
    std::function<std::vector<std::string>(const std::string& name_port)> resolver;
    // Called (from any thread) with one line per notable event: reconnects, errors.
    std::function<void(const std::string&)> log;
  };

  Consumer(Options options, Handler handler);
  ~Consumer();  // Stop()s
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Opens the streams (non-blocking). A rejected Attach (a bad prefix) makes every
  // stream end and Wait() return the error; other failures are retried forever.
  void Start();
  // Cancels the streams (a handler mid-upload sees aborted()) and joins the threads.
  void Stop();
  // Blocks until `timeout` passes (false) or at least one stream has attached (true):
  // the server then accepted the Attach and is reachable.
  bool WaitUntilConnected(std::chrono::milliseconds timeout);
  // Blocks until Stop() or a fatal error; returns "" or the error's text.
  std::string Wait();

  struct Stats {
    uint64_t uploads_handled = 0;  // replies handed to the stream
    uint64_t uploads_aborted = 0;
    uint64_t reconnects = 0;
    int streams_attached = 0;
    int replicas = 0;  // resolved addresses with streams
  };
  Stats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spillway::client

#endif  // SPILLWAY_CLIENT_CONSUMER_H_
