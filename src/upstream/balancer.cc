#include "upstream/balancer.h"

namespace sluice::upstream {

SmoothWeightedRoundRobin::SmoothWeightedRoundRobin(std::vector<uint32_t> weights)
    : weights_(std::move(weights)), current_(weights_.size(), 0) {}

int SmoothWeightedRoundRobin::pick(const std::vector<bool>& excluded) {
  int best = -1;
  int64_t total = 0;
  for (size_t i = 0; i < weights_.size(); ++i) {
    if (i < excluded.size() && excluded[i]) continue;
    current_[i] += weights_[i];
    total += weights_[i];
    if (best < 0 || current_[i] > current_[static_cast<size_t>(best)]) best = static_cast<int>(i);
  }
  if (best >= 0) current_[static_cast<size_t>(best)] -= total;
  return best;
}

}  // namespace sluice::upstream
