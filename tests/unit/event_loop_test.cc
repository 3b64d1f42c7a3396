#include "server/net/event_loop.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/common/notification.h"

namespace spillway {
namespace {

class EventLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
  }
  void StartThread() {
    thread_ = std::thread([this] { loop_->Run(); });
  }
  void TearDown() override {
    loop_->Stop();
    if (thread_.joinable()) thread_.join();
  }

  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
};

TEST_F(EventLoopTest, PostFromAnotherThreadRunsOnLoopThread) {
  StartThread();
  Notification done;
  std::thread::id ran_on;
  bool in_loop = false;
  std::thread poster([&] {
    loop_->Post([&] {
      ran_on = std::this_thread::get_id();
      in_loop = loop_->IsInLoopThread();
      done.Notify();
    });
  });
  poster.join();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(ran_on, thread_.get_id());
  EXPECT_TRUE(in_loop);
  EXPECT_FALSE(loop_->IsInLoopThread());
}

TEST_F(EventLoopTest, PostedTasksRunInFifoOrder) {
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) loop_->Post([&order, i] { order.push_back(i); });
  loop_->Post([this] { loop_->Stop(); });
  loop_->Run();
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST_F(EventLoopTest, TimersFireInDeadlineOrder) {
  std::vector<int> fired;
  loop_->Post([&] {
    loop_->AddTimer(absl::Milliseconds(30), [&] { fired.push_back(3); });
    loop_->AddTimer(absl::Milliseconds(10), [&] { fired.push_back(1); });
    loop_->AddTimer(absl::Milliseconds(20), [&] { fired.push_back(2); });
    loop_->AddTimer(absl::Milliseconds(40), [&] { loop_->Stop(); });
  });
  const absl::Time start = absl::Now();
  loop_->Run();
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(40));
}

TEST_F(EventLoopTest, CancelledTimerDoesNotFire) {
  std::vector<int> fired;
  loop_->Post([&] {
    EventLoop::TimerId cancelled =
        loop_->AddTimer(absl::Milliseconds(10), [&] { fired.push_back(1); });
    loop_->AddTimer(absl::Milliseconds(10), [&] { fired.push_back(2); });
    loop_->CancelTimer(cancelled);
    loop_->CancelTimer(cancelled);  // twice: a no-op
    loop_->CancelTimer(12345);      // unknown: a no-op
    loop_->AddTimer(absl::Milliseconds(30), [&] { loop_->Stop(); });
  });
  loop_->Run();
  EXPECT_EQ(fired, (std::vector<int>{2}));
}

TEST_F(EventLoopTest, ThreadsPostingConcurrentlyAllRun) {
  StartThread();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;
  std::atomic<int> ran{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) loop_->Post([&] { ran.fetch_add(1); });
    });
  }
  for (auto& poster : posters) poster.join();
  Notification done;
  loop_->Post([&] { done.Notify(); });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(ran.load(), kThreads * kPerThread);
}

}  // namespace
}  // namespace spillway
