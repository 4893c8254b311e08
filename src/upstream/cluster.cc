#include "upstream/cluster.h"

namespace sluice::upstream {
namespace {

std::vector<uint32_t> weightsOf(const config::Upstream& config) {
  std::vector<uint32_t> weights;
  for (const config::UpstreamServer& server : config.servers)
    weights.push_back(server.weight);
  return weights;
}

}  // namespace

Cluster::Cluster(event::EventLoop& loop, const config::Upstream& config)
    : config_(config), balancer_(weightsOf(config)) {
  for (const config::UpstreamServer& server : config.servers) {
    pools_.push_back(std::make_unique<ConnPool>(loop, server.address, config.keepalive.max_idle,
                                                config.keepalive.idle_timeout));
  }
}

}  // namespace sluice::upstream
