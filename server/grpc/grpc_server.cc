#include "server/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#ifdef SPILLWAY_HAVE_GRPC_REFLECTION
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#endif

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/grpc/grpc_metrics.h"
#include "server/grpc/grpc_settings.h"
#include "server/grpc/ingest_service.h"

namespace spillway {

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(GrpcServerOptions options) {
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  server->service_ = std::make_unique<IngestService>(options.upload);

  // gRPC locks absl::Mutexes on every operation, and Debian builds Abseil without
  // NDEBUG, so each Lock() also runs Abseil's deadlock detector: a global graph of
  // lock orders updated under a global lock (GraphCycles), on every thread.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::EnableDefaultHealthCheckService(true);
#ifdef SPILLWAY_HAVE_GRPC_REFLECTION
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
#endif
  const std::string host = options.listen_address.find(':') != std::string::npos
                               ? absl::StrCat("[", options.listen_address, "]")
                               : options.listen_address;
  const std::string address = absl::StrCat(host, ":", options.port);
  const int max_message = static_cast<int>(GrpcSettings::MaxMessageSize(options.chunk_size));

  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(max_message);
  // gRPC binds with SO_REUSEPORT by default, which lets a second spillwayd (or the
  // HTTP port's own listeners) share the port silently: a taken port must fail here.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    server->shut_down_ = true;
    return absl::UnavailableError(
        absl::StrCat("cannot listen for gRPC on ", address,
                     " (GRPC_PORT): is the port in use, by HTTP_PORT or another program?"));
  }
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  GrpcMetrics::Register();
  return server;
}

GrpcServer::~GrpcServer() { Shutdown(absl::ZeroDuration()); }

bool GrpcServer::reflection_enabled() const {
#ifdef SPILLWAY_HAVE_GRPC_REFLECTION
  return true;
#else
  return false;
#endif
}

void GrpcServer::BeginDrain() {
  service_->BeginDrain();
  if (server_ != nullptr && !shut_down_) {
    server_->GetHealthCheckService()->SetServingStatus(false);
  }
}

void GrpcServer::Shutdown(absl::Duration grace) {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(grace));
  server_->Wait();
}

}  // namespace spillway
