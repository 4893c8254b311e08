// DnsUpdater: keeps every live generation's ResolvedAddresses current — one
// lookup per DNS name for the whole process (the master runs it), however
// many workers and generations use the name. Re-resolves at each answer's
// TTL clamped to [resolver.min_interval, resolver.max_interval]; a failed
// lookup keeps the last good answer (and retries with backoff); addresses
// that stay keep their slot (so their counters, health and the workers'
// pools stay), new ones take a free slot nobody has requests in flight on,
// removed ones free theirs. A new generation starts with the answers the
// process already has, so a reload never serves without addresses. Every
// change is logged once. Owned by the master; single-threaded.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "dns/resolver.h"
#include "event/event_loop.h"
#include "event/timer.h"
#include "upstream/named_figures.h"
#include "upstream/resolved_addresses.h"
#include "upstream/server_health.h"

namespace sluice::upstream {

class DnsUpdater {
 public:
  // Requests in flight on server slot `index`, summed over the workers of
  // the generation (a slot is reused only once that is zero, if it can be).
  using InFlight = std::function<int64_t(uint32_t index)>;

  explicit DnsUpdater(event::EventLoop& loop);
  ~DnsUpdater();
  DnsUpdater(const DnsUpdater&) = delete;
  DnsUpdater& operator=(const DnsUpdater&) = delete;

  // Starts keeping `table` current for `generation` (whose config, table
  // and health outlive the attachment). Publishes known answers at once.
  void attach(uint32_t generation, std::shared_ptr<const config::Config> config, AddressTable table,
              ServerHealth* health, InFlight in_flight);
  void detach(uint32_t generation);
  // Lookups in progress (tests, status).
  size_t pendingLookups() const { return resolver_ ? resolver_->pending() : 0; }

  // `on_change` runs after a generation's table changed (the health checker
  // starts probing new addresses at once).
  void setOnChange(std::function<void(uint32_t generation)> on_change) {
    on_change_ = std::move(on_change);
  }
  // Where lookups, failures, changes and the address count of each name are
  // counted for the process (SharedState, for /metrics).
  void setFigures(FiguresFor figures) { figures_ = std::move(figures); }

 private:
  struct Name {
    std::vector<net::Address> addresses;  // last good answer, port 0, sorted
    bool answered = false;
    bool lookup_in_flight = false;
    uint32_t failures_in_row = 0;
    std::string last_error;
    std::unique_ptr<event::Timer> refresh;
  };
  struct Entry {
    const config::Upstream* upstream;
    const config::UpstreamServer* server;
    std::vector<std::optional<net::Address>> slots;  // what the table holds
    NameState state = NameState::kPending;
    bool truncation_logged = false;
  };
  struct Attached {
    std::shared_ptr<const config::Config> config;
    AddressTable table;
    ServerHealth* health;
    InFlight in_flight;
    std::vector<Entry> entries;
  };

  void ensureResolver(const config::Resolver& settings);
  void lookup(const std::string& name);
  void onAnswer(const std::string& name, const dns::Answer& answer);
  void scheduleRefresh(const std::string& name, Name& state, event::Duration after);
  void publishName(const std::string& name);
  // Counts a lookup's outcome for the process.
  void countAnswer(const std::string& name, bool ok, bool changed, size_t addresses);
  void publish(Attached& attached, Entry& entry, const Name& state);
  void dropUnusedNames();
  const config::Resolver& settings() const { return settings_; }

  event::EventLoop& loop_;
  config::Resolver settings_;
  std::unique_ptr<dns::Resolver> resolver_;
  std::map<std::string, Name> names_;
  std::map<uint32_t, Attached> generations_;
  std::function<void(uint32_t)> on_change_;
  FiguresFor figures_;
};

// For `sluice -t`: looks every server name of `config` up once (with its
// resolver settings, on a loop of its own, bounded by the resolver's
// timeout × attempts) and returns a located warning for each that does not
// resolve. Such a name does not fail the check: it answers 503 until it
// resolves.
std::vector<std::string> checkServerNames(const config::Config& config);

}  // namespace sluice::upstream
