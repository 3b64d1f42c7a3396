// Small helpers for propagating absl::Status, which the installed Abseil (20220623)
// does not provide. Header-only; no state, safe from any thread.
#ifndef SPILLWAY_SERVER_COMMON_STATUS_MACROS_H_
#define SPILLWAY_SERVER_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SPILLWAY_STATUS_CONCAT_INNER_(a, b) a##b
#define SPILLWAY_STATUS_CONCAT_(a, b) SPILLWAY_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    if (absl::Status spillway_status_ = (expr);        \
        !spillway_status_.ok()) [[unlikely]] {         \
      return spillway_status_;                         \
    }                                                  \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, MakeX());` declares `x` from an absl::StatusOr, or
// returns its error from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr)                                          \
  ASSIGN_OR_RETURN_IMPL_(SPILLWAY_STATUS_CONCAT_(spillway_or_, __LINE__), lhs, \
                         expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) [[unlikely]] {                \
    return std::move(tmp).status();            \
  }                                            \
  lhs = std::move(tmp).value()

#endif  // SPILLWAY_SERVER_COMMON_STATUS_MACROS_H_
