// The upload limits of DESIGN.md §4 not covered by limits_test.cc (which has header
// bytes 431, connections and concurrent uploads 503, the timeouts): each is set low,
// crossed once by curl or a raw client, and answered with its status code; after each
// the server still serves and the temp dir is empty.
//   FILE_UPLOAD_MAX_SIZE 413 in memory, spill and stream modes; MAX_PARTS,
//   MAX_PART_HEADER_BYTES, MAX_FIELD_SIZE 413; malformed multipart and a missing
//   boundary 400; MAX_SPILL_BYTES 507.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/upload_fixture.h"

namespace spillway {
namespace {

using ::spillway::testing::FileReceipt;
using ::spillway::testing::HttpResult;
using ::spillway::testing::RandomishBytes;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kBoundary[] = "l1mits-b0undary";

std::string Part(const std::string& headers, const std::string& data) {
  return absl::StrCat("--", kBoundary, "\r\n", headers, "\r\n\r\n", data, "\r\n");
}
std::string Field(const std::string& name, const std::string& value) {
  return Part(absl::StrCat("Content-Disposition: form-data; name=\"", name, "\""), value);
}
std::string Close() { return absl::StrCat("--", kBoundary, "--\r\n"); }

class UploadLimitsTest : public testing::UploadFixture {
 protected:
  void StartWith(std::vector<std::string> extra) {
    std::vector<std::string> args = SmallModeArgs();
    args.push_back("--sink=discard");
    args.insert(args.end(), extra.begin(), extra.end());
    StartServer(args);
  }

  // POSTs `body` as multipart/form-data with kBoundary (or `content_type`).
  HttpResult PostMultipart(const std::string& body, std::string content_type = "") {
    if (content_type.empty()) {
      content_type = absl::StrCat("multipart/form-data; boundary=", kBoundary);
    }
    return Curl({"--http1.1", "--data-binary", "@" + WriteInput("body", body), "-H",
                 "content-type: " + content_type});
  }

  HttpResult PostFile(const std::string& data, const std::string& protocol) {
    return Curl({protocol, "-F", "f=@" + WriteInput("file.bin", data)});
  }
};

TEST_F(UploadLimitsTest, FileOverMaxSizeGets413InMemoryMode) {
  // The limit under the memory threshold: the file never leaves memory.
  StartWith({"--file-upload-max-size=32Ki"});
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    SCOPED_TRACE(protocol);
    const HttpResult result = PostFile(RandomishBytes(40 * 1024, 1), protocol);
    EXPECT_EQ(result.status, 413) << result.body;
    EXPECT_THAT(result.body, HasSubstr("exceeds the maximum file size"));
    ExpectStillServesAndTempDirEmpty();
  }
  const std::string ok = RandomishBytes(30 * 1024, 2);
  EXPECT_THAT(PostFile(ok, "--http1.1").body, HasSubstr(FileReceipt(ok, "memory")));
}

TEST_F(UploadLimitsTest, FileOverMaxSizeGets413InSpillMode) {
  // Over the memory threshold first: the file spills, then crosses the limit, and its
  // temp file must go.
  StartWith({"--file-upload-max-size=200Ki"});
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    SCOPED_TRACE(protocol);
    const HttpResult result = PostFile(RandomishBytes(300 * 1024, 1), protocol);
    EXPECT_EQ(result.status, 413) << result.body;
    EXPECT_THAT(result.body, HasSubstr("exceeds the maximum file size"));
    ExpectStillServesAndTempDirEmpty();
  }
  const std::string ok = RandomishBytes(150 * 1024, 2);
  EXPECT_THAT(PostFile(ok, "--http1.1").body, HasSubstr(FileReceipt(ok, "spill")));
}

TEST_F(UploadLimitsTest, FileOverMaxSizeGets413InStreamMode) {
  // The body is over MAX_BODY_SIZE (1 MiB): dispatched as a stream, the file is
  // counted as its chunks pass.
  StartWith({"--file-upload-max-size=512Ki"});
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    SCOPED_TRACE(protocol);
    const HttpResult result = PostFile(RandomishBytes(1536 * 1024, 1), protocol);
    EXPECT_EQ(result.status, 413) << result.body << result.errors;
    ExpectStillServesAndTempDirEmpty();
  }
}

TEST_F(UploadLimitsTest, RawBodyDeclaredOverMaxFileSizeGets413FromItsHeaders) {
  // A raw body is one file: its Content-Length alone breaks the limit, so the 413
  // comes before the body (instead of 100 Continue), in buffered and stream mode.
  StartWith({"--file-upload-max-size=32Ki"});
  for (const size_t size : {size_t{40 * 1024}, size_t{1536 * 1024}}) {
    SCOPED_TRACE(size);
    const HttpResult result =
        Curl({"--http1.1", "-H", "Expect: 100-continue", "-H",
              "Content-Type: application/octet-stream", "--data-binary",
              "@" + WriteInput("raw.bin", RandomishBytes(size, 1)), "-v"});
    EXPECT_EQ(result.status, 413) << result.body;
    EXPECT_THAT(result.body, HasSubstr("exceeds the maximum file size of 32768 bytes"));
    EXPECT_THAT(result.errors, Not(HasSubstr("100 Continue")));
    ExpectStillServesAndTempDirEmpty();
  }
}

TEST_F(UploadLimitsTest, TooManyPartsGets413) {
  StartWith({"--max-parts=3"});
  std::string body;
  for (int i = 0; i < 5; ++i) body += Field(absl::StrCat("f", i), "v");
  body += Close();
  const HttpResult result = PostMultipart(body);
  EXPECT_EQ(result.status, 413) << result.body;
  ExpectStillServesAndTempDirEmpty();
  // Three parts are fine.
  body.clear();
  for (int i = 0; i < 3; ++i) body += Field(absl::StrCat("f", i), "v");
  EXPECT_EQ(PostMultipart(body + Close()).status, 200);
}

