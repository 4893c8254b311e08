// CounterRegion: the counters of one generation's workers, in one anonymous
// shared mapping the master creates before it forks them, sized from that
// generation's config: per worker slot, its WorkerCounters, then one
// RouteCounters per route and one ServerCounters per upstream server (the
// config's numbering), each cache-line aligned and written by the one worker
// of that slot; then one ServerHealth per server, shared by them all. Every
// worker of the generation and the master can read every
// slot: least_conn adds up a server's in-flight requests over all of them,
// and the master folds a finished generation's cumulative counters into the
// totals carried across reloads (SharedState::carried). A worker respawned
// into a slot keeps the slot's cumulative counters and resets its gauges.
// Owned by the master (one per live generation); workers hold pointers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "observe/counters.h"
#include "upstream/resolved_addresses.h"
#include "upstream/server_health.h"

namespace sluice::process {

struct LabelSet;

class CounterRegion {
 public:
  // Null (with errno set) if the kernel refuses the mapping.
  static std::unique_ptr<CounterRegion> create(uint32_t slots, size_t routes, size_t servers);
  ~CounterRegion();
  CounterRegion(const CounterRegion&) = delete;
  CounterRegion& operator=(const CounterRegion&) = delete;

  uint32_t slots() const { return slots_; }
  size_t routes() const { return routes_; }
  size_t servers() const { return servers_; }
  observe::WorkerCounters& worker(uint32_t slot) const;
  observe::RouteCounters* routeCounters(uint32_t slot) const;    // routes() of them
  observe::ServerCounters* serverCounters(uint32_t slot) const;  // servers() of them
  // Passive-health state per server, one for the whole generation (after
  // the slots), written by any of its workers.
  upstream::ServerHealth* serverHealth() const;
  // What DNS names resolved to, one slot per server (written by the
  // master's DnsUpdater, read by the workers' clusters).
  upstream::AddressTable addressTable() const;
  // Requests in flight on server `index`, summed over the slots.
  int64_t serverInFlight(size_t index) const;

  // Zeroes the gauges of `slot` (a new worker starts with nothing open);
  // cumulative counters are kept.
  void resetGauges(uint32_t slot) const;
  // Adds the cumulative WorkerCounters of every slot into `totals`.
  void addWorkerTotalsTo(observe::WorkerCounters* totals) const;

  // Which SharedState::label_sets entry each route and server of this
  // generation counts under (SharedState::kNoLabelSet = none); set by the
  // master before it forks the generation, read-only after.
  void setLabelSets(std::vector<uint32_t> routes, std::vector<uint32_t> servers);
  uint32_t routeLabelSet(size_t route) const { return route_sets_[route]; }
  uint32_t serverLabelSet(size_t server) const { return server_sets_[server]; }
  // Adds the cumulative route and server counters of every slot into the
  // `carried` words of their label set (`sets` is SharedState::label_sets).
  void addKeyedTotalsTo(LabelSet* sets) const;

  // The SHA-256 of the config file this generation runs (config::Config::
  // sha256), set by the master before it forks the generation, read-only
  // after: a newer worker's copy of this object tells admin /status what an
  // older generation runs, whose config it never had.
  void setConfigChecksum(std::string sha256) { config_sha256_ = std::move(sha256); }
  const std::string& configChecksum() const { return config_sha256_; }

 private:
  CounterRegion(void* memory, size_t bytes, uint32_t slots, size_t routes, size_t servers);
  char* slotBase(uint32_t slot) const { return static_cast<char*>(memory_) + slot * slot_bytes_; }

  void* memory_;
  size_t bytes_;
  size_t slot_bytes_;
  uint32_t slots_;
  size_t routes_;
  size_t servers_;
  std::vector<uint32_t> route_sets_;
  std::vector<uint32_t> server_sets_;
  std::string config_sha256_;
};

}  // namespace sluice::process
