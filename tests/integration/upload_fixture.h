// UploadFixture: what the upload integration tests (modes, limits, aborts,
// concurrency, stream memory, metrics) share: a spillwayd with its own temp (spill)
// dir and store dir, curl/nghttp runners that report status and body, input files
// written under the test's own directory, the receipt's per-file JSON, a /metrics
// scraper, and a poll for the temp dir to empty.
//
// Header-only, test code. Threading: one test thread; Curl() and Scrape() may also be
// called from helper threads (they only read the fixture).
#ifndef SPILLWAY_TESTS_INTEGRATION_UPLOAD_FIXTURE_H_
#define SPILLWAY_TESTS_INTEGRATION_UPLOAD_FIXTURE_H_

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/common/string_view_compat.h"
#include "server/upload/checksum.h"
#include "tests/integration/spillwayd_process.h"
#include "tests/integration/test_clients.h"
#include "tests/integration/test_data.h"
#include "tests/unit/scoped_test_dir.h"

namespace spillway::testing {




// What a receipt says about one file, as a substring of its JSON.
inline std::string FileReceipt(std::string_view data, std::string_view mode) {
  return absl::StrCat("\"size\":", data.size(), ",\"sha256\":\"", Sha256Hex(data),
                      "\",\"mode\":\"", AbslView(mode), "\"");
}

// The stored_name values of a dir: receipt, in order.
inline std::vector<std::string> StoredNames(std::string_view receipt) {
  std::vector<std::string> names;
  constexpr std::string_view kKey = "\"stored_name\":\"";
  for (size_t at = receipt.find(kKey); at != std::string_view::npos;
       at = receipt.find(kKey, at)) {
    at += kKey.size();
    const size_t end = receipt.find('"', at);
    if (end == std::string_view::npos) break;
    names.emplace_back(receipt.substr(at, end - at));
  }
  return names;
}

// The value of the sample `series` (name plus labels, as rendered) in a /metrics
// page, or -1 if absent.
inline double MetricValue(std::string_view page, std::string_view series) {
  const std::string needle = absl::StrCat("\n", AbslView(series), " ");
  const size_t at = page.find(needle);
  if (at == std::string_view::npos) return -1;
  const size_t start = at + needle.size();
  const size_t end = page.find('\n', start);
  double value = -1;
  if (!absl::SimpleAtod(AbslView(page.substr(start, end - start)), &value)) return -1;
  return value;
}

struct HttpResult {
  int status = 0;      // 0: no answer
  std::string body;
  std::string errors;  // the client's stderr
  std::string version; // curl's %{http_version}
};

// Writes `data` to DIR/NAME and returns the path: an input file for curl.
inline std::string WriteInputFile(const std::string& dir, const std::string& name,
                                  std::string_view data) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << data;
  return path;
}

// curl with `args`, then `url`; status from %{http_code}.
inline HttpResult CurlFor(const std::vector<std::string>& args, const std::string& url) {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", "100", "-w",
                                   "\n%{http_code} %{http_version}"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(url);
  absl::StatusOr<CommandResult> result = RunCommand(argv);
  HttpResult out;
  if (!result.ok()) {
    out.errors = std::string(result.status().message());
    return out;
  }
  out.errors = result->errors;
  std::string& text = result->output;
  const size_t nl = text.rfind('\n');
  if (nl == std::string::npos) return out;
  const std::string tail = text.substr(nl + 1);
  const size_t space = tail.find(' ');
  if (!absl::SimpleAtoi(tail.substr(0, space), &out.status)) out.status = 0;
  if (space != std::string::npos) out.version = tail.substr(space + 1);
  out.body = text.substr(0, nl);
  return out;
}

class UploadFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    spill_ = work_.path() + "/spill";
    store_ = work_.path() + "/store";
    std::filesystem::create_directory(spill_);
    std::filesystem::create_directory(store_);
  }

  // Small thresholds keep every mode cheap: files over 64 KiB spill, bodies over
  // 1 MiB stream.
  static std::vector<std::string> SmallModeArgs() {
    return {"--file-upload-max-memory-size=64Ki", "--max-body-size=1Mi",
            "--stream-body-chunk-size=64Ki"};
  }

  void StartServer(std::vector<std::string> args) {
    SpillwaydProcess::Options options;
    options.args = {"--file-upload-temp-dir=" + spill_, "--access-log=false"};
    options.args.insert(options.args.end(), args.begin(), args.end());
    auto server = SpillwaydProcess::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::string Url(std::string_view path = "/upload") const {
    return absl::StrCat(scheme_, "://127.0.0.1:", server_->http_port(), AbslView(path));
  }

  std::string WriteInput(const std::string& name, std::string_view data) {
    return WriteInputFile(work_.path(), name, data);
  }

  HttpResult Curl(const std::vector<std::string>& args,
                  std::string_view path = "/upload") const {
    std::vector<std::string> all = curl_args_;
    all.insert(all.end(), args.begin(), args.end());
    return CurlFor(all, Url(path));
  }

  // GET /metrics over `protocol` (a curl flag). A scrape counts itself in
  // spillway_requests_total{protocol,status="200"} once it is over: scrape over the
  // other protocol when that count is under test.
  std::string Scrape(const std::string& protocol = "--http1.1") const {
    HttpResult result = Curl({protocol}, "/metrics");
    return "\n" + result.body;  // so that MetricValue finds the first line too
  }

  // Polls for a few seconds: a temp file goes when its upload's last owner lets go,
  // which may be a sink thread finishing after the response.
  bool TempDirEmptySoon(absl::Duration timeout = absl::Seconds(10)) const {
    const absl::Time give_up = absl::Now() + timeout;
    while (true) {
      if (std::filesystem::is_empty(spill_)) return true;
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  // Polls /metrics until `series` has `value`.
  bool MetricSoon(std::string_view series, double value,
                  const std::string& protocol = "--http1.1") const {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (true) {
      if (MetricValue(Scrape(protocol), series) == value) return true;
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  std::vector<std::string> SpillFiles() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(spill_)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

  // `result` (a dir: sink's receipt) names one stored file, which holds exactly
  // `data`, and the temp dir empties.
  void ExpectStoredOnce(const HttpResult& result, const std::string& data) const {
    const std::vector<std::string> stored = StoredNames(result.body);
    ASSERT_EQ(stored.size(), 1u) << result.body;
    EXPECT_TRUE(ReadWholeFile(store_ + "/" + stored[0]) == data)
        << "stored bytes differ: " << stored[0];
    EXPECT_TRUE(TempDirEmptySoon());
  }

  void ExpectStillServesAndTempDirEmpty() const {
    EXPECT_EQ(Curl({}, "/healthz").body, "ok\n");
    EXPECT_TRUE(TempDirEmptySoon()) << "left in the temp dir: " << SpillFiles().size();
  }

  ScopedTestDir work_;
  // How Url() and Curl() reach the server: "https" with --cacert for a TLS port.
  std::string scheme_ = "http";
  std::vector<std::string> curl_args_;
  std::string spill_;
  std::string store_;
  std::unique_ptr<SpillwaydProcess> server_;
};

}  // namespace spillway::testing

#endif  // SPILLWAY_TESTS_INTEGRATION_UPLOAD_FIXTURE_H_
