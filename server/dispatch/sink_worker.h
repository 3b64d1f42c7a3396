// SinkWorker: one built-in sink consumer: a Consumer with its own thread that runs
// each upload it is given through RunSinkDelivery(). A SinkPool runs SINK_WORKERS of
// them over one shared Sink, so the sinks are ordinary consumers of the dispatcher.
//
// Hand-off: Start() (any thread) puts the delivery into a one-slot mailbox guarded by
// mu_ and wakes the worker thread through cv_; the worker takes it and handles it
// without the lock. The dispatcher never gives a consumer a second upload before the
// first is answered, so the slot never holds more than one.
// The one exception: a sink that ignores_bytes() never blocks, so its uploads are run
// by RunSinkDeliveryInline() on the threads that deliver their events (the caller's,
// then the stream's producer), and the worker thread stays idle. Not when that thread
// is already inside such a run (an answer freed a consumer and the dispatcher started
// the next upload there): that one goes through the mailbox, so runs never nest.
//
// Ownership: shared by the SinkPool and the dispatcher's registry (shared_ptr);
// shares the Sink. Stop() (or destruction) ends the thread after the current upload;
// a delivery arriving afterwards is let go, which redelivers it.
// Threading: Start() and Stop() are thread-safe.
#ifndef SPILLWAY_SERVER_DISPATCH_SINK_WORKER_H_
#define SPILLWAY_SERVER_DISPATCH_SINK_WORKER_H_

#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "server/common/mutex.h"
#include "server/dispatch/consumer.h"
#include "server/dispatch/sink.h"

namespace spillway {

class SinkWorker final : public Consumer {
 public:
  explicit SinkWorker(std::shared_ptr<Sink> sink);
  ~SinkWorker() override;

  void Start(std::unique_ptr<Delivery> delivery) override;
  // Idempotent; joins the thread. Must not be called from the worker thread.
  void Stop();

 private:
  void Run();

  const std::shared_ptr<Sink> sink_;
  Mutex mu_;
  CondVar cv_;  // signalled when mailbox_ fills or stopping_ is set
  std::unique_ptr<Delivery> mailbox_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_SINK_WORKER_H_
