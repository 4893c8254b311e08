#include "process/status.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "core/json.h"

namespace sluice::process {
namespace {

#ifndef SLUICE_VERSION
#error "SLUICE_VERSION is set by src/CMakeLists.txt"
#endif
constexpr const char* kVersion = SLUICE_VERSION;
constexpr int kSnapshotAttempts = 1000;
// A DNS table read that keeps meeting the master mid-write: give up on the
// addresses rather than spin (the rows then say the name's state only).
constexpr int kAddressReadAttempts = 100;

int64_t steadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const char* nameStateText(upstream::NameState state) {
  switch (state) {
    case upstream::NameState::kPending:
      return "pending";
    case upstream::NameState::kResolved:
      return "resolved";
    case upstream::NameState::kFailed:
      return "failed";
  }
  return "pending";
}

std::optional<std::vector<std::optional<net::Address>>> readAddresses(const CounterRegion& region,
                                                                      uint32_t first,
                                                                      uint32_t count,
                                                                      upstream::NameState* state) {
  if (count == 0) return std::vector<std::optional<net::Address>>();
  for (int attempt = 0; attempt < kAddressReadAttempts; ++attempt) {
    auto slots = upstream::readSlots(region.addressTable(), first, count, state);
    if (slots) return slots;
    if (attempt > 10) ::sched_yield();
  }
  return std::nullopt;
}

}  // namespace

StatusCollector::Result StatusCollector::readLive() {
  // The live table as /metrics reads it (MetricsCollector::snapshot): ids and
  // regions under one sequence, checked before any region is touched, since
  // an entry read half-way through the master's retiring one generation and
  // entering another could pair an old id with a region this process never
  // mapped.
  for (int attempt = 0; attempt < kSnapshotAttempts; ++attempt) {
    const uint32_t before = shared_.sequence.load(std::memory_order_acquire);
    if ((before & 1) != 0) {
      if (attempt > 10) ::sched_yield();
      continue;
    }
    uint32_t ids[SharedState::kMaxLiveGenerations] = {};
    const CounterRegion* regions[SharedState::kMaxLiveGenerations] = {};
    bool newer = false;
    for (size_t e = 0; e < SharedState::kMaxLiveGenerations; ++e) {
      ids[e] = shared_.live[e].id.load(std::memory_order_relaxed);
      regions[e] = shared_.live[e].region.load(std::memory_order_relaxed);
      if (ids[e] > generation_) newer = true;
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (shared_.sequence.load(std::memory_order_relaxed) != before) continue;
    if (newer) return Result::kNotNewest;
    // Every region left is of a generation not newer than ours: mapped here
    // for good (a worker never unmaps what it inherited), so it may be read
    // after the sequence check, even if the master retires it meanwhile.
    live_count_ = 0;
    for (size_t e = 0; e < SharedState::kMaxLiveGenerations; ++e) {
      if (ids[e] == 0 || regions[e] == nullptr) continue;
      Live& live = live_[live_count_++];
      live.id = ids[e];
      live.region = regions[e];
      upstream::NameState state;
      auto addresses =
          readAddresses(*live.region, 0, static_cast<uint32_t>(live.region->servers()), &state);
      live.addresses = addresses ? std::move(*addresses)
                                 : std::vector<std::optional<net::Address>>(live.region->servers());
    }
    std::sort(live_, live_ + live_count_, [](const Live& a, const Live& b) { return a.id < b.id; });
    return Result::kOk;
  }
  return Result::kBusy;
}

StatusCollector::ServerLoad StatusCollector::loadOf(
    uint32_t index, const std::optional<net::Address>& dns_address) const {
  ServerLoad load;
  const uint32_t label_set = own_.serverLabelSet(index);
  for (size_t g = 0; g < live_count_; ++g) {
    const Live& live = live_[g];
    const CounterRegion& region = *live.region;
    for (size_t s = 0; s < region.servers(); ++s) {
      bool same;
      if (&region == &own_) {
        same = s == index;
      } else {
        // A label set names one numeric address, or one DNS name over all
        // its address slots (then the address must match too).
        same = label_set != SharedState::kNoLabelSet && region.serverLabelSet(s) == label_set &&
               (!dns_address || (s < live.addresses.size() && live.addresses[s] == dns_address));
      }
      if (!same) continue;
      for (uint32_t slot = 0; slot < region.slots(); ++slot) {
        const observe::ServerCounters& counters = region.serverCounters(slot)[s];
        load.in_flight += counters.in_flight.load(std::memory_order_relaxed);
        load.idle += counters.connections_idle.load(std::memory_order_relaxed);
        load.active += counters.connections_active.load(std::memory_order_relaxed);
      }
    }
  }
  return load;
}

StatusCollector::Result StatusCollector::render(std::string* out) {
  const Result result = readLive();
  if (result != Result::kOk) return result;
  const MasterFigures& figures = shared_.figures;
  const uint32_t serving = figures.serving_generation.load(std::memory_order_relaxed);
  JsonWriter w(*out);
  w.beginObject();
  w.field("version", kVersion);
  w.field("master_pid", figures.master_pid.load(std::memory_order_relaxed));
  w.field("start_time", figures.start_unix_ms.load(std::memory_order_relaxed) / 1000);
  w.key("answered_by");
  w.beginObject();
  w.field("pid", static_cast<int64_t>(::getpid()));
  w.field("generation", generation_);
  w.endObject();
  w.key("config");
  w.beginObject();
  w.field("path", std::string_view(config_.source_path));
  w.field("sha256", std::string_view(config_.sha256));
  w.endObject();
  w.field("serving_generation", serving);
  w.key("reloads");
  w.beginObject();
  w.field("succeeded", figures.reloads_succeeded.load(std::memory_order_relaxed));
  w.field("failed", figures.reloads_failed.load(std::memory_order_relaxed));
  w.field("last_successful", figures.last_reload_successful.load(std::memory_order_relaxed) != 0);
  w.endObject();

  // --- generations and their workers ---
  w.key("generations");
  w.beginArray();
  for (size_t g = 0; g < live_count_; ++g) {
    const Live& live = live_[g];
    const CounterRegion& region = *live.region;
    // A generation is serving, starting (newer than the serving one: its
    // workers are not all ready yet) or draining (older, or every worker
    // of it told to drain, as when the master stops).
    bool all_draining = true;
    bool any_running = false;
    for (uint32_t slot = 0; slot < region.slots(); ++slot) {
      const observe::WorkerCounters& worker = region.worker(slot);
      if (worker.pid.load(std::memory_order_relaxed) <= 0) continue;
      any_running = true;
      if (worker.draining.load(std::memory_order_relaxed) == 0) all_draining = false;
    }
    const char* state = live.id > serving    ? "starting"
                        : live.id == serving ? "serving"
                                             : "draining";
    if (any_running && all_draining) state = "draining";
    w.beginObject();
    w.field("id", live.id);
    w.field("state", state);
    w.field("config_sha256", std::string_view(region.configChecksum()));
    w.key("workers");
    w.beginArray();
    for (uint32_t slot = 0; slot < region.slots(); ++slot) {
      const observe::WorkerCounters& worker = region.worker(slot);
      const int64_t pid = worker.pid.load(std::memory_order_relaxed);
      const int64_t open = worker.connections_active.load(std::memory_order_relaxed);
      const int64_t idle = worker.connections_idle.load(std::memory_order_relaxed);
      // No pid: the slot's worker exited and is not respawned yet.
      const char* worker_state = pid <= 0 ? "exited"
                                 : worker.draining.load(std::memory_order_relaxed) != 0
                                     ? "draining"
                                     : (live.id > serving ? "starting" : "serving");
      w.beginObject();
      w.field("slot", slot);
      w.field("pid", pid);
      w.field("state", worker_state);
      w.field("connections", open);
      w.field("idle_connections", idle);
      w.field("requests", worker.requests.load(std::memory_order_relaxed));
      w.field("accepted", worker.connections_accepted.load(std::memory_order_relaxed));
      w.endObject();
    }
    w.endArray();
    w.endObject();
  }
  w.endArray();

  // --- listeners (this generation's config) ---
  w.key("listeners");
  w.beginArray();
  for (const config::Listener& listener : config_.listeners) {
    w.beginObject();
    w.field("name", std::string_view(listener.name));
    w.field("address", std::string_view(listener.address.toString()));
    w.field("tls", listener.tls.has_value());
    w.field("proxy_protocol", listener.proxy_protocol);
    w.field("routes", static_cast<uint64_t>(listener.routes.size()));
    w.field("admin", false);
    w.endObject();
  }
  if (config_.admin_address) {
    w.beginObject();
    w.field("name", "admin");
    w.field("address", std::string_view(config_.admin_address->toString()));
    w.field("tls", false);
    w.field("proxy_protocol", false);
    w.field("routes", uint64_t{0});
    w.field("admin", true);
    w.endObject();
  }
  w.endArray();

  // --- upstreams: one row per server address (this generation's view) ---
  const int64_t now_ms = steadyMillis();
  w.key("upstreams");
  w.beginArray();
  for (const config::Upstream& upstream : config_.upstreams) {
    w.beginObject();
    w.field("name", std::string_view(upstream.name));
    w.field("balance", config::balancePolicyName(upstream.balance));
    w.field("health_check", upstream.health_check.enabled);
    w.key("servers");
    w.beginArray();
    const auto row = [&](uint32_t index, const std::optional<net::Address>& address,
                         const config::UpstreamServer& server, const char* dns_state) {
      const upstream::ServerHealth& health = own_.serverHealth()[index];
      const int64_t until = health.ejected_until_ms.load(std::memory_order_relaxed);
      const bool ejected = until != 0 && until > now_ms;
      const bool down = health.active_down.load(std::memory_order_relaxed) != 0;
      const ServerLoad load =
          loadOf(index, server.resolved() ? address : std::optional<net::Address>());
      w.beginObject();
      if (address) {
        w.field("address", std::string_view(address->toString()));
      } else {
        w.key("address");
        w.null();
      }
      w.stringOrNull("dns_name", server.name);
      w.stringOrNull("dns_state", dns_state != nullptr ? dns_state : "");
      w.field("weight", server.weight);
      w.field("health", !upstream.health_check.enabled ? "unchecked" : down ? "down" : "up");
      w.field("ejected", ejected);
      w.field("ejected_for_ms", ejected ? until - now_ms : int64_t{0});
      w.field("consecutive_failures", health.consecutive_failures.load(std::memory_order_relaxed));
      w.field("in_service", !ejected && !down && address.has_value());
      w.field("in_flight", load.in_flight);
      w.key("pool");
      w.beginObject();
      w.field("idle", load.idle);
      w.field("active", load.active);
      w.endObject();
      w.endObject();
    };
    for (const config::UpstreamServer& server : upstream.servers) {
      if (!server.resolved()) {
        row(server.index, server.address, server, nullptr);
        continue;
      }
      // A DNS name: a row per address it resolves to now, in its slot.
      upstream::NameState state = upstream::NameState::kPending;
      auto slots = readAddresses(own_, server.index, server.slots, &state);
      bool any = false;
      for (uint32_t i = 0; slots && i < slots->size(); ++i) {
        if (!(*slots)[i]) continue;
        any = true;
        row(server.index + i, (*slots)[i], server, nameStateText(state));
      }
      // Nothing yet (pending, or never answered): one row for the name.
      if (!any) row(server.index, std::nullopt, server, slots ? nameStateText(state) : "busy");
    }
    w.endArray();
    w.endObject();
  }
  w.endArray();
  w.endObject();
  return Result::kOk;
}

}  // namespace sluice::process
