// StatusCollector: what a worker's admin `/status` answers — one JSON
// document with the version, the config file and its SHA-256, every live
// generation with its workers (pid, state, connections), the listeners, and
// per upstream each server address (and the DNS name it came from) with its
// health, ejection, requests in flight and pool sizes. It reads the same
// shared memory as /metrics (SharedState's live table under its seqlock, the
// generations' CounterRegions with their ServerHealth and address tables):
// nothing is counted twice. Like /metrics, a worker that sees a generation
// newer than its own cannot read that generation's region and answers 503
// (docs/observability.md).
// Owned by the worker (one, reused by every request); its loop only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/address.h"
#include "process/counter_region.h"
#include "process/shared_state.h"

namespace sluice::process {

class StatusCollector {
 public:
  // `config` and `own` are this worker's generation's (`generation`).
  StatusCollector(const SharedState& shared, uint32_t generation, const config::Config& config,
                  const CounterRegion& own)
      : shared_(shared), generation_(generation), config_(config), own_(own) {}

  enum class Result : uint8_t {
    kOk,
    kNotNewest,  // a newer generation is live: its workers answer
    kBusy,       // the master kept the seqlock (should not happen in practice)
  };
  // Appends the whole document to `out` on kOk.
  Result render(std::string* out);

 private:
  struct Live {
    uint32_t id = 0;
    const CounterRegion* region = nullptr;
    // What the region's address table held, per server slot (DNS names
    // only; numeric servers' slots stay empty).
    std::vector<std::optional<net::Address>> addresses;
  };
  Result readLive();
  // Requests in flight and pooled connections of one server address, added
  // up over every live generation that has it (its label set, and for a DNS
  // name the same address), so a draining generation's still count.
  struct ServerLoad {
    int64_t in_flight = 0;
    int64_t idle = 0;
    int64_t active = 0;
  };
  ServerLoad loadOf(uint32_t index, const std::optional<net::Address>& dns_address) const;

  const SharedState& shared_;
  uint32_t generation_;
  const config::Config& config_;
  const CounterRegion& own_;
  // The live generations of the last snapshot, oldest first.
  Live live_[SharedState::kMaxLiveGenerations];
  size_t live_count_ = 0;
};

}  // namespace sluice::process
