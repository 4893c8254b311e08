#include "upstream/load_balancer.h"

#include <bit>

#include "upstream/round_robin.h"

namespace sluice::upstream {

size_t TriedSet::count() const {
  size_t n = static_cast<size_t>(std::popcount(bits_));
  for (bool b : more_)
    n += b ? 1 : 0;
  return n;
}

std::unique_ptr<LoadBalancer> makeLoadBalancer(config::BalancePolicy policy,
                                               const std::vector<Host*>& hosts) {
  switch (policy) {
    case config::BalancePolicy::kRoundRobin:
      return std::make_unique<RoundRobinBalancer>(hosts);
  }
  return std::make_unique<RoundRobinBalancer>(hosts);
}

}  // namespace sluice::upstream
