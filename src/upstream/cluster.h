// Cluster: one configured upstream as seen by one worker — its hosts (each
// with its pool), the balancer that picks among them, and the connector that
// opens new connections. Every attempt's outcome is reported here, which
// keeps hosts' failure counts, their counters and the balancer informed in
// one place. Built per worker from the immutable config; owned by the
// worker's ServerContext.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "event/event_loop.h"
#include "observe/counters.h"
#include "upstream/connector.h"
#include "upstream/host.h"
#include "upstream/load_balancer.h"
#include "upstream/resolved_addresses.h"
#include "upstream/retry_budget.h"

namespace sluice::upstream {

class Cluster {
 public:
  // `server_counters`: the worker's per-server counters, indexed by
  // config::UpstreamServer::index.
  // `health`: passive-health state by config::UpstreamServer::index, shared
  // by the workers of the generation; null = this cluster's own.
  // `tls`: the upstream's TLS client context (upstreams.NAME.tls), or null.
  // `addresses`: what the upstream's DNS names resolve to (the master's
  // DnsUpdater writes it); null = no names, or names that never resolve.
  Cluster(event::EventLoop& loop, const config::Upstream& config, Connector& connector,
          observe::ServerCounters* server_counters, ServerHealth* health = nullptr,
          std::shared_ptr<const tls::ClientContext> tls = nullptr,
          const AddressTable* addresses = nullptr);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const config::Upstream& config() const { return config_; }
  const std::string& name() const { return config_.name; }
  // Every host slot, present or not (a DNS name has max_addresses).
  size_t hostCount() const { return hosts_.size(); }
  Host& host(size_t index) { return *hosts_[index]; }
  // Hosts in service now.
  size_t presentCount() const { return present_.size(); }
  Connector& connector() const { return tls_connector_ ? *tls_connector_ : connector_; }
  event::EventLoop& loop() const { return loop_; }

  // The host for the next attempt; null when every host has been tried.
  // Ejected hosts are skipped while others are left.
  // Null also when the upstream has no address yet or, with all_down:
  // refuse, every host is out: unavailableReason() then says why.
  Host* pick(const PickContext& context);
  // Why a first attempt found no host (answered 503), or empty.
  std::string unavailableReason() const;
  // An attempt on `host` began / ended. Keeps Host::in_flight, the
  // consecutive failure count, the counters and the balancer up to date.
  void attemptStarted(Host& host, bool retry);
  void attemptDone(Host& host, AttemptOutcome outcome, event::Duration latency);

  // A new request (first attempt): feeds the retry budget.
  void requestStarted() { retry_budget_.onRequest(nowMs()); }
  // True if a retry fits the budget; logs (at most once a second) and
  // counts in `exhausted` when it does not.
  bool mayRetry(observe::Counter& exhausted);

 private:
  int64_t nowMs() const;
  // Follows the DNS table: hosts whose address appeared, changed or left;
  // rebuilds the balancer over the present ones when anything did.
  void refreshAddresses();
  void rebuildBalancer();
  // Host::health from the shared state; brings back hosts whose ejection
  // ended (the worker that notices first logs it).
  void refreshHealth();
  // Counts a failure against `host`; ejects it after passive.failures in a
  // row, unless max_ejected would be exceeded.
  void passiveFailure(Host& host);
  event::EventLoop& loop_;
  const config::Upstream& config_;
  Connector& connector_;
  std::vector<std::unique_ptr<Host>> hosts_;
  std::vector<ServerHealth> own_health_;  // when no shared state was given
  RetryBudget retry_budget_;
  std::unique_ptr<TlsConnector> tls_connector_;
  int64_t budget_logged_ms_ = -1000;
  std::unique_ptr<LoadBalancer> balancer_;
  std::vector<Host*> present_;
  const AddressTable* addresses_ = nullptr;
  uint64_t addresses_seen_ = ~uint64_t{0};
  // Per server entry with a DNS name: its first host position and its
  // NameState, for unavailableReason().
  struct NameEntry {
    const config::UpstreamServer* server;
    size_t first_host;
    NameState state = NameState::kPending;
  };
  std::vector<NameEntry> names_;
  uint64_t balancer_seed_;
};

}  // namespace sluice::upstream
