#include "process/master.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "core/log.h"
#include "process/runtime_files.h"
#include "process/worker.h"

namespace sluice::process {
namespace {

using event::Duration;

// Old generations still draining at most; beyond it the oldest is stopped
// at once so that rapid reloads cannot pile up processes.
constexpr size_t kMaxDrainingGenerations = 4;
// Grace on top of shutdown_timeout before a draining worker is killed: the
// worker enforces shutdown_timeout itself; this catches a stuck one.
constexpr Duration kKillGrace{2000};
constexpr Duration kRespawnBaseDelay{100};
constexpr Duration kTicketKeyRotation{std::chrono::hours(1)};
constexpr Duration kRespawnMaxDelay{10000};
// A worker that lived this long resets its slot's backoff.
constexpr Duration kHealthyLifetime{10000};

uint32_t workerCount(const config::Config& config) {
  return config.workers == 0 ? Master::autoWorkerCount() : config.workers;
}

std::string describeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           ::strsignal(WTERMSIG(status)) + ")";
  }
  return "stopped";
}

// A forked worker must hold only what it uses: not the master's epoll and
// signalfd, nor other workers' pipes, nor listeners of other generations.
void closeInheritedFds(const std::vector<int>& keep) {
  std::vector<int> to_close;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    int dir_fd = ::dirfd(dir);
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      int fd = std::atoi(entry->d_name);
      if (fd > 2 && fd != dir_fd) to_close.push_back(fd);
    }
    ::closedir(dir);
  } else {
    long max_fd = std::min(::sysconf(_SC_OPEN_MAX), 65536L);
    for (int fd = 3; fd < max_fd; ++fd)
      to_close.push_back(fd);
  }
  for (int fd : to_close) {
    if (std::find(keep.begin(), keep.end(), fd) == keep.end()) ::close(fd);
  }
}

int64_t unixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

uint32_t Master::autoWorkerCount() {
#ifdef __linux__
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    int count = CPU_COUNT(&set);
    if (count > 0) return static_cast<uint32_t>(count);
  }
#endif
  long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<uint32_t>(online) : 1;
}

Master::Master(std::string config_path, std::shared_ptr<const config::Config> config)
    : config_path_(std::move(config_path)),
      shared_(SharedState::create()),
      client_table_(limit::ClientTable::create()),
      startup_config_(std::move(config)),
      dns_(loop_),
      health_checks_(loop_) {
  // A server added by DNS is probed at once.
  dns_.setOnChange([this](uint32_t generation) { health_checks_.addressesChanged(generation); });
  dns_.setFigures([this](const std::string& name) {
    return SharedState::figuresFor(shared_->dns_names, shared_->dns_name_count, name);
  });
  health_checks_.setFigures([this](const std::string& name) {
    return SharedState::figuresFor(shared_->health_upstreams, shared_->health_upstream_count, name);
  });
  shared_->figures.master_pid.store(::getpid());
  const int64_t now_ms = unixMillis();
  shared_->figures.start_unix_ms.store(now_ms);
  shared_->figures.last_reload_success_unix_ms.store(now_ms);
}

Master::~Master() = default;

