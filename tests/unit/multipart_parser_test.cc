// Specification of MultipartParser. Bodies go through ParseAllWays (whole, byte by byte,
// cut in two everywhere, random cuts), so each test also checks slicing; the only
// exceptions are the tests about where data slices point, which choose their cuts.
#include "server/upload/multipart_parser.h"

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/string_view_compat.h"
#include "tests/unit/multipart_test_util.h"

namespace spillway {
namespace {

using ::spillway::testing::ParseAllWays;
using ::spillway::testing::ParsedPart;
using ::spillway::testing::ParseEvent;
using ::spillway::testing::ParseOutcome;
using ::spillway::testing::Parts;
using ::spillway::testing::ParseWithCuts;
using ::spillway::testing::RecordingHandler;
using ::testing::ElementsAre;
using ::testing::Optional;

constexpr std::string_view kB = "XyZ123";  // the boundary of the hand-written bodies

std::string Field(std::string_view name, std::string_view value,
                  std::string_view boundary = kB) {
  return absl::StrCat("--", AbslView(boundary), "\r\nContent-Disposition: form-data; name=\"",
                      AbslView(name), "\"\r\n\r\n", AbslView(value), "\r\n");
}

std::string File(std::string_view name, std::string_view filename, std::string_view type,
                 std::string_view data, std::string_view boundary = kB) {
  return absl::StrCat("--", AbslView(boundary), "\r\nContent-Disposition: form-data; name=\"",
                      AbslView(name), "\"; filename=\"", AbslView(filename),
                      "\"\r\nContent-Type: ", AbslView(type), "\r\n\r\n", AbslView(data),
                      "\r\n");
}

std::string Close(std::string_view boundary = kB) {
  return absl::StrCat("--", AbslView(boundary), "--\r\n");
}

std::optional<MultipartError> ErrorOf(const ParseOutcome& outcome) {
  return GetMultipartError(outcome.status);
}

std::string ReadFixture(std::string_view name) {
  std::ifstream in(absl::StrCat(SPILLWAY_FIXTURE_DIR, "/multipart/", AbslView(name)),
                   std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fixture body with the boundary from its sidecar Content-Type line.
struct Fixture {
  std::string boundary;
  std::string body;
};

Fixture LoadFixture(std::string_view name) {
  std::string content_type = ReadFixture(absl::StrCat(AbslView(name), ".content_type"));
  while (!content_type.empty() && (content_type.back() == '\n' || content_type.back() == '\r')) {
    content_type.pop_back();
  }
  absl::StatusOr<std::string> boundary = MultipartParser::BoundaryFromContentType(content_type);
  EXPECT_TRUE(boundary.ok()) << boundary.status();
  return {boundary.ok() ? *boundary : "", ReadFixture(absl::StrCat(AbslView(name), ".body"))};
}

PartHeaders Headers(std::string name, std::optional<std::string> filename = std::nullopt,
                    std::string content_type = "") {
  PartHeaders h;
  h.name = std::move(name);
  h.filename = std::move(filename);
  h.content_type = std::move(content_type);
  return h;
}

// --- Content-Type ----------------------------------------------------------------------

TEST(MultipartParser, BoundaryFromCurlContentType) {
  EXPECT_EQ(*MultipartParser::BoundaryFromContentType(
                "multipart/form-data; boundary=------------------------4f454ede7def462b"),
            "------------------------4f454ede7def462b");
}

TEST(MultipartParser, BoundaryQuotedOrTokenAnyCase) {
  EXPECT_EQ(*MultipartParser::BoundaryFromContentType(
                "Multipart/Form-Data; BOUNDARY=\"----WebKitFormBoundary7MA4YWxk\""),
            "----WebKitFormBoundary7MA4YWxk");
  EXPECT_EQ(*MultipartParser::BoundaryFromContentType(
                "multipart/form-data ;charset=utf-8;  boundary = abc'()+_,-./:=?"),
            "abc'()+_,-./:=?");
  EXPECT_EQ(*MultipartParser::BoundaryFromContentType(
                "multipart/form-data; boundary=\"with inner space\""),
            "with inner space");
}

TEST(MultipartParser, BoundaryOf70CharsIsValid) {
  const std::string b(70, 'a');
  EXPECT_EQ(*MultipartParser::BoundaryFromContentType("multipart/form-data; boundary=" + b), b);
}

TEST(MultipartParser, NotFormDataIsItsOwnError) {
  for (std::string_view ct : {"multipart/mixed; boundary=abc", "text/plain", "",
                              "application/x-www-form-urlencoded"}) {
    auto b = MultipartParser::BoundaryFromContentType(ct);
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << ct;
    EXPECT_THAT(GetMultipartError(b.status()), Optional(MultipartError::kNotMultipartFormData));
  }
}

TEST(MultipartParser, MissingBoundary) {
  for (std::string_view ct : {"multipart/form-data", "multipart/form-data; charset=utf-8",
                              "multipart/form-data;"}) {
    auto b = MultipartParser::BoundaryFromContentType(ct);
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << ct;
    EXPECT_THAT(GetMultipartError(b.status()), Optional(MultipartError::kMissingBoundary)) << ct;
  }
}

TEST(MultipartParser, InvalidBoundary) {
  for (std::string ct : {std::string("multipart/form-data; boundary=\"\""),
                         "multipart/form-data; boundary=" + std::string(71, 'a'),
                         std::string("multipart/form-data; boundary=ab@c"),
                         std::string("multipart/form-data; boundary=\"ends in space \""),
                         std::string("multipart/form-data; boundary=\"a\\\"b\""),
                         std::string("multipart/form-data; boundary=a; boundary=a"),
                         std::string("multipart/form-data; boundary=\"unterminated")}) {
    auto b = MultipartParser::BoundaryFromContentType(ct);
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << ct;
    EXPECT_THAT(GetMultipartError(b.status()), Optional(MultipartError::kInvalidBoundary)) << ct;
  }
}

TEST(MultipartParser, ConstructedWithInvalidBoundaryFailsFirstCall) {
  RecordingHandler handler;
  MultipartParser parser("bad\r\nboundary", {}, &handler);
  EXPECT_THAT(GetMultipartError(parser.Feed("--x--")), Optional(MultipartError::kInvalidBoundary));
  EXPECT_THAT(GetMultipartError(parser.Finish()), Optional(MultipartError::kInvalidBoundary));
}

// --- Body structure --------------------------------------------------------------------

TEST(MultipartParser, SingleFieldWithDelimiterAtVeryStart) {
  const ParseOutcome out = ParseAllWays(kB, Field("greeting", "hello") + Close());
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_THAT(out.events,
              ElementsAre(ParseEvent{ParseEvent::Kind::kPartBegin, Headers("greeting"), ""},
                          ParseEvent{ParseEvent::Kind::kPartData, {}, "hello"},
                          ParseEvent{ParseEvent::Kind::kPartEnd, {}, ""},
                          ParseEvent{ParseEvent::Kind::kBodyEnd, {}, ""}));
}

TEST(MultipartParser, PreambleAndEpilogueAreIgnored) {
  const std::string body = absl::StrCat(
      "This is the preamble. --XyZ123 is not a delimiter here, nor is\r\n--XyZ123X.\r\n",
      Field("a", "1"), Close(), "epilogue\r\n--XyZ123\r\nContent-Disposition: junk\r\n");
  const ParseOutcome out = ParseAllWays(kB, body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  const auto parts = Parts(out);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].headers.name, "a");
  EXPECT_EQ(parts[0].data, "1");
}

TEST(MultipartParser, ZeroPartBodyIsValid) {
  for (std::string_view body : {"--XyZ123--", "--XyZ123--\r\n", "preamble\r\n--XyZ123--"}) {
    const ParseOutcome out = ParseAllWays(kB, body);
    ASSERT_TRUE(out.status.ok()) << out.status;
    EXPECT_THAT(out.events, ElementsAre(ParseEvent{ParseEvent::Kind::kBodyEnd, {}, ""}));
  }
}

TEST(MultipartParser, CloseDelimiterNeedNotEndInCrlf) {
  const ParseOutcome out = ParseAllWays(kB, Field("a", "1") + "--XyZ123--");
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(Parts(out).size(), 1u);
}

TEST(MultipartParser, TransportPaddingAfterDelimiterIsTolerated) {
  const std::string body =
      "--XyZ123 \t \r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nA\r\n"
      "--XyZ123\t\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\nB\r\n"
      "--XyZ123--  \r\n";
  const ParseOutcome out = ParseAllWays(kB, body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  const auto parts = Parts(out);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].data, "A");
  EXPECT_EQ(parts[1].data, "B");
}

TEST(MultipartParser, EmptyPartHasNoDataEvent) {
  const ParseOutcome out = ParseAllWays(kB, Field("empty", "") + Close());
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_THAT(out.events,
              ElementsAre(ParseEvent{ParseEvent::Kind::kPartBegin, Headers("empty"), ""},
                          ParseEvent{ParseEvent::Kind::kPartEnd, {}, ""},
                          ParseEvent{ParseEvent::Kind::kBodyEnd, {}, ""}));
}

TEST(MultipartParser, NearDelimitersInDataAreContent) {
  // Each of these starts like a delimiter but is not one.
  const std::vector<std::string> tricky = {
      "\r\n--XyZ123X",     // boundary followed by another bchar
      "\r\n--XyZ123-x",    // one dash, then not a second one
      "\r\n--XyZ12",       // a prefix of the boundary
      "\r\n--XyZ123\n",    // a bare LF is not CRLF or padding
      "--XyZ123\r\n",      // no CRLF before it
      "\n--XyZ123\r\n",    // LF without CR
      "\r\r\n--XyZ1\r",    // CRs everywhere
      "\r\n-\r\n--\r\n--X",
      "ends in CR\r",
      "\r\n--XyZ123-",     // dash at the very end of the data, then the real delimiter
  };
  for (const std::string& data : tricky) {
    SCOPED_TRACE(absl::CHexEscape(data));
    const ParseOutcome out = ParseAllWays(kB, File("f", "f.bin", "x/y", data) + Close());
    ASSERT_TRUE(out.status.ok()) << out.status;
    const auto parts = Parts(out);
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].data, data);
  }
}

