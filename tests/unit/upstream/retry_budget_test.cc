#include "upstream/retry_budget.h"

#include <gtest/gtest.h>

namespace sluice::upstream {
namespace {

config::RetryBudget budget(uint32_t ratio, uint32_t min_per_second) {
  config::RetryBudget b;
  b.ratio_percent = ratio;
  b.min_per_second = min_per_second;
  return b;
}

TEST(RetryBudget, MinPerSecondOverTheWindow) {
  RetryBudget b(budget(0, 2));  // 2 a second × 10 s
  int allowed = 0;
  for (int i = 0; i < 50; ++i)
    allowed += b.tryRetry(1000) ? 1 : 0;
  EXPECT_EQ(allowed, 20);
  // 10 s later the window has moved on.
  EXPECT_TRUE(b.tryRetry(11000));
}

TEST(RetryBudget, RatioOfRequests) {
  RetryBudget b(budget(20, 0));
  for (int i = 0; i < 100; ++i)
    b.onRequest(5000);
  int allowed = 0;
  for (int i = 0; i < 50; ++i)
    allowed += b.tryRetry(5500) ? 1 : 0;
  EXPECT_EQ(allowed, 20);  // 20 % of 100
}

TEST(RetryBudget, OffAllowsEverything) {
  config::RetryBudget settings;
  settings.enabled = false;
  RetryBudget b(settings);
  for (int i = 0; i < 1000; ++i)
    EXPECT_TRUE(b.tryRetry(0));
}

}  // namespace
}  // namespace sluice::upstream
