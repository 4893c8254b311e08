// RoundRobinBalancer (`balance: round_robin`): nginx's smooth weighted round
// robin — each pick adds every candidate's weight to its running score, takes
// the highest and subtracts the total — so weights are honoured and picks
// interleave (5:1:1 gives a a b a c a a, not a a a a a b c). Ejected hosts
// are skipped while any other is left. One per cluster per worker.
#pragma once

#include <cstdint>
#include <vector>

#include "upstream/load_balancer.h"

namespace sluice::upstream {

class RoundRobinBalancer final : public LoadBalancer {
 public:
  explicit RoundRobinBalancer(const std::vector<Host*>& hosts);
  Host* pick(const PickContext& context) override;

 private:
  Host* pickAmong(const PickContext& context, bool healthy_only);

  std::vector<Host*> hosts_;
  std::vector<int64_t> current_;
};

}  // namespace sluice::upstream
