#include "upstream/random.h"

namespace sluice::upstream {

Host* RandomBalancer::pick(const PickContext& context) {
  candidates(hosts_, context, &scratch_);
  if (scratch_.empty()) return nullptr;
  uint64_t total = 0;
  for (const Host* host : scratch_)
    total += host->weight;
  uint64_t point = std::uniform_int_distribution<uint64_t>(0, total - 1)(rng_);
  for (Host* host : scratch_) {
    if (point < host->weight) return host;
    point -= host->weight;
  }
  return scratch_.back();
}

}  // namespace sluice::upstream
