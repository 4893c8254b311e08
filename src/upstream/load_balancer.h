// LoadBalancer: picks the host for each attempt of a request, given the
// request (for hashing policies) and the hosts already tried, and hears the
// outcome of every attempt. One implementation per `balance` policy, one file
// each; built per cluster per worker by makeLoadBalancer(). Owned by its
// Cluster; single-threaded.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "event/clock.h"
#include "upstream/host.h"

namespace sluice::upstream {

// Hosts of a cluster already tried by one request (by Host::cluster_index).
class TriedSet {
 public:
  bool contains(uint32_t index) const {
    return index < 64 ? (bits_ >> index) & 1 : index - 64 < more_.size() && more_[index - 64];
  }
  void add(uint32_t index) {
    if (index < 64) {
      bits_ |= uint64_t{1} << index;
      return;
    }
    if (more_.size() <= index - 64) more_.resize(index - 63, false);
    more_[index - 64] = true;
  }
  size_t count() const;

 private:
  uint64_t bits_ = 0;
  std::vector<bool> more_;  // clusters of more than 64 servers only
};

struct PickContext {
  const TriedSet* tried = nullptr;  // null = none tried yet
  std::string_view hash_key;        // for hashing policies
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // The host for the next attempt, never one in `context.tried`; null when
  // every host has been tried.
  virtual Host* pick(const PickContext& context) = 0;
  // The outcome of an attempt on `host` (success or failure) and how long it
  // took; policies that learn (p2c_ewma) use it.
  virtual void onAttemptDone(Host& host, AttemptOutcome outcome, event::Duration latency) {
    (void)host;
    (void)outcome;
    (void)latency;
  }
};

// `hosts` outlive the balancer (the Cluster owns both). `seed` feeds the
// randomized policies (tests fix it); `clock` times p2c_ewma's decay (the
// worker loop's clock).
std::unique_ptr<LoadBalancer> makeLoadBalancer(const config::Upstream& upstream,
                                               const std::vector<Host*>& hosts, uint64_t seed,
                                               const event::Clock& clock);

// The untried hosts, healthy ones if any are left (else all untried: what
// to do when every host is out is the health policy's call, and trying one
// beats refusing at once). Shared by the policies.
void candidates(const std::vector<Host*>& hosts, const PickContext& context,
                std::vector<Host*>* out);

}  // namespace sluice::upstream
