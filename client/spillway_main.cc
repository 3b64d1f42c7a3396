// spillway: the command-line client of spillwayd (DESIGN.md §5).
//
//   spillway consume --target ADDR (--to DIR | --exec CMD) [--workers N] [--prefix /p]...
//   spillway upload --target ADDR [--path /p] [--field k=v]... FILE...
//
// Exit codes (also in `spillway --help`):
//   0  success (upload: the reply was 2xx; consume: stopped by SIGINT/SIGTERM)
//   1  upload: the server or its consumer replied with a non-2xx status
//   2  bad command line
//   3  target unreachable, RPC failed, or the server rejected the consumer
//   4  local I/O error (a file to upload unreadable, DIR not writable)
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "spillway/client/consumer.h"
#include "spillway/client/uploader.h"

extern char** environ;

namespace {

using spillway::client::Consumer;
using spillway::client::FileInfo;
using spillway::client::Reply;
using spillway::client::Request;
using spillway::client::Uploader;

constexpr int kExitOk = 0;
constexpr int kExitReplyNot2xx = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
constexpr int kExitLocalIo = 4;

constexpr const char kExitCodesHelp[] =
    "Exit codes:\n"
    "  0  success (upload: a 2xx reply; consume: stopped by SIGINT or SIGTERM)\n"
    "  1  upload: the reply's status was not 2xx (the reply is still printed)\n"
    "  2  bad command line\n"
    "  3  target unreachable, the RPC failed, or the server rejected the consumer\n"
    "  4  local I/O error (a file to upload unreadable, DIR not writable)\n";

constexpr const char kMainHelp[] =
    "Usage: spillway COMMAND [OPTIONS]\n"
    "\n"
    "The command-line client of spillwayd's gRPC Ingest service.\n"
    "\n"
    "Commands:\n"
    "  consume   receive uploads and store them in a folder or pipe them to a command\n"
    "  upload    upload files and fields over gRPC and print the reply\n"
    "\n"
    "Run 'spillway COMMAND --help' for a command's options.\n"
    "\n";

constexpr const char kConsumeHelp[] =
    "Usage: spillway consume --target ADDR (--to DIR | --exec CMD) [OPTIONS]\n"
    "\n"
    "Attaches to spillwayd as a consumer and answers every upload it is given.\n"
    "\n"
    "  --target ADDR        spillwayd's gRPC address: host:port, or dns:///name:port to\n"
    "                       consume from every address the name resolves to (required)\n"
    "  --to DIR             write each file atomically into DIR (temp name, then rename)\n"
    "                       as UPLOADID-INDEX-SAFENAME, and reply 201 with a JSON receipt\n"
    "  --exec CMD           run 'sh -c CMD' once per file with the file on stdin and\n"
    "                       SPILLWAY_FILENAME, SPILLWAY_CONTENT_TYPE, SPILLWAY_SIZE (when\n"
    "                       known), SPILLWAY_FIELD_NAME, SPILLWAY_UPLOAD_ID, SPILLWAY_PATH\n"
    "                       in its environment; reply 201 with a JSON receipt when every\n"
    "                       run exits 0, else 422 with the failing run's stderr\n"
    "  --workers N          concurrent uploads (Consume streams per address; default 4)\n"
    "  --prefix /P          handle only paths under /P (repeatable; default: all)\n"
    "  --name NAME          consumer name in the server's logs (default spillway-cli)\n"
    "  --paths-only         take spilled files by path (needs the server's temp dir)\n"
    "  --connect-timeout D  give up if not connected within D (default 10s; 0: never)\n"
    "  --quiet              no receipt lines on stdout\n"
    "\n"
    "Prints one JSON receipt line per answered upload on stdout; logs go to stderr.\n"
    "SIGINT or SIGTERM stops it (uploads in flight are given back to the server).\n"
    "\n";

constexpr const char kUploadHelp[] =
    "Usage: spillway upload --target ADDR [OPTIONS] FILE...\n"
    "\n"
    "Uploads FILEs (and fields) with the Ingest.Upload RPC and prints the reply's body\n"
    "on stdout. A progress bar is drawn on stderr when it is a terminal.\n"
    "\n"
    "  --target ADDR        spillwayd's gRPC address, host:port (required)\n"
    "  --path /P            the upload's path, which routes it to consumers (default /)\n"
    "  --field K=V          a plain field (repeatable)\n"
    "  --header 'N: V'      a header passed on to the consumer (repeatable)\n"
    "  --field-name NAME    the files' field name (default file)\n"
    "  --content-type T     the files' content type (default application/octet-stream)\n"
    "  --connect-timeout D  give up if not connected within D (default 10s)\n"
    "  --timeout D          deadline of the whole upload (default: none)\n"
    "  -i, --include        print the reply's status and headers before its body\n"
    "  --no-progress        no progress bar\n"
    "\n";

int Usage(const std::string& message, const char* help_hint) {
  std::cerr << "spillway: " << message << "\nTry 'spillway " << help_hint << "--help'.\n";
  return kExitUsage;
}

// "10s", "500ms", "2m", "1h" or plain seconds.
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  size_t end = 0;
  double value;
  try {
    value = std::stod(text, &end);
  } catch (...) {
    return std::nullopt;
  }
  const std::string unit = text.substr(end);
  double ms;
  if (unit.empty() || unit == "s") ms = value * 1000;
  else if (unit == "ms") ms = value;
  else if (unit == "m") ms = value * 60000;
  else if (unit == "h") ms = value * 3600000;
  else return std::nullopt;
  if (ms < 0) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

// Option parsing: "--name value" and "--name=value".
class Args {
 public:
  Args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) args_.emplace_back(argv[i]);
  }
  bool Done() const { return i_ >= args_.size(); }
  const std::string& Peek() const { return args_[i_]; }
  // If the current argument is `name` (a flag without value), consumes it.
  bool Flag(const std::string& name) {
    if (args_[i_] != name) return false;
    ++i_;
    return true;
  }
  // If the current argument is `name`, consumes it and its value (*error set if none).
  bool Value(const std::string& name, std::string* value, std::string* error) {
    const std::string& arg = args_[i_];
    if (arg == name) {
      if (i_ + 1 >= args_.size()) {
        *error = "option " + name + " needs a value";
        ++i_;
        return true;
      }
      *value = args_[i_ + 1];
      i_ += 2;
      return true;
    }
    if (arg.size() > name.size() && arg.starts_with(name) && arg[name.size()] == '=') {
      *value = arg.substr(name.size() + 1);
      ++i_;
      return true;
    }
    return false;
  }
  std::string Take() { return args_[i_++]; }

 private:
  std::vector<std::string> args_;
  size_t i_ = 0;
};

