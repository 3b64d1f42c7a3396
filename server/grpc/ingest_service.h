// IngestService: the spillway.v1.Ingest service (DESIGN.md §2) on the gRPC callback
// API. Each Consume stream gets a ConsumeReactor, each Upload RPC an UploadReactor;
// both delete themselves when their RPC is done. Consume is registered raw (its
// reactor reads and writes grpc::ByteBuffers, encoding ServerMessages itself) so
// that streamed chunks reach gRPC without a serialization copy; Upload is typed.
//
// Ownership: registered with (not owned by) the grpc::Server; must outlive it. Holds
// non-owning pointers to the Dispatcher and the upload options' temp directory and
// spill budget, which must outlive the server too.
// Draining (BeginDrain): new Upload calls are refused with UNAVAILABLE, as new HTTP
// connections are once the listeners close; Consume streams are still taken, since
// consumers must stay to answer the uploads being drained.
// Threading: gRPC calls the factories on its own threads; the service is immutable
// but for the draining flag (an atomic).
#ifndef SPILLWAY_SERVER_GRPC_INGEST_SERVICE_H_
#define SPILLWAY_SERVER_GRPC_INGEST_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>

#include "server/grpc/upload_reactor.h"
#include "spillway/v1/ingest.grpc.pb.h"

namespace spillway {

// Built on Service, not CallbackService: the raw Consume's reactor type does not
// override the typed one's.
class IngestService final
    : public v1::Ingest::WithRawCallbackMethod_Consume<
          v1::Ingest::WithCallbackMethod_Upload<v1::Ingest::Service>> {
 public:
  explicit IngestService(UploadRpcOptions options) : options_(std::move(options)) {}

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Consume(
      grpc::CallbackServerContext* context) override;
  grpc::ServerReadReactor<v1::UploadRequest>* Upload(grpc::CallbackServerContext* context,
                                                     v1::Reply* response) override;

  void BeginDrain() { draining_.store(true, std::memory_order_relaxed); }

 private:
  const UploadRpcOptions options_;
  std::atomic<bool> draining_{false};
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_INGEST_SERVICE_H_
