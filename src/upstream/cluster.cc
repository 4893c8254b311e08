#include "upstream/cluster.h"

#include <algorithm>
#include <random>

#include "core/log.h"
#include "upstream/conn_pool.h"

namespace sluice::upstream {

Cluster::Cluster(event::EventLoop& loop, const config::Upstream& config, Connector& connector,
                 observe::ServerCounters* server_counters, ServerHealth* health,
                 std::shared_ptr<const tls::ClientContext> tls, const AddressTable* addresses)
    : loop_(loop),
      config_(config),
      connector_(connector),
      retry_budget_(config.retry_budget),
      addresses_(addresses),
      balancer_seed_(std::random_device{}()) {
  if (tls) tls_connector_ = std::make_unique<TlsConnector>(connector, std::move(tls));
  size_t slots = 0;
  for (const config::UpstreamServer& server : config.servers)
    slots += server.slots;
  if (health == nullptr) own_health_ = std::vector<ServerHealth>(slots);
  for (const config::UpstreamServer& server : config.servers) {
    if (server.resolved()) names_.push_back(NameEntry{&server, hosts_.size()});
    for (uint32_t i = 0; i < server.slots; ++i) {
      auto host = std::make_unique<Host>();
      if (server.resolved()) {
        host->present = false;  // until the name resolves
        host->origin_name = server.name;
      } else {
        host->address = server.address;
        host->address_text = server.address.toString();
      }
      host->weight = server.weight;
      host->index = server.index + i;
      host->cluster_index = static_cast<uint32_t>(hosts_.size());
      host->counters = &server_counters[host->index];
      host->shared_health = health != nullptr ? &health[host->index] : &own_health_[hosts_.size()];
      host->pool = std::make_unique<ConnPool>(loop, *host, config.keepalive.max_idle,
                                              config.keepalive.idle_timeout);
      hosts_.push_back(std::move(host));
    }
  }
  rebuildBalancer();
  refreshAddresses();
}

void Cluster::rebuildBalancer() {
  present_.clear();
  for (auto& host : hosts_) {
    if (host->present) present_.push_back(host.get());
  }
  balancer_ = makeLoadBalancer(config_, present_, balancer_seed_, loop_.cachedClock());
}

void Cluster::refreshAddresses() {
  if (addresses_ == nullptr || names_.empty()) return;
  const uint64_t sequence = addresses_->sequence->load(std::memory_order_acquire);
  if (sequence == addresses_seen_) return;
  bool changed = false;
  for (NameEntry& entry : names_) {
    NameState state = NameState::kPending;
    auto slots = readSlots(*addresses_, entry.server->index, entry.server->slots, &state);
    if (!slots) return;  // the master is writing: look again on the next pick
    entry.state = state;
    for (size_t i = 0; i < slots->size(); ++i) {
      Host& host = *hosts_[entry.first_host + i];
      const std::optional<net::Address>& address = (*slots)[i];
      if (address && host.present && host.address == *address) continue;
      if (!address && !host.present) continue;
      changed = true;
      if (host.present) {
        // Gone from DNS (or replaced): requests in flight finish on their
        // connections; idle ones to the old address close now.
        host.pool->closeIdle();
        SLUICE_LOG(kDebug, "upstream " + config_.name + ": " + host.address_text + " (" +
                               entry.server->name + ") left");
      }
      host.present = address.has_value();
      if (address) {
        host.address = *address;
        host.address_text = address->toString();
        host.consecutive_failures = 0;
        host.health = HealthState::kHealthy;
      }
    }
  }
  addresses_seen_ = sequence;
  if (changed) rebuildBalancer();
}

Host* Cluster::pick(const PickContext& context) {
  refreshAddresses();
  refreshHealth();
  if (present_.empty()) return nullptr;
  if (config_.all_down == config::AllDown::kRefuse) {
    bool any_healthy = false;
    for (const Host* host : present_)
      any_healthy = any_healthy || host->health == HealthState::kHealthy;
    if (!any_healthy) return nullptr;
  }
  return balancer_->pick(context);
}

std::string Cluster::unavailableReason() const {
  if (present_.empty()) {
    for (const NameEntry& entry : names_) {
      const std::string what = entry.server->name + ":" + std::to_string(entry.server->port);
      if (entry.state == NameState::kPending) return what + " has not resolved yet";
      if (entry.state == NameState::kFailed) return what + " does not resolve";
    }
    return "no server address";
  }
  if (config_.all_down == config::AllDown::kRefuse) {
    for (const Host* host : present_) {
      if (host->health == HealthState::kHealthy) return {};
    }
    return "every server is out of service (all_down: refuse)";
  }
  return {};
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
  if (isFailure(outcome)) {
    ++host.consecutive_failures;
    passiveFailure(host);
  } else if (outcome == AttemptOutcome::kSuccess) {
    ServerHealth& shared = *host.shared_health;
    shared.consecutive_failures.store(0, std::memory_order_relaxed);
    // Back for longer than one ejection: the next one starts from 1× again.
    const int64_t recovered = shared.recovered_at_ms.load(std::memory_order_relaxed);
    if (recovered != 0 && nowMs() - recovered > config_.passive.ejection.count()) {
      shared.ejections.store(0, std::memory_order_relaxed);
      shared.recovered_at_ms.store(0, std::memory_order_relaxed);
    }
  }
  balancer_->onAttemptDone(host, outcome, latency);
}

bool Cluster::mayRetry(observe::Counter& exhausted) {
  const int64_t now = nowMs();
  if (retry_budget_.tryRetry(now)) return true;
  observe::add(exhausted);
  if (now - budget_logged_ms_ >= 1000) {
    budget_logged_ms_ = now;
    SLUICE_LOG(kWarn,
               "upstream " + config_.name + ": retry budget exhausted; answering without retrying");
  }
  return false;
}

int64_t Cluster::nowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(loop_.now().time_since_epoch())
      .count();
}

