// SmoothWeightedRoundRobin: nginx's smooth weighted round robin — each pick
// adds every server's weight to its running score, takes the highest and
// subtracts the total — so weights are honoured and picks interleave
// (5:1:1 gives a a b a c a a, not a a a a a b c). One per cluster per worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice::upstream {

class SmoothWeightedRoundRobin {
 public:
  explicit SmoothWeightedRoundRobin(std::vector<uint32_t> weights);

  // Index of the next server, skipping those whose bit is set in `excluded`
  // (servers already tried for this request); -1 when all are excluded.
  int pick(const std::vector<bool>& excluded);
  size_t size() const { return weights_.size(); }

 private:
  std::vector<uint32_t> weights_;
  std::vector<int64_t> current_;
};

}  // namespace sluice::upstream
