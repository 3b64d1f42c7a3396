#include "server/upload/checksum.h"

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;

std::string OneShot(ChecksumKind kind, std::string_view data) {
  Checksum checksum = Checksum::Create(kind);
  checksum.Update(data);
  return checksum.FinishHex();
}

std::string TestData(size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131 + 7) % 251);
  return data;
}

TEST(ChecksumKind, ParsesValidNames) {
  EXPECT_EQ(ParseChecksumKind("sha256").value(), ChecksumKind::kSha256);
  EXPECT_EQ(ParseChecksumKind("crc32c").value(), ChecksumKind::kCrc32c);
  EXPECT_EQ(ParseChecksumKind("none").value(), ChecksumKind::kNone);
}

TEST(ChecksumKind, RejectsUnknownNameListingValidOnes) {
  absl::StatusOr<ChecksumKind> kind = ParseChecksumKind("md5");
  ASSERT_FALSE(kind.ok());
  EXPECT_EQ(kind.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(kind.status().message(), HasSubstr("md5"));
  EXPECT_THAT(kind.status().message(), HasSubstr("sha256, crc32c, none"));
  EXPECT_FALSE(ParseChecksumKind("SHA256").ok());
  EXPECT_FALSE(ParseChecksumKind("").ok());
}

TEST(ChecksumKind, NameRoundTrips) {
  for (ChecksumKind kind :
       {ChecksumKind::kNone, ChecksumKind::kSha256, ChecksumKind::kCrc32c}) {
    EXPECT_EQ(ParseChecksumKind(ChecksumKindName(kind)).value(), kind);
  }
}

TEST(Checksum, Sha256OfEmpty) {
  EXPECT_EQ(OneShot(ChecksumKind::kSha256, ""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Checksum, Sha256OfAbc) {
  EXPECT_EQ(OneShot(ChecksumKind::kSha256, "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Checksum, Crc32cCheckValue) {
  EXPECT_EQ(OneShot(ChecksumKind::kCrc32c, "123456789"), "e3069283");
}

TEST(Checksum, Crc32cOfEmptyIsZeroPadded) {
  EXPECT_EQ(OneShot(ChecksumKind::kCrc32c, ""), "00000000");
}

TEST(Checksum, Crc32cKeepsLeadingZeroDigits) {
  // RFC 3720 B.4: 32 bytes of zeros -> 0x8a9136aa; 32 bytes 0x00..0x1f -> 0x46dd794e.
  EXPECT_EQ(OneShot(ChecksumKind::kCrc32c, std::string(32, '\0')), "8a9136aa");
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(OneShot(ChecksumKind::kCrc32c, ascending), "46dd794e");
}

TEST(Checksum, NoneIsEmpty) { EXPECT_EQ(OneShot(ChecksumKind::kNone, "abc"), ""); }

TEST(Checksum, IncrementalEqualsOneShot) {
  const std::string data = TestData(1 << 20);
  for (ChecksumKind kind : {ChecksumKind::kSha256, ChecksumKind::kCrc32c}) {
    for (size_t piece : {1u, 7u, 64u, 4096u, 65537u}) {
      Checksum checksum = Checksum::Create(kind);
      for (size_t at = 0; at < data.size(); at += piece) {
        checksum.Update(std::string_view(data).substr(at, piece));
      }
      EXPECT_EQ(checksum.FinishHex(), OneShot(kind, data))
          << ChecksumKindName(kind) << " piece " << piece;
    }
  }
}

TEST(Checksum, MovedChecksumContinues) {
  Checksum first = Checksum::Create(ChecksumKind::kSha256);
  first.Update("a");
  Checksum second = std::move(first);
  second.Update("bc");
  EXPECT_EQ(second.FinishHex(), OneShot(ChecksumKind::kSha256, "abc"));
}

}  // namespace
}  // namespace spillway