void Cluster::refreshHealth() {
  if (config_.passive.failures == 0 && !config_.health_check.enabled) return;
  const int64_t now = nowMs();
  for (Host* host : present_) {
    ServerHealth& shared = *host->shared_health;
    int64_t until = shared.ejected_until_ms.load(std::memory_order_relaxed);
    if (until > now || shared.active_down.load(std::memory_order_relaxed) != 0) {
      host->health = HealthState::kEjected;
      continue;
    }
    host->health = HealthState::kHealthy;
    if (until != 0 && shared.ejected_until_ms.compare_exchange_strong(until, 0)) {
      shared.recovered_at_ms.store(now, std::memory_order_relaxed);
      SLUICE_LOG(kInfo, "upstream " + config_.name + ": server " + host->address_text +
                            " back in service after its ejection");
    }
  }
}

void Cluster::passiveFailure(Host& host) {
  const config::PassiveHealth& passive = config_.passive;
  if (passive.failures == 0) return;
  ServerHealth& shared = *host.shared_health;
  const uint32_t failures = shared.consecutive_failures.fetch_add(1) + 1;
  if (failures < passive.failures) return;
  const int64_t now = nowMs();
  size_t ejected = 0;
  for (const Host* other : present_) {
    if (other->shared_health->ejected_until_ms.load(std::memory_order_relaxed) > now) ++ejected;
  }
  // Never more than max_ejected of the upstream out (two workers deciding
  // at the same instant may overshoot by one).
  if ((ejected + 1) * 100 > passive.max_ejected_percent * present_.size()) return;
  const uint32_t times = std::min<uint32_t>(shared.ejections.load() + 1, 10);
  int64_t expected = 0;
  const int64_t until = now + passive.ejection.count() * times;
  if (!shared.ejected_until_ms.compare_exchange_strong(expected, until)) return;  // another did
  shared.ejections.store(times, std::memory_order_relaxed);
  shared.consecutive_failures.store(0, std::memory_order_relaxed);
  observe::add(host.counters->ejections);
  host.health = HealthState::kEjected;
  SLUICE_LOG(kWarn, "upstream " + config_.name + ": server " + host.address_text + " ejected for " +
                        std::to_string(passive.ejection.count() * times) + "ms after " +
                        std::to_string(failures) + " failures in a row");
}

}  // namespace sluice::upstream
