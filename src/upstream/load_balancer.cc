#include "upstream/load_balancer.h"

#include <bit>

#include "upstream/least_conn.h"
#include "upstream/maglev.h"
#include "upstream/p2c_ewma.h"
#include "upstream/random.h"
#include "upstream/round_robin.h"

namespace sluice::upstream {

size_t TriedSet::count() const {
  size_t n = static_cast<size_t>(std::popcount(bits_));
  for (bool b : more_)
    n += b ? 1 : 0;
  return n;
}

std::unique_ptr<LoadBalancer> makeLoadBalancer(const config::Upstream& upstream,
                                               const std::vector<Host*>& hosts, uint64_t seed,
                                               const event::Clock& clock) {
  switch (upstream.balance) {
    case config::BalancePolicy::kRoundRobin:
      return std::make_unique<RoundRobinBalancer>(hosts);
    case config::BalancePolicy::kLeastConn:
      return std::make_unique<LeastConnBalancer>(hosts, seed);
    case config::BalancePolicy::kRandom:
      return std::make_unique<RandomBalancer>(hosts, seed);
    case config::BalancePolicy::kP2cEwma:
      return std::make_unique<P2cEwmaBalancer>(hosts, seed, clock);
    case config::BalancePolicy::kHash:
      return std::make_unique<MaglevBalancer>(hosts);
  }
  return std::make_unique<RoundRobinBalancer>(hosts);
}

void candidates(const std::vector<Host*>& hosts, const PickContext& context,
                std::vector<Host*>* out) {
  out->clear();
  for (Host* host : hosts) {
    if (context.tried != nullptr && context.tried->contains(host->cluster_index)) continue;
    if (host->health == HealthState::kHealthy) out->push_back(host);
  }
  if (!out->empty()) return;
  for (Host* host : hosts) {
    if (context.tried == nullptr || !context.tried->contains(host->cluster_index)) {
      out->push_back(host);
    }
  }
}

}  // namespace sluice::upstream
