#include "spillway/client/consumer.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "spillway/v1/ingest.grpc.pb.h"

namespace spillway::client {
namespace {

namespace v1 = ::spillway::v1;
using Clock = std::chrono::steady_clock;

constexpr size_t kPathReadChunk = 256 * 1024;

Mode FromProto(v1::Mode mode) {
  switch (mode) {
    case v1::MODE_MEMORY: return Mode::kMemory;
    case v1::MODE_SPILL: return Mode::kSpill;
    case v1::MODE_STREAM: return Mode::kStream;
    default: return Mode::kUnspecified;
  }
}

RequestInfo InfoFromProto(const v1::RequestStarted& started) {
  RequestInfo info;
  info.upload_id = started.upload_id();
  info.attempt = started.attempt();
  info.method = started.method();
  info.path = started.path();
  info.query = started.query();
  for (const v1::Header& header : started.headers()) {
    info.headers.push_back({header.name(), header.value()});
  }
  info.remote_address = started.remote_address();
  info.content_type = started.content_type();
  if (started.has_content_length()) info.content_length = started.content_length();
  info.mode = FromProto(started.mode());
  info.protocol = started.protocol();
  return info;
}

FileInfo FileFromProto(const v1::UploadedFile& file) {
  FileInfo info;
  info.field_name = file.field_name();
  info.filename = file.filename();
  info.content_type = file.content_type();
  if (file.has_size()) info.size = file.size();
  info.in_memory = file.in_memory();
  info.path = file.path();
  info.path_only = file.path_only();
  info.mode = FromProto(file.mode());
  return info;
}

using ConsumeStream = grpc::ClientReaderWriter<v1::ConsumerMessage, v1::ServerMessage>;

// The server messages of one Consume stream, with one message of lookahead.
class StreamReader {
 public:
  explicit StreamReader(ConsumeStream* stream) : stream_(stream) {}
  // False when the stream ended.
  bool Read(v1::ServerMessage* message) {
    if (lookahead_.has_value()) {
      *message = std::move(*lookahead_);
      lookahead_.reset();
      return true;
    }
    if (ended_) return false;
    if (!stream_->Read(message)) {
      ended_ = true;
      return false;
    }
    received_any_ = true;
    return true;
  }
  void PutBack(v1::ServerMessage message) { lookahead_ = std::move(message); }
  bool received_any() const { return received_any_; }

 private:
  ConsumeStream* stream_;
  std::optional<v1::ServerMessage> lookahead_;
  bool ended_ = false;
  bool received_any_ = false;
};

}  // namespace

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kMemory: return "memory";
    case Mode::kSpill: return "spill";
    case Mode::kStream: return "stream";
    default: return "unspecified";
  }
}

// ---- Request ----

class Request::Impl {
 public:
  Impl(StreamReader* reader, RequestInfo info) : reader_(reader), info_(std::move(info)) {}
  ~Impl() { CloseFile(); }

  const RequestInfo& info() const { return info_; }

  bool Next() {
    if (done_) return false;
    if (in_file_ && !file_done_) {
      skipping_file_ = true;
      std::string ignored;
      while (Read(&ignored)) {
      }
      skipping_file_ = false;
      if (done_) return false;
    }
    in_file_ = false;
    v1::ServerMessage message;
    while (true) {
      if (!reader_->Read(&message)) return Abort("the Consume stream broke");
      switch (message.kind_case()) {
        case v1::ServerMessage::kField:
          field_name_ = message.field().name();
          field_value_ = message.field().value();
          return true;
        case v1::ServerMessage::kFileStarted:
          StartFile(FileFromProto(message.file_started().file()));
          return true;
        case v1::ServerMessage::kChunk:
          // A raw body may come as Chunks without FileStarted: one unnamed file.
          {
            FileInfo raw;
            raw.content_type = info_.content_type;
            raw.mode = info_.mode;
            StartFile(std::move(raw));
          }
          pending_chunk_ = std::move(*message.mutable_chunk()->mutable_data());
          return true;
        case v1::ServerMessage::kRequestFinished:
          done_ = true;
          total_bytes_ = message.request_finished().total_bytes();
          return false;
        case v1::ServerMessage::kRequestAborted:
          return Abort(message.request_aborted().reason());
        case v1::ServerMessage::kRequestStarted:
          reader_->PutBack(std::move(message));
          return Abort("the server started another upload");
        default:
          break;  // a stray FileFinished: ignored
      }
    }
  }

