// Upload RPC messages (ingest.proto UploadRequest) for tests: one Field or FileHeader.
// Shared by the unit tests of the part limits and the gRPC integration tests.
#ifndef SPILLWAY_TESTS_UNIT_UPLOAD_REQUEST_BUILDERS_H_
#define SPILLWAY_TESTS_UNIT_UPLOAD_REQUEST_BUILDERS_H_

#include <string>

#include "spillway/v1/ingest.pb.h"

namespace spillway::testing {

inline v1::UploadRequest FieldMessage(const std::string& name, const std::string& value) {
  v1::UploadRequest request;
  request.mutable_field()->set_name(name);
  request.mutable_field()->set_value(value);
  return request;
}

inline v1::UploadRequest FileMessage(const std::string& field_name,
                                     const std::string& filename,
                                     const std::string& content_type) {
  v1::UploadRequest request;
  request.mutable_file()->set_field_name(field_name);
  request.mutable_file()->set_filename(filename);
  request.mutable_file()->set_content_type(content_type);
  return request;
}

}  // namespace spillway::testing

#endif  // SPILLWAY_TESTS_UNIT_UPLOAD_REQUEST_BUILDERS_H_