// ---- JSON and names ----

void AppendJson(const std::string& text, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out->append(buf);
      ++i;
    } else if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      ++i;
    } else {
      // Valid UTF-8 passes through; any other byte becomes U+FFFD.
      const size_t len = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
      bool valid = len != 0 && i + len <= text.size();
      for (size_t k = 1; valid && k < len; ++k) {
        valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
      }
      if (valid) {
        out->append(text, i, len);
        i += len;
      } else {
        out->append("\xEF\xBF\xBD");
        ++i;
      }
    }
  }
  out->push_back('"');
}

bool IsSafe(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

// The last path component of the uploader's filename, reduced to [A-Za-z0-9._-] (runs of
// other bytes become one '_'), without leading dots, at most 100 bytes: never a path.
std::string SafeName(std::string filename) {
  if (size_t slash = filename.find_last_of("/\\"); slash != std::string::npos) {
    filename.erase(0, slash + 1);
  }
  std::string safe;
  for (char c : filename) {
    if (IsSafe(c)) safe.push_back(c);
    else if (safe.empty() || safe.back() != '_') safe.push_back('_');
  }
  safe.erase(0, std::min(safe.find_first_not_of('.'), safe.size()));
  if (safe.size() > 100) {
    const size_t dot = safe.rfind('.');
    const size_t ext = dot != std::string::npos && safe.size() - dot <= 16 ? safe.size() - dot : 0;
    safe = safe.substr(0, 100 - ext) + safe.substr(safe.size() - ext);
  }
  return safe.empty() ? "file" : safe;
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const std::string& data) { EVP_DigestUpdate(ctx_, data.data(), data.size()); }
  std::string FinishHex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, digest, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
      hex.push_back(kHex[digest[i] >> 4]);
      hex.push_back(kHex[digest[i] & 15]);
    }
    return hex;
  }

 private:
  EVP_MD_CTX* ctx_;
};

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

