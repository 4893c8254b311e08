// HealthChecker: active health checks (`upstreams.NAME.health_check`), run
// by the master for the whole process: one probe per server per interval
// (with ±10 % jitter so servers are not probed in lockstep), whatever the
// number of workers. A probe is `GET path` with `Connection: close` over a
// new connection (TLS when the upstream uses TLS, verified the same way);
// a status in `expect` before `timeout` passes, anything else (refused,
// reset, timeout, another status) fails. `unhealthy` failures in a row take
// the server out (ServerHealth::active_down, read by every worker's
// Cluster), `healthy` passes in a row bring it back; each change is logged
// once. Servers start in service and are probed at once, a server added by
// DNS too (addressesChanged()). Probes stop with their generation. Owned by
// the master; single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "event/event_loop.h"
#include "event/timer.h"
#include "upstream/connector.h"
#include "upstream/named_figures.h"
#include "upstream/resolved_addresses.h"
#include "upstream/server_health.h"

namespace sluice::upstream {

class HealthChecker {
 public:
  explicit HealthChecker(event::EventLoop& loop);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Starts probing the servers of `generation`'s upstreams that have a
  // health_check (numeric addresses now, DNS ones as they appear in `table`).
  void attach(uint32_t generation, std::shared_ptr<const config::Config> config, AddressTable table,
              ServerHealth* health);
  void detach(uint32_t generation);
  // `generation`'s DNS table changed: probe new addresses, drop gone ones.
  void addressesChanged(uint32_t generation);
  size_t probesRunning() const;
  // Where probes, failed probes, outages and recoveries are counted per
  // upstream for the process (SharedState, for /metrics).
  void setFigures(FiguresFor figures) { figures_ = std::move(figures); }

 private:
  class Probe;
  struct Target;
  struct Attached;
  void syncTargets(Attached& attached);

  event::EventLoop& loop_;
  SocketConnector sockets_;
  std::map<uint32_t, std::unique_ptr<Attached>> generations_;
  uint64_t random_state_;
  FiguresFor figures_;
};

}  // namespace sluice::upstream
