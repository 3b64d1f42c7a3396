// An HTTP/1.1 upload client that sends its body the way iperf3 sends its stream
// (bench/load_http.sh, scenario (a)): one raw body of --bytes bytes with a
// Content-Length, written from one buffer in memory with --write-size writes (iperf3's
// default length, 128 KiB), then the response is read. With the same write pattern on
// both sides, the ratio to iperf3 prices what the server does with the bytes, not the
// client: curl reads the body from a file into a 64 KiB buffer before sending it (two
// copies per byte, not one) and on a small machine it runs out of CPU first.
//
// Usage: http1_upload_client --port=PORT --bytes=N [--host=127.0.0.1] [--path=/raw]
//                            [--write-size=131072]
// Prints one JSON line: {"status":200,"seconds":0.412,"mbps":2605.8}; exits 0 on a
// 2xx answer, 1 otherwise, 2 on bad usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/raw";
  uint64_t bytes = 0;
  size_t write_size = 128 * 1024;
};

bool ParseFlag(std::string_view arg, std::string_view name, std::string* value) {
  if (arg.substr(0, name.size()) != name || arg.size() <= name.size() ||
      arg[name.size()] != '=') {
    return false;
  }
  *value = std::string(arg.substr(name.size() + 1));
  return true;
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "http1_upload_client: %s\nusage: http1_upload_client --port=PORT "
               "--bytes=N [--host=127.0.0.1] [--path=/raw] [--write-size=131072]\n",
               why);
  return 2;
}

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::string value;
    if (ParseFlag(arg, "--host", &value)) {
      options.host = value;
    } else if (ParseFlag(arg, "--port", &value)) {
      options.port = std::atoi(value.c_str());
    } else if (ParseFlag(arg, "--path", &value)) {
      options.path = value;
    } else if (ParseFlag(arg, "--bytes", &value)) {
      options.bytes = std::strtoull(value.c_str(), nullptr, 10);
    } else if (ParseFlag(arg, "--write-size", &value)) {
      options.write_size = std::strtoull(value.c_str(), nullptr, 10);
    } else {
      return Usage(("unknown argument " + std::string(arg)).c_str());
    }
  }
  if (options.port <= 0 || options.port > 65535) return Usage("--port is required");
  if (options.bytes == 0) return Usage("--bytes must be positive");
  if (options.write_size == 0) return Usage("--write-size must be positive");

  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(options.port));
  if (::inet_pton(AF_INET, options.host.c_str(), &address.sin_addr) != 1) {
    return Usage("--host must be an IPv4 address");
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&address),
                          sizeof(address)) != 0) {
    std::perror("http1_upload_client: connect");
    return 1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  const std::string head = "POST " + options.path + " HTTP/1.1\r\nHost: " + options.host +
                           "\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                           std::to_string(options.bytes) + "\r\n\r\n";
  const std::vector<char> buffer(options.write_size, 'x');
  const auto start = std::chrono::steady_clock::now();
  bool sent = SendAll(fd, head.data(), head.size());
  for (uint64_t left = options.bytes; sent && left > 0;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buffer.size()));
    sent = SendAll(fd, buffer.data(), n);
    left -= n;
  }
  // The response: its status line is all we need; the server may also have answered
  // early and closed, which the status tells too.
  std::string response;
  char in[4096];
  while (response.find("\r\n") == std::string::npos) {
    const ssize_t n = ::recv(fd, in, sizeof(in), 0);
    if (n <= 0) break;
    response.append(in, static_cast<size_t>(n));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  int status = 0;
  if (response.size() >= 12 && response.compare(0, 5, "HTTP/") == 0) {
    status = std::atoi(response.c_str() + response.find(' ') + 1);
  }
  std::printf("{\"status\":%d,\"seconds\":%.6f,\"mbps\":%.1f}\n", status, seconds,
              static_cast<double>(options.bytes) / seconds / 1e6);
  return status >= 200 && status < 300 ? 0 : 1;
}
