// spillwayd: the Spillway daemon. Reads its settings (flags > SPILLWAY_* environment
// > defaults), serves HTTP/1.1 and HTTP/2 on one port through N event loops, and on
// SIGTERM/SIGINT drains: readiness goes false, listeners close, in-flight requests get
// up to DRAIN_TIMEOUT, then exit 0.
//
// Exit codes: 0 normal (help, or after a drain), 1 start-up failure (bind, ...),
// 2 invalid settings.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/admin/admin_handler.h"
#include "server/admin/metrics.h"
#include "server/common/heap_tuning.h"
#include "server/common/settings_source.h"
#include "server/common/unique_fd.h"
#include "server/dispatch/json_escape.h"
#include "server/grpc/grpc_server.h"
#include "server/grpc/grpc_settings.h"
#include "server/http/concurrency_limited_handler.h"
#include "server/http/http_session_factory.h"
#include "server/http/instrumented_handler.h"
#include "server/http/router.h"
#include "server/http/upload_pipeline.h"
#include "server/net/http_server.h"
#include "server/net/server_settings.h"
#include "server/net/tls_context.h"
#include "server/upload/upload_assembler.h"
#include "server/upload/upload_settings.h"

namespace spillway {
namespace {

constexpr int kExitStartupFailure = 1;
constexpr int kExitBadSettings = 2;

void PrintEvent(const std::string& json) {
  std::fwrite(json.data(), 1, json.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

int Fail(int code, const absl::Status& status) {
  std::string message = std::string(status.message());
  std::fprintf(stderr, "spillwayd: %s\n", message.c_str());
  return code;
}

void PrintHelp() {
  std::printf(
      "Usage: spillwayd [--setting=value ...]\n"
      "Each setting is a flag or a SPILLWAY_<NAME> environment variable; the flag "
      "wins.\n\nServer:\n%s\nUploads:\n%s\nDispatch and sinks:\n%s",
      FormatSettingsHelp(ServerSettings::Specs()).c_str(),
      FormatSettingsHelp(UploadSettings::Specs()).c_str(),
      FormatSettingsHelp(UploadPipelineSettings::Specs()).c_str());
  std::printf("\ngRPC:\n%s", FormatSettingsHelp(GrpcSettings::Specs()).c_str());
}

// Blocks the termination signals in this thread (and so in every thread started
// after) and returns a signalfd that reports them.
absl::StatusOr<UniqueFd> TerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
    return absl::InternalError("pthread_sigmask failed");
  }
  UniqueFd fd(::signalfd(-1, &signals, SFD_CLOEXEC));
  if (!fd) return absl::InternalError("signalfd failed");
  return fd;
}

// Waits up to `timeout` for a signal; returns its number or 0.
int WaitForSignal(int signal_fd, absl::Duration timeout) {
  pollfd pfd{signal_fd, POLLIN, 0};
  const int timeout_ms =
      timeout == absl::InfiniteDuration() ? -1 : absl::ToInt64Milliseconds(timeout);
  if (::poll(&pfd, 1, timeout_ms) <= 0) return 0;
  signalfd_siginfo info;
  if (::read(signal_fd, &info, sizeof(info)) != sizeof(info)) return 0;
  return static_cast<int>(info.ssi_signo);
}

int Run(int argc, char** argv) {
  absl::StatusOr<SettingsSource> source = SettingsSource::FromCommandLine(argc, argv);
  if (!source.ok()) return Fail(kExitBadSettings, source.status());
  if (source->help_requested()) {
    PrintHelp();
    return 0;
  }
  absl::StatusOr<ServerSettings> server_settings = ServerSettings::FromSource(*source);
  if (!server_settings.ok()) return Fail(kExitBadSettings, server_settings.status());
  absl::StatusOr<UploadSettings> upload_settings = UploadSettings::FromSource(*source);
  if (!upload_settings.ok()) return Fail(kExitBadSettings, upload_settings.status());
  absl::StatusOr<UploadPipelineSettings> pipeline_settings =
      UploadPipelineSettings::FromSource(*source);
  if (!pipeline_settings.ok()) return Fail(kExitBadSettings, pipeline_settings.status());
  absl::StatusOr<GrpcSettings> grpc_settings = GrpcSettings::FromSource(*source);
  if (!grpc_settings.ok()) return Fail(kExitBadSettings, grpc_settings.status());
  if (server_settings->http_port != 0 &&
      server_settings->http_port == grpc_settings->grpc_port) {
    return Fail(kExitBadSettings,
                absl::InvalidArgumentError(absl::StrCat(
                    "HTTP_PORT and GRPC_PORT must differ (both are ",
                    server_settings->http_port, ")")));
  }
  if (absl::Status status = source->CheckAllFlagsUsed(); !status.ok()) {
    return Fail(kExitBadSettings, status);
  }

  KeepHeapWarm();
  // Before any thread exists, so that every thread inherits the blocked mask.
  absl::StatusOr<UniqueFd> signal_fd = TerminationSignals();
  if (!signal_fd.ok()) return Fail(kExitStartupFailure, signal_fd.status());
  ::signal(SIGPIPE, SIG_IGN);  // writes use MSG_NOSIGNAL; this covers everything else

  MetricsRegistry& metrics = MetricsRegistry::Global();
  std::atomic<bool> draining{false};

  // Loaded before anything listens: a bad certificate or key is a settings error.
  // Declared before the server, whose connections point into it.
  std::unique_ptr<TlsContext> tls;
  if (!server_settings->tls_cert_file.empty()) {
    absl::StatusOr<std::unique_ptr<TlsContext>> loaded = TlsContext::Load(
        server_settings->tls_cert_file, server_settings->tls_key_file, &metrics);
    if (!loaded.ok()) return Fail(kExitBadSettings, loaded.status());
    tls = std::move(*loaded);
  }

  AdminHandler admin(&metrics, &draining);
  // Declared before the server: its exchanges point into the pipeline.
  absl::StatusOr<std::unique_ptr<UploadPipeline>> pipeline =
      UploadPipeline::Start(*upload_settings, *pipeline_settings);
  if (!pipeline.ok()) return Fail(kExitStartupFailure, pipeline.status());
  // MAX_CONCURRENT_UPLOADS: only uploads are capped; the admin paths always answer.
  // MAX_CONCURRENT_UPLOADS counts HTTP uploads and gRPC Upload calls together.
  UploadSlots upload_slots(server_settings->max_concurrent_uploads, &metrics);
  ConcurrencyLimitedHandler limited_upload((*pipeline)->handler(), &upload_slots);
  Router router(&admin, AdminHandler::Paths(), &limited_upload);
  InstrumentedHandler handler(&router, &metrics, server_settings->access_log);

  Http1Options http1;
  http1.max_header_bytes = server_settings->max_header_bytes;
  http1.draining = &draining;
  http1.header_timeout = server_settings->header_timeout;
  http1.idle_timeout = server_settings->idle_timeout;
  http1.body_timeout = server_settings->body_timeout;
  Http2Options http2;
  http2.max_header_list_size = static_cast<uint32_t>(server_settings->max_header_bytes);
  http2.max_concurrent_streams = server_settings->h2_max_concurrent_streams;
  http2.header_timeout = server_settings->header_timeout;
  http2.idle_timeout = server_settings->idle_timeout;
  http2.body_timeout = server_settings->body_timeout;
  http2.send_timeout = server_settings->send_timeout;
  HttpSessionFactory factory(&handler, http1, http2);

  HttpServer::Options options;
  options.listen_address = server_settings->listen_address;
  options.port = server_settings->http_port;
  options.event_loops = server_settings->event_loops;
  options.max_connections = server_settings->max_connections;
  options.connection.first_bytes_timeout = server_settings->header_timeout;
  options.connection.send_timeout = server_settings->send_timeout;
  options.connection.tls = tls.get();
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Create(options, &factory, &metrics);
  if (!server.ok()) return Fail(kExitStartupFailure, server.status());
  (*server)->Start();

  // gRPC: Consume streams register with the pipeline's dispatcher; Upload RPCs spill
  // and are charged like HTTP uploads. Declared after the pipeline: destroyed first.
  GrpcServerOptions grpc_options;
  grpc_options.listen_address = server_settings->listen_address;
  grpc_options.port = grpc_settings->grpc_port;
  grpc_options.chunk_size = upload_settings->stream_body_chunk_size;
  grpc_options.upload.dispatcher = (*pipeline)->dispatcher();
  grpc_options.upload.file =
      UploadAssemblerOptions::FromSettings(*upload_settings, (*pipeline)->temp_dir()).file;
  grpc_options.upload.file.spill_budget = (*pipeline)->spill_budget();
  grpc_options.upload.max_body_size = upload_settings->max_body_size;
  grpc_options.upload.stream.chunk_size = upload_settings->stream_body_chunk_size;
  grpc_options.upload.stream.max_file_size = upload_settings->file_upload_max_size;
  grpc_options.upload.stream.checksum = upload_settings->file_upload_checksum;
  grpc_options.upload.stream.multipart = upload_settings->multipart_limits();
  grpc_options.upload.slots = &upload_slots;
  grpc_options.upload.body_timeout = server_settings->body_timeout;
  absl::StatusOr<std::unique_ptr<GrpcServer>> grpc_server =
      GrpcServer::Start(std::move(grpc_options));
  if (!grpc_server.ok()) return Fail(kExitStartupFailure, grpc_server.status());

  PrintEvent(absl::StrCat("{\"event\":\"listening\",\"http_port\":", (*server)->port(),
                          ",\"tls\":", tls != nullptr ? "true" : "false",
                          ",\"event_loops\":", (*server)->loops()->size(),
                          ",\"grpc_port\":", (*grpc_server)->port(), "}"));

  const int signo = WaitForSignal(signal_fd->get(), absl::InfiniteDuration());
  PrintEvent(absl::StrCat("{\"event\":\"draining\",\"signal\":", signo, "}"));
  draining.store(true);
  (*server)->BeginDrain();
  (*grpc_server)->BeginDrain();  // health NOT_SERVING; consumers stay to answer
  const absl::Time deadline = absl::Now() + server_settings->drain_timeout;
  bool forced = false;
  // HTTP connections and requests, and gRPC Upload calls (their slots).
  while ((*server)->open_connections() > 0 || handler.in_flight() > 0 ||
         upload_slots.in_flight() > 0) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      forced = true;
      break;
    }
    // A second signal ends the wait at once.
    if (WaitForSignal(signal_fd->get(), std::min(left, absl::Milliseconds(20))) != 0) {
      forced = true;
      break;
    }
  }
  (*server)->Stop();
  // Consume streams never end by themselves: a short grace, then they are cancelled.
  (*grpc_server)->Shutdown(forced ? absl::ZeroDuration()
                                  : std::clamp(deadline - absl::Now(), absl::ZeroDuration(),
                                               absl::Milliseconds(500)));
  PrintEvent(absl::StrCat("{\"event\":\"stopped\",\"forced\":", forced ? "true" : "false",
                          ",\"in_flight\":", handler.in_flight(), "}"));
  return 0;
}

}  // namespace
}  // namespace spillway

int main(int argc, char** argv) { return spillway::Run(argc, argv); }
