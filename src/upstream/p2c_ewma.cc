#include "upstream/p2c_ewma.h"

#include <algorithm>
#include <cmath>

namespace sluice::upstream {
namespace {

constexpr double kDecayMs = 10000;          // τ
constexpr double kFailurePenaltyMs = 1000;  // what a failed attempt counts as

}  // namespace

P2cEwmaBalancer::P2cEwmaBalancer(const std::vector<Host*>& hosts, uint64_t seed,
                                 const event::Clock& clock)
    : hosts_(hosts), rng_(seed), clock_(clock) {
  // By Host::cluster_index, which may exceed hosts.size() when the cluster
  // offers only the present hosts of its slots (DNS names).
  size_t slots = 0;
  for (const Host* host : hosts)
    slots = std::max<size_t>(slots, host->cluster_index + 1);
  ewma_.resize(slots);
  const event::TimePoint now = clock_.now();
  for (Ewma& e : ewma_)
    e.updated = now;
}

void P2cEwmaBalancer::decay(Ewma& ewma, event::TimePoint now) const {
  const double elapsed_ms = std::chrono::duration<double, std::milli>(now - ewma.updated).count();
  if (elapsed_ms <= 0) return;
  ewma.latency_ms *= std::exp(-elapsed_ms / kDecayMs);
  ewma.updated = now;
}

double P2cEwmaBalancer::cost(const Host& host) {
  Ewma& ewma = ewma_[host.cluster_index];
  decay(ewma, clock_.now());
  const double in_flight = static_cast<double>(host.in_flight) + 1.0;
  return ewma.latency_ms * in_flight / static_cast<double>(host.weight);
}

Host* P2cEwmaBalancer::pick(const PickContext& context) {
  candidates(hosts_, context, &scratch_);
  if (scratch_.empty()) return nullptr;
  if (scratch_.size() == 1) return scratch_.front();
  std::uniform_int_distribution<size_t> draw(0, scratch_.size() - 1);
  const size_t a = draw(rng_);
  size_t b = draw(rng_);
  if (b == a) b = (a + 1) % scratch_.size();
  Host* first = scratch_[a];
  Host* second = scratch_[b];
  const double cost_a = cost(*first);
  const double cost_b = cost(*second);
  if (cost_a == cost_b) {
    // Equal (both unmeasured, say): the emptier one, then either.
    if (first->in_flight != second->in_flight) {
      return first->in_flight < second->in_flight ? first : second;
    }
    return first;
  }
  return cost_a < cost_b ? first : second;
}

void P2cEwmaBalancer::onAttemptDone(Host& host, AttemptOutcome outcome, event::Duration latency) {
  if (outcome == AttemptOutcome::kCancelled) return;
  double sample = static_cast<double>(latency.count());
  if (isFailure(outcome)) sample = std::max(sample, kFailurePenaltyMs);
  // A host that left the balancer (its address left DNS) finishing a request.
  if (host.cluster_index >= ewma_.size()) return;
  Ewma& ewma = ewma_[host.cluster_index];
  const event::TimePoint now = clock_.now();
  const double elapsed_ms = std::chrono::duration<double, std::milli>(now - ewma.updated).count();
  if (sample > ewma.latency_ms) {
    ewma.latency_ms = sample;  // peak: slower at once
  } else {
    const double w = std::exp(-std::max(elapsed_ms, 0.0) / kDecayMs);
    ewma.latency_ms = ewma.latency_ms * w + sample * (1 - w);
  }
  ewma.updated = now;
}

}  // namespace sluice::upstream
