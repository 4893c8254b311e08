// RandomBalancer (`balance: random`): a host drawn at random, with
// probability proportional to its weight, among the untried (healthy) ones.
// No state to share between workers and no herding after a change, at the
// price of an uneven spread over short spans. One per cluster per worker.
#pragma once

#include <random>
#include <vector>

#include "upstream/load_balancer.h"

namespace sluice::upstream {

class RandomBalancer final : public LoadBalancer {
 public:
  RandomBalancer(const std::vector<Host*>& hosts, uint64_t seed) : hosts_(hosts), rng_(seed) {}
  Host* pick(const PickContext& context) override;

 private:
  std::vector<Host*> hosts_;
  std::vector<Host*> scratch_;
  std::mt19937_64 rng_;
};

}  // namespace sluice::upstream