Reply JsonReply(uint32_t status, const std::string& body) {
  return Reply{status, {{"content-type", "application/json"}}, body};
}

Reply ErrorReply(uint32_t status, const std::string& message) {
  std::string body = "{\"error\":";
  AppendJson(message, &body);
  body += "}\n";
  return JsonReply(status, body);
}

// The receipt common to both consume modes.
struct FileReceipt {
  FileInfo info;
  uint64_t size = 0;
  std::string sha256;
  std::string stored_name;  // --to
  std::string output;       // --exec: the command's stdout
};

std::string ReceiptJson(const Request& request, const std::vector<std::pair<std::string, std::string>>& fields,
                        const std::vector<FileReceipt>& files) {
  std::string out = "{\"upload_id\":";
  AppendJson(request.info().upload_id, &out);
  out += ",\"attempt\":" + std::to_string(request.info().attempt);
  out += ",\"total_bytes\":" + std::to_string(request.total_bytes()) + ",\"fields\":[";
  for (size_t i = 0; i < fields.size(); ++i) {
    out += i == 0 ? "{\"name\":" : ",{\"name\":";
    AppendJson(fields[i].first, &out);
    out += ",\"value\":";
    AppendJson(fields[i].second, &out);
    out += "}";
  }
  out += "],\"files\":[";
  for (size_t i = 0; i < files.size(); ++i) {
    const FileReceipt& file = files[i];
    out += i == 0 ? "{\"field_name\":" : ",{\"field_name\":";
    AppendJson(file.info.field_name, &out);
    out += ",\"filename\":";
    AppendJson(file.info.filename, &out);
    out += ",\"content_type\":";
    AppendJson(file.info.content_type, &out);
    out += ",\"size\":" + std::to_string(file.size) + ",\"sha256\":";
    AppendJson(file.sha256, &out);
    out += ",\"mode\":";
    AppendJson(spillway::client::ModeName(file.info.mode), &out);
    if (!file.stored_name.empty()) {
      out += ",\"stored_name\":";
      AppendJson(file.stored_name, &out);
    }
    if (!file.output.empty()) {
      out += ",\"output\":";
      AppendJson(file.output, &out);
    }
    out += "}";
  }
  out += "]}";
  return out;
}

// Checks what the server said at the end of a file against what was received.
std::string CheckFileEnd(const Request& request, uint64_t size, const std::string& sha256) {
  const spillway::client::FileEnd& end = request.file_end();
  if (end.size != size) {
    return "received " + std::to_string(size) + " bytes of a " + std::to_string(end.size) +
           "-byte file";
  }
  if (end.checksum_algorithm == "sha256" && end.checksum != sha256) {
    return "SHA-256 mismatch: server " + end.checksum + ", received " + sha256;
  }
  return "";
}

// ---- consume --to DIR ----

class DirHandler {
 public:
  explicit DirHandler(std::string dir) : dir_(std::move(dir)) {
    const mode_t mask = umask(022);
    umask(mask);
    file_mode_ = 0666 & ~mask;
  }

