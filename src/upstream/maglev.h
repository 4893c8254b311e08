// MaglevBalancer (`balance: hash`): consistent hashing of a request key
// (client address, a header, a cookie or the URI: config::HashKey) over a
// Maglev lookup table (Eisenbud et al., NSDI 2016; Envoy's ring_hash
// alternative). Each host fills table slots in its own pseudo-random
// permutation of the table, taking turns in proportion to its weight, so
// every host owns about weight/total of the slots, and adding or removing
// one host of N moves about 1/N of the keys, no more. The table depends
// only on the hosts' addresses and weights: every worker (and every
// generation with the same servers) sends a key to the same host.
// A host already tried, or out of service while others are not, is
// skipped by walking on from the key's slot. One per cluster per worker.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "upstream/load_balancer.h"

namespace sluice::upstream {

class MaglevBalancer final : public LoadBalancer {
 public:
  // A prime well above 100 × the largest server count we expect (Envoy's
  // default too): ~1 % spread error per host at 100 hosts.
  static constexpr uint32_t kDefaultTableSize = 65537;

  explicit MaglevBalancer(const std::vector<Host*>& hosts, uint32_t table_size = kDefaultTableSize);
  // An empty key (the header or cookie is missing) is spread in turn over
  // the hosts, as HAProxy falls back to round robin.
  Host* pick(const PickContext& context) override;

  // The host owning `key`'s slot, ignoring health and tries (tests).
  const Host* owner(std::string_view key) const;
  // Stable 64-bit hash (FNV-1a, then a murmur3 finalizer): the same in
  // every process and build, unlike std::hash.
  static uint64_t hash(std::string_view data, uint64_t seed = 0);

 private:
  bool usable(const Host& host, const PickContext& context, bool healthy_only) const;

  std::vector<Host*> hosts_;
  std::vector<uint32_t> table_;  // slot → index into hosts_
  uint64_t next_keyless_ = 0;
};

}  // namespace sluice::upstream
