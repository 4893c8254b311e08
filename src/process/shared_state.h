// SharedState: counters every worker writes and the master reads, in one
// anonymous shared mapping created by the master before the first fork (so
// every worker of every generation sees the same pages). The home for
// cross-worker state: request/connection counts now; upstream health and
// least-connections counts later. Owned by the master; workers hold a pointer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace sluice::process {

struct WorkerSlotStats {
  std::atomic<uint64_t> requests{0};     // requests answered by workers in this slot
  std::atomic<uint64_t> connections{0};  // client connections closed by them
};

struct SharedState {
  static constexpr uint32_t kMaxWorkerSlots = 1024;  // config.workers is at most 1024
  WorkerSlotStats slots[kMaxWorkerSlots];
  // Set by the master on SIGTERM/SIGQUIT: admin /ready answers 503 while the
  // workers keep serving for drain_delay.
  std::atomic<bool> not_ready{false};

  // Maps a zeroed shared region; aborts if the kernel refuses (start-up only).
  static SharedState* create();
};

}  // namespace sluice::process
