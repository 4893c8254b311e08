#include "upstream/least_conn.h"

namespace sluice::upstream {

Host* LeastConnBalancer::pick(const PickContext& context) {
  candidates(hosts_, context, &scratch_);
  if (scratch_.empty()) return nullptr;
  // Compare in_flight_a / weight_a with in_flight_b / weight_b without
  // division: a * wb versus b * wa.
  tied_.clear();
  const Host* best = nullptr;
  int64_t best_load = 0;
  for (Host* host : scratch_) {
    const int64_t load = host->inFlightEverywhere();
    if (best == nullptr || load * best->weight < best_load * host->weight) {
      best = host;
      best_load = load;
      tied_.assign(1, host);
    } else if (load * best->weight == best_load * host->weight) {
      tied_.push_back(host);
    }
  }
  if (tied_.size() == 1) return tied_.front();
  return tied_[std::uniform_int_distribution<size_t>(0, tied_.size() - 1)(rng_)];
}

}  // namespace sluice::upstream
