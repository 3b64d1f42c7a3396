// A gRPC consumer that discards (bench/load_grpc.sh): opens N Consume streams on
// spillwayd's Ingest service, pulls every ServerMessage, counts the Chunk bytes, and
// answers each upload with 200 and a tiny body once RequestFinished arrives. A stream
// that breaks is reattached after a short pause. Runs until SIGTERM or SIGINT, then
// prints one JSON line of totals on stdout and exits 0.
//
// Usage: grpc_discard_consumer --target=127.0.0.1:PORT [--streams=4] [--name=NAME]
//                              [--prefix=/path]...
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

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

// One Consume stream at a time, on its own thread, with the synchronous client API.
class Worker {
 public:
  Worker(std::shared_ptr<grpc::Channel> channel, const Options& options, int index,
         Totals& totals)
      : stub_(spillway::v1::Ingest::NewStub(std::move(channel))),
        options_(options),
        index_(index),
        totals_(totals) {}

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    for (bool first = true;; first = false) {
      grpc::ClientContext context;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        context_ = &context;
      }
      if (!first) totals_.reattached.fetch_add(1, std::memory_order_relaxed);
      RunStream(context);
      {
        std::lock_guard<std::mutex> lock(mu_);
        context_ = nullptr;
        if (stopping_) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  void RunStream(grpc::ClientContext& context) {
    auto stream = stub_->Consume(&context);
    spillway::v1::ConsumerMessage attach;
    attach.mutable_attach()->set_name(options_.name + "-" + std::to_string(index_));
    for (const std::string& prefix : options_.prefixes) {
      attach.mutable_attach()->add_path_prefixes(prefix);
    }
    if (!stream->Write(attach)) {
      stream->Finish().ok();
      return;
    }
    spillway::v1::ConsumerMessage reply;
    reply.mutable_reply()->set_status(200);
    auto* header = reply.mutable_reply()->add_headers();
    header->set_name("content-type");
    header->set_value("application/json");

    spillway::v1::ServerMessage message;
    uint64_t upload_bytes = 0;
    while (stream->Read(&message)) {
      switch (message.kind_case()) {
        case spillway::v1::ServerMessage::kRequestStarted:
          upload_bytes = 0;
          reply.mutable_reply()->set_upload_id(message.request_started().upload_id());
          break;
        case spillway::v1::ServerMessage::kChunk:
          upload_bytes += message.chunk().data().size();
          totals_.bytes.fetch_add(message.chunk().data().size(), std::memory_order_relaxed);
          totals_.chunks.fetch_add(1, std::memory_order_relaxed);
          break;
        case spillway::v1::ServerMessage::kRequestFinished:
          reply.mutable_reply()->set_body("{\"bytes\":" + std::to_string(upload_bytes) + "}");
          if (!stream->Write(reply)) return;
          totals_.replied.fetch_add(1, std::memory_order_relaxed);
          break;
        case spillway::v1::ServerMessage::kRequestAborted:
          totals_.aborted.fetch_add(1, std::memory_order_relaxed);
          break;
        default:  // Field, FileStarted, FileFinished: nothing to do
          break;
      }
    }
    stream->Finish().ok();  // cancelled on stop, or the server went away
  }

  std::unique_ptr<spillway::v1::Ingest::Stub> stub_;
  const Options& options_;
  const int index_;
  Totals& totals_;
  std::thread thread_;
  std::mutex mu_;
  bool stopping_ = false;                     // guarded by mu_
  grpc::ClientContext* context_ = nullptr;    // guarded by mu_
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

  // Every Read() parses a Chunk into a freshly allocated 256 KiB string (the oneof is
  // cleared between messages); keep such blocks on the heap instead of mmap/trim
  // cycles that page-fault every buffer in anew (~100k faults per GiB otherwise).
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

  Totals totals;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < options.streams; ++i) {
    workers.push_back(std::make_unique<Worker>(channel, options, i, totals));
    workers.back()->Start();
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  for (auto& worker : workers) worker->Stop();

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
