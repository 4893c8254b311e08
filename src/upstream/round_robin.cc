#include "upstream/round_robin.h"

namespace sluice::upstream {

RoundRobinBalancer::RoundRobinBalancer(const std::vector<Host*>& hosts)
    : hosts_(hosts), current_(hosts.size(), 0) {}

Host* RoundRobinBalancer::pick(const PickContext& context) {
  if (Host* host = pickAmong(context, /*healthy_only=*/true)) return host;
  // Every untried host is ejected: try one anyway rather than fail the
  // request outright (what to do then is the health policy's call).
  return pickAmong(context, /*healthy_only=*/false);
}

Host* RoundRobinBalancer::pickAmong(const PickContext& context, bool healthy_only) {
  int best = -1;
  int64_t total = 0;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const Host& host = *hosts_[i];
    if (context.tried != nullptr && context.tried->contains(host.cluster_index)) continue;
    if (healthy_only && host.health != HealthState::kHealthy) continue;
    current_[i] += host.weight;
    total += host.weight;
    if (best < 0 || current_[i] > current_[static_cast<size_t>(best)]) best = static_cast<int>(i);
  }
  if (best < 0) return nullptr;
  current_[static_cast<size_t>(best)] -= total;
  return hosts_[static_cast<size_t>(best)];
}

}  // namespace sluice::upstream