int Master::run() {
  // Workers inherit this: a vanished client must give EPIPE, not a signal.
  ::signal(SIGPIPE, SIG_IGN);
  loop_.watchSignal(SIGHUP, [this](int) {
    SLUICE_LOG(kInfo, "SIGHUP");
    reload();
  });
  loop_.watchSignal(SIGTERM, [this](int) { stop(true, "SIGTERM"); });
  loop_.watchSignal(SIGQUIT, [this](int) { stop(true, "SIGQUIT"); });
  loop_.watchSignal(SIGINT, [this](int) { stop(false, "SIGINT"); });
  loop_.watchSignal(SIGCHLD, [this](int) { onChildExited(); });
  // Session tickets sealed by any worker open in any other, across reloads;
  // the key is replaced every hour and the previous one still opens
  // tickets for one more hour (tickets live 5 minutes anyway, OpenSSL's
  // default session lifetime).
  shared_->ticket_keys.rotate();
  ticket_rotation_ = std::make_unique<event::Timer>(loop_.timers(), [this] {
    shared_->ticket_keys.rotate();
    SLUICE_LOG(kInfo, "TLS session ticket key rotated");
    ticket_rotation_->arm(kTicketKeyRotation);
  });
  ticket_rotation_->arm(kTicketKeyRotation);
  loop_.watchSignal(SIGUSR1, [this](int) {
    SLUICE_LOG(kInfo, "SIGUSR1: reopening logs");
    log::reopen();
    for (auto& [pid, worker] : workers_)
      ::kill(pid, SIGUSR1);
  });

  ListenerSet::SlotFds fds;
  std::string error;
  if (!listeners_.reconcile(*startup_config_, workerCount(*startup_config_), &fds, &error)) {
    SLUICE_LOG(kError, error);
    return 1;
  }
  if (!startup_config_->pid_file.empty()) {
    if (!writePidFile(startup_config_->pid_file, ::getpid(), &error)) {
      SLUICE_LOG(kError, error);
      return 1;
    }
  }
  // Watch before the first workers start, so that a change made while they
  // start is not taken for the original content.
  updateWatcher();
  if (!startGeneration(startup_config_, std::move(fds))) return 1;
  loop_.run();
  listeners_.closeAll();
  // What the last generations' workers did, then the totals since start
  // (every generation's, carried across reloads and respawns).
  while (!generations_.empty()) {
    const Generation& last = generations_.begin()->second;
    for (uint32_t slot = 0; last.counters && slot < last.counters->slots(); ++slot) {
      const observe::WorkerCounters& counters = last.counters->worker(slot);
      SLUICE_LOG(kInfo, "worker slot " + std::to_string(slot) + " of generation " +
                            std::to_string(last.id) + " served " +
                            std::to_string(counters.requests.load()) + " requests on " +
                            std::to_string(counters.connections_closed.load()) + " connections");
    }
    retireGeneration(generations_.begin());
  }
  if (const uint64_t dropped = shared_->carried.access_log_lines_dropped.load(); dropped > 0) {
    SLUICE_LOG(kWarn, std::to_string(dropped) +
                          " access log lines dropped (the log's reader could not keep up)");
  }
  SLUICE_LOG(kInfo, "served " + std::to_string(shared_->carried.requests.load()) + " requests on " +
                        std::to_string(shared_->carried.connections_accepted.load()) +
                        " connections in " + std::to_string(next_generation_ - 1) +
                        " generation(s)");
  removeRuntimeFiles();
  SLUICE_LOG(kInfo, "master exiting");
  return exit_code_;
}

bool Master::startGeneration(std::shared_ptr<const config::Config> config,
                             ListenerSet::SlotFds fds) {
  uint32_t id = next_generation_++;
  Generation& generation = generations_[id];
  generation.id = id;
  generation.config = std::move(config);
  generation.listen_fds_by_slot = std::move(fds);
  pending_generation_ = id;
  uint32_t count = workerCount(*generation.config);
  generation.counters = CounterRegion::create(count, generation.config->routeCount(),
                                              generation.config->serverCount());
  if (!generation.counters) {
    SLUICE_LOG(kError,
               std::string("cannot map the counters of a new generation: ") + std::strerror(errno));
    pending_generation_ = 0;
    generations_.erase(id);
    return false;
  }
  if (!publishGeneration(generation)) {
    SLUICE_LOG(kError, "cannot start generation " + std::to_string(id) + ": " +
                           std::to_string(SharedState::kMaxLiveGenerations) +
                           " generations are still running");
    pending_generation_ = 0;
    generations_.erase(id);
    return false;
  }
  // Server names: the workers start with what the process knows already
  // (a reload keeps serving the last answers) and follow the updates.
  const CounterRegion* region = generation.counters.get();
  dns_.attach(id, generation.config, region->addressTable(), region->serverHealth(),
              [region](uint32_t index) { return region->serverInFlight(index); });
  health_checks_.attach(id, generation.config, region->addressTable(), region->serverHealth());
  SLUICE_LOG(kInfo, "starting generation " + std::to_string(id) + " with " + std::to_string(count) +
                        " worker(s)");
  for (uint32_t slot = 0; slot < count; ++slot) {
    if (!spawnWorker(generation, slot)) {
      signalGeneration(id, SIGKILL);
      pending_generation_ = 0;
      // No worker to reap would ever retire it (and take it off the live
      // table, where it would keep /metrics of the serving one at 503).
      if (workersOf(id) == 0) retireGeneration(generations_.find(id));
      return false;
    }
  }
  return true;
}

