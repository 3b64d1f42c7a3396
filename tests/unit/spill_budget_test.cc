#include "server/upload/spill_budget.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/http/http_response.h"
#include "server/upload/temp_directory.h"
#include "server/upload/uploaded_file.h"
#include "tests/unit/scoped_test_dir.h"

namespace spillway {
namespace {

using ::spillway::testing::ScopedTestDir;
using ::testing::IsEmpty;

TEST(SpillBudgetTest, ChargesUpToTheLimitAndRefusesPastIt) {
  int64_t observed = 0;
  SpillBudget budget(100, [&observed](int64_t delta) { observed += delta; });
  EXPECT_TRUE(budget.TryCharge(60));
  EXPECT_TRUE(budget.TryCharge(40));  // exactly at the limit is fine
  EXPECT_FALSE(budget.TryCharge(1));
  EXPECT_EQ(budget.used(), 100u);
  budget.Release(50);
  EXPECT_TRUE(budget.TryCharge(50));
  budget.Release(100);
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(observed, 0);  // refusals are not reported
}

TEST(SpillBudgetTest, ZeroLimitCountsWithoutLimiting) {
  SpillBudget budget(0);
  EXPECT_TRUE(budget.TryCharge(uint64_t{1} << 50));
  EXPECT_EQ(budget.used(), uint64_t{1} << 50);
}

TEST(SpillBudgetTest, ConcurrentChargesNeverOverrunTheLimit) {
  SpillBudget budget(1000);
  std::vector<std::thread> threads;
  std::atomic<int> granted{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (budget.TryCharge(1)) granted.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(granted.load(), 1000);
  EXPECT_EQ(budget.used(), 1000u);
}

TEST(SpillChargeTest, GivesItsBytesBackWhenDestroyedOrMovedOver) {
  SpillBudget budget(100);
  {
    SpillCharge charge(&budget);
    ASSERT_TRUE(charge.Add(30, "a").ok());
    SpillCharge moved = std::move(charge);
    EXPECT_EQ(moved.bytes(), 30u);
    EXPECT_EQ(budget.used(), 30u);
    const absl::Status refused = moved.Add(80, "b");
    EXPECT_TRUE(IsInsufficientStorage(refused)) << refused;
    EXPECT_EQ(HttpStatusFromStatus(refused), 507);
    EXPECT_EQ(budget.used(), 30u);
  }
  EXPECT_EQ(budget.used(), 0u);
}

TEST(SpillBudgetTest, InsufficientStorageIsDistinctFromOtherExhaustion) {
  EXPECT_EQ(HttpStatusFromStatus(InsufficientStorageError("full")), 507);
  EXPECT_EQ(HttpStatusFromStatus(absl::ResourceExhaustedError("too big")), 413);
  EXPECT_FALSE(IsInsufficientStorage(absl::ResourceExhaustedError("too big")));
}

class UploadedFileBudgetTest : public ::testing::Test {
 protected:
  UploadedFileOptions Options(SpillBudget* budget) {
    UploadedFileOptions options;
    options.max_memory_size = 10;
    options.temp_dir = &*temp_dir_;
    options.spill_budget = budget;
    return options;
  }

  ScopedTestDir dir_;
  absl::StatusOr<TempDirectory> temp_dir_ = TempDirectory::Open(dir_.path());
};

TEST_F(UploadedFileBudgetTest, SpilledBytesAreChargedUntilTheFileGoes) {
  ASSERT_TRUE(temp_dir_.ok()) << temp_dir_.status();
  SpillBudget budget(1 << 20);
  auto file = std::make_unique<UploadedFile>("f", "a.bin", "", Options(&budget));
  ASSERT_TRUE(file->Append(std::string(5, 'x')).ok());
  EXPECT_EQ(budget.used(), 0u);  // still in memory
  ASSERT_TRUE(file->Append(std::string(200 * 1024, 'y')).ok());
  ASSERT_TRUE(file->Finish().ok());
  EXPECT_EQ(budget.used(), 5u + 200 * 1024);
  file.reset();
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_THAT(dir_.List(), IsEmpty());
}

TEST_F(UploadedFileBudgetTest, CrossingTheBudgetFailsTheFileWith507AndFreesIt) {
  ASSERT_TRUE(temp_dir_.ok()) << temp_dir_.status();
  SpillBudget budget(100 * 1024);
  UploadedFile file("f", "a.bin", "", Options(&budget));
  const absl::Status status = file.Append(std::string(150 * 1024, 'z'));
  EXPECT_TRUE(IsInsufficientStorage(status)) << status;
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_THAT(dir_.List(), IsEmpty());
  EXPECT_TRUE(IsInsufficientStorage(file.Finish()));
}

}  // namespace
}  // namespace spillway
