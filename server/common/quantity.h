// Parsing of the value syntaxes every Spillway setting shares: byte sizes written as
// plain bytes or Kubernetes-style quantities, and durations. Pure functions; safe
// from any thread.
#ifndef SPILLWAY_SERVER_COMMON_QUANTITY_H_
#define SPILLWAY_SERVER_COMMON_QUANTITY_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace spillway {

// "1048576", "10Mi", "2.5Mi", "256Ki" (binary: Ki Mi Gi Ti Pi Ei) or "10M", "256k"
// (decimal: k M G T P E). A fraction must come to a whole number of bytes ("2.5Mi"
// does, "0.3Ki" does not). Errors are kInvalidArgument and say what is expected.
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);

// "500ms", "10s", "2m", "1h30m" (Go-style, as absl::ParseDuration); "0" is zero.
// Negative and infinite durations are rejected.
absl::StatusOr<absl::Duration> ParseNonNegativeDuration(std::string_view text);

}  // namespace spillway

#endif  // SPILLWAY_SERVER_COMMON_QUANTITY_H_
