// Cluster: one configured upstream as seen by one worker — its servers, the
// balancer that orders them, and a connection pool per server. Built per
// worker from the immutable config; owned by the worker's ServerContext.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "event/event_loop.h"
#include "upstream/balancer.h"
#include "upstream/conn_pool.h"

namespace sluice::upstream {

class Cluster {
 public:
  Cluster(event::EventLoop& loop, const config::Upstream& config);

  const config::Upstream& config() const { return config_; }
  const std::string& name() const { return config_.name; }
  size_t serverCount() const { return pools_.size(); }

  // Next server index for a request that has already tried `tried`; -1 when
  // every server has been tried.
  int pickServer(const std::vector<bool>& tried) { return balancer_.pick(tried); }
  ConnPool& pool(size_t server_index) { return *pools_[server_index]; }

 private:
  const config::Upstream& config_;
  SmoothWeightedRoundRobin balancer_;
  std::vector<std::unique_ptr<ConnPool>> pools_;
};

}  // namespace sluice::upstream
