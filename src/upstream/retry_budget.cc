#include "upstream/retry_budget.h"

namespace sluice::upstream {

RetryBudget::Second& RetryBudget::bucket(int64_t now_ms) {
  const int64_t second = now_ms / 1000;
  Second& b = window_[static_cast<size_t>(second % kSeconds)];
  if (b.second != second) b = Second{second, 0, 0};  // a second that left the window
  return b;
}

void RetryBudget::onRequest(int64_t now_ms) {
  ++bucket(now_ms).requests;
}

bool RetryBudget::tryRetry(int64_t now_ms) {
  if (!settings_.enabled) return true;
  Second& current = bucket(now_ms);
  const int64_t now_second = now_ms / 1000;
  uint64_t requests = 0, retries = 0;
  for (const Second& b : window_) {
    if (b.second > now_second - kSeconds) {
      requests += b.requests;
      retries += b.retries;
    }
  }
  // retries + 1 <= ratio × requests + min_per_second × window, in integers.
  const uint64_t allowed_x100 =
      settings_.ratio_percent * requests + uint64_t{100} * settings_.min_per_second * kSeconds;
  if ((retries + 1) * 100 > allowed_x100) return false;
  ++current.retries;
  return true;
}

}  // namespace sluice::upstream
