#include "server/dispatch/sink_worker.h"

#include <utility>

#include "server/dispatch/sink_runner.h"

namespace spillway {

SinkWorker::SinkWorker(std::shared_ptr<Sink> sink) : sink_(std::move(sink)) {
  thread_ = std::thread([this] { Run(); });
}

SinkWorker::~SinkWorker() { Stop(); }

void SinkWorker::Start(std::unique_ptr<Delivery> delivery) {
  if (sink_->ignores_bytes() && !InsideInlineSinkDelivery()) {
    RunSinkDeliveryInline(sink_, std::move(delivery));
    return;
  }
  std::unique_ptr<Delivery> refused;
  {
    MutexLock lock(&mu_);
    if (stopping_ || mailbox_ != nullptr) {
      refused = std::move(delivery);  // released below, unlocked: it is redelivered
    } else {
      mailbox_ = std::move(delivery);
      cv_.Signal();
    }
  }
}

void SinkWorker::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    cv_.Signal();
  }
  if (thread_.joinable()) thread_.join();
}

void SinkWorker::Run() {
  for (;;) {
    std::unique_ptr<Delivery> delivery;
    {
      MutexLock lock(&mu_);
      cv_.Await(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || mailbox_ != nullptr;
      });
      if (stopping_) break;
      delivery = std::move(mailbox_);
    }
    RunSinkDelivery(*sink_, *delivery);
  }
  // A delivery that came in as we stopped is released here, so it is redelivered.
  std::unique_ptr<Delivery> leftover;
  MutexLock lock(&mu_);
  leftover = std::move(mailbox_);
}

}  // namespace spillway
