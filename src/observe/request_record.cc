#include "observe/request_record.h"

namespace sluice::observe {

const char* outcomeName(RequestOutcome outcome) {
  switch (outcome) {
    case RequestOutcome::kOk:
      return "ok";
    case RequestOutcome::kBadRequest:
      return "bad_request";
    case RequestOutcome::kClientAbort:
      return "client_abort";
    case RequestOutcome::kClientTimeout:
      return "client_timeout";
    case RequestOutcome::kUpstreamUnavailable:
      return "upstream_unavailable";
    case RequestOutcome::kUpstreamTimeout:
      return "upstream_timeout";
    case RequestOutcome::kUpstreamReset:
      return "upstream_reset";
    case RequestOutcome::kUpstreamInvalid:
      return "upstream_invalid";
    case RequestOutcome::kDraining:
      return "draining";
    case RequestOutcome::kLimited:
      return "limited";
  }
  return "unknown";
}

}  // namespace sluice::observe