  Reply Handle(Request& request) {
    std::vector<std::pair<std::string, std::string>> fields;
    std::vector<FileReceipt> files;
    std::vector<std::string> temps;  // removed on any failure
    auto cleanup = [&] {
      for (const std::string& temp : temps) unlink(temp.c_str());
    };
    std::string safe_id;
    for (char c : request.info().upload_id) safe_id.push_back(IsSafe(c) ? c : '_');
    std::vector<std::pair<std::string, std::string>> renames;
    while (request.Next()) {
      if (!request.is_file()) {
        fields.emplace_back(request.field_name(), request.field_value());
        continue;
      }
      FileReceipt receipt;
      receipt.info = request.file();
      receipt.stored_name =
          safe_id + "-" + std::to_string(files.size()) + "-" + SafeName(receipt.info.filename);
      std::string temp = dir_ + "/.partial-" + receipt.stored_name + "-XXXXXX";
      const int fd = mkstemp(temp.data());
      if (fd < 0) {
        cleanup();
        return ErrorReply(507, std::string("cannot create a file: ") + std::strerror(errno));
      }
      temps.push_back(temp);
      Sha256 sha;
      std::string chunk;
      bool ok = true;
      while (request.Read(&chunk)) {
        sha.Update(chunk);
        receipt.size += chunk.size();
        if (ok && !WriteAll(fd, chunk.data(), chunk.size())) ok = false;
      }
      const int write_errno = errno;
      if (ok) ok = fchmod(fd, file_mode_) == 0 && fsync(fd) == 0;
      close(fd);
      if (request.aborted()) {
        cleanup();
        return Reply{};  // not sent
      }
      if (!ok) {
        cleanup();
        return ErrorReply(507, std::string("cannot write a file: ") + std::strerror(write_errno));
      }
      receipt.sha256 = sha.FinishHex();
      if (std::string problem = CheckFileEnd(request, receipt.size, receipt.sha256);
          !problem.empty()) {
        cleanup();
        return ErrorReply(502, problem);
      }
      renames.emplace_back(temp, dir_ + "/" + receipt.stored_name);
      files.push_back(std::move(receipt));
    }
    if (request.aborted()) {
      cleanup();
      return Reply{};
    }
    // Every file is complete and on disk: only now do the final names appear.
    for (const auto& [from, to] : renames) {
      if (rename(from.c_str(), to.c_str()) != 0) {
        cleanup();
        return ErrorReply(507, std::string("cannot rename a file: ") + std::strerror(errno));
      }
    }
    if (!renames.empty()) {
      if (int dir = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
        fsync(dir);
        close(dir);
      }
    }
    return JsonReply(201, ReceiptJson(request, fields, files) + "\n");
  }

 private:
  const std::string dir_;
  mode_t file_mode_;
};

// ---- consume --exec CMD ----

struct ExecResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string output;
  std::string errors;
  std::string spawn_error;
};

constexpr size_t kMaxCaptured = 64 * 1024;

class ExecHandler {
 public:
  explicit ExecHandler(std::string command) : command_(std::move(command)) {}

  Reply Handle(Request& request) {
    std::vector<std::pair<std::string, std::string>> fields;
    std::vector<FileReceipt> files;
    while (request.Next()) {
      if (!request.is_file()) {
        fields.emplace_back(request.field_name(), request.field_value());
        continue;
      }
      FileReceipt receipt;
      receipt.info = request.file();
      ExecResult result = RunOnFile(request, &receipt);
      if (request.aborted()) return Reply{};
      if (!result.spawn_error.empty()) return ErrorReply(500, result.spawn_error);
      if (result.exit_code != 0) {
        std::string body = result.errors;
        if (body.empty()) body = "command exited with status " + std::to_string(result.exit_code) + "\n";
        return Reply{422, {{"content-type", "text/plain; charset=utf-8"},
                           {"x-spillway-exit-code", std::to_string(result.exit_code)}},
                     body};
      }
      if (std::string problem = CheckFileEnd(request, receipt.size, receipt.sha256);
          !problem.empty()) {
        return ErrorReply(502, problem);
      }
      receipt.output = result.output;
      files.push_back(std::move(receipt));
    }
    if (request.aborted()) return Reply{};
    return JsonReply(201, ReceiptJson(request, fields, files) + "\n");
  }

