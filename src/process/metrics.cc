#include "process/metrics.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sluice::process {
namespace {

using observe::MetricsWriter;
using observe::RouteCounters;
using observe::ServerCounters;
using observe::WorkerCounters;
using Type = observe::MetricsWriter::Type;

constexpr size_t kWords = LabelSet::kCarriedWords;
constexpr int kSnapshotAttempts = 1000;

constexpr size_t word(size_t offset) {
  return offset / sizeof(observe::Counter);
}
#define SLUICE_W(field) word(offsetof(WorkerCounters, field))
#define SLUICE_R(field) word(offsetof(RouteCounters, field))
#define SLUICE_S(field) word(offsetof(ServerCounters, field))

constexpr std::string_view kStatusCodes[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "none"};
static_assert(std::size(kStatusCodes) == observe::kStatusClasses);
constexpr std::string_view kTlsReasons[] = {"protocol", "eof", "timeout"};
static_assert(std::size(kTlsReasons) == observe::kTlsFailures);

// One /proc/<pid>/stat: utime+stime, cutime+cstime (ticks), rss (pages).
struct ProcStat {
  bool ok = false;
  uint64_t self_ticks = 0;
  uint64_t children_ticks = 0;
  uint64_t rss_pages = 0;
};

ProcStat readStat(int32_t pid) {
  ProcStat stat;
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return stat;
  char text[1024];
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return stat;
  text[n] = '\0';
  // The command name (field 2) may hold spaces and parentheses: fields
  // are counted from the last ')'.
  const char* p = std::strrchr(text, ')');
  if (p == nullptr) return stat;
  ++p;
  uint64_t fields[25] = {};  // fields[i] = field i + 3 of proc(5), numeric ones
  for (int i = 0; i < 22 && *p != '\0'; ++i) {
    while (*p == ' ')
      ++p;
    char* end = nullptr;
    fields[i] = std::strtoull(p, &end, 10);  // field 3 (state) is a letter: reads 0
    if (end == p) {
      while (*p != ' ' && *p != '\0')
        ++p;
    } else {
      p = end;
    }
  }
  // proc(5): utime 14, stime 15, cutime 16, cstime 17, rss 24.
  stat.self_ticks = fields[14 - 3] + fields[15 - 3];
  stat.children_ticks = fields[16 - 3] + fields[17 - 3];
  stat.rss_pages = fields[24 - 3];
  stat.ok = true;
  return stat;
}

// Entries of /proc/<pid>/fd, without an allocation (getdents64 into a
// stack buffer).
uint64_t countFds(int32_t pid) {
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%d/fd", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t count = 0;
  alignas(8) char buffer[4096];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, fd, buffer, sizeof buffer);
    if (n <= 0) break;
    for (long offset = 0; offset < n;) {
      // struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name.
      uint16_t reclen;
      std::memcpy(&reclen, buffer + offset + 16, sizeof reclen);
      const char* name = buffer + offset + 19;
      if (name[0] != '.') ++count;
      offset += reclen;
    }
  }
  ::close(fd);
  // Not the descriptor that read the directory, when it is our own.
  return pid == ::getpid() && count > 0 ? count - 1 : count;
}

}  // namespace

