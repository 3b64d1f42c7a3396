// docker/ (Dockerfile, compose.yaml, k8s/*.yaml) agrees with the spillwayd binary:
// tests/integration/check_manifests.py parses every manifest and checks env var names
// against `spillwayd --help`, ports, probe paths, the spill mount, the drain grace
// period and the runtime packages against `ldd`, then starts this spillwayd with the
// ConfigMap's (and compose's) settings and probes it. --self-test also breaks copies
// of the files one way at a time and requires each break to be reported.
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/test_clients.h"

namespace spillway {
namespace {

// The build tree spillwayd was built in (SPILLWAYD_PATH is <build>/server/spillwayd),
// where the script looks for the `spillway` CLI when SPILLWAY_CLI_PATH is not defined.
[[maybe_unused]] std::string BuildDir() {
  std::string path = SPILLWAYD_PATH;
  for (int i = 0; i < 2; ++i) path = path.substr(0, path.rfind('/'));
  return path;
}

TEST(Manifests, AgreeWithSpillwayd) {
  absl::StatusOr<CommandResult> yaml = RunCommand({"/usr/bin/python3", "-c", "import yaml"});
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  ASSERT_EQ(yaml->exit_code, 0) << "needs python3-yaml (scripts/setup.sh installs it)";

  const std::string source = SPILLWAY_SOURCE_DIR;
  std::vector<std::string> argv = {
      "/usr/bin/python3", source + "/tests/integration/check_manifests.py",
      "--spillwayd", SPILLWAYD_PATH, "--source-dir", source, "--self-test"};
#ifdef SPILLWAY_CLI_PATH
  // The consumers' `spillway consume` flags are checked against its --help.
  argv.insert(argv.end(), {"--spillway", SPILLWAY_CLI_PATH});
#else
  argv.insert(argv.end(), {"--build-dir", BuildDir()});
#endif
  absl::StatusOr<CommandResult> check = RunCommand(argv);
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->exit_code, 0) << check->output << check->errors;
  EXPECT_NE(check->output.find("check_manifests: OK"), std::string::npos) << check->output;
}

}  // namespace
}  // namespace spillway
