#include "config/config.h"

namespace sluice::config {

const Upstream* Config::findUpstream(const std::string& name) const {
  // Configs hold a handful of upstreams, and a hot path should resolve names
  // once when it builds its tables; a linear scan keeps the struct plain.
  for (const Upstream& upstream : upstreams) {
    if (upstream.name == name) return &upstream;
  }
  return nullptr;
}

const char* balancePolicyName(BalancePolicy policy) {
  switch (policy) {
    case BalancePolicy::kRoundRobin:
      return "round_robin";
    case BalancePolicy::kLeastConn:
      return "least_conn";
    case BalancePolicy::kRandom:
      return "random";
    case BalancePolicy::kP2cEwma:
      return "p2c_ewma";
    case BalancePolicy::kHash:
      return "hash";
  }
  return "unknown";
}

uint32_t Config::routeCount() const {
  uint32_t count = 0;
  for (const Listener& listener : listeners)
    count += static_cast<uint32_t>(listener.routes.size());
  return count;
}

uint32_t Config::serverCount() const {
  uint32_t count = 0;
  for (const Upstream& upstream : upstreams)
    for (const UpstreamServer& server : upstream.servers)
      count += server.slots;
  return count;
}

bool Upstream::hasResolvedServers() const {
  for (const UpstreamServer& server : servers) {
    if (server.resolved()) return true;
  }
  return false;
}

}  // namespace sluice::config