MetricsCollector::Result MetricsCollector::snapshot() {
  const uint64_t worker_mask = observe::gaugeMask<WorkerCounters>();
  const uint64_t route_mask = observe::gaugeMask<RouteCounters>();
  const uint64_t server_mask = observe::gaugeMask<ServerCounters>();
  for (int attempt = 0; attempt < kSnapshotAttempts; ++attempt) {
    const uint32_t before = shared_.sequence.load(std::memory_order_acquire);
    if ((before & 1) != 0) {
      if (attempt > 10) ::sched_yield();
      continue;
    }
    set_count_ = shared_.label_set_count.load(std::memory_order_acquire);
    sets_.assign(static_cast<size_t>(set_count_) * kWords, 0);
    std::fill(std::begin(worker_), std::end(worker_), 0);
    pids_.clear();
    newest_ = nullptr;
    live_generations_ = 0;
    observe::addWords(shared_.carried, worker_mask, false, worker_);
    for (uint32_t k = 0; k < set_count_; ++k) {
      for (size_t w = 0; w < kWords; ++w)
        sets_[k * kWords + w] = shared_.label_sets[k].carried[w].load(std::memory_order_relaxed);
    }
    // The live table first, checked before any region is touched: an entry
    // read half-way through the master's retiring one generation and
    // entering a newer one could pair an old id with a region this process
    // never mapped.
    const CounterRegion* regions[SharedState::kMaxLiveGenerations] = {};
    uint32_t ids[SharedState::kMaxLiveGenerations] = {};
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
    // for good (a worker never unmaps what it inherited).
    uint32_t newest_id = 0;
    for (size_t e = 0; e < SharedState::kMaxLiveGenerations; ++e) {
      const uint32_t id = ids[e];
      const CounterRegion* region = regions[e];
      if (id == 0 || region == nullptr) continue;
      ++live_generations_;
      if (id > newest_id) {
        newest_id = id;
        newest_ = region;
      }
      for (uint32_t slot = 0; slot < region->slots(); ++slot) {
        const WorkerCounters& counters = region->worker(slot);
        observe::addWords(counters, worker_mask, true, worker_);
        const int64_t pid = counters.pid.load(std::memory_order_relaxed);
        if (pid > 0) pids_.push_back(static_cast<int32_t>(pid));
        for (size_t r = 0; r < region->routes(); ++r) {
          const uint32_t k = region->routeLabelSet(r);
          if (k < set_count_)
            observe::addWords(region->routeCounters(slot)[r], route_mask, true, &sets_[k * kWords]);
        }
        for (size_t s = 0; s < region->servers(); ++s) {
          const uint32_t k = region->serverLabelSet(s);
          if (k < set_count_) {
            observe::addWords(region->serverCounters(slot)[s], server_mask, true,
                              &sets_[k * kWords]);
          }
        }
      }
    }
    // The whole snapshot under one sequence: no generation both carried
    // and live, nor neither.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (shared_.sequence.load(std::memory_order_relaxed) != before) continue;
    return Result::kOk;
  }
  return Result::kBusy;
}

MetricsCollector::ProcessFigures MetricsCollector::readProcesses() const {
  ProcessFigures figures;
  const int32_t master = shared_.figures.master_pid.load(std::memory_order_relaxed);
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  // A worker reaped between reading the master and reading the worker
  // would count nowhere (its /proc entry gone, its time not yet in the
  // master's children's); re-read until the master's children's time holds.
  for (int attempt = 0; attempt < 3; ++attempt) {
    figures = {};
    const ProcStat first = readStat(master);
    if (!first.ok) break;
    uint64_t ticks = first.self_ticks + first.children_ticks;
    uint64_t rss = first.rss_pages;
    uint32_t processes = 1;
    for (const int32_t pid : pids_) {
      const ProcStat worker = readStat(pid);
      if (!worker.ok) continue;
      ticks += worker.self_ticks;
      rss += worker.rss_pages;
      ++processes;
    }
    const ProcStat second = readStat(master);
    figures.cpu_seconds = static_cast<double>(ticks) / static_cast<double>(ticks_per_second);
    figures.resident_bytes = rss * static_cast<uint64_t>(page);
    figures.processes = processes;
    if (second.ok && second.children_ticks == first.children_ticks) break;
  }
  figures.open_fds = countFds(master);
  for (const int32_t pid : pids_)
    figures.open_fds += countFds(pid);
  return figures;
}