TEST(MultipartParser, FileAndFieldParts) {
  const std::string body = absl::StrCat(Field("title", "Report"),
                                        File("upload", "a.txt", "text/plain", "line1\nline2\n"),
                                        File("upload", "", "application/octet-stream", ""),
                                        Close());
  const ParseOutcome out = ParseAllWays(kB, body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  const auto parts = Parts(out);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].headers, Headers("title"));
  EXPECT_FALSE(parts[0].headers.is_file());
  EXPECT_EQ(parts[1].headers, Headers("upload", "a.txt", "text/plain"));
  EXPECT_EQ(parts[1].data, "line1\nline2\n");
  EXPECT_EQ(parts[2].headers, Headers("upload", "", "application/octet-stream"));
  EXPECT_TRUE(parts[2].headers.is_file());
  EXPECT_EQ(parts[2].data, "");
}

TEST(MultipartParser, FilenameStarIsPreferred) {
  const std::string body =
      "--XyZ123\r\nContent-Disposition: form-data; name=\"f\"; filename=\"EUR.txt\"; "
      "filename*=UTF-8''%E2%82%AC.txt\r\n\r\nx\r\n--XyZ123--";
  const ParseOutcome out = ParseAllWays(kB, body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(Parts(out)[0].headers.filename, "\xE2\x82\xAC.txt");
}

TEST(MultipartParser, HeaderNamesAreCaseInsensitiveAndOthersIgnored) {
  const std::string body =
      "--XyZ123\r\ncontent-disposition: Form-Data; Name=\"f\"; FILENAME=\"a\"\r\n"
      "X-Custom: whatever\r\nCONTENT-TYPE:image/png\r\nContent-Transfer-Encoding: binary\r\n"
      "\r\nPNG\r\n--XyZ123--";
  const ParseOutcome out = ParseAllWays(kB, body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(Parts(out)[0].headers, Headers("f", "a", "image/png"));
}

TEST(MultipartParser, ObsoleteLineFoldingIsTolerated) {
  const std::string body =
      "--XyZ123\r\nContent-Disposition: form-data;\r\n name=\"f\";\r\n\tfilename=\"a b\"\r\n"
      "Content-Type: text/plain;\r\n  charset=utf-8\r\n\r\nx\r\n--XyZ123--";
  const ParseOutcome out = ParseAllWays(kB, body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(Parts(out)[0].headers, Headers("f", "a b", "text/plain; charset=utf-8"));
}

TEST(MultipartParser, ShortestBoundary) {
  const std::string body = "--a\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n"
                           "\r\n-a\r\n--\r\n--b\r\n--a--";
  const ParseOutcome out = ParseAllWays("a", body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(Parts(out)[0].data, "\r\n-a\r\n--\r\n--b");
}

// Data slices are views of the caller's input: with the body fed whole nothing is held
// back, so every slice must point inside it.
TEST(MultipartParser, DataPointsIntoTheInput) {
  std::string payload(100000, 'x');
  for (size_t i = 0; i < payload.size(); i += 997) payload.replace(i, 12, "\r\n--XyZ123X");
  const std::string body = File("f", "f", "x/y", payload) + Field("g", "v") + Close();
  RecordingHandler handler;
  const ParseOutcome out = ParseWithCuts(kB, body, {}, {}, &handler);
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_FALSE(handler.slices().empty());
  const auto begin = reinterpret_cast<uintptr_t>(body.data());
  for (const RecordingHandler::Slice& s : handler.slices()) {
    EXPECT_GE(s.address, begin);
    EXPECT_LE(s.address + s.bytes.size(), begin + body.size());
  }
}

// Fed in two pieces, only bytes held back at the cut may come from elsewhere.
TEST(MultipartParser, OnlyHeldBackBytesComeFromTheParser) {
  const std::string body = File("f", "f", "x/y", "abc\r\n--XyZ12def") + Close();
  const size_t cut = body.find("\r\n--XyZ12") + 5;
  RecordingHandler handler;
  const ParseOutcome out = ParseWithCuts(kB, body, {cut}, {}, &handler);
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(Parts(out)[0].data, "abc\r\n--XyZ12def");
  const auto begin = reinterpret_cast<uintptr_t>(body.data());
  for (const RecordingHandler::Slice& s : handler.slices()) {
    const bool in_body = s.address >= begin && s.address + s.bytes.size() <= begin + body.size();
    EXPECT_TRUE(in_body || s.bytes == "\r\n--X") << absl::CHexEscape(s.bytes);
  }
}

// --- Fixtures captured from real clients -----------------------------------------------

TEST(MultipartParser, CurlTextField) {
  const Fixture f = LoadFixture("curl_text_field");
  const ParseOutcome out = ParseAllWays(f.boundary, f.body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  const auto parts = Parts(out);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].headers, Headers("text"));
  EXPECT_EQ(parts[0].data, "hello");
}

TEST(MultipartParser, CurlBinaryFile) {
  const Fixture f = LoadFixture("curl_binary_file");
  const std::string payload = ReadFixture("curl_binary_file.payload");
  ASSERT_GT(payload.size(), 3000u);
  const ParseOutcome out = ParseAllWays(f.boundary, f.body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  const auto parts = Parts(out);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].headers, Headers("file", "binary.bin", "application/octet-stream"));
  EXPECT_TRUE(parts[0].data == payload) << "payload differs";
}

TEST(MultipartParser, CurlSeveralFiles) {
  const Fixture f = LoadFixture("curl_several_files");
  const ParseOutcome out = ParseAllWays(f.boundary, f.body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  const auto parts = Parts(out);
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0].headers, Headers("files", "a.txt", "text/plain"));
  EXPECT_EQ(parts[0].data, "first file\n");
  EXPECT_EQ(parts[1].headers, Headers("files", "b.csv", "text/csv"));
  EXPECT_EQ(parts[1].data, "x,y\n1,2\n");
  // curl has no type for .json and says so.
  EXPECT_EQ(parts[2].headers, Headers("other", "c.json", "application/octet-stream"));
  EXPECT_EQ(parts[2].data, "{\"k\": \"v\"}");
  EXPECT_EQ(parts[3].headers, Headers("note"));
  EXPECT_EQ(parts[3].data, "three files");
}

TEST(MultipartParser, CurlUtf8FilenameIsKeptRaw) {
  const Fixture f = LoadFixture("curl_utf8_filename");
  const ParseOutcome out = ParseAllWays(f.boundary, f.body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  const auto parts = Parts(out);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].headers,
            Headers("doc", "r\xC3\xA9sum\xC3\xA9 \xE2\x82\xAC.txt", "text/plain"));
  EXPECT_EQ(parts[0].data, "\xC3\xBCn\xC3\xAF" "code body\n");
}