bool Master::publishGeneration(Generation& generation) {
  // Route and server series are keyed by their names, so that a reload that
  // renumbers them carries each count to the same series.
  const config::Config& config = *generation.config;
  std::vector<uint32_t> routes(config.routeCount(), SharedState::kNoLabelSet);
  std::vector<uint32_t> servers(config.serverCount(), SharedState::kNoLabelSet);
  for (const config::Listener& listener : config.listeners) {
    for (size_t i = 0; i < listener.routes.size(); ++i) {
      const config::Route& route = listener.routes[i];
      routes[route.index] = shared_->labelSetFor(LabelSet::Kind::kRoute, listener.name,
                                                 std::to_string(i), route.upstream);
    }
  }
  for (const config::Upstream& upstream : config.upstreams) {
    for (const config::UpstreamServer& server : upstream.servers) {
      // A DNS name is one series (`name:port`) over all its address slots:
      // the addresses change, the name the operator wrote does not.
      const std::string label = server.resolved() ? server.name + ":" + std::to_string(server.port)
                                                  : server.address.toString();
      const uint32_t set = shared_->labelSetFor(LabelSet::Kind::kServer, upstream.name, label, "");
      for (uint32_t slot = 0; slot < server.slots; ++slot)
        servers[server.index + slot] = set;
    }
  }
  generation.counters->setLabelSets(std::move(routes), std::move(servers));
  generation.counters->setConfigChecksum(config.sha256);
  for (LiveGeneration& live : shared_->live) {
    if (live.id.load() != 0) continue;
    shared_->beginWrite();
    live.region.store(generation.counters.get(), std::memory_order_relaxed);
    live.id.store(generation.id, std::memory_order_relaxed);
    shared_->endWrite();
    return true;
  }
  return false;
}

bool Master::spawnWorker(Generation& generation, uint32_t slot) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    SLUICE_LOG(kError, std::string("pipe: ") + std::strerror(errno));
    return false;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    SLUICE_LOG(kError, std::string("fork: ") + std::strerror(errno));
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return false;
  }
  if (pid == 0) {
    ::close(pipe_fds[0]);
    runWorkerChild(generation, slot, pipe_fds[1]);
  }
  ::close(pipe_fds[1]);
  WorkerProcess& worker = workers_[pid];
  worker.pid = pid;
  worker.generation = generation.id;
  worker.slot = slot;
  worker.started = loop_.now();
  worker.ready_pipe = std::make_unique<ReadyPipe>(*this, pid, pipe_fds[0]);
  loop_.addFd(pipe_fds[0], worker.ready_pipe.get());
  SLUICE_LOG(kDebug, "worker pid " + std::to_string(pid) + " started (generation " +
                         std::to_string(generation.id) + ", slot " + std::to_string(slot) + ")");
  return true;
}

void Master::runWorkerChild(const Generation& generation, uint32_t slot, int ready_fd) {
  pid_t master_pid = ::getppid();
#ifdef __linux__
  // If the master dies (even by SIGKILL), workers drain and exit rather than
  // serve on as orphans nobody supervises.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
  if (::getppid() != master_pid) ::_exit(1);
  // Only this slot's listening sockets: the other slots' (SO_REUSEPORT
  // groups) stay with the master and their own workers.
  std::vector<int> fds = generation.listen_fds_by_slot.at(slot);
  std::vector<int> keep = fds;
  keep.push_back(ready_fd);
  keep.push_back(log::targetFd());
  closeInheritedFds(keep);
  WorkerOptions options;
  options.ready_fd = ready_fd;
  options.not_ready = &shared_->not_ready;
  options.client_table = client_table_;
  options.counters = generation.counters.get();
  options.shared = shared_;
  options.generation = generation.id;
  options.ticket_keys = &shared_->ticket_keys;
  options.slot = slot;
  int code;
  {
    Worker worker(generation.config, std::move(fds), options);
    code = worker.run();
  }
  // _exit: the master's objects copied into this process must not run their
  // destructors here (they would close and unlink what the master owns).
  ::_exit(code);
}

void Master::ReadyPipe::onReady(uint32_t) {
  char byte;
  ssize_t n = ::read(fd_, &byte, 1);
  if (n == 1) {
    master_.onWorkerReady(pid_);
  } else if (n == 0 || (n < 0 && errno != EAGAIN)) {
    // Closed without a byte: the worker died during start; SIGCHLD handles it.
    master_.loop_.removeFd(fd_);
  }
}

