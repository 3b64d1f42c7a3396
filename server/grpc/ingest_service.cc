#include "server/grpc/ingest_service.h"

#include "server/grpc/consume_reactor.h"

namespace spillway {

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* IngestService::Consume(
    grpc::CallbackServerContext* context) {
  return new ConsumeReactor(options_.dispatcher, context);
}

grpc::ServerReadReactor<v1::UploadRequest>* IngestService::Upload(
    grpc::CallbackServerContext* context, v1::Reply* response) {
  return new UploadReactor(context, response, &options_);
}

}  // namespace spillway
