// SharedState: what the master shares with every worker of every generation,
// in one anonymous shared mapping created before the first fork: the
// readiness flag and the cumulative counters of finished generations. Each
// live generation's own counters are in its CounterRegion (sized from its
// config). Owned by the master; workers hold a pointer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "observe/counters.h"
#include "tls/ticket_keys.h"

namespace sluice::process {

struct SharedState {
  static constexpr uint32_t kMaxWorkerSlots = 1024;  // config.workers is at most 1024
  // Set by the master on SIGTERM/SIGQUIT: admin /ready answers 503 while the
  // workers keep serving for drain_delay.
  std::atomic<bool> not_ready{false};
  // Cumulative WorkerCounters of every generation that has finished (the
  // live ones are in their CounterRegion): live + carried never goes back.
  observe::WorkerCounters carried;
  // TLS session-ticket keys for every worker of every generation (rotated
  // hourly by the master; never written to disk).
  tls::TicketKeyRing ticket_keys;

  // Maps a zeroed shared region; aborts if the kernel refuses (start-up only).
  static SharedState* create();
};

}  // namespace sluice::process
