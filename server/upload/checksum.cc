#include "server/upload/checksum.h"

#include <isa-l/crc.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/common/string_view_compat.h"

namespace spillway {
namespace {

// crc32_iscsi() takes an int length, so larger inputs are fed in pieces. Any piece size
// works because the register is chained; 1 GiB keeps the loop rare.
constexpr size_t kMaxCrcPiece = size_t{1} << 30;
static_assert(kMaxCrcPiece <= static_cast<size_t>(INT_MAX));

[[noreturn]] void DieOpenSsl(const char* what) {
  std::fprintf(stderr, "spillway: OpenSSL %s failed for SHA-256\n", what);
  std::abort();
}

}  // namespace

absl::StatusOr<ChecksumKind> ParseChecksumKind(std::string_view name) {
  if (name == "sha256") return ChecksumKind::kSha256;
  if (name == "crc32c") return ChecksumKind::kCrc32c;
  if (name == "none") return ChecksumKind::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown checksum kind \"", absl::CEscape(AbslView(name)),
                   "\": valid values are sha256, crc32c, none"));
}

std::string_view ChecksumKindName(ChecksumKind kind) {
  switch (kind) {
    case ChecksumKind::kNone:
      return "none";
    case ChecksumKind::kSha256:
      return "sha256";
    case ChecksumKind::kCrc32c:
      return "crc32c";
  }
  return "unknown";
}

void Checksum::EvpMdCtxDeleter::operator()(EVP_MD_CTX* ctx) const {
  EVP_MD_CTX_free(ctx);
}

Checksum::Checksum(ChecksumKind kind) : kind_(kind) {}

Checksum Checksum::Create(ChecksumKind kind) {
  Checksum checksum(kind);
  if (kind == ChecksumKind::kSha256) {
    checksum.sha256_.reset(EVP_MD_CTX_new());
    if (checksum.sha256_ == nullptr) DieOpenSsl("EVP_MD_CTX_new");
    if (EVP_DigestInit_ex(checksum.sha256_.get(), EVP_sha256(), nullptr) != 1) {
      DieOpenSsl("EVP_DigestInit_ex");
    }
  }
  return checksum;
}

Checksum::Checksum(Checksum&& other) noexcept
    : kind_(std::exchange(other.kind_, ChecksumKind::kNone)),
      sha256_(std::move(other.sha256_)),
      crc32c_(other.crc32c_) {}

Checksum& Checksum::operator=(Checksum&& other) noexcept {
  kind_ = std::exchange(other.kind_, ChecksumKind::kNone);
  sha256_ = std::move(other.sha256_);
  crc32c_ = other.crc32c_;
  return *this;
}

Checksum::~Checksum() = default;

void Checksum::Update(std::string_view data) {
  switch (kind_) {
    case ChecksumKind::kNone:
      return;
    case ChecksumKind::kSha256:
      // EVP_DigestUpdate on an initialised SHA-256 context cannot fail.
      EVP_DigestUpdate(sha256_.get(), data.data(), data.size());
      return;
    case ChecksumKind::kCrc32c: {
      // ISA-L's crc32_iscsi() neither pre- nor post-inverts: the caller seeds it with
      // ~0 and inverts the result, which gives the standard CRC-32C (Castagnoli).
      const auto* p = reinterpret_cast<const unsigned char*>(data.data());
      size_t left = data.size();
      while (left > 0) {
        const size_t piece = std::min(left, kMaxCrcPiece);
        crc32c_ = crc32_iscsi(const_cast<unsigned char*>(p), static_cast<int>(piece),
                              crc32c_);
        p += piece;
        left -= piece;
      }
      return;
    }
  }
}

std::string Checksum::FinishHex() {
  switch (kind_) {
    case ChecksumKind::kNone:
      return "";
    case ChecksumKind::kSha256: {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int length = 0;
      if (EVP_DigestFinal_ex(sha256_.get(), digest, &length) != 1) {
        DieOpenSsl("EVP_DigestFinal_ex");
      }
      return absl::BytesToHexString(
          absl::string_view(reinterpret_cast<const char*>(digest), length));
    }
    case ChecksumKind::kCrc32c:
      return absl::StrFormat("%08x", ~crc32c_);
  }
  return "";
}

}  // namespace spillway
