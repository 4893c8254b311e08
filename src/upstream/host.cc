#include "upstream/host.h"

#include "upstream/conn_pool.h"

namespace sluice::upstream {

Host::Host() = default;

int64_t Host::inFlightEverywhere() const {
  if (peers.empty()) return in_flight;
  int64_t total = 0;
  for (const observe::ServerCounters* peer : peers)
    total += peer->in_flight.load(std::memory_order_relaxed);
  return total;
}
Host::~Host() = default;

const char* attemptOutcomeName(AttemptOutcome outcome) {
  switch (outcome) {
    case AttemptOutcome::kSuccess:
      return "success";
    case AttemptOutcome::kConnectFailure:
      return "connect failure";
    case AttemptOutcome::kTimeout:
      return "timeout";
    case AttemptOutcome::kReset:
      return "reset";
    case AttemptOutcome::kHttp5xx:
      return "5xx";
    case AttemptOutcome::kInvalid:
      return "invalid response";
    case AttemptOutcome::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

bool isFailure(AttemptOutcome outcome) {
  return outcome != AttemptOutcome::kSuccess && outcome != AttemptOutcome::kCancelled;
}

}  // namespace sluice::upstream