void Master::onWorkerReady(pid_t pid) {
  auto it = workers_.find(pid);
  if (it == workers_.end()) return;
  WorkerProcess& worker = it->second;
  worker.ready = true;
  dropReadyPipe(worker);
  uint32_t id = worker.generation;
  if (id != pending_generation_) return;
  for (const auto& [other_pid, other] : workers_) {
    if (other.generation == id && !other.ready) return;
  }
  generationServes(id);
}

void Master::generationServes(uint32_t id) {
  pending_generation_ = 0;
  uint32_t previous = current_generation_;
  current_generation_ = id;
  shared_->figures.serving_generation.store(id);
  slot_failures_.clear();
  listeners_.commit();  // close what the new config no longer names
  SLUICE_LOG(kInfo, "generation " + std::to_string(id) + " serving");
  for (auto& [gen_id, generation] : generations_) {
    if (gen_id < id && !generation.draining) drainGeneration(generation);
  }
  if (previous != 0) {
    observe::add(shared_->figures.reloads_succeeded);
    shared_->figures.last_reload_successful.store(1);
    shared_->figures.last_reload_success_unix_ms.store(unixMillis());
    ++reloads_done_;
    last_reload_result_ = "ok";
    last_reload_errors_.clear();
  }
  writeStateFile();
  updateWatcher();
  if (reload_queued_) {
    reload_queued_ = false;
    reload();
  }
}

void Master::updateWatcher() {
  bool wanted = currentConfig()->watch_config;
  if (wanted && !watcher_) {
    watcher_ = std::make_unique<ConfigWatcher>(loop_, config_path_, [this] { reload(); });
  } else if (!wanted && watcher_) {
    watcher_.reset();
  }
}

void Master::reload() {
  if (stopping_) return;
  if (pending_generation_ != 0) {
    // One reload at a time; this one runs when the current one resolves.
    reload_queued_ = true;
    return;
  }
  SLUICE_LOG(kInfo, "reloading " + config_path_);
  config::LoadResult loaded = config::loadConfigFile(config_path_);
  for (const std::string& warning : loaded.warnings)
    SLUICE_LOG(kWarn, warning);
  if (!loaded.ok()) {
    for (const std::string& error : loaded.errors)
      SLUICE_LOG(kError, error);
    last_reload_errors_ = loaded.errors;
    reloadFailed("invalid configuration; still serving the previous one");
    return;
  }
  ListenerSet::SlotFds fds;
  std::string error;
  // Nothing is closed until the new generation serves (generationServes
  // commits); a start that fails rolls back (reloadFailed).
  if (!listeners_.prepare(*loaded.config, workerCount(*loaded.config), &fds, &error)) {
    SLUICE_LOG(kError, error);
    last_reload_errors_ = {error};
    reloadFailed("cannot bind listeners; still serving the previous configuration");
    return;
  }
  if (!startGeneration(loaded.config, std::move(fds))) {
    last_reload_errors_ = {"cannot start workers"};
    reloadFailed("cannot start workers; still serving the previous configuration");
  }
}

void Master::reloadFailed(const std::string& why) {
  SLUICE_LOG(kError, "reload failed: " + why);
  // The listeners exactly as they were: ports the failed config added are
  // closed, none that the serving generation uses was touched.
  listeners_.rollback();
  observe::add(shared_->figures.reloads_failed);
  shared_->figures.last_reload_successful.store(0);
  ++reloads_done_;
  last_reload_result_ = "failed";
  writeStateFile();
  if (reload_queued_) {
    reload_queued_ = false;
    reload();
  }
}

void Master::drainGeneration(Generation& generation) {
  generation.draining = true;
  SLUICE_LOG(kInfo, "generation " + std::to_string(generation.id) + " draining");
  signalGeneration(generation.id, SIGQUIT);
  uint32_t id = generation.id;
  generation.kill_deadline = std::make_unique<event::Timer>(loop_.timers(), [this, id] {
    SLUICE_LOG(kWarn,
               "generation " + std::to_string(id) + " did not finish draining in time; killing it");
    signalGeneration(id, SIGKILL);
  });
  generation.kill_deadline->arm(generation.config->shutdown_timeout + kKillGrace);
  // Cap the generations still draining: stop the oldest at once.
  std::vector<uint32_t> draining;
  for (auto& [gen_id, gen] : generations_) {
    if (gen.draining && workersOf(gen_id) > 0) draining.push_back(gen_id);
  }
  while (draining.size() > kMaxDrainingGenerations) {
    SLUICE_LOG(kWarn, "too many generations draining; stopping generation " +
                          std::to_string(draining.front()) + " now");
    signalGeneration(draining.front(), SIGINT);
    draining.erase(draining.begin());
  }
}