  bool Read(std::string* chunk) {
    chunk->clear();
    if (!in_file_ || file_done_) return false;
    if (pending_chunk_.has_value()) {
      *chunk = std::move(*pending_chunk_);
      pending_chunk_.reset();
      file_end_.size += chunk->size();
      return true;
    }
    if (file_.path_only && !path_read_done_ && !skipping_file_) {
      if (ReadFromPath(chunk)) return true;
    }
    v1::ServerMessage message;
    while (true) {
      if (!reader_->Read(&message)) {
        file_done_ = true;
        return Abort("the Consume stream broke");
      }
      switch (message.kind_case()) {
        case v1::ServerMessage::kChunk:
          if (file_.path_only) continue;
          *chunk = std::move(*message.mutable_chunk()->mutable_data());
          file_end_.size += chunk->size();
          if (chunk->empty()) continue;
          return true;
        case v1::ServerMessage::kFileFinished: {
          const v1::FileFinished& finished = message.file_finished();
          file_end_.size = finished.size();
          file_end_.checksum_algorithm = finished.checksum_algorithm();
          file_end_.checksum = finished.checksum();
          file_done_ = true;
          CloseFile();
          return false;
        }
        default:
          // The end of a raw body (no FileFinished), or of the upload: Next() sees it.
          reader_->PutBack(std::move(message));
          file_done_ = true;
          CloseFile();
          return false;
      }
    }
  }

  bool is_file() const { return in_file_; }
  const std::string& field_name() const { return field_name_; }
  const std::string& field_value() const { return field_value_; }
  const FileInfo& file() const { return file_; }
  const FileEnd& file_end() const { return file_end_; }
  bool aborted() const { return aborted_; }
  const std::string& abort_reason() const { return abort_reason_; }
  uint64_t total_bytes() const { return total_bytes_; }
  bool done() const { return done_; }

 private:
  bool Abort(std::string reason) {
    done_ = true;
    aborted_ = true;
    abort_reason_ = std::move(reason);
    CloseFile();
    return false;
  }

  void StartFile(FileInfo file) {
    CloseFile();
    in_file_ = true;
    file_done_ = false;
    path_read_done_ = false;
    file_ = std::move(file);
    file_end_ = FileEnd();
    pending_chunk_.reset();
  }

  // The next piece of a path_only file; false at its end (or on an error, which then
  // shows as a short file_end().size against the server's FileFinished size).
  bool ReadFromPath(std::string* chunk) {
    if (fd_ < 0) {
      fd_ = open(file_.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) {
        path_read_done_ = true;
        return false;
      }
    }
    chunk->resize(kPathReadChunk);
    ssize_t n;
    do {
      n = read(fd_, chunk->data(), chunk->size());
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      chunk->clear();
      path_read_done_ = true;
      CloseFile();
      return false;
    }
    chunk->resize(static_cast<size_t>(n));
    path_bytes_ += static_cast<uint64_t>(n);
    return true;
  }

  void CloseFile() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  StreamReader* reader_;
  RequestInfo info_;
  bool done_ = false;
  bool aborted_ = false;
  std::string abort_reason_;
  uint64_t total_bytes_ = 0;
  std::string field_name_;
  std::string field_value_;
  bool in_file_ = false;
  bool file_done_ = false;
  bool skipping_file_ = false;
  FileInfo file_;
  FileEnd file_end_;
  std::optional<std::string> pending_chunk_;
  int fd_ = -1;
  bool path_read_done_ = false;
  uint64_t path_bytes_ = 0;
};

const RequestInfo& Request::info() const { return impl_->info(); }
bool Request::Next() { return impl_->Next(); }
bool Request::is_file() const { return impl_->is_file(); }
const std::string& Request::field_name() const { return impl_->field_name(); }
const std::string& Request::field_value() const { return impl_->field_value(); }
const FileInfo& Request::file() const { return impl_->file(); }
bool Request::Read(std::string* chunk) { return impl_->Read(chunk); }
const FileEnd& Request::file_end() const { return impl_->file_end(); }
bool Request::aborted() const { return impl_->aborted(); }
const std::string& Request::abort_reason() const { return impl_->abort_reason(); }
uint64_t Request::total_bytes() const { return impl_->total_bytes(); }

// ---- Consumer ----

class Consumer::Impl {
 public:
  Impl(Options options, Handler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {
    options_.workers = std::max(options_.workers, 1);
  }
  ~Impl() { Stop(); }

  void Start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return;
    started_ = true;
    if (options_.target.starts_with("dns:")) {
      resolver_ = std::thread([this] { ResolveLoop(); });
    } else {
      AddReplicaLocked(options_.target);
    }
  }

