// A consumer that counts the bytes of every file uploaded under /in.
// Usage: count_bytes HOST:GRPC_PORT
#include <csignal>
#include <iostream>
#include <string>

#include "spillway/client/consumer.h"

int main(int argc, char** argv) {
  using namespace spillway::client;
  Consumer::Options options;
  options.target = argc > 1 ? argv[1] : "127.0.0.1:50051";
  options.path_prefixes = {"/in"};
  options.workers = 4;  // four uploads at a time
  Consumer consumer(options, [](Request& request) {
    std::string body;
    while (request.Next()) {
      if (!request.is_file()) continue;  // a plain field
      uint64_t bytes = 0;
      std::string chunk;
      while (request.Read(&chunk)) bytes += chunk.size();
      body += request.file().filename + ": " + std::to_string(bytes) + " bytes\n";
    }
    return Reply{201, {{"content-type", "text/plain"}}, body};
  });
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before the Consumer's threads start
  consumer.Start();
  int signal = 0;
  sigwait(&signals, &signal);  // Ctrl-C or SIGTERM
  consumer.Stop();
}
