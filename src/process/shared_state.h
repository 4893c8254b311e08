// SharedState: what the master shares with every worker of every generation,
// in one anonymous shared mapping created before the first fork: the
// readiness flag, the cumulative counters of finished generations (the
// process totals, and per route / per upstream server keyed by their label
// values so that a reload that renumbers routes carries them to the right
// series), the table of live generations with their CounterRegion, and the
// master's own figures (reloads, respawns) for /metrics. Each live
// generation's own counters are in its CounterRegion (sized from its
// config). Owned by the master (the only writer of everything but the
// ticket keys' readers); workers hold a pointer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "observe/counters.h"
#include "tls/ticket_keys.h"
#include "upstream/named_figures.h"

namespace sluice::process {

class CounterRegion;

// One route or one upstream server as /metrics names it: its label values,
// and the cumulative counters of the finished generations that had it.
// Entries are appended by the master (never removed or changed once
// published through SharedState::label_set_count).
struct LabelSet {
  enum class Kind : uint8_t { kRoute, kServer };
  static constexpr size_t kMaxLabelBytes = 64;  // each value, NUL included
  // Every word of a RouteCounters or a ServerCounters, gauges left at 0.
  static constexpr size_t kCarriedWords = 40;
  Kind kind = Kind::kRoute;
  // Route: listener, route (its position in the listener), upstream ("" for
  // respond/redirect routes). Server: upstream, server address, "".
  char labels[3][kMaxLabelBytes] = {};
  std::atomic<uint64_t> carried[kCarriedWords] = {};

  std::string_view label(size_t i) const { return labels[i]; }
};

// A generation whose workers may be running: its id and its region. The
// region object lives in the master's memory and, copied by fork, at the
// same address in every worker forked after it was created (so a worker can
// read the regions of generations older than or equal to its own).
struct LiveGeneration {
  std::atomic<uint32_t> id{0};  // 0 = free entry
  std::atomic<const CounterRegion*> region{nullptr};
};

// What the master knows and the workers render.
struct MasterFigures {
  std::atomic<int32_t> master_pid{0};
  std::atomic<uint32_t> serving_generation{0};
  observe::Counter reloads_succeeded{0};
  observe::Counter reloads_failed{0};
  std::atomic<uint32_t> last_reload_successful{1};  // 1 until a reload fails
  // Wall clock of the start, then of the last successful reload.
  std::atomic<int64_t> last_reload_success_unix_ms{0};
  std::atomic<int64_t> start_unix_ms{0};
  observe::Counter worker_respawns{0};
  // Routes/servers that got no LabelSet (table full or a name longer than
  // kMaxLabelBytes - 1): not in the per-route / per-server series.
  observe::Counter label_sets_dropped{0};
};

struct SharedState {
  static constexpr uint32_t kMaxWorkerSlots = 1024;  // config.workers is at most 1024
  // Live generations at once: the serving one, one starting, at most 4
  // draining (Master's kMaxDrainingGenerations) and those stopped but not
  // yet reaped. A reload that finds no free entry fails.
  static constexpr size_t kMaxLiveGenerations = 16;
  // Distinct route and server label sets since the master started.
  static constexpr size_t kMaxLabelSets = 2048;

  // Set by the master on SIGTERM/SIGQUIT: admin /ready answers 503 while the
  // workers keep serving for drain_delay.
  std::atomic<bool> not_ready{false};
  // Seqlock over `carried`, `live` and every LabelSet::carried: odd while
  // the master folds a finished generation into the carried totals and
  // takes it off `live` (or adds one), so that a reader never sees a
  // generation both carried and live, nor neither.
  std::atomic<uint32_t> sequence{0};
  // Cumulative WorkerCounters of every generation that has finished (the
  // live ones are in their CounterRegion): live + carried never goes back.
  observe::WorkerCounters carried;
  LiveGeneration live[kMaxLiveGenerations];
  std::atomic<uint32_t> label_set_count{0};
  LabelSet label_sets[kMaxLabelSets];
  MasterFigures figures;
  // Per DNS name the master resolves and per upstream it health checks:
  // counted once for the process (entries appended, published by the count).
  static constexpr size_t kMaxNamedFigures = 128;
  std::atomic<uint32_t> dns_name_count{0};
  upstream::NamedFigures dns_names[kMaxNamedFigures];
  std::atomic<uint32_t> health_upstream_count{0};
  upstream::NamedFigures health_upstreams[kMaxNamedFigures];
  // The entry of `name` in one of those tables, appended if new; null when
  // full (master only).
  static upstream::NamedFigures* figuresFor(upstream::NamedFigures* table,
                                            std::atomic<uint32_t>& count, const std::string& name);
  // TLS session-ticket keys for every worker of every generation (rotated
  // hourly by the master; never written to disk).
  tls::TicketKeyRing ticket_keys;

  // Maps a zeroed shared region; aborts if the kernel refuses (start-up only).
  static SharedState* create();

  // --- the master's side (single writer) ---
  // The LabelSet of these values, appended if new; kNoLabelSet when the
  // table is full or a value too long.
  static constexpr uint32_t kNoLabelSet = UINT32_MAX;
  uint32_t labelSetFor(LabelSet::Kind kind, std::string_view a, std::string_view b,
                       std::string_view c);
  void beginWrite() {
    sequence.fetch_add(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  void endWrite() { sequence.fetch_add(1, std::memory_order_release); }
};

}  // namespace sluice::process
