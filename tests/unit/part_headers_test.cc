// Specification of PartHeaderParser: the part header block and Content-Disposition.
#include "server/upload/part_headers.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/upload/multipart_error.h"

namespace spillway {
namespace {

using ::testing::Optional;

absl::Status ParseBlock(std::string_view block, PartHeaders* out) {
  PartHeaderParser parser;
  return parser.Parse(block, out);
}

PartHeaders Disposition(std::string_view value) {
  PartHeaders h;
  PartHeaderParser parser;
  const absl::Status s = parser.ParseContentDisposition(value, &h);
  EXPECT_TRUE(s.ok()) << value << ": " << s;
  return h;
}

std::optional<MultipartError> DispositionError(std::string_view value) {
  PartHeaders h;
  PartHeaderParser parser;
  return GetMultipartError(parser.ParseContentDisposition(value, &h));
}

std::optional<MultipartError> BlockError(std::string_view block) {
  PartHeaders h;
  return GetMultipartError(ParseBlock(block, &h));
}

TEST(PartHeaders, FieldHasNameOnly) {
  PartHeaders h;
  ASSERT_TRUE(ParseBlock("Content-Disposition: form-data; name=\"title\"\r\n\r\n", &h).ok());
  EXPECT_EQ(h.name, "title");
  EXPECT_EQ(h.filename, std::nullopt);
  EXPECT_FALSE(h.is_file());
  EXPECT_EQ(h.content_type, "");
}

TEST(PartHeaders, FileHasFilenameAndContentTypeAsSent) {
  PartHeaders h;
  ASSERT_TRUE(ParseBlock("Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n"
                         "Content-Type:   Text/Plain; Charset=\"UTF-8\"  \r\n\r\n",
                         &h)
                  .ok());
  EXPECT_EQ(h.name, "f");
  EXPECT_THAT(h.filename, Optional(std::string("a.txt")));
  EXPECT_EQ(h.content_type, "Text/Plain; Charset=\"UTF-8\"");
}

TEST(PartHeaders, EmptyFilenameIsStillAFile) {
  const PartHeaders h = Disposition("form-data; name=\"f\"; filename=\"\"");
  EXPECT_TRUE(h.is_file());
  EXPECT_EQ(h.filename, "");
}

TEST(PartHeaders, TokenValuesAndLooseWhitespace) {
  const PartHeaders h = Disposition("Form-Data ;name = field1 ;  filename=a.txt ;");
  EXPECT_EQ(h.name, "field1");
  EXPECT_EQ(h.filename, "a.txt");
}

TEST(PartHeaders, BackslashEscapesOnlyQuoteAndBackslash) {
  // curl --form-escape
  EXPECT_EQ(Disposition(R"(form-data; name="f"; filename="a \"b\" c\\d.txt")").filename,
            R"(a "b" c\d.txt)");
  // Browsers send Windows paths with raw backslashes.
  EXPECT_EQ(Disposition(R"(form-data; name="f"; filename="C:\dir\a.txt")").filename,
            R"(C:\dir\a.txt)");
}

TEST(PartHeaders, PercentEncodingInFilenameIsKeptAsSent) {
  EXPECT_EQ(Disposition("form-data; name=\"f\"; filename=\"my %22best%22 %41.png\"").filename,
            "my %22best%22 %41.png");
}

TEST(PartHeaders, RawUtf8FilenameIsKept) {
  EXPECT_EQ(Disposition("form-data; name=\"f\"; filename=\"\xC3\xA9t\xC3\xA9.txt\"").filename,
            "\xC3\xA9t\xC3\xA9.txt");
}

TEST(PartHeaders, SemicolonAndEqualsInsideQuotesAreData) {
  const PartHeaders h = Disposition("form-data; name=\"a;b=c\"; filename=\"x; filename=y\"");
  EXPECT_EQ(h.name, "a;b=c");
  EXPECT_EQ(h.filename, "x; filename=y");
}

TEST(PartHeaders, FilenameStarIsPreferred) {
  EXPECT_EQ(Disposition("form-data; name=\"f\"; filename=\"fallback.txt\"; "
                        "filename*=UTF-8''%E2%82%AC%20rates.txt")
                .filename,
            "\xE2\x82\xAC rates.txt");
  // Whatever the order.
  EXPECT_EQ(Disposition("form-data; name=\"f\"; filename*=utf-8'en'%C3%A9.txt; "
                        "filename=\"fallback.txt\"")
                .filename,
            "\xC3\xA9.txt");
}

TEST(PartHeaders, FilenameStarAloneMakesAFile) {
  EXPECT_EQ(Disposition("form-data; name=\"f\"; filename*=UTF-8''plain.txt").filename,
            "plain.txt");
}

TEST(PartHeaders, FilenameStarIso88591IsConvertedToUtf8) {
  EXPECT_EQ(Disposition("form-data; name=\"f\"; filename*=ISO-8859-1''Gr%FC%DFe.txt").filename,
            "Gr\xC3\xBC\xC3\x9F" "e.txt");
}

TEST(PartHeaders, MalformedFilenameStar) {
  for (std::string_view value : {
           "form-data; name=\"f\"; filename*=UTF-8%E2%82%AC",        // no quotes
           "form-data; name=\"f\"; filename*=UTF-8'%E2%82%AC",       // one quote
           "form-data; name=\"f\"; filename*=KOI8-R''%E2",           // charset
           "form-data; name=\"f\"; filename*=UTF-8''%E2%82",         // truncated UTF-8
           "form-data; name=\"f\"; filename*=UTF-8''%C0%AF",         // overlong
           "form-data; name=\"f\"; filename*=UTF-8''%4",             // short escape
           "form-data; name=\"f\"; filename*=UTF-8''%zz",            // not hex
           "form-data; name=\"f\"; filename*=UTF-8''a%0D%0Ab",       // CR LF
           "form-data; name=\"f\"; filename*=UTF-8''a%00b",          // NUL
       }) {
    EXPECT_THAT(DispositionError(value), Optional(MultipartError::kMalformedPartHeader))
        << value;
  }
}

// A quoted string carries control bytes that filename* may not: they would reach
// consumers in names and environment variables.
TEST(PartHeaders, ControlBytesInNameOrFilenameAreMalformed) {
  using namespace std::string_view_literals;
  for (std::string_view value : {
           "form-data; name=\"f\"; filename=\"a\0b.txt\""sv,
           "form-data; name=\"f\"; filename=\"\x1b[31mred\""sv,
           "form-data; name=\"f\"; filename=\"del\x7f\""sv,
           "form-data; name=\"f\"; filename=\"tab\there\""sv,
           "form-data; name=\"a\0b\""sv,
       }) {
    EXPECT_THAT(DispositionError(value), Optional(MultipartError::kMalformedPartHeader))
        << value;
  }
  // Bytes above 0x7F are not control bytes: raw UTF-8 filenames stay as they are.
  EXPECT_EQ(Disposition("form-data; name=\"f\"; filename=\"caf\xc3\xa9\"").filename,
            "caf\xc3\xa9");
}

TEST(PartHeaders, NamesAndFilenamesThatAreNotUtf8AreMalformed) {
  // They reach gRPC consumers as proto3 strings, which must be UTF-8.
  for (std::string_view value : {
           "form-data; name=\"f\"; filename=\"caf\xe9.txt\"",      // Latin-1
           "form-data; name=\"caf\xe9\"",
           "form-data; name=f; filename=\xc3",                      // truncated
           "form-data; name=\"f\"; filename*=UTF-8''caf%E9.txt",   // decoded: Latin-1
       }) {
    EXPECT_THAT(DispositionError(value), Optional(MultipartError::kMalformedPartHeader))
        << value;
  }
  // ISO-8859-1 in filename* is transcoded, so it stays valid.
  EXPECT_EQ(Disposition("form-data; name=f; filename*=ISO-8859-1''caf%E9").filename,
            "caf\xc3\xa9");
}

TEST(PartHeaders, RepeatedParametersAreMalformed) {
  for (std::string_view value : {"form-data; name=a; name=b",
                                 "form-data; name=a; filename=x; FILENAME=y",
                                 "form-data; name=a; filename*=UTF-8''x; filename*=UTF-8''y"}) {
    EXPECT_THAT(DispositionError(value), Optional(MultipartError::kMalformedPartHeader))
        << value;
  }
}

TEST(PartHeaders, UnparseableParametersAreMalformed) {
  for (std::string_view value : {"form-data; name=\"a", "form-data; name", "form-data; name=",
                                 "form-data; name=a b", "form-data; =a", "form-data; name=\"a\"x"}) {
    EXPECT_THAT(DispositionError(value), Optional(MultipartError::kMalformedPartHeader))
        << value;
  }
}

TEST(PartHeaders, NotFormDataOrNoNameIsMissingFormDataName) {
  for (std::string_view value : {"attachment; name=\"a\"", "inline", "form-data",
                                 "form-data; filename=\"a.txt\"", "form-data; name=\"\"", ""}) {
    EXPECT_THAT(DispositionError(value), Optional(MultipartError::kMissingFormDataName))
        << value;
  }
}

TEST(PartHeaders, MissingContentDispositionIsMissingFormDataName) {
  EXPECT_THAT(BlockError("\r\n"), Optional(MultipartError::kMissingFormDataName));
  EXPECT_THAT(BlockError("Content-Type: text/plain\r\n\r\n"),
              Optional(MultipartError::kMissingFormDataName));
}

TEST(PartHeaders, HeaderNamesAreCaseInsensitiveAndOthersIgnored) {
  PartHeaders h;
  ASSERT_TRUE(ParseBlock("X-Other: 1\r\ncOnTeNt-DiSpOsItIoN: form-data; name=a\r\n"
                         "content-transfer-encoding: binary\r\nCONTENT-TYPE: a/b\r\n\r\n",
                         &h)
                  .ok());
  EXPECT_EQ(h.name, "a");
  EXPECT_EQ(h.content_type, "a/b");
}

TEST(PartHeaders, ObsoleteFoldingBecomesOneSpace) {
  PartHeaders h;
  ASSERT_TRUE(ParseBlock("Content-Disposition: form-data;\r\n   name=\"a\";\r\n\t filename=\"b\"\r\n"
                         "Content-Type: multipart/mixed;\r\n boundary=x\r\n\r\n",
                         &h)
                  .ok());
  EXPECT_EQ(h.name, "a");
  EXPECT_EQ(h.filename, "b");
  EXPECT_EQ(h.content_type, "multipart/mixed; boundary=x");
}

TEST(PartHeaders, MalformedBlocks) {
  for (std::string_view block : {
           "Content-Disposition form-data; name=a\r\n\r\n",   // no colon
           ": form-data; name=a\r\n\r\n",                     // empty name
           "Content Disposition: form-data; name=a\r\n\r\n",  // space in name
           " Content-Disposition: form-data; name=a\r\n\r\n", // starts with a fold
           "Content-Disposition: form-data; name=a\nX: 1\r\n\r\n",  // bare LF
           "Content-Disposition: form-data; name=a\rX: 1\r\n\r\n",  // bare CR
           "Content-Disposition: form-data; name=a\r\nContent-Disposition: form-data; "
           "name=b\r\n\r\n",
           "Content-Disposition: form-data; name=a\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n",
       }) {
    EXPECT_THAT(BlockError(block), Optional(MultipartError::kMalformedPartHeader)) << block;
  }
}

TEST(PartHeaders, ReusedParserAndHeadersStartClean) {
  PartHeaderParser parser;
  PartHeaders h;
  ASSERT_TRUE(parser.Parse("Content-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n"
                           "Content-Type: x/y\r\n\r\n",
                           &h)
                  .ok());
  ASSERT_TRUE(h.is_file());
  ASSERT_TRUE(parser.Parse("Content-Disposition: form-data; name=\"field\"\r\n\r\n", &h).ok());
  EXPECT_EQ(h.name, "field");
  EXPECT_FALSE(h.is_file());
  EXPECT_EQ(h.content_type, "");
}

TEST(PartHeaders, DecodeRfc5987Value) {
  std::string out;
  ASSERT_TRUE(DecodeRfc5987Value("UTF-8''a%20b%2F%25", &out).ok());
  EXPECT_EQ(out, "a b/%");
  ASSERT_TRUE(DecodeRfc5987Value("iso-8859-1'fr'%E9t%E9", &out).ok());
  EXPECT_EQ(out, "\xC3\xA9t\xC3\xA9");
  ASSERT_TRUE(DecodeRfc5987Value("UTF-8''", &out).ok());
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace spillway