void Master::signalGeneration(uint32_t id, int sig) {
  for (auto& [pid, worker] : workers_) {
    if (worker.generation != id) continue;
    if (sig != SIGUSR1) worker.stop_requested = true;
    ::kill(pid, sig);
  }
}

size_t Master::workersOf(uint32_t generation) const {
  size_t count = 0;
  for (const auto& [pid, worker] : workers_)
    count += worker.generation == generation ? 1 : 0;
  return count;
}

void Master::dropReadyPipe(WorkerProcess& worker) {
  if (!worker.ready_pipe) return;
  loop_.removeFd(worker.ready_pipe->fd());
  ::close(worker.ready_pipe->fd());
  // The pipe's handler may be the caller: destroy it after this pass.
  std::shared_ptr<ReadyPipe> doomed(std::move(worker.ready_pipe));
  loop_.defer([doomed] {});
}

void Master::onChildExited() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    auto it = workers_.find(pid);
    if (it == workers_.end()) continue;
    WorkerProcess worker = std::move(it->second);
    workers_.erase(it);
    dropReadyPipe(worker);
    if (auto gen = generations_.find(worker.generation);
        gen != generations_.end() && gen->second.counters) {
      // What it had open is closed now (/metrics sums the gauges of live
      // slots), and /metrics no longer reads its /proc entry (the pid may
      // be reused; its CPU time is in the master's cutime/cstime now).
      // Cumulative counters stay: a respawn into the slot goes on from them.
      gen->second.counters->resetGauges(worker.slot);
    }
    Duration lifetime = std::chrono::duration_cast<Duration>(loop_.now() - worker.started);
    bool expected = worker.stop_requested || stopping_;
    if (expected) {
      SLUICE_LOG(kDebug, "worker pid " + std::to_string(pid) + " " + describeExit(status));
    } else {
      SLUICE_LOG(kError, "worker pid " + std::to_string(pid) + " (generation " +
                             std::to_string(worker.generation) + ", slot " +
                             std::to_string(worker.slot) + ") " + describeExit(status));
    }
    if (!expected && worker.generation == pending_generation_ && !worker.ready) {
      uint32_t failed = pending_generation_;
      signalGeneration(failed, SIGKILL);
      pending_generation_ = 0;
      if (current_generation_ == 0) {
        SLUICE_LOG(kError, "workers failed to start; exiting");
        exit_code_ = 1;
        stop(false, "startup failure");
      } else {
        last_reload_errors_ = {"a worker of the new generation exited during start"};
        reloadFailed("new workers failed to start; still serving the previous configuration");
      }
    } else if (!expected && worker.generation == current_generation_) {
      scheduleRespawn(worker.slot, lifetime);
    }
    // A generation is forgotten once its last worker is gone, unless it is
    // the one serving or starting (a failed start leaves no workers either).
    auto gen = generations_.find(worker.generation);
    if (gen != generations_.end() && workersOf(worker.generation) == 0 &&
        worker.generation != current_generation_ && worker.generation != pending_generation_) {
      SLUICE_LOG(kInfo, "generation " + std::to_string(worker.generation) + " finished");
      retireGeneration(gen);
    }
  }
  maybeExit();
}

void Master::retireGeneration(std::map<uint32_t, Generation>::iterator generation) {
  // Its cumulative counts live on in the carried totals, so that figures
  // summed over the live generations plus these never go backwards.
  if (const CounterRegion* region = generation->second.counters.get()) {
    // One step for /metrics readers (the seqlock): the generation is either
    // live or carried, never both nor neither.
    shared_->beginWrite();
    region->addWorkerTotalsTo(&shared_->carried);
    region->addKeyedTotalsTo(shared_->label_sets);
    for (LiveGeneration& live : shared_->live) {
      if (live.id.load(std::memory_order_relaxed) != generation->first) continue;
      live.id.store(0, std::memory_order_relaxed);
      live.region.store(nullptr, std::memory_order_relaxed);
    }
    shared_->endWrite();
  }
  health_checks_.detach(generation->first);
  dns_.detach(generation->first);
  generations_.erase(generation);
}

