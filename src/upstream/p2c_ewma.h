// P2cEwmaBalancer (`balance: p2c_ewma`): power of two choices over peak-EWMA
// latency (Finagle's and Linkerd's balancer): draw two distinct candidates,
// take the one with the lower cost = EWMA latency × (requests in flight + 1)
// / weight. The EWMA jumps up at once to a slower sample (peak sensitivity)
// and decays with time (τ = 10 s), also while a server is not picked, so a
// server once slow is tried again. Failures count as a 1 s sample. One per
// cluster per worker: latency and in-flight counts are this worker's.
#pragma once

#include <random>
#include <vector>

#include "event/clock.h"
#include "upstream/load_balancer.h"

namespace sluice::upstream {

class P2cEwmaBalancer final : public LoadBalancer {
 public:
  P2cEwmaBalancer(const std::vector<Host*>& hosts, uint64_t seed,
                  const event::Clock& clock = event::SystemClock::instance());
  Host* pick(const PickContext& context) override;
  void onAttemptDone(Host& host, AttemptOutcome outcome, event::Duration latency) override;
  // The current cost of `host` (for tests).
  double cost(const Host& host);

 private:
  struct Ewma {
    double latency_ms = 0;  // 0 until the first sample: a new server gets tried
    event::TimePoint updated{};
  };
  void decay(Ewma& ewma, event::TimePoint now) const;

  std::vector<Host*> hosts_;
  std::vector<Ewma> ewma_;  // by Host::cluster_index
  std::vector<Host*> scratch_;
  std::mt19937_64 rng_;
  const event::Clock& clock_;
};

}  // namespace sluice::upstream