  void Stop() {
    std::map<std::string, std::unique_ptr<Replica>> replicas;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      for (auto& [address, replica] : replicas_) CancelLocked(*replica);
      replicas = std::move(replicas_);
      replicas_.clear();
      cv_.notify_all();
    }
    if (resolver_.joinable()) resolver_.join();
    for (auto& [address, replica] : replicas) Join(*replica);
  }

  bool WaitUntilConnected(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return streams_attached_ > 0 || stopping_ || !fatal_.empty();
    }) && streams_attached_ > 0;
  }

  std::string Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopping_ || !fatal_.empty(); });
    return fatal_;
  }

  Stats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    Stats stats = stats_;
    stats.streams_attached = streams_attached_;
    stats.replicas = static_cast<int>(replicas_.size());
    return stats;
  }

 private:
  struct Replica {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Ingest::Stub> stub;
    std::vector<std::thread> workers;
    bool stopping = false;                    // guarded by Impl::mu_
    bool failing = false;                     // guarded by Impl::mu_; for logs
    std::set<grpc::ClientContext*> contexts;  // guarded by Impl::mu_
  };

  void Log(const std::string& line) {
    if (options_.log) options_.log(line);
  }

  void AddReplicaLocked(const std::string& address) {
    auto replica = std::make_unique<Replica>();
    replica->address = address;
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    // Reconnect promptly: the Consumer's own backoff paces the streams.
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    replica->channel =
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    replica->stub = v1::Ingest::NewStub(replica->channel);
    Replica* raw = replica.get();
    for (int i = 0; i < options_.workers; ++i) {
      raw->workers.emplace_back([this, raw] { WorkerLoop(*raw); });
    }
    replicas_.emplace(address, std::move(replica));
  }

  void CancelLocked(Replica& replica) {
    replica.stopping = true;
    for (grpc::ClientContext* context : replica.contexts) context->TryCancel();
  }

  static void Join(Replica& replica) {
    for (std::thread& worker : replica.workers) {
      if (worker.joinable()) worker.join();
    }
  }

  // Sleeps for `duration` unless the replica is stopped first; false if stopped.
  bool SleepUnlessStopped(Replica& replica, std::chrono::milliseconds duration) {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, duration, [&] { return replica.stopping || stopping_; });
  }

  void WorkerLoop(Replica& replica) {
    std::mt19937_64 random(std::random_device{}());
    std::chrono::milliseconds backoff = options_.initial_backoff;
    bool first = true;
    while (true) {
      grpc::ClientContext context;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (replica.stopping || stopping_) return;
        replica.contexts.insert(&context);
        if (!first) ++stats_.reconnects;
      }
      first = false;
      const Clock::time_point began = Clock::now();
      bool attached = false;
      bool received = false;
      const grpc::Status status = RunStream(replica, context, &attached, &received);
      {
        std::lock_guard<std::mutex> lock(mu_);
        replica.contexts.erase(&context);
        if (attached) --streams_attached_;
        if (replica.stopping || stopping_) return;
        if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
          // The server rejected the Attach: retrying cannot help.
          fatal_ = "the server rejected the consumer: " + status.error_message();
          cv_.notify_all();
          return;
        }
      }
      if (received || Clock::now() - began > std::chrono::seconds(5)) {
        backoff = options_.initial_backoff;  // the stream had been healthy
      }
      // Full backoff times a jitter factor in [0.5, 1.0): streams broken together do
      // not come back together.
      std::uniform_real_distribution<double> jitter(0.5, 1.0);
      const auto sleep = std::chrono::milliseconds(
          static_cast<int64_t>(static_cast<double>(backoff.count()) * jitter(random)));
      // One line per replica going down, not one per worker and retry.
      bool log = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        log = !replica.failing;
        replica.failing = true;
      }
      if (log) {
        Log("stream to " + replica.address + " ended (gRPC code " +
            std::to_string(static_cast<int>(status.error_code())) + ": " +
            status.error_message() + "); reconnecting with backoff");
      }
      if (!SleepUnlessStopped(replica, sleep)) return;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  grpc::Status RunStream(Replica& replica, grpc::ClientContext& context, bool* attached,
                         bool* received) {
    std::unique_ptr<ConsumeStream> stream = replica.stub->Consume(&context);
    v1::ConsumerMessage attach;
    attach.mutable_attach()->set_name(options_.name);
    for (const std::string& prefix : options_.path_prefixes) {
      attach.mutable_attach()->add_path_prefixes(prefix);
    }
    attach.mutable_attach()->set_paths_only(options_.paths_only);
    if (stream->Write(attach)) {
      bool recovered = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        *attached = true;
        ++streams_attached_;
        recovered = replica.failing;
        replica.failing = false;
        cv_.notify_all();
      }
      if (recovered) Log("attached to " + replica.address + " again");
    }
    StreamReader reader(stream.get());
    v1::ServerMessage message;
    bool ended = false;  // the server ended the stream: its status is the one to report
    while (*attached) {
      if (!reader.Read(&message)) {
        ended = true;
        break;
      }
      *received = true;
      // Anything but RequestStarted belongs to an upload already answered or given up.
      if (message.kind_case() != v1::ServerMessage::kRequestStarted) continue;
      Request::Impl impl(&reader, InfoFromProto(message.request_started()));
      Request request(&impl);
      Reply reply;
      try {
        reply = handler_(request);
      } catch (const std::exception& e) {
        reply = Reply{500, {{"content-type", "text/plain"}}, std::string("handler failed: ") + e.what()};
      } catch (...) {
        reply = Reply{500, {{"content-type", "text/plain"}}, "handler failed"};
      }
      if (impl.aborted()) {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.uploads_aborted;
        continue;
      }
      v1::ConsumerMessage out;
      v1::Reply* proto = out.mutable_reply();
      proto->set_upload_id(impl.info().upload_id);
      proto->set_status(reply.status);
      for (const Header& header : reply.headers) {
        v1::Header* h = proto->add_headers();
        h->set_name(header.name);
        h->set_value(header.value);
      }
      proto->set_body(std::move(reply.body));
      {
        // Counted first: the uploader may see the reply before Write() returns.
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.uploads_handled;
      }
      if (!stream->Write(out)) break;
    }
    if (!ended) {
      context.TryCancel();  // not attached, or the Reply could not be written
      while (stream->Read(&message)) {
      }
    }
    return stream->Finish();
  }

  // dns:///name:port (or dns://authority/name:port): every address gets a replica.
  void ResolveLoop() {
    std::string rest = options_.target.substr(4);
    if (rest.starts_with("//")) {
      const size_t slash = rest.find('/', 2);
      rest = slash == std::string::npos ? "" : rest.substr(slash + 1);
    }
    std::string host = rest;
    std::string port = "50051";
    if (!rest.empty() && rest[0] == '[') {
      const size_t close = rest.find(']');
      host = rest.substr(1, close == std::string::npos ? std::string::npos : close - 1);
      if (close != std::string::npos && close + 1 < rest.size() && rest[close + 1] == ':') {
        port = rest.substr(close + 2);
      }
    } else if (const size_t colon = rest.rfind(':'); colon != std::string::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    }
    while (true) {
      std::set<std::string> addresses;
      if (options_.resolver) {
        for (std::string& address : options_.resolver(rest)) addresses.insert(std::move(address));
      } else {
        addresses = Resolve(host, port);
      }
      std::vector<std::unique_ptr<Replica>> gone;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        if (!addresses.empty()) {
          for (auto it = replicas_.begin(); it != replicas_.end();) {
            if (addresses.count(it->first) == 0) {
              Log("replica " + it->first + " is gone from " + options_.target);
              CancelLocked(*it->second);
              gone.push_back(std::move(it->second));
              it = replicas_.erase(it);
            } else {
              ++it;
            }
          }
          for (const std::string& address : addresses) {
            if (replicas_.count(address) == 0) {
              Log("replica " + address + " found for " + options_.target);
              AddReplicaLocked(address);
            }
          }
        } else {
          Log("cannot resolve " + host + "; keeping " + std::to_string(replicas_.size()) +
              " replicas");
        }
      }
      for (auto& replica : gone) Join(*replica);
      std::unique_lock<std::mutex> lock(mu_);
      const auto interval = replicas_.empty()
                                ? std::min(options_.resolve_interval,
                                           std::chrono::milliseconds(1000))
                                : options_.resolve_interval;
      if (cv_.wait_for(lock, interval, [&] { return stopping_; })) return;
    }
  }

  static std::set<std::string> Resolve(const std::string& host, const std::string& port) {
    std::set<std::string> out;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &result) != 0) return out;
    for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
      char text[INET6_ADDRSTRLEN] = {};
      if (ai->ai_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
        out.insert(std::string("ipv4:") + text + ":" + port);
      } else if (ai->ai_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
        out.insert(std::string("ipv6:[") + text + "]:" + port);
      }
    }
    freeaddrinfo(result);
    return out;
  }

  Options options_;
  const Handler handler_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  std::string fatal_;
  int streams_attached_ = 0;
  Stats stats_;
  std::map<std::string, std::unique_ptr<Replica>> replicas_;
  std::thread resolver_;
};

Consumer::Consumer(Options options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}
Consumer::~Consumer() { impl_->Stop(); }
void Consumer::Start() { impl_->Start(); }
void Consumer::Stop() { impl_->Stop(); }
bool Consumer::WaitUntilConnected(std::chrono::milliseconds timeout) {
  return impl_->WaitUntilConnected(timeout);
}
std::string Consumer::Wait() { return impl_->Wait(); }
Consumer::Stats Consumer::stats() const { return impl_->stats(); }

}  // namespace spillway::client
