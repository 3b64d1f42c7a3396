// A gRPC consumer that discards (bench/load_grpc.sh): opens N Consume streams on
// spillwayd's Ingest service, pulls every ServerMessage, counts the Chunk bytes, and
// answers each upload with 200 and a tiny body once RequestFinished arrives. A stream
// that breaks is reattached after a short pause. Runs until SIGTERM or SIGINT, then
// prints one JSON line of totals on stdout and exits 0. Written the way a consumer
// that cares about CPU would be: one thread drives every stream (see Stream).
//
// Usage: grpc_discard_consumer --target=127.0.0.1:PORT [--streams=4] [--name=NAME]
//                              [--prefix=/path]...
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "spillway/v1/ingest.grpc.pb.h"

namespace {

struct Options {
  std::string target;
  int streams = 4;
  std::string name = "bench-discard";
  std::vector<std::string> prefixes;
};

struct Totals {
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> chunks{0};
  std::atomic<uint64_t> replied{0};
  std::atomic<uint64_t> aborted{0};
  std::atomic<uint64_t> reattached{0};
};

// Every stream is driven from one thread through one CompletionQueue (the async
// API). That thread is then the only one polling the channel. With the synchronous
// API each stream's blocked Read() takes turns polling: an upload on one stream cost
// the consumer about 1.5x the CPU (5 futex calls per message) when 3 idle streams
// sat beside it.
//
// Ownership: main() owns the Streams. Threading: a
// Stream is touched only by the CompletionQueue thread, except Cancel() (any thread,
// under the Stream's mutex).
class Stream {
 public:
  Stream(spillway::v1::Ingest::Stub* stub, grpc::CompletionQueue* cq,
         const Options& options, int index, Totals& totals)
      : stub_(stub), cq_(cq), options_(options), index_(index), totals_(totals) {
    reply_.mutable_reply()->set_status(200);
    auto* header = reply_.mutable_reply()->add_headers();
    header->set_name("content-type");
    header->set_value("application/json");
  }

  // The completion of an operation tagged with this stream; false when the stream is
  // over for good (stopped).
  bool OnCompletion(int op, bool ok) {
    switch (op) {
      case kStarted:
        if (!ok) return EndWhenIdle();
        attach_.mutable_attach()->set_name(options_.name + "-" + std::to_string(index_));
        for (const std::string& prefix : options_.prefixes) {
          attach_.mutable_attach()->add_path_prefixes(prefix);
        }
        Write(attach_);
        Read();
        return true;
      case kRead:
        read_in_flight_ = false;
        if (!ok) return EndWhenIdle();
        Handle();
        Read();
        return true;
      case kWrite:
        write_in_flight_ = false;
        if (!ok) {
          context_->TryCancel();  // so the read in flight ends too
          return EndWhenIdle();
        }
        if (!read_in_flight_) return EndWhenIdle();  // the read side already ended
        if (reply_pending_) {
          reply_pending_ = false;
          Write(reply_);
        }
        return true;
      case kFinished:
        call_.reset();
        if (Stopping()) return false;
        // Reattach after a short pause.
        alarm_.Set(cq_, std::chrono::system_clock::now() + std::chrono::milliseconds(100),
                   Tag(kReattach));
        return true;
      case kReattach:
        if (Stopping()) return false;
        totals_.reattached.fetch_add(1, std::memory_order_relaxed);
        Attach();
        return true;
    }
    return true;
  }

  void Attach() {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = std::make_unique<grpc::ClientContext>();
    if (stopping_) context_->TryCancel();
    call_ = stub_->PrepareAsyncConsume(context_.get(), cq_);
    finishing_ = false;
    call_->StartCall(Tag(kStarted));
  }

  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
    alarm_.Cancel();
  }

  static Stream* FromTag(void* tag, int* op) {
    auto bits = reinterpret_cast<uintptr_t>(tag);
    *op = static_cast<int>(bits % kOpAlign);
    return reinterpret_cast<Stream*>(bits - bits % kOpAlign);
  }

 private:
  enum Op { kStarted, kRead, kWrite, kFinished, kReattach };
  static constexpr uintptr_t kOpAlign = 8;  // Streams are 8-aligned: ops fit the low bits

