// Master: the process that owns the configuration, the listening sockets and
// the pid file, and supervises generations of worker processes. It carries
// no request traffic. SIGHUP reloads (a new generation on the new config,
// then the old one drains); SIGTERM/SIGQUIT drain and exit; SIGINT exits at
// once; SIGUSR1 reopens logs; a worker that dies is respawned with backoff.
// Created by main; single-threaded, on its own event loop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "event/event_loop.h"
#include "event/timer.h"
#include "limit/client_table.h"
#include "process/config_watcher.h"
#include "process/counter_region.h"
#include "process/listener_set.h"
#include "process/shared_state.h"
#include "upstream/dns_updater.h"
#include "upstream/health_checker.h"

namespace sluice::process {

class Master {
 public:
  Master(std::string config_path, std::shared_ptr<const config::Config> config);
  ~Master();
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  // Serves until stopped; returns the process exit code.
  int run();

  // Number of workers `workers: auto` means here: the CPUs this process may
  // run on (respects cpusets/affinity, as in containers).
  static uint32_t autoWorkerCount();

 private:
  struct Generation {
    uint32_t id = 0;
    std::shared_ptr<const config::Config> config;
    // Per worker slot, its listening fds in config->listeners order (admin
    // last); owned by listeners_.
    ListenerSet::SlotFds listen_fds_by_slot;
    bool draining = false;
    std::unique_ptr<event::Timer> kill_deadline;
    // Its workers' counters (CounterRegion), folded into
    // SharedState::carried when the generation finishes.
    std::unique_ptr<CounterRegion> counters;
  };

  // Watches one worker's readiness pipe.
  class ReadyPipe final : public event::IoHandler {
   public:
    ReadyPipe(Master& master, pid_t pid, int fd) : master_(master), pid_(pid), fd_(fd) {}
    void onReady(uint32_t ready_bits) override;
    int fd() const { return fd_; }

   private:
    Master& master_;
    pid_t pid_;
    int fd_;
  };

  struct WorkerProcess {
    pid_t pid = -1;
    uint32_t generation = 0;
    uint32_t slot = 0;
    bool ready = false;
    bool stop_requested = false;
    event::TimePoint started;
    std::unique_ptr<ReadyPipe> ready_pipe;
  };

  bool startGeneration(std::shared_ptr<const config::Config> config, ListenerSet::SlotFds fds);
  void retireGeneration(std::map<uint32_t, Generation>::iterator generation);
  // Gives the new generation's routes and servers their label sets and
  // enters it in SharedState::live (false: no free entry).
  bool publishGeneration(Generation& generation);
  bool spawnWorker(Generation& generation, uint32_t slot);
  [[noreturn]] void runWorkerChild(const Generation& generation, uint32_t slot, int ready_fd);
  void onWorkerReady(pid_t pid);
  void onChildExited();
  void generationServes(uint32_t id);
  void reload();
  void reloadFailed(const std::string& why);
  void drainGeneration(Generation& generation);
  void signalGeneration(uint32_t id, int sig);
  void respawnDue(uint32_t slot);
  void scheduleRespawn(uint32_t slot, event::Duration lifetime);
  void stop(bool graceful, const char* why);
  void beginStop(bool graceful, const std::string& why);
  const config::Config* currentConfig() const;
  void maybeExit();
  void writeStateFile();
  void removeRuntimeFiles();
  void dropReadyPipe(WorkerProcess& worker);
  size_t workersOf(uint32_t generation) const;

  std::string config_path_;
  event::EventLoop loop_;
  ListenerSet listeners_;
  SharedState* shared_;
  // Per-client limits, shared by all workers of all generations.
  limit::ClientTable* client_table_;
  std::map<uint32_t, Generation> generations_;  // by id, oldest first
  std::map<pid_t, WorkerProcess> workers_;
  uint32_t next_generation_ = 1;
  uint32_t current_generation_ = 0;  // the serving one (0 before the first is ready)
  uint32_t pending_generation_ = 0;  // starting after a reload (0 = none)
  bool reload_queued_ = false;
  bool stopping_ = false;
  int exit_code_ = 0;
  std::shared_ptr<const config::Config> startup_config_;
  // Resolves the servers' DNS names once for all workers of all generations.
  upstream::DnsUpdater dns_;
  // Active health checks, one probe per server for the whole process.
  upstream::HealthChecker health_checks_;
  // Respawn backoff per slot of the serving generation.
  std::map<uint32_t, uint32_t> slot_failures_;
  struct RespawnTimer {
    std::unique_ptr<event::Timer> timer;
    uint32_t generation = 0;  // the generation the respawn is for
  };
  std::map<uint32_t, RespawnTimer> respawn_timers_;  // by slot
  std::unique_ptr<event::Timer> stop_deadline_;
  std::unique_ptr<event::Timer> ticket_rotation_;
  std::unique_ptr<event::Timer> drain_delay_timer_;
  std::unique_ptr<ConfigWatcher> watcher_;  // when the serving config says watch_config
  void updateWatcher();
  // What `sluice -s reload` waits for.
  uint64_t reloads_done_ = 0;
  std::string last_reload_result_ = "none";
  std::vector<std::string> last_reload_errors_;
};

}  // namespace sluice::process
