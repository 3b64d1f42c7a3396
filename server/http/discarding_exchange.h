// DiscardingExchange: the Exchange of a handler that answers from the request head
// alone (admin endpoints, the 503 of ConcurrencyLimitedHandler): body bytes are
// dropped.
// Loop thread only, like every Exchange.
#ifndef SPILLWAY_SERVER_HTTP_DISCARDING_EXCHANGE_H_
#define SPILLWAY_SERVER_HTTP_DISCARDING_EXCHANGE_H_

#include <string_view>

#include "absl/status/status.h"
#include "server/http/exchange.h"

namespace spillway {

class DiscardingExchange final : public Exchange {
 public:
  absl::Status OnBodyData(std::string_view) override { return absl::OkStatus(); }
  void OnBodyEnd() override {}
  void OnStreamClosed() override {}
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_DISCARDING_EXCHANGE_H_