  void* Tag(Op op) {
    return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(this) + op);
  }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  void Read() {
    read_in_flight_ = true;
    call_->Read(&message_, Tag(kRead));
  }

  void Write(const spillway::v1::ConsumerMessage& message) {
    write_in_flight_ = true;
    call_->Write(message, Tag(kWrite));
  }

  // The stream broke or the server ended it: Finish once no operation is in flight
  // (after a failed read, a write in flight fails soon too).
  bool EndWhenIdle() {
    if (!read_in_flight_ && !write_in_flight_ && !finishing_) {
      finishing_ = true;
      call_->Finish(&status_, Tag(kFinished));
    }
    return true;
  }

  void Handle() {
    switch (message_.kind_case()) {
      case spillway::v1::ServerMessage::kRequestStarted:
        upload_bytes_ = 0;
        reply_.mutable_reply()->set_upload_id(message_.request_started().upload_id());
        break;
      case spillway::v1::ServerMessage::kChunk:
        upload_bytes_ += message_.chunk().data().size();
        totals_.bytes.fetch_add(message_.chunk().data().size(), std::memory_order_relaxed);
        totals_.chunks.fetch_add(1, std::memory_order_relaxed);
        break;
      case spillway::v1::ServerMessage::kRequestFinished:
        reply_.mutable_reply()->set_body("{\"bytes\":" + std::to_string(upload_bytes_) +
                                         "}");
        totals_.replied.fetch_add(1, std::memory_order_relaxed);
        if (write_in_flight_) {
          reply_pending_ = true;
        } else {
          Write(reply_);
        }
        break;
      case spillway::v1::ServerMessage::kRequestAborted:
        totals_.aborted.fetch_add(1, std::memory_order_relaxed);
        break;
      default:  // Field, FileStarted, FileFinished: nothing to do
        break;
    }
  }

  spillway::v1::Ingest::Stub* const stub_;
  grpc::CompletionQueue* const cq_;
  const Options& options_;
  const int index_;
  Totals& totals_;

  std::mutex mu_;
  bool stopping_ = false;                          // guarded by mu_
  std::unique_ptr<grpc::ClientContext> context_;   // replaced under mu_
  std::unique_ptr<grpc::ClientAsyncReaderWriter<spillway::v1::ConsumerMessage,
                                                spillway::v1::ServerMessage>>
      call_;
  grpc::Alarm alarm_;
  spillway::v1::ConsumerMessage attach_;
  spillway::v1::ConsumerMessage reply_;
  spillway::v1::ServerMessage message_;
  grpc::Status status_;
  uint64_t upload_bytes_ = 0;
  bool read_in_flight_ = false;
  bool write_in_flight_ = false;
  bool reply_pending_ = false;  // RequestFinished came while a write was in flight
  bool finishing_ = false;
};

bool ParseFlag(std::string_view arg, std::string_view name, std::string* value) {
  if (!arg.starts_with(name) || arg.size() <= name.size() || arg[name.size()] != '=') {
    return false;
  }
  *value = std::string(arg.substr(name.size() + 1));
  return true;
}

int Usage() {
  std::cerr << "usage: grpc_discard_consumer --target=HOST:PORT [--streams=N] "
               "[--name=NAME] [--prefix=/path]...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string value;
    std::string_view arg = argv[i];
    if (ParseFlag(arg, "--target", &value)) {
      options.target = value;
    } else if (ParseFlag(arg, "--streams", &value)) {
      options.streams = std::atoi(value.c_str());
    } else if (ParseFlag(arg, "--name", &value)) {
      options.name = value;
    } else if (ParseFlag(arg, "--prefix", &value)) {
      options.prefixes.push_back(value);
    } else {
      return Usage();
    }
  }
  if (options.target.empty() || options.streams < 1) return Usage();

  // A Read() may parse a Chunk into a freshly allocated 256 KiB string; keep such
  // blocks on the heap instead of mmap/trim cycles that page-fault every buffer in
  // anew (~100k faults per GiB otherwise).
  mallopt(M_MMAP_THRESHOLD, 16 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);

  // Block the stop signals in every thread (gRPC's included); main waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel =
      grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args);
  auto stub = spillway::v1::Ingest::NewStub(channel);

  Totals totals;
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Stream>> streams;
  for (int i = 0; i < options.streams; ++i) {
    streams.push_back(std::make_unique<Stream>(stub.get(), &cq, options, i, totals));
    streams.back()->Attach();
  }
  std::thread driver([&cq, live = options.streams]() mutable {
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
      int op;
      Stream* stream = Stream::FromTag(tag, &op);
      if (!stream->OnCompletion(op, ok) && --live == 0) cq.Shutdown();
    }
  });

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  for (auto& stream : streams) stream->Cancel();
  driver.join();

  std::printf(
      "{\"event\":\"stopped\",\"bytes\":%llu,\"chunks\":%llu,\"replied\":%llu,"
      "\"aborted\":%llu,\"reattached\":%llu}\n",
      static_cast<unsigned long long>(totals.bytes.load()),
      static_cast<unsigned long long>(totals.chunks.load()),
      static_cast<unsigned long long>(totals.replied.load()),
      static_cast<unsigned long long>(totals.aborted.load()),
      static_cast<unsigned long long>(totals.reattached.load()));
  std::fflush(stdout);
  return 0;
}
