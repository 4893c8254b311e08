#include "observe/counters.h"

#include <cstddef>

namespace sluice::observe {

// offsetof on these structs is well defined: std::atomic of an integer is a
// standard-layout type, so every counters struct is standard-layout too.
#define SLUICE_COUNTER(type, field)     \
  CounterField {                        \
#field, offsetof(type, field), true \
  }
#define SLUICE_GAUGE(type, field)        \
  CounterField {                         \
#field, offsetof(type, field), false \
  }

std::span<const CounterField> WorkerCounters::fields() {
  static constexpr CounterField kFields[] = {
      SLUICE_COUNTER(WorkerCounters, connections_accepted),
      SLUICE_COUNTER(WorkerCounters, connections_closed),
      SLUICE_GAUGE(WorkerCounters, connections_active),
      SLUICE_GAUGE(WorkerCounters, connections_idle),
      SLUICE_COUNTER(WorkerCounters, requests),
      SLUICE_COUNTER(WorkerCounters, bytes_received),
      SLUICE_COUNTER(WorkerCounters, bytes_sent),
      SLUICE_COUNTER(WorkerCounters, accept_errors),
      SLUICE_COUNTER(WorkerCounters, access_log_lines_dropped),
      SLUICE_COUNTER(WorkerCounters, requests_limited),
      SLUICE_COUNTER(WorkerCounters, retry_budget_exhausted),
  };
  return kFields;
}

std::span<const CounterField> RouteCounters::fields() {
  static constexpr size_t kRequests = offsetof(RouteCounters, requests);
  static constexpr CounterField kFields[] = {
      {"requests_1xx", kRequests + 0 * sizeof(Counter), true},
      {"requests_2xx", kRequests + 1 * sizeof(Counter), true},
      {"requests_3xx", kRequests + 2 * sizeof(Counter), true},
      {"requests_4xx", kRequests + 3 * sizeof(Counter), true},
      {"requests_5xx", kRequests + 4 * sizeof(Counter), true},
      {"requests_no_response", kRequests + 5 * sizeof(Counter), true},
      SLUICE_COUNTER(RouteCounters, bytes_received),
      SLUICE_COUNTER(RouteCounters, bytes_sent),
  };
  static_assert(kStatusClasses == 6, "one field per status class above");
  return kFields;
}

std::span<const CounterField> ServerCounters::fields() {
  static constexpr CounterField kFields[] = {
      SLUICE_COUNTER(ServerCounters, requests),
      SLUICE_GAUGE(ServerCounters, in_flight),
      SLUICE_COUNTER(ServerCounters, connect_failures),
      SLUICE_COUNTER(ServerCounters, timeouts),
      SLUICE_COUNTER(ServerCounters, resets),
      SLUICE_COUNTER(ServerCounters, responses_5xx),
      SLUICE_COUNTER(ServerCounters, invalid_responses),
      SLUICE_COUNTER(ServerCounters, connections_opened),
      SLUICE_GAUGE(ServerCounters, connections_active),
      SLUICE_GAUGE(ServerCounters, connections_idle),
      SLUICE_COUNTER(ServerCounters, retries),
      SLUICE_COUNTER(ServerCounters, ejections),
  };
  return kFields;
}

#undef SLUICE_COUNTER
#undef SLUICE_GAUGE

}  // namespace sluice::observe