 private:
  ExecResult RunOnFile(Request& request, FileReceipt* receipt) {
    ExecResult result;
    const FileInfo& file = receipt->info;
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "SPILLWAY_", 9) != 0) env_strings.emplace_back(*e);
    }
    auto add_env = [&](const char* name, std::string value) {
      value = value.substr(0, value.find('\0'));
      env_strings.push_back(std::string(name) + "=" + value);
    };
    add_env("SPILLWAY_FILENAME", file.filename);
    add_env("SPILLWAY_SAFE_FILENAME", SafeName(file.filename));
    add_env("SPILLWAY_CONTENT_TYPE", file.content_type);
    if (file.size.has_value()) add_env("SPILLWAY_SIZE", std::to_string(*file.size));
    add_env("SPILLWAY_FIELD_NAME", file.field_name);
    add_env("SPILLWAY_UPLOAD_ID", request.info().upload_id);
    add_env("SPILLWAY_PATH", request.info().path);
    add_env("SPILLWAY_MODE", spillway::client::ModeName(file.mode));
    std::vector<char*> envp;
    for (std::string& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);

    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0) {
      result.spawn_error = std::string("pipe: ") + std::strerror(errno);
      return result;
    }
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      result.spawn_error = std::string("pipe: ") + std::strerror(errno);
      close(in[0]);
      close(in[1]);
      return result;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    std::string sh = "/bin/sh", dash_c = "-c", command = command_;
    char* argv[] = {sh.data(), dash_c.data(), command.data(), nullptr};
    pid_t pid = -1;
    const int spawned = posix_spawn(&pid, "/bin/sh", &actions, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (spawned != 0) {
      result.spawn_error = std::string("cannot run /bin/sh: ") + std::strerror(spawned);
      close(in[1]);
      close(out[0]);
      close(err[0]);
      return result;
    }
    // The command's stdout and stderr, read while its stdin is written.
    std::thread reader([&] {
      pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
      std::string* sinks[2] = {&result.output, &result.errors};
      int open_fds = 2;
      char buf[16384];
      while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
          if (errno == EINTR) continue;
          break;
        }
        for (int i = 0; i < 2; ++i) {
          if (fds[i].fd < 0 || fds[i].revents == 0) continue;
          const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
          if (n > 0) {
            if (sinks[i]->size() < kMaxCaptured) {
              sinks[i]->append(buf, std::min(static_cast<size_t>(n), kMaxCaptured - sinks[i]->size()));
            }
          } else if (n == 0 || errno != EINTR) {
            close(fds[i].fd);
            fds[i].fd = -1;
            --open_fds;
          }
        }
      }
    });
    Sha256 sha;
    std::string chunk;
    bool writing = true;
    while (request.Read(&chunk)) {
      sha.Update(chunk);
      receipt->size += chunk.size();
      // A command that stops reading (EPIPE) still gets its exit status judged.
      if (writing && !WriteAll(in[1], chunk.data(), chunk.size())) writing = false;
    }
    receipt->sha256 = sha.FinishHex();
    close(in[1]);
    if (request.aborted()) kill(pid, SIGTERM);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    reader.join();
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
  }

  const std::string command_;
};

// ---- commands ----

std::mutex g_stdout_mu;

