// GrpcServer: spillwayd's gRPC front end: the Ingest service (Consume, Upload), the
// standard grpc.health.v1.Health service (overall status SERVING until BeginDrain())
// and, when the installed gRPC has it, server reflection; on one port, plaintext.
// Messages up to GrpcSettings::MaxMessageSize(STREAM_BODY_CHUNK_SIZE) either way.
//
// Lifecycle: Start() binds and starts serving; BeginDrain() turns health to
// NOT_SERVING and refuses new Upload calls (UNAVAILABLE); Consume streams are still
// accepted, as consumers must stay attached to answer the uploads being drained;
// Shutdown() cancels what is left after a grace period
// (Consume streams never end on their own) and waits for every reactor's OnDone().
//
// Ownership: owns the grpc::Server and the service. REQUIRES: the Dispatcher and the
// upload options' temp directory and spill budget outlive it (main declares the
// pipeline first). The destructor shuts down if Shutdown() was not called.
// Threading: Start/BeginDrain/Shutdown on the main thread; port() anywhere.
#ifndef SPILLWAY_SERVER_GRPC_GRPC_SERVER_H_
#define SPILLWAY_SERVER_GRPC_GRPC_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/grpc/upload_reactor.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace spillway {

class IngestService;

struct GrpcServerOptions {
  std::string listen_address = "0.0.0.0";  // LISTEN_ADDRESS, shared with HTTP
  uint16_t port = 50051;                    // GRPC_PORT; 0 = ephemeral
  uint64_t chunk_size = 256 * 1024;         // STREAM_BODY_CHUNK_SIZE
  UploadRpcOptions upload;
};

class GrpcServer {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(GrpcServerOptions options);
  ~GrpcServer();

  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // The bound port (the ephemeral one when GRPC_PORT is 0).
  int port() const { return port_; }
  bool reflection_enabled() const;

  void BeginDrain();
  // Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  GrpcServer() = default;

  std::unique_ptr<IngestService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_GRPC_SERVER_H_
