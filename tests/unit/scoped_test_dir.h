// ScopedTestDir: a fresh, empty directory under ::testing::TempDir() for one test,
// removed with everything in it when the object goes out of scope, so tests can list it
// to prove that no temp file was left behind.
#ifndef SPILLWAY_TESTS_UNIT_SCOPED_TEST_DIR_H_
#define SPILLWAY_TESTS_UNIT_SCOPED_TEST_DIR_H_

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "gtest/gtest.h"

namespace spillway::testing {

class ScopedTestDir {
 public:
  ScopedTestDir() {
    std::string pattern = ::testing::TempDir();
    if (pattern.empty() || pattern.back() != '/') pattern += '/';
    pattern += "spillway-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp(" << pattern << ") failed";
    }
    path_ = pattern;
  }
  ScopedTestDir(const ScopedTestDir&) = delete;
  ScopedTestDir& operator=(const ScopedTestDir&) = delete;
  ~ScopedTestDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  const std::string& path() const { return path_; }

  // Names of the entries in the directory, sorted.
  std::vector<std::string> List() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

}  // namespace spillway::testing

#endif  // SPILLWAY_TESTS_UNIT_SCOPED_TEST_DIR_H_