MetricsCollector::Result MetricsCollector::render(observe::MetricsFormat format, std::string* out) {
  const Result result = snapshot();
  if (result != Result::kOk) return result;
  MetricsWriter m(*out, format);
  const uint64_t* w = worker_;
  const int64_t connections_open = static_cast<int64_t>(w[SLUICE_W(connections_active)]);
  const int64_t connections_idle = static_cast<int64_t>(w[SLUICE_W(connections_idle)]);

  // --- clients, all listeners (the admin listener included) ---
  m.family("sluice_client_connections_accepted", Type::kCounter,
           "Client connections accepted, all listeners.");
  m.counter({}, w[SLUICE_W(connections_accepted)]);
  m.family("sluice_client_connections_closed", Type::kCounter,
           "Client connections closed, all listeners.");
  m.counter({}, w[SLUICE_W(connections_closed)]);
  m.family("sluice_client_connections", Type::kGauge,
           "Open client connections: active (a request in progress) or idle (keep-alive).");
  m.gauge({{"state", "active"}}, connections_open - connections_idle);
  m.gauge({{"state", "idle"}}, connections_idle);
  m.family("sluice_client_requests", Type::kCounter,
           "Finished requests of any outcome on any listener, admin and unrouted included.");
  m.counter({}, w[SLUICE_W(requests)]);
  m.family("sluice_client_received_bytes", Type::kCounter,
           "Bytes received from clients, heads included.");
  m.counter({}, w[SLUICE_W(bytes_received)]);
  m.family("sluice_client_sent_bytes", Type::kCounter, "Bytes sent to clients, heads included.");
  m.counter({}, w[SLUICE_W(bytes_sent)]);
  m.family("sluice_accept_errors", Type::kCounter, "accept(2) failures (EMFILE included).");
  m.counter({}, w[SLUICE_W(accept_errors)]);
  m.family("sluice_access_log_dropped_lines", Type::kCounter,
           "Access log lines dropped because the log's reader could not keep up.");
  m.counter({}, w[SLUICE_W(access_log_lines_dropped)]);
  m.family("sluice_http_requests_limited", Type::kCounter,
           "Requests answered 429 by rate_limit or limits.connections_per_client.");
  m.counter({}, w[SLUICE_W(requests_limited)]);
  m.family("sluice_retry_budget_exhausted", Type::kCounter,
           "Retries refused because the upstream's retry_budget was spent.");
  m.counter({}, w[SLUICE_W(retry_budget_exhausted)]);
  m.family("sluice_tls_handshakes", Type::kCounter,
           "TLS handshakes completed on listeners, by protocol and session (full or resumed).");
  for (size_t i = 0; i < observe::kTlsHandshakeKinds; ++i) {
    m.counter(
        {{"protocol", i < 2 ? "TLSv1.2" : "TLSv1.3"}, {"session", i % 2 ? "resumed" : "full"}},
        w[SLUICE_W(tls_handshakes) + i]);
  }
  m.family("sluice_tls_handshake_failures", Type::kCounter,
           "TLS handshakes on listeners that did not complete, by reason.");
  for (size_t i = 0; i < observe::kTlsFailures; ++i)
    m.counter({{"reason", kTlsReasons[i]}}, w[SLUICE_W(tls_handshake_failures) + i]);

  // --- per route (label sets of every config since the master started) ---
  auto routeSets = [this](auto&& each) {
    for (uint32_t k = 0; k < set_count_; ++k) {
      const LabelSet& set = shared_.label_sets[k];
      if (set.kind == LabelSet::Kind::kRoute) each(set, &sets_[k * kWords]);
    }
  };
  auto serverSets = [this](auto&& each) {
    for (uint32_t k = 0; k < set_count_; ++k) {
      const LabelSet& set = shared_.label_sets[k];
      if (set.kind == LabelSet::Kind::kServer) each(set, &sets_[k * kWords]);
    }
  };
  m.family("sluice_http_requests", Type::kCounter,
           "Finished requests by listener, route (its position in the listener), upstream and "
           "status class of the response (none = no response was sent).");
  routeSets([&](const LabelSet& set, const uint64_t* v) {
    for (size_t c = 0; c < observe::kStatusClasses; ++c) {
      m.counter({{"listener", set.label(0)},
                 {"route", set.label(1)},
                 {"upstream", set.label(2)},
                 {"code", kStatusCodes[c]}},
                v[SLUICE_R(requests) + c]);
    }
  });
  m.family("sluice_http_request_duration_seconds", Type::kHistogram,
           "Time from the first byte of a request to the last byte of its response queued.");
  routeSets([&](const LabelSet& set, const uint64_t* v) {
    m.histogram({{"listener", set.label(0)}, {"route", set.label(1)}, {"upstream", set.label(2)}},
                v + SLUICE_R(duration), v[SLUICE_R(duration) + observe::kHistogramBounds + 1]);
  });
  m.family("sluice_http_received_bytes", Type::kCounter,
           "Bytes received from clients by route, heads included.");
  routeSets([&](const LabelSet& set, const uint64_t* v) {
    m.counter({{"listener", set.label(0)}, {"route", set.label(1)}, {"upstream", set.label(2)}},
              v[SLUICE_R(bytes_received)]);
  });
  m.family("sluice_http_sent_bytes", Type::kCounter,
           "Bytes sent to clients by route, heads included.");
  routeSets([&](const LabelSet& set, const uint64_t* v) {
    m.counter({{"listener", set.label(0)}, {"route", set.label(1)}, {"upstream", set.label(2)}},
              v[SLUICE_R(bytes_sent)]);
  });

  // --- per upstream server ---
  struct ServerFamily {
    const char* name;
    Type type;
    const char* help;
    size_t word;
  };
  static constexpr ServerFamily kServerFamilies[] = {
      {"sluice_upstream_requests", Type::kCounter,
       "Attempts sent to the server (retries included).", SLUICE_S(requests)},
      {"sluice_upstream_requests_in_flight", Type::kGauge, "Attempts in progress.",
       SLUICE_S(in_flight)},
      {"sluice_upstream_retries", Type::kCounter, "Attempts that were retries.", SLUICE_S(retries)},
      {"sluice_upstream_connect_failures", Type::kCounter, "Connects that failed or timed out.",
       SLUICE_S(connect_failures)},
      {"sluice_upstream_timeouts", Type::kCounter, "Attempts that timed out after connecting.",
       SLUICE_S(timeouts)},
      {"sluice_upstream_resets", Type::kCounter, "Connections lost before or during the response.",
       SLUICE_S(resets)},
      {"sluice_upstream_5xx_responses", Type::kCounter, "5xx responses from the server.",
       SLUICE_S(responses_5xx)},
      {"sluice_upstream_invalid_responses", Type::kCounter, "Malformed responses.",
       SLUICE_S(invalid_responses)},
      {"sluice_upstream_connections_opened", Type::kCounter, "Connections opened to the server.",
       SLUICE_S(connections_opened)},
      {"sluice_upstream_ejections", Type::kCounter,
       "Times the server was ejected by passive health checks.", SLUICE_S(ejections)},
      {"sluice_upstream_tls_handshakes", Type::kCounter,
       "TLS connections opened to the server with a full handshake.", SLUICE_S(tls_handshakes)},
      {"sluice_upstream_tls_resumed", Type::kCounter,
       "TLS connections opened to the server that resumed a session.", SLUICE_S(tls_resumed)},
  };
  for (const ServerFamily& family : kServerFamilies) {
    m.family(family.name, family.type, family.help);
    serverSets([&](const LabelSet& set, const uint64_t* v) {
      if (family.type == Type::kCounter) {
        m.counter({{"upstream", set.label(0)}, {"server", set.label(1)}}, v[family.word]);
      } else {
        m.gauge({{"upstream", set.label(0)}, {"server", set.label(1)}},
                static_cast<int64_t>(v[family.word]));
      }
    });
  }
  m.family("sluice_upstream_connections", Type::kGauge,
           "Open connections to the server: active (in use by a request) or idle (pooled).");
  serverSets([&](const LabelSet& set, const uint64_t* v) {
    m.gauge({{"upstream", set.label(0)}, {"server", set.label(1)}, {"state", "active"}},
            static_cast<int64_t>(v[SLUICE_S(connections_active)]));
    m.gauge({{"upstream", set.label(0)}, {"server", set.label(1)}, {"state", "idle"}},
            static_cast<int64_t>(v[SLUICE_S(connections_idle)]));
  });
  m.family("sluice_upstream_response_duration_seconds", Type::kHistogram,
           "Time from the request sent to the first byte of the server's response.");
  serverSets([&](const LabelSet& set, const uint64_t* v) {
    m.histogram({{"upstream", set.label(0)}, {"server", set.label(1)}}, v + SLUICE_S(response_time),
                v[SLUICE_S(response_time) + observe::kHistogramBounds + 1]);
  });
  // Health: the serving generation's view (older generations have their
  // own, about to go). A DNS name's address slots share one series.
  if (newest_ != nullptr) {
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
    health_.assign(static_cast<size_t>(set_count_) * 3, 0);
    for (size_t s = 0; s < newest_->servers(); ++s) {
      const uint32_t k = newest_->serverLabelSet(s);
      if (k >= set_count_) continue;
      const upstream::ServerHealth& health = newest_->serverHealth()[s];
      const int64_t until = health.ejected_until_ms.load(std::memory_order_relaxed);
      const bool taken_out =
          (until != 0 && until > now_ms) || health.active_down.load(std::memory_order_relaxed) != 0;
      health_[k * 3] = 1;
      health_[k * 3 + 1] += taken_out ? 1 : 0;
      health_[k * 3 + 2] = std::max<int64_t>(
          health_[k * 3 + 2], health.consecutive_failures.load(std::memory_order_relaxed));
    }
    m.family("sluice_upstream_out_of_service", Type::kGauge,
             "Addresses of the server taken out by passive health (ejected) or failing active "
             "health checks (0 or 1 for a numeric address; up to max_addresses for a DNS name).");
    serverSets([&](const LabelSet& set, const uint64_t*) {
      const size_t k = static_cast<size_t>(&set - shared_.label_sets);
      if (health_[k * 3] != 0)
        m.gauge({{"upstream", set.label(0)}, {"server", set.label(1)}}, health_[k * 3 + 1]);
    });
    m.family("sluice_upstream_consecutive_failures", Type::kGauge,
             "Failures in a row counted by passive health (0 after a success; the most of any "
             "address of a DNS name).");
    serverSets([&](const LabelSet& set, const uint64_t*) {
      const size_t k = static_cast<size_t>(&set - shared_.label_sets);
      if (health_[k * 3] != 0)
        m.gauge({{"upstream", set.label(0)}, {"server", set.label(1)}}, health_[k * 3 + 2]);
    });
  }

  // --- the master ---
  const MasterFigures& f = shared_.figures;
  m.family("sluice_config_reloads", Type::kCounter, "Configuration reloads by result.");
  m.counter({{"result", "success"}}, f.reloads_succeeded.load());
  m.counter({{"result", "failure"}}, f.reloads_failed.load());
  m.family("sluice_config_last_reload_successful", Type::kGauge,
           "1 if the last reload succeeded (or none was tried), 0 if it failed.");
  m.gauge({}, static_cast<int64_t>(f.last_reload_successful.load()));
  m.family("sluice_config_last_reload_success_timestamp_seconds", Type::kGauge,
           "Unix time of the last successful reload (of the start before any).");
  m.gauge({}, static_cast<double>(f.last_reload_success_unix_ms.load()) / 1000.0);
  m.family("sluice_generation", Type::kGauge, "Id of the serving generation of workers.");
  m.gauge({}, static_cast<int64_t>(f.serving_generation.load()));
  m.family("sluice_live_generations", Type::kGauge,
           "Generations with workers still running (the serving one and those draining).");
  m.gauge({}, static_cast<int64_t>(live_generations_));
  m.family("sluice_worker_respawns", Type::kCounter,
           "Workers restarted by the master after an unexpected exit.");
  m.counter({}, f.worker_respawns.load());
  m.family("sluice_metrics_label_sets_dropped", Type::kCounter,
           "Routes or servers left out of the labelled series (table full or name too long).");
  m.counter({}, f.label_sets_dropped.load());

  // --- DNS names and active health checks (the master's, once each) ---
  const auto named = [&](const upstream::NamedFigures* table, const std::atomic<uint32_t>& count,
                         std::string_view label, size_t word, std::string_view name, Type type,
                         std::string_view help) {
    const uint32_t n =
        std::min<uint32_t>(count.load(std::memory_order_acquire), SharedState::kMaxNamedFigures);
    if (n == 0) return;
    m.family(name, type, help);
    for (uint32_t i = 0; i < n; ++i) {
      const uint64_t v = table[i].values[word].load(std::memory_order_relaxed);
      if (type == Type::kCounter) {
        m.counter({{label, table[i].nameView()}}, v);
      } else {
        m.gauge({{label, table[i].nameView()}}, static_cast<int64_t>(v));
      }
    }
  };
  named(shared_.dns_names, shared_.dns_name_count, "name", upstream::kDnsLookups,
        "sluice_dns_lookups", Type::kCounter,
        "Lookups of a server's DNS name (answers and failures), one for the whole process.");
  named(shared_.dns_names, shared_.dns_name_count, "name", upstream::kDnsFailures,
        "sluice_dns_lookup_failures", Type::kCounter,
        "Lookups that failed (the last good answer is kept).");
  named(shared_.dns_names, shared_.dns_name_count, "name", upstream::kDnsChanges,
        "sluice_dns_changes", Type::kCounter, "Answers that changed the set of addresses.");
  named(shared_.dns_names, shared_.dns_name_count, "name", upstream::kDnsAddresses,
        "sluice_dns_addresses", Type::kGauge, "Addresses the name resolves to now.");
  named(shared_.health_upstreams, shared_.health_upstream_count, "upstream", upstream::kProbes,
        "sluice_health_checks", Type::kCounter, "Active health-check probes sent by the master.");
  named(shared_.health_upstreams, shared_.health_upstream_count, "upstream",
        upstream::kProbeFailures, "sluice_health_check_failures", Type::kCounter,
        "Probes that failed (refused, timed out, unexpected status).");
  named(shared_.health_upstreams, shared_.health_upstream_count, "upstream", upstream::kOutages,
        "sluice_health_check_outages", Type::kCounter,
        "Times a server was taken out by its health check.");
  named(shared_.health_upstreams, shared_.health_upstream_count, "upstream", upstream::kRecoveries,
        "sluice_health_check_recoveries", Type::kCounter,
        "Times a server came back by passing its health check.");

  // --- the processes (the master and every live worker) ---
  const ProcessFigures processes = readProcesses();
  m.family("sluice_processes", Type::kGauge, "The master and its live workers.");
  m.gauge({}, static_cast<int64_t>(processes.processes));
  m.family("sluice_process_cpu_seconds", Type::kCounter,
           "User and system CPU time of the master, its live workers and its exited workers.");
  m.counter({}, processes.cpu_seconds);
  m.family("sluice_process_resident_memory_bytes", Type::kGauge,
           "Resident memory of the master and its live workers (shared pages counted in each).");
  m.gauge({}, static_cast<int64_t>(processes.resident_bytes));
  m.family("sluice_process_open_fds", Type::kGauge,
           "Open file descriptors of the master and its live workers.");
  m.gauge({}, static_cast<int64_t>(processes.open_fds));
  m.family("sluice_process_start_time_seconds", Type::kGauge, "Unix time the master started.");
  m.gauge({}, static_cast<double>(f.start_unix_ms.load()) / 1000.0);
  m.finish();
  return Result::kOk;
}

#undef SLUICE_W
#undef SLUICE_R
#undef SLUICE_S

}  // namespace sluice::process
