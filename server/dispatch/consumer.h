// Consumer: something that handles uploads one at a time: a gRPC Consume stream
// (server/grpc) or a built-in sink worker (sink_worker.h). Consumers register with the
// Dispatcher, which hands each one at most one upload at a time.
//
// Ownership: shared between whoever created the consumer and the Dispatcher's
// registry (std::shared_ptr), because the Dispatcher may still be calling Start() on a
// consumer while it unregisters itself; such a late Start() must be answered by
// letting the Delivery go (it is then redelivered elsewhere).
//
// Threading: Start() is called on any thread (the submitter's, another consumer's,
// the dispatcher's timer thread) with no dispatcher lock held. It must return quickly,
// handing the delivery over to the consumer's own thread or reactor.
#ifndef SPILLWAY_SERVER_DISPATCH_CONSUMER_H_
#define SPILLWAY_SERVER_DISPATCH_CONSUMER_H_

#include <memory>
#include <string>
#include <vector>

#include "server/dispatch/delivery.h"

namespace spillway {

// What a consumer declares when it attaches (ingest.proto `Attach`).
struct ConsumerSpec {
  std::string name;  // for logs and metrics
  // Path prefixes it handles, matched on whole segments: "/a" matches "/a" and "/a/b",
  // not "/ab". Empty means every path ("/").
  std::vector<std::string> path_prefixes;
  // Spilled files come as their path only, without Chunks.
  bool paths_only = false;
};

class Consumer {
 public:
  virtual ~Consumer() = default;
  // The consumer's next upload. It is busy until it Reply()s, Fail()s or releases
  // the delivery.
  virtual void Start(std::unique_ptr<Delivery> delivery) = 0;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_CONSUMER_H_