void Master::scheduleRespawn(uint32_t slot, Duration lifetime) {
  uint32_t& failures = slot_failures_[slot];
  if (lifetime >= kHealthyLifetime) failures = 0;
  Duration delay = kRespawnBaseDelay * (1u << std::min<uint32_t>(failures, 10));
  delay = std::min(delay, kRespawnMaxDelay);
  ++failures;
  SLUICE_LOG(kWarn, "respawning worker slot " + std::to_string(slot) + " in " +
                        std::to_string(delay.count()) + "ms");
  // One timer per slot, re-armed: a crash loop does not pile up timers.
  RespawnTimer& respawn = respawn_timers_[slot];
  respawn.generation = current_generation_;
  if (!respawn.timer) {
    respawn.timer =
        std::make_unique<event::Timer>(loop_.timers(), [this, slot] { respawnDue(slot); });
  }
  respawn.timer->arm(delay);
}

void Master::respawnDue(uint32_t slot) {
  const uint32_t generation = respawn_timers_[slot].generation;
  if (stopping_ || generation != current_generation_) return;
  auto gen = generations_.find(generation);
  if (gen == generations_.end()) return;
  if (spawnWorker(gen->second, slot)) {
    observe::add(shared_->figures.worker_respawns);
  } else {
    scheduleRespawn(slot, Duration(0));
  }
}

void Master::stop(bool graceful, const char* why) {
  if (stopping_ && graceful) return;
  const config::Config& config = *currentConfig();
  if (graceful && config.drain_delay.count() > 0 && !drain_delay_timer_) {
    // Fail readiness first and keep serving, so that load balancers (a
    // Kubernetes Service, say) stop sending before connections are refused.
    shared_->not_ready.store(true);
    SLUICE_LOG(kInfo, std::string(why) + ": not ready; serving " +
                          std::to_string(config.drain_delay.count()) +
                          "ms more (drain_delay) before draining");
    std::string reason = why;
    drain_delay_timer_ = std::make_unique<event::Timer>(
        loop_.timers(), [this, reason] { beginStop(true, reason + " after drain_delay"); });
    drain_delay_timer_->arm(config.drain_delay);
    stopping_ = true;  // no reloads or respawns meanwhile
    return;
  }
  if (drain_delay_timer_) drain_delay_timer_->cancel();
  beginStop(graceful, why);
}

void Master::beginStop(bool graceful, const std::string& why) {
  stopping_ = true;
  shared_->not_ready.store(true);
  Duration timeout = currentConfig()->shutdown_timeout;
  SLUICE_LOG(kInfo, why + (graceful ? ": draining workers" : ": stopping now"));
  for (auto& [pid, worker] : workers_) {
    worker.stop_requested = true;
    ::kill(pid, graceful ? SIGTERM : SIGINT);
  }
  stop_deadline_ = std::make_unique<event::Timer>(loop_.timers(), [this] {
    SLUICE_LOG(kWarn, "workers still running at the deadline; killing them");
    for (auto& [pid, worker] : workers_)
      ::kill(pid, SIGKILL);
  });
  stop_deadline_->arm(graceful ? timeout + kKillGrace : kKillGrace);
  maybeExit();
}

const config::Config* Master::currentConfig() const {
  auto it = generations_.find(current_generation_);
  return it != generations_.end() ? it->second.config.get() : startup_config_.get();
}

void Master::maybeExit() {
  // During drain_delay the workers are meant to keep running.
  if (stopping_ && workers_.empty() && !(drain_delay_timer_ && drain_delay_timer_->armed())) {
    loop_.stop();
  }
}

void Master::writeStateFile() {
  if (startup_config_->pid_file.empty()) return;
  RuntimeState state;
  state.pid = ::getpid();
  state.generation = current_generation_;
  state.reloads = reloads_done_;
  state.last_reload = last_reload_result_;
  state.errors = last_reload_errors_;
  std::string error;
  if (!writeRuntimeState(stateFilePath(startup_config_->pid_file), state, &error)) {
    SLUICE_LOG(kWarn, error);
  }
}

void Master::removeRuntimeFiles() {
  if (startup_config_->pid_file.empty()) return;
  ::unlink(startup_config_->pid_file.c_str());
  ::unlink(stateFilePath(startup_config_->pid_file).c_str());
}

}  // namespace sluice::process
