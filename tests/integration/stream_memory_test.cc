// Stream mode keeps memory bounded (DESIGN.md §1, issue 3 §2): a 1 GiB body, made on
// the fly by `head -c 1G /dev/zero` and never stored, goes through a deliberately slow
// discard sink (200 MiB/s, slower than loopback, so backpressure must hold the
// uploader back) over HTTP/1.1 and HTTP/2. The server's peak RSS (VmHWM) must grow by
// less than 64 MiB over its idle value, and the receipt must account for every byte.
//
// No timing asserts: the rate only makes the consumer the slow side; each run takes
// about 5 s at that rate.
#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/upload_fixture.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr char kZerosSha256[] =
    "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14";

// VmHWM of `pid` in KiB, or -1.
int64_t PeakRssKib(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits += c;
      }
      int64_t kib = -1;
      return absl::SimpleAtoi(digits, &kib) ? kib : -1;
    }
  }
  return -1;
}

class StreamMemoryTest : public testing::UploadFixture,
                         public ::testing::WithParamInterface<std::string> {};

TEST_P(StreamMemoryTest, OneGibibyteThroughASlowSinkKeepsPeakRssBounded) {
  // Default buffering settings: MAX_BODY_SIZE 10 MiB, 2.5 MiB in memory, 256 KiB
  // chunks. curl -T - sends no length (chunked / HTTP/2 without content-length), so
  // the body starts buffered and switches to a stream past 10 MiB.
  StartServer({"--sink=discard:rate=200Mi"});
  // Warm up the pools a first upload fills (thread stacks, buffers): the idle
  // figure is a server that has served.
  EXPECT_EQ(Curl({GetParam(), "--data-binary", "warm-up"}).status, 200);
  const int64_t idle_kib = PeakRssKib(server_->pid());
  ASSERT_GT(idle_kib, 0);

  const std::string command = absl::StrCat(
      "head -c 1G /dev/zero | curl -sS --max-time 120 ", GetParam(),
      " -T - -H 'content-type: application/octet-stream' -w '\\n%{http_code}' ",
      Url());
  absl::StatusOr<CommandResult> result = RunCommand({"sh", "-c", command});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->errors;
  EXPECT_THAT(result->output, HasSubstr("\n200"));
  EXPECT_THAT(result->output,
              HasSubstr(absl::StrCat("\"size\":", kGiB, ",\"sha256\":\"", kZerosSha256,
                                     "\",\"mode\":\"stream\"")));

  const int64_t peak_kib = PeakRssKib(server_->pid());
  const int64_t growth_kib = peak_kib - idle_kib;
  RecordProperty("vmhwm_idle_kib", static_cast<int>(idle_kib));
  RecordProperty("vmhwm_peak_kib", static_cast<int>(peak_kib));
  std::cout << "VmHWM " << GetParam() << ": idle " << idle_kib << " KiB, after 1 GiB "
            << peak_kib << " KiB, growth " << growth_kib << " KiB\n";
  EXPECT_LT(growth_kib, 64 * 1024);
  EXPECT_TRUE(TempDirEmptySoon());
}

INSTANTIATE_TEST_SUITE_P(Protocols, StreamMemoryTest,
                         ::testing::Values("--http1.1", "--http2-prior-knowledge"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "--http1.1" ? "Http1" : "Http2";
                         });

}  // namespace
}  // namespace spillway
