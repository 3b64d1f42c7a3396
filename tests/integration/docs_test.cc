// The README documents every setting spillwayd really reads: each flag that
// `spillwayd --help` lists appears in README.md with its environment variable.
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

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

  const std::regex setting(R"((--[a-z0-9-]+)  \(env (SPILLWAY_[A-Z0-9_]+))");
  int settings = 0;
  for (std::sregex_iterator it(help->output.begin(), help->output.end(), setting), end;
       it != end; ++it) {
    ++settings;
    const std::string env = (*it)[2];
    const std::string name = env.substr(std::string("SPILLWAY_").size());
    EXPECT_NE(readme.find("`" + name + "`"), std::string::npos)
        << name << " (" << (*it)[1] << ") is not documented in README.md";
  }
  EXPECT_GT(settings, 20);
}

}  // namespace
}  // namespace spillway
