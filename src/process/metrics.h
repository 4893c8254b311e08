// MetricsCollector: what a worker's admin `/metrics` answers — the figures of
// every worker of every live generation (read from their CounterRegions,
// whose mappings a worker inherited when it was forked) plus what finished
// generations carried (SharedState), taken under SharedState's seqlock, then
// rendered with observe::MetricsWriter; and the CPU, memory and descriptors
// of the master and every live worker from /proc. A worker that sees a
// generation newer than its own cannot read that generation's region (it was
// mapped after the fork): it answers 503 rather than figures that would go
// backwards (see docs/observability.md).
// Owned by the worker (one, reused by every scrape); its loop only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "observe/counters.h"
#include "observe/metrics_text.h"
#include "process/counter_region.h"
#include "process/shared_state.h"

namespace sluice::process {

class MetricsCollector {
 public:
  MetricsCollector(const SharedState& shared, uint32_t generation)
      : shared_(shared), generation_(generation) {}

  enum class Result : uint8_t {
    kOk,
    kNotNewest,  // a newer generation is live: its workers answer
    kBusy,       // the master kept the seqlock (should not happen in practice)
  };
  // Appends the whole exposition to `out` on kOk.
  Result render(observe::MetricsFormat format, std::string* out);

  // Totals after the last successful snapshot (for tests).
  const uint64_t* workerWords() const { return worker_; }
  const std::vector<uint64_t>& labelSetWords() const { return sets_; }
  Result snapshot();

 private:
  struct ProcessFigures {
    double cpu_seconds = 0;
    uint64_t resident_bytes = 0;
    uint64_t open_fds = 0;
    uint32_t processes = 0;
  };
  ProcessFigures readProcesses() const;

  const SharedState& shared_;
  uint32_t generation_;
  // Kept between scrapes so that a scrape does not allocate.
  uint64_t worker_[observe::kWordsOf<observe::WorkerCounters>] = {};
  std::vector<uint64_t> sets_;  // label_set_count × LabelSet::kCarriedWords
  uint32_t set_count_ = 0;
  const CounterRegion* newest_ = nullptr;  // the serving generation's, for health
  uint32_t live_generations_ = 0;
  std::vector<int32_t> pids_;  // live workers
  // Per label set, for the passive/active health gauges of the serving
  // generation: present, addresses out of service, most failures in a row.
  std::vector<int64_t> health_;
};

}  // namespace sluice::process
