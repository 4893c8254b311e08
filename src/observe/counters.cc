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
      {"tls_handshakes_tls12_full", offsetof(WorkerCounters, tls_handshakes), true},
      {"tls_handshakes_tls12_resumed", offsetof(WorkerCounters, tls_handshakes) + sizeof(Counter),
       true},
      {"tls_handshakes_tls13_full", offsetof(WorkerCounters, tls_handshakes) + 2 * sizeof(Counter),
       true},
      {"tls_handshakes_tls13_resumed",
       offsetof(WorkerCounters, tls_handshakes) + 3 * sizeof(Counter), true},
      {"tls_handshake_failures_protocol", offsetof(WorkerCounters, tls_handshake_failures), true},
      {"tls_handshake_failures_eof",
       offsetof(WorkerCounters, tls_handshake_failures) + sizeof(Counter), true},
      {"tls_handshake_failures_timeout",
       offsetof(WorkerCounters, tls_handshake_failures) + 2 * sizeof(Counter), true},
      SLUICE_GAUGE(WorkerCounters, pid),
      SLUICE_GAUGE(WorkerCounters, draining),
  };
  static_assert(kTlsFailures == 3, "one field per TlsFailure above");
  static_assert(kTlsHandshakeKinds == 4, "one field per handshake kind above");
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
      {"duration_bucket_0", offsetof(RouteCounters, duration) + 0 * sizeof(Counter), true},
      {"duration_bucket_1", offsetof(RouteCounters, duration) + 1 * sizeof(Counter), true},
      {"duration_bucket_2", offsetof(RouteCounters, duration) + 2 * sizeof(Counter), true},
      {"duration_bucket_3", offsetof(RouteCounters, duration) + 3 * sizeof(Counter), true},
      {"duration_bucket_4", offsetof(RouteCounters, duration) + 4 * sizeof(Counter), true},
      {"duration_bucket_5", offsetof(RouteCounters, duration) + 5 * sizeof(Counter), true},
      {"duration_bucket_6", offsetof(RouteCounters, duration) + 6 * sizeof(Counter), true},
      {"duration_bucket_7", offsetof(RouteCounters, duration) + 7 * sizeof(Counter), true},
      {"duration_bucket_8", offsetof(RouteCounters, duration) + 8 * sizeof(Counter), true},
      {"duration_bucket_9", offsetof(RouteCounters, duration) + 9 * sizeof(Counter), true},
      {"duration_bucket_10", offsetof(RouteCounters, duration) + 10 * sizeof(Counter), true},
      {"duration_bucket_11", offsetof(RouteCounters, duration) + 11 * sizeof(Counter), true},
      {"duration_bucket_12", offsetof(RouteCounters, duration) + 12 * sizeof(Counter), true},
      {"duration_bucket_13", offsetof(RouteCounters, duration) + 13 * sizeof(Counter), true},
      {"duration_bucket_14", offsetof(RouteCounters, duration) + 14 * sizeof(Counter), true},
      {"duration_bucket_15", offsetof(RouteCounters, duration) + 15 * sizeof(Counter), true},
      {"duration_bucket_16", offsetof(RouteCounters, duration) + 16 * sizeof(Counter), true},
      {"duration_bucket_17", offsetof(RouteCounters, duration) + 17 * sizeof(Counter), true},
      {"duration_bucket_18", offsetof(RouteCounters, duration) + 18 * sizeof(Counter), true},
      {"duration_sum_us", offsetof(RouteCounters, duration) + offsetof(Histogram, sum_us), true},
  };
  static_assert(kStatusClasses == 6, "one field per status class above");
  static_assert(kHistogramBounds + 1 == 19, "one field per histogram bucket above");
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
      SLUICE_COUNTER(ServerCounters, tls_handshakes),
      SLUICE_COUNTER(ServerCounters, tls_resumed),
      {"response_time_bucket_0", offsetof(ServerCounters, response_time) + 0 * sizeof(Counter),
       true},
      {"response_time_bucket_1", offsetof(ServerCounters, response_time) + 1 * sizeof(Counter),
       true},
      {"response_time_bucket_2", offsetof(ServerCounters, response_time) + 2 * sizeof(Counter),
       true},
      {"response_time_bucket_3", offsetof(ServerCounters, response_time) + 3 * sizeof(Counter),
       true},
      {"response_time_bucket_4", offsetof(ServerCounters, response_time) + 4 * sizeof(Counter),
       true},
      {"response_time_bucket_5", offsetof(ServerCounters, response_time) + 5 * sizeof(Counter),
       true},
      {"response_time_bucket_6", offsetof(ServerCounters, response_time) + 6 * sizeof(Counter),
       true},
      {"response_time_bucket_7", offsetof(ServerCounters, response_time) + 7 * sizeof(Counter),
       true},
      {"response_time_bucket_8", offsetof(ServerCounters, response_time) + 8 * sizeof(Counter),
       true},
      {"response_time_bucket_9", offsetof(ServerCounters, response_time) + 9 * sizeof(Counter),
       true},
      {"response_time_bucket_10", offsetof(ServerCounters, response_time) + 10 * sizeof(Counter),
       true},
      {"response_time_bucket_11", offsetof(ServerCounters, response_time) + 11 * sizeof(Counter),
       true},
      {"response_time_bucket_12", offsetof(ServerCounters, response_time) + 12 * sizeof(Counter),
       true},
      {"response_time_bucket_13", offsetof(ServerCounters, response_time) + 13 * sizeof(Counter),
       true},
      {"response_time_bucket_14", offsetof(ServerCounters, response_time) + 14 * sizeof(Counter),
       true},
      {"response_time_bucket_15", offsetof(ServerCounters, response_time) + 15 * sizeof(Counter),
       true},
      {"response_time_bucket_16", offsetof(ServerCounters, response_time) + 16 * sizeof(Counter),
       true},
      {"response_time_bucket_17", offsetof(ServerCounters, response_time) + 17 * sizeof(Counter),
       true},
      {"response_time_bucket_18", offsetof(ServerCounters, response_time) + 18 * sizeof(Counter),
       true},
      {"response_time_sum_us",
       offsetof(ServerCounters, response_time) + offsetof(Histogram, sum_us), true},
  };
  return kFields;
}

#undef SLUICE_COUNTER
#undef SLUICE_GAUGE

}  // namespace sluice::observe
