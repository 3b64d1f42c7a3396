// HTTP/2 against the real spillwayd with real clients: curl with prior knowledge,
// curl through an h2c Upgrade, and nghttp. Each test starts its own server on an
// ephemeral loopback port.
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/spillwayd_process.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;

// Runs `command` through the shell; returns its stdout (stderr merged in).
std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  ::pclose(pipe);
  return out;
}

class Http2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = SpillwaydProcess::Start({});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    base_ = absl::StrCat("http://127.0.0.1:", server_->http_port());
  }

  std::unique_ptr<SpillwaydProcess> server_;
  std::string base_;
};

TEST_F(Http2Test, HealthzWithCurlPriorKnowledge) {
  const std::string out = RunCommand(absl::StrCat(
      "curl -sS --http2-prior-knowledge -o /dev/null -w '%{http_version} %{http_code}' ",
      base_, "/healthz"));
  EXPECT_EQ(out, "2 200");
}

TEST_F(Http2Test, HealthzWithCurlUpgrade) {
  const std::string out = RunCommand(absl::StrCat("curl -sS --http2 -i ", base_, "/healthz"));
  EXPECT_THAT(out, HasSubstr("HTTP/1.1 101 Switching Protocols"));
  EXPECT_THAT(out, HasSubstr("HTTP/2 200"));
}

TEST_F(Http2Test, HealthzWithNghttp) {
  const std::string out = RunCommand(absl::StrCat("nghttp -s ", base_, "/healthz"));
  EXPECT_THAT(out, HasSubstr(" 200 "));
}

TEST_F(Http2Test, ManyStreamsOnOneConnectionWithNghttp) {
  std::string urls;
  for (int i = 0; i < 50; ++i) absl::StrAppend(&urls, " ", base_, "/healthz");
  const std::string out = RunCommand(absl::StrCat("nghttp -s -m 1", urls));
  EXPECT_THAT(out, HasSubstr(" 200 "));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("ERROR")));
}

TEST_F(Http2Test, EarlyAnswerToAnUploadReachesCurl) {
  // Whatever the upload route answers (a receipt, or an early error), curl must see
  // a real status over HTTP/2, not a framing error.
  const std::string out = RunCommand(absl::StrCat(
      "head -c 3000000 /dev/zero | curl -sS --http2-prior-knowledge -o /dev/null "
      "-w '%{http_code}' --data-binary @- ",
      base_, "/upload"));
  ASSERT_EQ(out.size(), 3u) << out;
  EXPECT_NE(out, "000");
}

}  // namespace
}  // namespace spillway