int Consume(int argc, char** argv) {
  Consumer::Options options;
  options.name = "spillway-cli";
  options.workers = 4;
  std::string to_dir, exec_command, value, error;
  bool quiet = false;
  std::chrono::milliseconds connect_timeout{10000};
  Args args(argc, argv, 2);
  while (!args.Done()) {
    if (args.Flag("--help") || args.Flag("-h")) {
      std::cout << kConsumeHelp << kExitCodesHelp;
      return kExitOk;
    } else if (args.Value("--target", &options.target, &error) ||
               args.Value("--to", &to_dir, &error) ||
               args.Value("--exec", &exec_command, &error) ||
               args.Value("--name", &options.name, &error)) {
    } else if (args.Value("--workers", &value, &error)) {
      char* end = nullptr;
      const long n = std::strtol(value.c_str(), &end, 10);
      if (error.empty() && (value.empty() || *end != '\0' || n < 1 || n > 1024)) {
        error = "--workers must be a number from 1 to 1024, not '" + value + "'";
      }
      options.workers = static_cast<int>(n);
    } else if (args.Value("--prefix", &value, &error)) {
      if (error.empty() && !value.starts_with("/")) {
        error = "--prefix must start with '/', not '" + value + "'";
      }
      options.path_prefixes.push_back(value);
    } else if (args.Value("--connect-timeout", &value, &error)) {
      std::optional<std::chrono::milliseconds> d = ParseDuration(value);
      if (error.empty() && !d) error = "--connect-timeout: bad duration '" + value + "'";
      if (d) connect_timeout = *d;
    } else if (args.Flag("--paths-only")) {
      options.paths_only = true;
    } else if (args.Flag("--quiet")) {
      quiet = true;
    } else {
      return Usage("consume: unknown argument '" + args.Take() + "'", "consume ");
    }
    if (!error.empty()) return Usage("consume: " + error, "consume ");
  }
  if (options.target.empty()) return Usage("consume: --target is required", "consume ");
  if (to_dir.empty() == exec_command.empty()) {
    return Usage("consume: give exactly one of --to DIR and --exec CMD", "consume ");
  }
  std::function<Reply(Request&)> handler;
  if (!to_dir.empty()) {
    struct stat st;
    if (stat(to_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      std::cerr << "spillway: consume: " << to_dir << " is not a directory\n";
      return kExitLocalIo;
    }
    if (access(to_dir.c_str(), W_OK | X_OK) != 0) {
      std::cerr << "spillway: consume: " << to_dir << " is not writable: "
                << std::strerror(errno) << "\n";
      return kExitLocalIo;
    }
    auto dir = std::make_shared<DirHandler>(to_dir);
    handler = [dir](Request& request) { return dir->Handle(request); };
  } else {
    auto exec = std::make_shared<ExecHandler>(exec_command);
    handler = [exec](Request& request) { return exec->Handle(request); };
  }
  // Receipts on stdout, one line per answered upload.
  auto logged = [handler, quiet](Request& request) {
    Reply reply = handler(request);
    if (!request.aborted()) {
      std::lock_guard<std::mutex> lock(g_stdout_mu);
      if (!quiet) {
        std::string line = reply.body;
        while (!line.empty() && line.back() == '\n') line.pop_back();
        if (reply.status == 201) {
          std::cout << line << "\n" << std::flush;
        } else {
          std::cerr << "spillway: upload " << request.info().upload_id << " answered "
                    << reply.status << ": " << line << "\n";
        }
      }
    }
    return reply;
  };
  options.log = [](const std::string& line) { std::cerr << "spillway: " + line + "\n"; };

  // Signals are taken by one thread with sigwait; block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string target = options.target;
  const int workers = options.workers;
  Consumer consumer(std::move(options), logged);
  consumer.Start();
  if (connect_timeout.count() > 0 && !consumer.WaitUntilConnected(connect_timeout)) {
    std::cerr << "spillway: consume: cannot reach " << target << " within "
              << connect_timeout.count() << " ms (is spillwayd running, and is that its "
              << "gRPC port?)\n";
    consumer.Stop();
    return kExitUnreachable;
  }
  std::cerr << "spillway: consuming from " << target << " with " << workers
            << " worker(s)\n";
  std::atomic<bool> signalled{false};
  std::thread waiter([&] {
    int signo = 0;
    sigwait(&stop_signals, &signo);
    signalled = true;
    consumer.Stop();
  });
  const std::string fatal = consumer.Wait();
  if (!fatal.empty() && !signalled) {
    std::cerr << "spillway: consume: " << fatal << "\n";
    consumer.Stop();
    waiter.detach();  // blocked in sigwait; the process exits
    std::fflush(stdout);
    std::_Exit(kExitUnreachable);
  }
  waiter.join();
  const Consumer::Stats stats = consumer.stats();
  std::cerr << "spillway: stopped after " << stats.uploads_handled << " upload(s)\n";
  return kExitOk;
}

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return buf;
}