TEST(MultipartParser, CurlPercentEncodedQuoteIsKeptAsSent) {
  const Fixture f = LoadFixture("curl_quote_filename");
  const ParseOutcome out = ParseAllWays(f.boundary, f.body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(Parts(out).at(0).headers.filename, "my %22quoted%22 name.txt");
}

TEST(MultipartParser, CurlFormEscapeBackslashesAreDecoded) {
  const Fixture f = LoadFixture("curl_form_escape_filename");
  const ParseOutcome out = ParseAllWays(f.boundary, f.body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(Parts(out).at(0).headers.filename, "back\\slash \"q\".txt");
}

TEST(MultipartParser, BrowserStyleBodyHandWritten) {
  const Fixture f = LoadFixture("browser_webkit_handwritten");
  EXPECT_EQ(f.boundary, "----WebKitFormBoundary7MA4YWxkTrZu0gW");
  const ParseOutcome out = ParseAllWays(f.boundary, f.body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  const auto parts = Parts(out);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].headers, Headers("title"));
  EXPECT_EQ(parts[0].data, "Quarterly report");
  // An empty file input: a file part with an empty name and no data.
  EXPECT_EQ(parts[1].headers, Headers("attachment", "", "application/octet-stream"));
  EXPECT_TRUE(parts[1].headers.is_file());
  EXPECT_EQ(parts[1].data, "");
  EXPECT_EQ(parts[2].headers, Headers("photo", "my %22best%22 shot.png", "image/png"));
  EXPECT_EQ(parts[2].data, std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
}

TEST(MultipartParser, HandcraftedFilenameStar) {
  const Fixture f = LoadFixture("handcrafted_filename_star");
  EXPECT_EQ(f.boundary, "AaB03x");
  const ParseOutcome out = ParseAllWays(f.boundary, f.body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  const auto parts = Parts(out);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].headers,
            Headers("doc", "\xE2\x82\xAC rates.txt", "text/plain; charset=utf-8"));
  EXPECT_EQ(parts[0].data, "1 EUR = 1.08 USD");
  EXPECT_EQ(parts[1].headers, Headers("latin", "Gr\xC3\xBC\xC3\x9F" "e.txt"));
  EXPECT_EQ(parts[1].data, "hallo");
}

// --- Errors: one test per MultipartError --------------------------------------------------

TEST(MultipartParser, MalformedDelimiter) {
  for (std::string body : {std::string("--XyZ123 x\r\n"), std::string("--XyZ123\rX"),
                           Field("a", "1") + "--XyZ123 \t-\r\n", std::string("--XyZ123\r\r\n")}) {
    const ParseOutcome out = ParseAllWays(kB, body);
    EXPECT_EQ(out.status.code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_THAT(ErrorOf(out), Optional(MultipartError::kMalformedDelimiter)) << body;
  }
}

TEST(MultipartParser, MalformedPartHeader) {
  for (std::string headers : {"Content-Disposition form-data; name=\"a\"\r\n",
                              "Content-Disposition: form-data; name=\"a\r\n",
                              " folded: first line\r\n",
                              "Content-Disposition: form-data; name=\"a\"\nX: y\r\n",
                              "Content-Disposition: form-data; name=a\r\n"
                              "Content-Disposition: form-data; name=b\r\n"}) {
    const ParseOutcome out =
        ParseAllWays(kB, absl::StrCat("--XyZ123\r\n", headers, "\r\ndata\r\n--XyZ123--"));
    EXPECT_EQ(out.status.code(), absl::StatusCode::kInvalidArgument) << headers;
    EXPECT_THAT(ErrorOf(out), Optional(MultipartError::kMalformedPartHeader)) << headers;
    EXPECT_TRUE(out.events.empty());
  }
}

TEST(MultipartParser, MissingFormDataName) {
  for (std::string headers : {"", "Content-Type: text/plain\r\n",
                              "Content-Disposition: form-data\r\n",
                              "Content-Disposition: form-data; name=\"\"\r\n",
                              "Content-Disposition: attachment; name=\"a\"\r\n"}) {
    const ParseOutcome out = ParseAllWays(
        kB, absl::StrCat(Field("ok", "1"), "--XyZ123\r\n", headers, "\r\ndata\r\n--XyZ123--"));
    EXPECT_EQ(out.status.code(), absl::StatusCode::kInvalidArgument) << headers;
    EXPECT_THAT(ErrorOf(out), Optional(MultipartError::kMissingFormDataName)) << headers;
    EXPECT_EQ(Parts(out).size(), 1u);  // the part before it was delivered
  }
}

TEST(MultipartParser, TruncatedBody) {
  const std::string full = Field("a", "hello") + Close();
  // Every strict prefix of a valid body is truncated, wherever it stops.
  for (size_t n = 0; n < full.size() - 2; ++n) {  // "--XyZ123--" without CRLF is complete
    const ParseOutcome out = ParseAllWays(kB, std::string_view(full).substr(0, n));
    EXPECT_EQ(out.status.code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(ErrorOf(out), Optional(MultipartError::kTruncatedBody)) << n;
  }
  const ParseOutcome out = ParseAllWays(kB, Field("a", "hello") + "--XyZ123-");
  EXPECT_THAT(ErrorOf(out), Optional(MultipartError::kTruncatedBody));
  EXPECT_THAT(ErrorOf(ParseAllWays(kB, "no delimiter at all")),
              Optional(MultipartError::kTruncatedBody));
}

TEST(MultipartParser, TooManyPartsAtLimitOkOneOverFails) {
  MultipartLimits limits;
  limits.max_parts = 3;
  std::string three;
  for (int i = 0; i < 3; ++i) three += Field("f", "v");
  const ParseOutcome ok = ParseAllWays(kB, three + Close(), limits);
  ASSERT_TRUE(ok.status.ok()) << ok.status;
  EXPECT_EQ(Parts(ok).size(), 3u);

  const ParseOutcome over = ParseAllWays(kB, three + Field("f", "v") + Close(), limits);
  EXPECT_EQ(over.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(ErrorOf(over), Optional(MultipartError::kTooManyParts));
  EXPECT_EQ(Parts(over).size(), 3u);
}

TEST(MultipartParser, PartHeaderTooLargeAtLimitOkOneOverFails) {
  // The block counted: header lines with their CRLFs plus the final CRLF.
  const std::string prefix = "Content-Disposition: form-data; name=\"f\"\r\nX-Pad: ";
  MultipartLimits limits;
  limits.max_part_header_bytes = 200;
  const std::string at_limit = prefix + std::string(200 - prefix.size() - 4, 'p') + "\r\n\r\n";
  ASSERT_EQ(at_limit.size(), 200u);
  const ParseOutcome ok =
      ParseAllWays(kB, absl::StrCat("--XyZ123\r\n", at_limit, "v\r\n--XyZ123--"), limits);
  ASSERT_TRUE(ok.status.ok()) << ok.status;

  const std::string over = prefix + std::string(201 - prefix.size() - 4, 'p') + "\r\n\r\n";
  const ParseOutcome bad =
      ParseAllWays(kB, absl::StrCat("--XyZ123\r\n", over, "v\r\n--XyZ123--"), limits);
  EXPECT_EQ(bad.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(ErrorOf(bad), Optional(MultipartError::kPartHeaderTooLarge));

  // A block that never ends fails at the limit, without reading on.
  const ParseOutcome endless = ParseAllWays(
      kB, absl::StrCat("--XyZ123\r\n", prefix, std::string(100000, 'p')), limits);
  EXPECT_THAT(ErrorOf(endless), Optional(MultipartError::kPartHeaderTooLarge));
}

TEST(MultipartParser, FieldTooLargeAtLimitOkOneOverFails) {
  MultipartLimits limits;
  limits.max_field_size = 100;
  const ParseOutcome ok = ParseAllWays(kB, Field("f", std::string(100, 'v')) + Close(), limits);
  ASSERT_TRUE(ok.status.ok()) << ok.status;
  EXPECT_EQ(Parts(ok)[0].data.size(), 100u);

  const ParseOutcome over =
      ParseAllWays(kB, Field("f", std::string(101, 'v')) + Close(), limits);
  EXPECT_EQ(over.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(ErrorOf(over), Optional(MultipartError::kFieldTooLarge));
  EXPECT_EQ(Parts(over)[0].data.size(), 100u);  // exactly the allowed bytes were delivered

  // The limit is per field, and delimiter look-alikes held back count once released.
  const ParseOutcome near = ParseAllWays(
      kB, Field("f", std::string(95, 'v') + "\r\n--X") + Field("g", std::string(100, 'w')) +
              Close(),
      limits);
  ASSERT_TRUE(near.status.ok()) << near.status;
}

TEST(MultipartParser, FileDataIsNotLimitedByFieldSize) {
  MultipartLimits limits;
  limits.max_field_size = 10;
  const ParseOutcome out =
      ParseAllWays(kB, File("f", "big.bin", "x/y", std::string(1000, 'z')) + Close(), limits);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(Parts(out)[0].data.size(), 1000u);
}

TEST(MultipartParser, EveryErrorHasItsOwnNameAndCode) {
  for (MultipartError e :
       {MultipartError::kNotMultipartFormData, MultipartError::kMissingBoundary,
        MultipartError::kInvalidBoundary, MultipartError::kMalformedDelimiter,
        MultipartError::kMalformedPartHeader, MultipartError::kMissingFormDataName,
        MultipartError::kTruncatedBody, MultipartError::kTooManyParts,
        MultipartError::kPartHeaderTooLarge, MultipartError::kFieldTooLarge}) {
    const absl::Status s = MakeMultipartError(e, "m");
    EXPECT_THAT(GetMultipartError(s), Optional(e));
    const bool limit = e == MultipartError::kTooManyParts ||
                       e == MultipartError::kPartHeaderTooLarge ||
                       e == MultipartError::kFieldTooLarge;
    EXPECT_EQ(s.code(), limit ? absl::StatusCode::kResourceExhausted
                              : absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(GetMultipartError(absl::OkStatus()), std::nullopt);
  EXPECT_EQ(GetMultipartError(absl::InternalError("x")), std::nullopt);
}

// --- Handler and lifecycle -------------------------------------------------------------

TEST(MultipartParser, HandlerErrorAbortsAndSticks) {
  const std::string body = Field("a", "1") + Field("b", "2") + Close();
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < body.size(); ++i) every_byte.push_back(i);
  for (size_t n = 0; n < 7; ++n) {  // 7 callbacks: B D E B D E Z (one-byte data: no splits)
    for (const std::vector<size_t>& cuts : {std::vector<size_t>{}, every_byte}) {
      RecordingHandler handler;
      handler.FailAt(n, absl::CancelledError("consumer went away"));
      const ParseOutcome out = ParseWithCuts(kB, body, cuts, {}, &handler);
      EXPECT_EQ(out.status, absl::CancelledError("consumer went away")) << n;
      EXPECT_EQ(out.events.size(), n + 1);
      EXPECT_EQ(out.protocol_violation, "");
    }
  }
}

TEST(MultipartParser, FeedAfterFinishFails) {
  RecordingHandler handler;
  MultipartParser parser(kB, {}, &handler);
  ASSERT_TRUE(parser.Feed("--XyZ123--").ok());
  ASSERT_TRUE(parser.Finish().ok());
  EXPECT_EQ(parser.Feed("x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(parser.Finish().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(MultipartParser, EmptyFeedsAreHarmless) {
  RecordingHandler handler;
  MultipartParser parser(kB, {}, &handler);
  const std::string body = Field("a", "1") + Close();
  for (char c : body) {
    ASSERT_TRUE(parser.Feed("").ok());
    ASSERT_TRUE(parser.Feed(std::string_view(&c, 1)).ok());
  }
  EXPECT_TRUE(parser.Finish().ok());
  EXPECT_EQ(parser.parts(), 1u);
}

// --- Random content --------------------------------------------------------------------

// True if `payload`, followed by a real delimiter, would be read back unchanged: it must
// not contain a delimiter itself, including one completed by the CRLF that follows it.
bool IsSafePayload(const std::string& payload, std::string_view boundary) {
  const std::string pattern = absl::StrCat("\r\n--", AbslView(boundary));
  const std::string s = absl::StrCat("\r\n", payload, "\r\n--");  // what the parser sees
  for (size_t at = s.find(pattern); at != std::string::npos; at = s.find(pattern, at + 1)) {
    if (at == 0) continue;  // the delimiter before the part
    const size_t next = at + pattern.size();
    if (next >= s.size()) return false;
    const char c = s[next];
    if (c == ' ' || c == '\t' || c == '\r') return false;
    if (c == '-' && (next + 1 >= s.size() || s[next + 1] == '-')) return false;
  }
  return true;
}

std::string RandomTrickyPayload(std::mt19937_64& rng, std::string_view boundary) {
  const std::vector<std::string> pieces = {
      "\r", "\n", "\r\n", "-", "--", "\r\n--", "\r\n-", std::string(boundary),
      absl::StrCat("\r\n--", AbslView(boundary.substr(0, boundary.size() / 2))),
      absl::StrCat("\r\n--", AbslView(boundary), "X"),
      absl::StrCat("\r\n--", AbslView(boundary), "-x"),
      absl::StrCat("\r\n--", AbslView(boundary.substr(0, boundary.size() - 1))),
  };
  std::string out;
  const size_t count = std::uniform_int_distribution<size_t>(0, 40)(rng);
  for (size_t i = 0; i < count; ++i) {
    if (rng() % 3 == 0) {
      out.push_back(static_cast<char>(rng()));
    } else {
      out += pieces[rng() % pieces.size()];
    }
  }
  return out;
}

TEST(MultipartParser, RandomPayloadsWithDelimiterLookAlikes) {
  const uint64_t seed = testing::NextSliceSeed();
  SCOPED_TRACE(absl::StrCat("payload seed ", seed));
  std::mt19937_64 rng(seed);
  for (std::string_view boundary : {std::string_view("b"), std::string_view("XyZ123"),
                                    std::string_view("------------------------4f454ede7def462b")}) {
    for (int round = 0; round < 30; ++round) {
      std::vector<std::string> payloads;
      std::string body = "pre\r\n--" + std::string(boundary) + "Xamble\r\n";
      const size_t n = 1 + rng() % 4;
      while (payloads.size() < n) {
        std::string p = RandomTrickyPayload(rng, boundary);
        if (!IsSafePayload(p, boundary)) continue;
        body += File("f" + std::to_string(payloads.size()), "r.bin", "x/y", p, boundary);
        payloads.push_back(std::move(p));
      }
      body += Close(boundary);
      const ParseOutcome out = ParseAllWays(boundary, body);
      ASSERT_TRUE(out.status.ok()) << out.status;
      const auto parts = Parts(out);
      ASSERT_EQ(parts.size(), payloads.size());
      for (size_t i = 0; i < n; ++i) {
        EXPECT_EQ(parts[i].data, payloads[i]) << absl::CHexEscape(payloads[i]);
      }
    }
  }
}

TEST(MultipartParser, LargeRandomBinaryFile) {
  std::mt19937_64 rng(42);
  std::string payload(300000, '\0');
  for (char& c : payload) c = static_cast<char>(rng());
  const std::string body = File("f", "r.bin", "application/octet-stream", payload) + Close();
  const ParseOutcome out = ParseAllWays(kB, body);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_TRUE(Parts(out).at(0).data == payload);
}

TEST(MultipartParser, BoundaryIfMultipartTellsRawBodiesFromBrokenForms) {
  absl::StatusOr<std::optional<std::string>> form =
      MultipartParser::BoundaryIfMultipart("multipart/form-data; boundary=abc");
  ASSERT_TRUE(form.ok());
  EXPECT_EQ(*form, std::optional<std::string>("abc"));

  absl::StatusOr<std::optional<std::string>> raw =
      MultipartParser::BoundaryIfMultipart("application/octet-stream");
  ASSERT_TRUE(raw.ok());
  EXPECT_FALSE(raw->has_value());

  absl::StatusOr<std::optional<std::string>> broken =
      MultipartParser::BoundaryIfMultipart("multipart/form-data");
  EXPECT_EQ(GetMultipartError(broken.status()), MultipartError::kMissingBoundary);
}

}  // namespace
}  // namespace spillway
