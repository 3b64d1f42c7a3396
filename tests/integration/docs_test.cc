// The README documents every setting spillwayd really reads: each flag that
// `spillwayd --help` lists appears in README.md with its environment variable.
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_clients.h"

namespace spillway {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

TEST(Docs, ReadmeDocumentsEverySettingOfHelp) {
  absl::StatusOr<CommandResult> help = RunCommand({SPILLWAYD_PATH, "--help"});
  ASSERT_TRUE(help.ok()) << help.status();
  const std::string readme = ReadFile(std::string(SPILLWAY_SOURCE_DIR) + "/README.md");
  ASSERT_FALSE(readme.empty());

  // Help lines read "  --flag-name  (env SPILLWAY_NAME, default ...)".
  constexpr std::string_view kEnvPrefix = "(env SPILLWAY_";
  int settings = 0;
  std::istringstream lines(help->output);
  for (std::string line; std::getline(lines, line);) {
    const size_t env = line.find(kEnvPrefix);
    if (line.rfind("  --", 0) != 0 || env == std::string::npos) continue;
    ++settings;
    const size_t name_begin = env + kEnvPrefix.size();
    const std::string name = line.substr(name_begin, line.find(',', name_begin) - name_begin);
    EXPECT_NE(readme.find("`" + name + "`"), std::string::npos)
        << name << " is not documented in README.md";
  }
  EXPECT_GT(settings, 20);
}

}  // namespace
}  // namespace spillway