int Upload(int argc, char** argv) {
  std::string target, path = "/", field_name = "file",
                      content_type = "application/octet-stream", value, error;
  std::vector<std::string> files;
  spillway::client::UploadSpec spec;
  Uploader::Options options;
  bool include = false;
  bool progress = isatty(STDERR_FILENO) == 1;
  Args args(argc, argv, 2);
  while (!args.Done()) {
    if (args.Flag("--help") || args.Flag("-h")) {
      std::cout << kUploadHelp << kExitCodesHelp;
      return kExitOk;
    } else if (args.Value("--target", &target, &error) ||
               args.Value("--field-name", &field_name, &error) ||
               args.Value("--content-type", &content_type, &error)) {
    } else if (args.Value("--path", &path, &error)) {
      if (error.empty() && !path.starts_with("/")) {
        error = "--path must start with '/', not '" + path + "'";
      }
    } else if (args.Value("--field", &value, &error)) {
      const size_t eq = value.find('=');
      if (error.empty() && (eq == std::string::npos || eq == 0)) {
        error = "--field must be NAME=VALUE, not '" + value + "'";
      } else if (error.empty()) {
        spec.fields.emplace_back(value.substr(0, eq), value.substr(eq + 1));
      }
    } else if (args.Value("--header", &value, &error)) {
      const size_t colon = value.find(':');
      if (error.empty() && (colon == std::string::npos || colon == 0)) {
        error = "--header must be 'NAME: VALUE', not '" + value + "'";
      } else if (error.empty()) {
        std::string v = value.substr(colon + 1);
        v.erase(0, std::min(v.find_first_not_of(' '), v.size()));
        spec.headers.push_back({value.substr(0, colon), v});
      }
    } else if (args.Value("--connect-timeout", &value, &error)) {
      std::optional<std::chrono::milliseconds> d = ParseDuration(value);
      if (error.empty() && !d) error = "--connect-timeout: bad duration '" + value + "'";
      if (d) options.connect_timeout = *d;
    } else if (args.Value("--timeout", &value, &error)) {
      std::optional<std::chrono::milliseconds> d = ParseDuration(value);
      if (error.empty() && !d) error = "--timeout: bad duration '" + value + "'";
      if (d) options.timeout = *d;
    } else if (args.Flag("-i") || args.Flag("--include")) {
      include = true;
    } else if (args.Flag("--no-progress")) {
      progress = false;
    } else if (args.Flag("--")) {
      while (!args.Done()) files.push_back(args.Take());
    } else if (args.Peek().starts_with("-") && args.Peek() != "-") {
      return Usage("upload: unknown option '" + args.Take() + "'", "upload ");
    } else {
      files.push_back(args.Take());
    }
    if (!error.empty()) return Usage("upload: " + error, "upload ");
  }
  if (target.empty()) return Usage("upload: --target is required", "upload ");
  if (files.empty() && spec.fields.empty()) {
    return Usage("upload: nothing to upload (give FILEs or --field)", "upload ");
  }
  spec.path = path;
  for (const std::string& file : files) {
    spillway::client::UploadFile upload = spillway::client::UploadFile::FromPath(file);
    upload.field_name = field_name;
    upload.content_type = content_type;
    spec.files.push_back(std::move(upload));
  }
  const auto began = std::chrono::steady_clock::now();
  auto last_draw = began - std::chrono::seconds(1);
  if (progress) {
    spec.progress = [&](uint64_t sent, uint64_t total) {
      const auto now = std::chrono::steady_clock::now();
      if (sent != total && now - last_draw < std::chrono::milliseconds(100)) return;
      last_draw = now;
      const double fraction = total == 0 ? 1.0 : static_cast<double>(sent) / static_cast<double>(total);
      const int width = 30;
      const int filled = static_cast<int>(fraction * width);
      const double seconds = std::chrono::duration<double>(now - began).count();
      std::string bar(static_cast<size_t>(filled), '#');
      bar.append(static_cast<size_t>(width - filled), '.');
      std::fprintf(stderr, "\r%3d%% [%s] %s / %s  %s/s ", static_cast<int>(fraction * 100),
                   bar.c_str(), HumanBytes(static_cast<double>(sent)).c_str(),
                   HumanBytes(static_cast<double>(total)).c_str(),
                   HumanBytes(seconds > 0 ? static_cast<double>(sent) / seconds : 0).c_str());
      if (sent == total) std::fputc('\n', stderr);
      std::fflush(stderr);
    };
  }
  Uploader uploader(target, options);
  Reply reply;
  Uploader::Error kind;
  if (!uploader.Upload(spec, &reply, &error, &kind)) {
    std::cerr << (progress ? "\n" : "") << "spillway: upload: " << error << "\n";
    return kind == Uploader::Error::kLocalFile ? kExitLocalIo : kExitUnreachable;
  }
  if (include) {
    std::cout << "status: " << reply.status << "\n";
    for (const auto& header : reply.headers) std::cout << header.name << ": " << header.value << "\n";
    std::cout << "\n";
  }
  std::cout << reply.body << std::flush;
  if (reply.status < 200 || reply.status > 299) {
    std::cerr << "spillway: upload: the reply's status is " << reply.status << "\n";
    return kExitReplyNot2xx;
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // a command that stops reading its stdin: EPIPE, not death
  if (argc < 2) return Usage("a command is needed (consume or upload)", "");
  const std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kMainHelp << kExitCodesHelp;
    return kExitOk;
  }
  if (command == "consume") return Consume(argc, argv);
  if (command == "upload") return Upload(argc, argv);
  return Usage("unknown command '" + command + "'", "");
}
