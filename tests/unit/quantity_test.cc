#include "server/common/quantity.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;

TEST(ParseByteSize, PlainBytes) {
  EXPECT_EQ(*ParseByteSize("0"), 0u);
  EXPECT_EQ(*ParseByteSize("2621440"), 2621440u);
  EXPECT_EQ(*ParseByteSize(" 42 "), 42u);
}

TEST(ParseByteSize, BinaryQuantities) {
  EXPECT_EQ(*ParseByteSize("256Ki"), 256u * 1024);
  EXPECT_EQ(*ParseByteSize("10Mi"), 10u * 1024 * 1024);
  EXPECT_EQ(*ParseByteSize("2.5Mi"), 2621440u);
  EXPECT_EQ(*ParseByteSize("1Gi"), uint64_t{1} << 30);
  EXPECT_EQ(*ParseByteSize("1Ei"), uint64_t{1} << 60);
}

TEST(ParseByteSize, DecimalQuantities) {
  EXPECT_EQ(*ParseByteSize("256k"), 256'000u);
  EXPECT_EQ(*ParseByteSize("10M"), 10'000'000u);
  EXPECT_EQ(*ParseByteSize("1.5G"), 1'500'000'000u);
}

TEST(ParseByteSize, RejectsWhatIsNotASize) {
  for (const char* bad : {"", "Mi", "10Q", "10 KB", "1.2.3Mi", "-1", "10K", ".",
                          "0.3Ki", "16Ei", "99999999999999999999999"}) {
    absl::StatusOr<uint64_t> size = ParseByteSize(bad);
    EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(ParseByteSize("10Q").status().message(), HasSubstr("unknown unit \"Q\""));
  EXPECT_THAT(ParseByteSize("0.3Ki").status().message(),
              HasSubstr("not a whole number of bytes"));
}

TEST(ParseNonNegativeDuration, GoStyleDurations) {
  EXPECT_EQ(*ParseNonNegativeDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseNonNegativeDuration("10s"), absl::Seconds(10));
  EXPECT_EQ(*ParseNonNegativeDuration("2m"), absl::Minutes(2));
  EXPECT_EQ(*ParseNonNegativeDuration("0"), absl::ZeroDuration());
}

TEST(ParseNonNegativeDuration, RejectsNegativeInfiniteAndUnitless) {
  for (const char* bad : {"-1s", "inf", "10", "", "ten seconds"}) {
    EXPECT_FALSE(ParseNonNegativeDuration(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace spillway
