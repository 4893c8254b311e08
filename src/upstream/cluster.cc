#include "upstream/cluster.h"

#include <random>

#include "upstream/conn_pool.h"

namespace sluice::upstream {

Cluster::Cluster(event::EventLoop& loop, const config::Upstream& config, Connector& connector,
                 observe::ServerCounters* server_counters)
    : loop_(loop), config_(config), connector_(connector) {
  std::vector<Host*> raw;
  for (const config::UpstreamServer& server : config.servers) {
    auto host = std::make_unique<Host>();
    host->address = server.address;
    host->address_text = server.address.toString();
    host->weight = server.weight;
    host->index = server.index;
    host->cluster_index = static_cast<uint32_t>(hosts_.size());
    host->counters = &server_counters[server.index];
    host->pool = std::make_unique<ConnPool>(loop, *host, config.keepalive.max_idle,
                                            config.keepalive.idle_timeout);
    raw.push_back(host.get());
    hosts_.push_back(std::move(host));
  }
  balancer_ = makeLoadBalancer(config, raw, std::random_device{}(), loop.clock());
}

Cluster::~Cluster() {
  // Pools first: their connections refer to their hosts.
  for (auto& host : hosts_)
    host->pool.reset();
}

void Cluster::attemptStarted(Host& host, bool retry) {
  ++host.in_flight;
  observe::add(host.counters->requests);
  observe::add(host.counters->in_flight, 1);
  if (retry) observe::add(host.counters->retries);
}

void Cluster::attemptDone(Host& host, AttemptOutcome outcome, event::Duration latency) {
  --host.in_flight;
  observe::add(host.counters->in_flight, -1);
  switch (outcome) {
    case AttemptOutcome::kSuccess:
      host.consecutive_failures = 0;
      break;
    case AttemptOutcome::kConnectFailure:
      observe::add(host.counters->connect_failures);
      break;
    case AttemptOutcome::kTimeout:
      observe::add(host.counters->timeouts);
      break;
    case AttemptOutcome::kReset:
      observe::add(host.counters->resets);
      break;
    case AttemptOutcome::kInvalid:
      observe::add(host.counters->invalid_responses);
      break;
    case AttemptOutcome::kHttp5xx:
      observe::add(host.counters->responses_5xx);
      break;
    case AttemptOutcome::kCancelled:
      break;
  }
  if (isFailure(outcome)) ++host.consecutive_failures;
  balancer_->onAttemptDone(host, outcome, latency);
}

}  // namespace sluice::upstream
