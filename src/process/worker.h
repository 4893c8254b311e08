// Worker: one event loop serving every listener of one config snapshot —
// accepts connections, owns them, drains on SIGTERM/SIGQUIT, stops on SIGINT.
// Owned by main (a single process for now; the master/worker split builds on
// it). Single-threaded.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "event/event_loop.h"
#include "event/timer.h"
#include "limit/client_table.h"
#include "observe/access_log.h"
#include "observe/counters.h"
#include "observe/request_observers.h"
#include "process/counter_region.h"
#include "process/metrics.h"
#include "process/shared_state.h"
#include "process/status.h"
#include "proxy/server_connection.h"
#include "proxy/server_context.h"
#include "tls/ticket_keys.h"
#include "upstream/connector.h"

namespace sluice::process {

struct WorkerOptions {
  // Written with one byte once the worker accepts connections, then closed
  // (how the master knows a new generation serves). -1 = none.
  int ready_fd = -1;
  // The master's readiness flag (admin /ready), or null.
  const std::atomic<bool>* not_ready = nullptr;
  // Per-client limits shared by every worker (the master's), or null: then
  // the worker keeps a table of its own.
  limit::ClientTable* client_table = nullptr;
  // The generation's counters (the master's) and this worker's slot in
  // them, or null: then the worker counts in memory of its own.
  const CounterRegion* counters = nullptr;
  uint32_t slot = 0;
  // The master's shared state (carried totals, live generations, reloads)
  // and this worker's generation id, for /metrics; null = the worker's own
  // counters only.
  const SharedState* shared = nullptr;
  uint32_t generation = 0;
  // TLS session-ticket keys shared by all workers (the master's), or null:
  // then the worker makes its own.
  tls::TicketKeyRing* ticket_keys = nullptr;
};

class Worker {
 public:
  // `listen_fds` are bound, listening, non-blocking sockets for
  // config->listeners, then the admin listener if configured. The worker
  // takes ownership of them.
  Worker(std::shared_ptr<const config::Config> config, std::vector<int> listen_fds,
         WorkerOptions options = {});
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Serves until stopped by a signal; returns the process exit code.
  int run();

 private:
  class Acceptor final : public event::IoHandler {
   public:
    Acceptor(Worker& worker, size_t listener_index, int fd)
        : worker_(worker), listener_index_(listener_index), fd_(fd) {}
    void onReady(uint32_t ready_bits) override;
    int fd() const { return fd_; }

   private:
    Worker& worker_;
    size_t listener_index_;
    int fd_;
  };

  void acceptFrom(size_t listener_index, int listen_fd);
  void onConnectionClosed(proxy::ServerConnection* connection);
  void resumeAccepting();
  void beginDrain(const char* why);
  void stopAccepting();
  void maybeFinishDrain();

  event::EventLoop loop_;
  observe::AccessLog access_log_;
  upstream::SocketConnector connector_;
  // Counters when no shared region is given (a worker run on its own).
  observe::WorkerCounters local_worker_counters_;
  std::vector<observe::RouteCounters> local_route_counters_;
  std::vector<observe::ServerCounters> local_server_counters_;
  // What the master's DnsUpdater resolved the servers' names to (in the
  // generation's region); unset without a region, where names never resolve.
  upstream::AddressTable address_table_;
  std::unique_ptr<observe::AccessLogObserver> access_log_observer_;
  std::unique_ptr<observe::CountingObserver> counting_observer_;
  std::unique_ptr<MetricsCollector> metrics_;  // when run by a master
  std::unique_ptr<StatusCollector> status_;    // when run by a master
  proxy::ServerContext server_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  // Open client connections; each knows its slot (ownerSlot), so removing
  // one is a swap with the last: 8 bytes per connection, no node to allocate.
  std::vector<std::unique_ptr<proxy::ServerConnection>> connections_;
  void addConnection(std::unique_ptr<proxy::ServerConnection> connection);
  // A connection just accepted: added to the table, then started (dropped
  // again if it cannot start).
  void adopt(std::unique_ptr<proxy::ServerConnection> connection, bool handshake);
  void removeConnection(proxy::ServerConnection* connection);
  std::unique_ptr<event::Timer> drain_deadline_;
  bool accepting_ = true;
  bool accept_paused_ = false;                  // at limits.max_connections, or out of fds
  std::unique_ptr<event::Timer> accept_retry_;  // after EMFILE/ENFILE
  int exit_code_ = 0;
  std::string start_error_;  // why run() must fail at once (set by the constructor)
  WorkerOptions options_;
  limit::ClientTable* own_client_table_ = nullptr;
  tls::TicketKeyRing own_ticket_keys_;
};

}  // namespace sluice::process
