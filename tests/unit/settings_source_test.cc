#include "server/common/settings_source.h"

#include <map>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr SettingSpec kLimit = {"MAX_THING_SIZE", "1Ki", "a size"};
constexpr SettingSpec kTimeout = {"THING_TIMEOUT", "10s", "a duration"};

SettingsSource::EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

absl::StatusOr<SettingsSource> Parse(std::vector<const char*> args,
                                     std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "spillwayd");
  return SettingsSource::FromCommandLine(static_cast<int>(args.size()), args.data(),
                                         FakeEnv(std::move(env)));
}

TEST(SettingsSource, NamesFollowTheConvention) {
  EXPECT_EQ(FlagName("MAX_BODY_SIZE"), "--max-body-size");
  EXPECT_EQ(EnvName("MAX_BODY_SIZE"), "SPILLWAY_MAX_BODY_SIZE");
}

TEST(SettingsSource, DefaultWhenNothingIsSet) {
  absl::StatusOr<SettingsSource> source = Parse({});
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ(*source->GetByteSize(kLimit), 1024u);
  EXPECT_EQ(*source->GetDuration(kTimeout), absl::Seconds(10));
}

TEST(SettingsSource, EnvironmentOverridesDefault) {
  absl::StatusOr<SettingsSource> source =
      Parse({}, {{"SPILLWAY_MAX_THING_SIZE", "2Mi"}, {"SPILLWAY_THING_TIMEOUT", "2s"}});
  ASSERT_TRUE(source.ok());
  EXPECT_EQ(*source->GetByteSize(kLimit), 2u << 20);
  EXPECT_EQ(*source->GetDuration(kTimeout), absl::Seconds(2));
}

TEST(SettingsSource, FlagWinsOverEnvironment) {
  for (auto args : {std::vector<const char*>{"--max-thing-size=3Ki"},
                    std::vector<const char*>{"--max-thing-size", "3Ki"}}) {
    absl::StatusOr<SettingsSource> source =
        Parse(args, {{"SPILLWAY_MAX_THING_SIZE", "2Mi"}});
    ASSERT_TRUE(source.ok());
    EXPECT_EQ(*source->GetByteSize(kLimit), 3072u);
    EXPECT_TRUE(source->CheckAllFlagsUsed().ok());
  }
}

TEST(SettingsSource, InvalidValueNamesSettingOriginAndValue) {
  absl::StatusOr<SettingsSource> source = Parse({}, {{"SPILLWAY_MAX_THING_SIZE", "lots"}});
  ASSERT_TRUE(source.ok());
  absl::StatusOr<uint64_t> size = source->GetByteSize(kLimit);
  EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(size.status().message(),
              AllOf(HasSubstr("MAX_THING_SIZE"), HasSubstr("SPILLWAY_MAX_THING_SIZE"),
                    HasSubstr("\"lots\"")));
}

TEST(SettingsSource, UnknownFlagIsAnError) {
  absl::StatusOr<SettingsSource> source = Parse({"--max-thing-sise=1"});
  ASSERT_TRUE(source.ok());
  EXPECT_EQ(*source->GetByteSize(kLimit), 1024u);
  EXPECT_THAT(source->CheckAllFlagsUsed().message(), HasSubstr("--max-thing-sise"));
}

TEST(SettingsSource, MalformedCommandLines) {
  EXPECT_FALSE(Parse({"positional"}).ok());
  EXPECT_FALSE(Parse({"--max-thing-size"}).ok());  // no value
  EXPECT_FALSE(Parse({"--a=1", "--a=2"}).ok());    // twice
}

TEST(SettingsSource, HelpIsRecognised) {
  absl::StatusOr<SettingsSource> source = Parse({"--help"});
  ASSERT_TRUE(source.ok());
  EXPECT_TRUE(source->help_requested());
  EXPECT_THAT(FormatSettingsHelp({kLimit}),
              AllOf(HasSubstr("--max-thing-size"), HasSubstr("SPILLWAY_MAX_THING_SIZE"),
                    HasSubstr("1Ki")));
}

TEST(SettingsSource, IntegerRange) {
  constexpr SettingSpec kCount = {"THING_COUNT", "4", "a count"};
  absl::StatusOr<SettingsSource> source = Parse({"--thing-count=0"});
  ASSERT_TRUE(source.ok());
  EXPECT_THAT(source->GetInteger(kCount, 1, 64).status().message(),
              HasSubstr("from 1 to 64"));
}

}  // namespace
}  // namespace spillway
