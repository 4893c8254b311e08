// LeastConnBalancer (`balance: least_conn`): the host with the fewest
// requests in flight per unit of weight — counted over every worker of the
// generation (Host::inFlightEverywhere, from shared memory), not just this
// one. Per-worker counts are what nginx uses, and with many workers each
// sees a small slice and they all pick the same "idle" server. Ties go to a
// random one among the tied, so workers do not move in lockstep. One per
// cluster per worker.
#pragma once

#include <random>
#include <vector>

#include "upstream/load_balancer.h"

namespace sluice::upstream {

class LeastConnBalancer final : public LoadBalancer {
 public:
  LeastConnBalancer(const std::vector<Host*>& hosts, uint64_t seed) : hosts_(hosts), rng_(seed) {}
  Host* pick(const PickContext& context) override;

 private:
  std::vector<Host*> hosts_;
  std::vector<Host*> scratch_;
  std::vector<Host*> tied_;
  std::mt19937_64 rng_;
};

}  // namespace sluice::upstream
