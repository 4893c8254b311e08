#include "upstream/dns_updater.h"

#include <algorithm>

#include "core/log.h"

namespace sluice::upstream {
namespace {

std::string listText(const std::vector<net::Address>& addresses) {
  if (addresses.empty()) return "none";
  std::string text;
  for (const net::Address& address : addresses) {
    if (!text.empty()) text += ", ";
    text += address.ipText();
  }
  return text;
}

}  // namespace

DnsUpdater::DnsUpdater(event::EventLoop& loop) : loop_(loop) {}

DnsUpdater::~DnsUpdater() = default;

void DnsUpdater::ensureResolver(const config::Resolver& settings) {
  if (resolver_ && settings == settings_) return;
  const bool replacing = resolver_ != nullptr;
  settings_ = settings;
  dns::Settings dns_settings;
  dns_settings.servers = settings.addresses;
  dns_settings.timeout = settings.timeout;
  dns_settings.attempts = settings.attempts;
  std::string error;
  resolver_ = dns::Resolver::create(loop_, dns_settings, &error);
  if (!resolver_) SLUICE_LOG(kError, "dns: " + error + "; server names will not resolve");
  if (replacing) {
    // The old resolver dropped its lookups; ask the new one at once.
    for (auto& [name, state] : names_)
      state.lookup_in_flight = false;
    for (auto& [name, state] : names_)
      lookup(name);
  }
}

void DnsUpdater::attach(uint32_t generation, std::shared_ptr<const config::Config> config,
                        AddressTable table, ServerHealth* health, InFlight in_flight) {
  Attached& attached = generations_[generation];
  attached.config = std::move(config);
  attached.table = table;
  attached.health = health;
  attached.in_flight = std::move(in_flight);
  for (const config::Upstream& upstream : attached.config->upstreams) {
    for (const config::UpstreamServer& server : upstream.servers) {
      if (server.resolved()) {
        attached.entries.push_back(
            Entry{&upstream, &server, std::vector<std::optional<net::Address>>(server.slots)});
      }
    }
  }
  if (attached.entries.empty()) {
    generations_.erase(generation);
    return;
  }
  ensureResolver(attached.config->resolver);
  for (Entry& entry : attached.entries) {
    auto [it, added] = names_.try_emplace(entry.server->name);
    if (it->second.answered) publish(attached, entry, it->second);
    // A name new to the process is looked up now; one already known is
    // looked up again too when a reload brings it (the config may have
    // changed for a reason), while the old answer serves meanwhile.
    lookup(entry.server->name);
  }
}

void DnsUpdater::detach(uint32_t generation) {
  if (generations_.erase(generation) == 0) return;
  dropUnusedNames();
}

void DnsUpdater::dropUnusedNames() {
  for (auto it = names_.begin(); it != names_.end();) {
    bool used = false;
    for (const auto& [id, attached] : generations_) {
      for (const Entry& entry : attached.entries)
        used = used || entry.server->name == it->first;
    }
    it = used ? std::next(it) : names_.erase(it);
  }
}

void DnsUpdater::lookup(const std::string& name) {
  auto it = names_.find(name);
  if (it == names_.end() || it->second.lookup_in_flight || !resolver_) return;
  it->second.lookup_in_flight = true;
  resolver_->resolve(name, 0, [this, name](const dns::Answer& answer) { onAnswer(name, answer); });
}

void DnsUpdater::onAnswer(const std::string& name, const dns::Answer& answer) {
  auto it = names_.find(name);
  if (it == names_.end()) return;  // no generation uses it any more
  Name& state = it->second;
  state.lookup_in_flight = false;
  const auto clamp = [this](event::Duration d) {
    return std::clamp(d, settings_.min_interval, settings_.max_interval);
  };
  if (answer.ok) {
    if (!state.answered || state.addresses != answer.addresses) {
      SLUICE_LOG(kInfo, "dns: " + name + " resolves to " + listText(answer.addresses) +
                            (state.answered ? " (was " + listText(state.addresses) + ")" : ""));
    } else if (state.failures_in_row > 0) {
      SLUICE_LOG(kInfo, "dns: " + name + " answers again (" + listText(answer.addresses) + ")");
    }
    const bool changed = !state.answered || state.addresses != answer.addresses;
    state.addresses = answer.addresses;
    state.answered = true;
    state.failures_in_row = 0;
    state.last_error.clear();
    countAnswer(name, true, changed, answer.addresses.size());
    if (changed) publishName(name);
    scheduleRefresh(name, state, clamp(event::Duration(int64_t{answer.ttl_seconds} * 1000)));
    return;
  }
  if (answer.error != state.last_error) {
    SLUICE_LOG(kWarn,
               "dns: " + name + ": lookup failed: " + answer.error +
                   (state.answered ? "; keeping the last answer (" + listText(state.addresses) + ")"
                                   : "; its upstream answers 503 until it resolves"));
  }
  state.last_error = answer.error;
  ++state.failures_in_row;
  countAnswer(name, false, false, state.addresses.size());  // the kept answer
  if (!state.answered) publishName(name);  // pending -> failed, for the 503's reason
  // Back off from min_interval, doubling up to max_interval.
  const uint32_t shift = std::min<uint32_t>(state.failures_in_row - 1, 16);
  scheduleRefresh(name, state, clamp(settings_.min_interval * (int64_t{1} << shift)));
}

void DnsUpdater::scheduleRefresh(const std::string& name, Name& state, event::Duration after) {
  if (!state.refresh) {
    state.refresh = std::make_unique<event::Timer>(loop_.timers(), [this, name] { lookup(name); });
  }
  state.refresh->arm(after);
}

void DnsUpdater::countAnswer(const std::string& name, bool ok, bool changed, size_t addresses) {
  NamedFigures* f = figures_ ? figures_(name) : nullptr;
  if (f == nullptr) return;
  f->values[kDnsLookups].fetch_add(1, std::memory_order_relaxed);
  if (!ok) f->values[kDnsFailures].fetch_add(1, std::memory_order_relaxed);
  if (changed) f->values[kDnsChanges].fetch_add(1, std::memory_order_relaxed);
  f->values[kDnsAddresses].store(addresses, std::memory_order_relaxed);
}

void DnsUpdater::publishName(const std::string& name) {
  const Name& state = names_.at(name);
  for (auto& [id, attached] : generations_) {
    bool changed = false;
    for (Entry& entry : attached.entries) {
      if (entry.server->name != name) continue;
      const auto before = entry.slots;
      const NameState before_state = entry.state;
      publish(attached, entry, state);
      changed = changed || before != entry.slots || before_state != entry.state;
    }
    if (changed && on_change_) on_change_(id);
  }
}

void DnsUpdater::publish(Attached& attached, Entry& entry, const Name& state) {
  const config::UpstreamServer& server = *entry.server;
  std::vector<net::Address> wanted;
  for (const net::Address& address : state.addresses)
    wanted.push_back(address.withPort(server.port));
  std::vector<std::optional<net::Address>> next = entry.slots;
  // Addresses that stay keep their slot; the others leave.
  for (auto& slot : next) {
    if (!slot) continue;
    auto it = std::find(wanted.begin(), wanted.end(), *slot);
    if (it == wanted.end()) {
      slot.reset();
    } else {
      wanted.erase(it);
    }
  }
  // New addresses: a free slot with nothing in flight first (a worker may
  // still be finishing a request on the address that left it).
  size_t dropped = 0;
  for (const net::Address& address : wanted) {
    size_t chosen = next.size();
    for (size_t i = 0; i < next.size() && chosen == next.size(); ++i) {
      if (!next[i] && attached.in_flight(server.index + static_cast<uint32_t>(i)) == 0) chosen = i;
    }
    for (size_t i = 0; i < next.size() && chosen == next.size(); ++i) {
      if (!next[i]) chosen = i;
    }
    if (chosen == next.size()) {
      ++dropped;
      continue;
    }
    next[chosen] = address;
    // A new address starts with a clean health record.
    ServerHealth& health = attached.health[server.index + chosen];
    health.consecutive_failures.store(0, std::memory_order_relaxed);
    health.ejected_until_ms.store(0, std::memory_order_relaxed);
    health.ejections.store(0, std::memory_order_relaxed);
    health.recovered_at_ms.store(0, std::memory_order_relaxed);
    health.active_down.store(0, std::memory_order_relaxed);
  }
  if (dropped > 0 && !entry.truncation_logged) {
    entry.truncation_logged = true;
    SLUICE_LOG(kWarn, "dns: " + server.name + " has " + std::to_string(state.addresses.size()) +
                          " addresses but upstream " + entry.upstream->name +
                          " keeps max_addresses: " + std::to_string(server.slots) + "; " +
                          std::to_string(dropped) + " unused");
  }
  const NameState name_state = state.answered ? NameState::kResolved : NameState::kFailed;
  if (next == entry.slots && name_state == entry.state) return;
  writeSlots(attached.table, server.index, next, name_state);
  entry.slots = std::move(next);
  entry.state = name_state;
}

std::vector<std::string> checkServerNames(const config::Config& config) {
  std::vector<std::string> warnings;
  std::vector<const config::UpstreamServer*> servers;
  for (const config::Upstream& upstream : config.upstreams) {
    for (const config::UpstreamServer& server : upstream.servers) {
      if (server.resolved()) servers.push_back(&server);
    }
  }
  if (servers.empty()) return warnings;
  event::EventLoop loop;
  dns::Settings settings;
  settings.servers = config.resolver.addresses;
  settings.timeout = config.resolver.timeout;
  settings.attempts = config.resolver.attempts;
  std::string error;
  std::unique_ptr<dns::Resolver> resolver = dns::Resolver::create(loop, settings, &error);
  if (!resolver) {
    warnings.push_back(servers.front()->where + "warning: " + error);
    return warnings;
  }
  // name -> its error ("" = resolved), nullopt until answered
  std::map<std::string, std::optional<std::string>> failures;
  size_t answered = 0;
  for (const config::UpstreamServer* server : servers) {
    if (!failures.emplace(server->name, std::nullopt).second) continue;
    resolver->resolve(server->name, server->port, [&, name = server->name](const dns::Answer& a) {
      failures[name] = a.ok ? "" : a.error;
      ++answered;
    });
  }
  const event::TimePoint deadline =
      loop.now() + config.resolver.timeout * config.resolver.attempts + event::Duration(1000);
  while (answered < failures.size() && loop.now() < deadline)
    loop.runOnce(event::Duration(100));
  for (const config::UpstreamServer* server : servers) {
    auto it = failures.find(server->name);
    if (it == failures.end()) continue;
    const std::string problem = it->second.value_or("no answer in time");
    if (!problem.empty()) {
      warnings.push_back(server->where + "warning: " + server->name + " does not resolve (" +
                         problem + "); its upstream answers 503 until it does");
    }
    failures.erase(it);  // one warning per name
  }
  return warnings;
}

}  // namespace sluice::upstream
