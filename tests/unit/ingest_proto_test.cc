// The generated Ingest API compiles and round-trips: a guard that the proto and its
// code generation stay wired into the build.
#include "gtest/gtest.h"
#include "spillway/v1/ingest.grpc.pb.h"
#include "spillway/v1/ingest.pb.h"

namespace spillway {
namespace {

TEST(IngestProto, FileStartedRoundTrips) {
  v1::ServerMessage message;
  v1::UploadedFile* file = message.mutable_file_started()->mutable_file();
  file->set_field_name("doc");
  file->set_filename("r\xC3\xA9sum\xC3\xA9.pdf");
  file->set_size(3'000'000);
  file->set_in_memory(false);
  file->set_path("/tmp/spillway-0123");
  file->set_mode(v1::MODE_SPILL);

  v1::ServerMessage parsed;
  ASSERT_TRUE(parsed.ParseFromString(message.SerializeAsString()));
  ASSERT_TRUE(parsed.has_file_started());
  EXPECT_EQ(parsed.file_started().file().filename(), "r\xC3\xA9sum\xC3\xA9.pdf");
  EXPECT_TRUE(parsed.file_started().file().has_size());
  EXPECT_EQ(parsed.file_started().file().mode(), v1::MODE_SPILL);
  EXPECT_EQ(v1::Ingest::service_full_name(), std::string("spillway.v1.Ingest"));
}

}  // namespace
}  // namespace spillway
