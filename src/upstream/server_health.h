// ServerHealth: one upstream server's passive-health state as every worker
// of a generation sees it — in the generation's shared region
// (process::CounterRegion), one per server, written by any worker with
// atomics. Times are steady-clock milliseconds (CLOCK_MONOTONIC is the same
// clock in every process of the machine).
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice::upstream {

struct alignas(64) ServerHealth {
  std::atomic<uint32_t> consecutive_failures{0};
  std::atomic<int64_t> ejected_until_ms{0};  // 0 = in service
  std::atomic<uint32_t> ejections{0};        // times ejected lately (the multiplier)
  std::atomic<int64_t> recovered_at_ms{0};   // when it last came back
  // Active health check (health_check:), written by the master's prober:
  // 1 while the server fails it (counts as out like an ejection).
  std::atomic<uint32_t> active_down{0};
};

static_assert(std::atomic<int64_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "cross-process health needs lock-free atomics");

}  // namespace sluice::upstream
