// Per-file checksums computed while an upload's bytes arrive, so that a file's digest is
// known the moment its last byte is received, without reading it back.
//
// Checksum is a plain value: it owns its hashing state (an OpenSSL EVP_MD_CTX for
// SHA-256, a 32-bit register for CRC-32C) and frees it when destroyed. Move-only.
// Not thread-safe: one thread at a time, like the UploadedFile that holds it.
#ifndef SPILLWAY_SERVER_UPLOAD_CHECKSUM_H_
#define SPILLWAY_SERVER_UPLOAD_CHECKSUM_H_

#include <openssl/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace spillway {

enum class ChecksumKind { kNone, kSha256, kCrc32c };

// Parses a setting value: "sha256", "crc32c" or "none" (exact, lower case). The error
// (kInvalidArgument) names the rejected value and lists the valid ones.
absl::StatusOr<ChecksumKind> ParseChecksumKind(std::string_view name);

// The inverse of ParseChecksumKind: "sha256", "crc32c" or "none".
std::string_view ChecksumKindName(ChecksumKind kind);

class Checksum {
 public:
  // Never fails for the built-in kinds; aborts only if OpenSSL cannot allocate or
  // initialise a SHA-256 context, which is as fatal as running out of memory.
  static Checksum Create(ChecksumKind kind);

  // A moved-from Checksum behaves as kNone.
  Checksum(Checksum&& other) noexcept;
  Checksum& operator=(Checksum&& other) noexcept;
  Checksum(const Checksum&) = delete;
  Checksum& operator=(const Checksum&) = delete;
  ~Checksum();

  ChecksumKind kind() const { return kind_; }

  // Feeds the next bytes. Splitting the input differently gives the same result.
  // REQUIRES: FinishHex() has not been called.
  void Update(std::string_view data);

  // Returns the digest as lower-case hex: 64 digits for SHA-256, 8 for CRC-32C (the
  // 32-bit value big-endian, as in "e3069283" for "123456789"), "" for kNone.
  // REQUIRES: called at most once; no Update() afterwards.
  std::string FinishHex();

 private:
  struct EvpMdCtxDeleter {
    void operator()(EVP_MD_CTX* ctx) const;
  };

  explicit Checksum(ChecksumKind kind);

  ChecksumKind kind_;
  std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter> sha256_;  // Only for kSha256.
  uint32_t crc32c_ = 0xFFFFFFFFu;  // Pre-inverted running register; only for kCrc32c.
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_CHECKSUM_H_
