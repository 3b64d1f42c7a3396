// /metrics after real uploads (issue 3 §4): requests by protocol and status, body
// bytes received by mode, uploads in flight, spilled bytes on disk, connections and
// the request-duration histogram must all move, and move back where they should.
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/upload_fixture.h"

namespace spillway {
namespace {

using ::spillway::testing::HttpResult;
using ::spillway::testing::MetricValue;
using ::spillway::testing::RandomishBytes;
using ::testing::HasSubstr;

class MetricsTest : public testing::UploadFixture {};

// A family that appeared only once used would read as "no data" to a dashboard or an
// alert until then.
TEST_F(MetricsTest, EveryFamilyIsThereAtZeroBeforeItsFirstUse) {
  StartServer({"--sink=discard"});
  const std::string page = Scrape();
  for (const std::string series :
       {"spillway_uploads_in_flight", "spillway_spilled_bytes",
        "spillway_uploads_rejected_total", "spillway_grpc_consumers_attached",
        "spillway_grpc_deliveries_total{outcome=\"replied\"}",
        "spillway_grpc_deliveries_total{outcome=\"failed\"}",
        "spillway_grpc_deliveries_total{outcome=\"aborted\"}",
        "spillway_grpc_delivered_bytes_total",
        "spillway_grpc_upload_rpcs_total{code=\"OK\"}"}) {
    EXPECT_EQ(MetricValue(page, series), 0) << series << " in\n" << page;
  }
}

TEST_F(MetricsTest, UploadsMoveEveryFamily) {
  // dir: answers uploads 201, so that scrapes (200) do not count with them.
  std::vector<std::string> args = SmallModeArgs();
  args.push_back("--sink=dir:" + store_);
  StartServer(args);
  const std::string before = Scrape();
  EXPECT_EQ(MetricValue(before, "spillway_uploads_in_flight"), 0);
  EXPECT_EQ(MetricValue(before, "spillway_spilled_bytes"), 0);

  // Raw bodies: each is one file of exactly its size.
  const size_t memory = 20 * 1024, spill = 300 * 1024, stream = 1536 * 1024;
  for (const auto& [size, protocol] :
       std::vector<std::pair<size_t, std::string>>{{memory, "--http1.1"},
                                                   {spill, "--http1.1"},
                                                   {stream, "--http2-prior-knowledge"}}) {
    const HttpResult result = Curl(
        {protocol, "--data-binary",
         "@" + WriteInput(absl::StrCat(size, ".bin"), RandomishBytes(size, 1))});
    EXPECT_EQ(result.status, 201) << result.body;
  }
  // A request is counted when its stream closes, which may come just after the client
  // has its answer: poll rather than read once.
  EXPECT_TRUE(
      MetricSoon("spillway_requests_total{protocol=\"HTTP/1.1\",status=\"201\"}", 2));
  EXPECT_TRUE(
      MetricSoon("spillway_requests_total{protocol=\"HTTP/2\",status=\"201\"}", 1));
  const std::string page = Scrape();
  EXPECT_EQ(MetricValue(page, "spillway_upload_bytes_received_total{mode=\"memory\"}"),
            memory);
  EXPECT_EQ(MetricValue(page, "spillway_upload_bytes_received_total{mode=\"spill\"}"),
            spill);
  EXPECT_EQ(MetricValue(page, "spillway_upload_bytes_received_total{mode=\"stream\"}"),
            stream);
  // Every curl was a connection of its own.
  EXPECT_GE(MetricValue(page, "spillway_connections_total"), 5);
  EXPECT_GE(MetricValue(page, "spillway_connections_open"), 1);  // this scrape's
  EXPECT_GE(MetricValue(page, "spillway_request_duration_seconds_count"), 4);
  EXPECT_THAT(page, HasSubstr("spillway_request_duration_seconds_bucket{le=\"+Inf\"}"));
  EXPECT_TRUE(MetricSoon("spillway_uploads_in_flight", 0));
  EXPECT_TRUE(MetricSoon("spillway_spilled_bytes", 0));
}

TEST_F(MetricsTest, InFlightAndSpilledBytesWhileASlowSinkHoldsAnUpload) {
  // 300 KiB at 100 KiB/s: the spilled upload sits with the sink for about 3 s.
  std::vector<std::string> args = SmallModeArgs();
  args.push_back("--sink=discard:rate=100Ki");
  StartServer(args);
  const size_t size = 300 * 1024;
  const std::string path = WriteInput("held.bin", RandomishBytes(size, 2));
  HttpResult result;
  std::thread uploader([&] { result = Curl({"--data-binary", "@" + path}); });
  EXPECT_TRUE(MetricSoon("spillway_spilled_bytes", size));
  EXPECT_EQ(MetricValue(Scrape(), "spillway_uploads_in_flight"), 1);
  uploader.join();
  EXPECT_EQ(result.status, 200) << result.body;
  EXPECT_TRUE(MetricSoon("spillway_spilled_bytes", 0));
  EXPECT_TRUE(MetricSoon("spillway_uploads_in_flight", 0));
  EXPECT_TRUE(TempDirEmptySoon());
}

}  // namespace
}  // namespace spillway
