// Test data helpers the integration tests share: deterministic payloads, their
// SHA-256, and reading back what the server or a consumer stored. Header-only test
// code; pure functions, safe from any thread.
#ifndef SPILLWAY_TESTS_INTEGRATION_TEST_DATA_H_
#define SPILLWAY_TESTS_INTEGRATION_TEST_DATA_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "server/upload/checksum.h"

namespace spillway::testing {

inline std::string Sha256Hex(std::string_view data) {
  Checksum checksum = Checksum::Create(ChecksumKind::kSha256);
  checksum.Update(data);
  return checksum.FinishHex();
}

// Deterministic, incompressible-looking bytes (xorshift), different per seed.
inline std::string RandomishBytes(size_t size, int seed) {
  std::string data(size, '\0');
  uint32_t x = 2463534242u + static_cast<uint32_t>(seed);
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    data[i] = static_cast<char>(x);
  }
  return data;
}

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The names in `dir`, sorted.
inline std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace spillway::testing

#endif  // SPILLWAY_TESTS_INTEGRATION_TEST_DATA_H_