TEST_F(UploadLimitsTest, PartHeaderOverTheLimitGets413) {
  StartWith({"--max-part-header-bytes=1Ki"});
  const std::string long_name(2048, 'n');
  const HttpResult result = PostMultipart(
      Part(absl::StrCat("Content-Disposition: form-data; name=\"f\"; filename=\"",
                        long_name, "\""),
           "data") +
      Close());
  EXPECT_EQ(result.status, 413) << result.body;
  ExpectStillServesAndTempDirEmpty();
  EXPECT_EQ(PostMultipart(Field("short", "header") + Close()).status, 200);
}

TEST_F(UploadLimitsTest, FieldOverTheLimitGets413) {
  StartWith({"--max-field-size=1Ki"});
  const HttpResult result =
      PostMultipart(Field("big", std::string(2048, 'v')) + Close());
  EXPECT_EQ(result.status, 413) << result.body;
  ExpectStillServesAndTempDirEmpty();
  EXPECT_EQ(PostMultipart(Field("small", std::string(1000, 'v')) + Close()).status, 200);
}

TEST_F(UploadLimitsTest, MalformedMultipartGets400) {
  StartWith({});
  // A spilled file part (over 64 KiB), then the body ends without a close delimiter.
  const std::string truncated =
      Part("Content-Disposition: form-data; name=\"f\"; filename=\"a\"",
           RandomishBytes(100 * 1024, 1));
  HttpResult result = PostMultipart(truncated);
  EXPECT_EQ(result.status, 400) << result.body;
  ExpectStillServesAndTempDirEmpty();
  // A part header line without a colon.
  result = PostMultipart(Part("this is not a header", "x") + Close());
  EXPECT_EQ(result.status, 400) << result.body;
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(UploadLimitsTest, MultipartWithoutBoundaryGets400) {
  StartWith({});
  const HttpResult result =
      PostMultipart(Field("a", "b") + Close(), "multipart/form-data");
  EXPECT_EQ(result.status, 400) << result.body;
  EXPECT_THAT(result.body, HasSubstr("boundary"));
  ExpectStillServesAndTempDirEmpty();
}

TEST_F(UploadLimitsTest, SpillPastMaxSpillBytesGets507AndTheBudgetComesBack) {
  StartWith({"--max-spill-bytes=256Ki"});
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    SCOPED_TRACE(protocol);
    // Two files of 200 KiB each: the second spill crosses the budget.
    const HttpResult result =
        Curl({protocol, "-F", "a=@" + WriteInput("a.bin", RandomishBytes(200 * 1024, 1)),
              "-F", "b=@" + WriteInput("b.bin", RandomishBytes(200 * 1024, 2))});
    EXPECT_EQ(result.status, 507) << result.body;
    EXPECT_THAT(result.body, HasSubstr("MAX_SPILL_BYTES"));
    ExpectStillServesAndTempDirEmpty();
  }
  // Given back: a spill within the budget still works, and the gauge is back at 0.
  const std::string ok = RandomishBytes(200 * 1024, 3);
  EXPECT_THAT(PostFile(ok, "--http1.1").body, HasSubstr(FileReceipt(ok, "spill")));
  EXPECT_TRUE(MetricSoon("spillway_spilled_bytes", 0));
}

TEST_F(UploadLimitsTest, MetadataThatIsNotUtf8Gets400) {
  // Header values, names and filenames reach gRPC consumers as proto3 strings, which
  // must be UTF-8: a Latin-1 byte (allowed by HTTP) would break every consumer stream
  // the upload went to. Refused at the edge instead, saying which field.
  StartWith({});
  for (const std::string protocol : {"--http1.1", "--http2-prior-knowledge"}) {
    SCOPED_TRACE(protocol);
    HttpResult result = Curl({protocol, "-H", "X-Name: caf\xe9", "--data-binary", "x"});
    EXPECT_EQ(result.status, 400) << result.body << result.errors;
    EXPECT_THAT(result.body, HasSubstr("header \\\"x-name\\\" is not valid UTF-8"));
    ExpectStillServesAndTempDirEmpty();
    result = Curl({protocol, "-F",
                   "f=@" + WriteInput("in.bin", RandomishBytes(100 * 1024, 1)) +
                       ";filename=caf\xe9.bin"});
    EXPECT_EQ(result.status, 400) << result.body << result.errors;
    EXPECT_THAT(result.body, HasSubstr("is not valid UTF-8"));
    ExpectStillServesAndTempDirEmpty();
  }
}

TEST_F(UploadLimitsTest, ChunkedMultipartPastMaxBodySizeCountsItsSpillOnce) {
  // Sent chunked, the body has no length: it is received buffered, its file spilling,
  // until it passes MAX_BODY_SIZE (1 MiB) and goes on as a stream. The megabyte it had
  // spilled by then must count once against MAX_SPILL_BYTES, not twice.
  StartWith({"--max-spill-bytes=1536Ki"});
  const std::string data = RandomishBytes(3 << 20, 1);
  const HttpResult result = Curl({"--http1.1", "-H", "Transfer-Encoding: chunked", "-F",
                                  "f=@" + WriteInput("big.bin", data)});
  EXPECT_EQ(result.status, 200) << result.body << result.errors;
  EXPECT_THAT(result.body, HasSubstr(FileReceipt(data, "stream")));
  ExpectStillServesAndTempDirEmpty();
  EXPECT_TRUE(MetricSoon("spillway_spilled_bytes", 0));
}

}  // namespace
}  // namespace spillway
