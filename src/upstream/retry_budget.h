// RetryBudget: how many retries an upstream may make, so that retries
// cannot multiply the load on servers that are already failing (a retry
// storm). As Finagle's RetryBudget: over a sliding 10 s window, retries may
// be at most ratio × requests + min_per_second × 10. One per cluster per
// worker (each worker keeps its own share of the budget); single-threaded.
#pragma once

#include <array>
#include <cstdint>

#include "config/config.h"

namespace sluice::upstream {

class RetryBudget {
 public:
  explicit RetryBudget(const config::RetryBudget& settings) : settings_(settings) {}

  // A request's first attempt (it earns `ratio` of a retry).
  void onRequest(int64_t now_ms);
  // True (and the retry counted) if one more retry fits the budget.
  bool tryRetry(int64_t now_ms);

 private:
  static constexpr int kSeconds = 10;
  struct Second {
    int64_t second = -1;  // which second this bucket holds
    uint64_t requests = 0;
    uint64_t retries = 0;
  };
  Second& bucket(int64_t now_ms);

  config::RetryBudget settings_;
  std::array<Second, kSeconds> window_{};
};

}  // namespace sluice::upstream
