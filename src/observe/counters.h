// Counters a worker updates as things happen (a connection accepted, a request
// finished, an upstream connect failed), laid out as plain structs of atomics
// so that process::SharedRegion can place them in memory shared with the
// master and the other workers of a generation. Each struct instance has one
// writer (the worker of its slot, relaxed atomics); anyone may read it.
// Owned by whoever allocated the memory (the master's shared region, or a
// worker's own storage when it runs without a master).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string_view>

namespace sluice::observe {

inline constexpr size_t kCacheLine = 64;

// A cumulative count: only ever grows; carried across reloads and respawns.
using Counter = std::atomic<uint64_t>;
// A level (connections open, requests in flight): goes up and down; belongs
// to one live worker and is reset when that worker starts.
using Gauge = std::atomic<int64_t>;

static_assert(Counter::is_always_lock_free && Gauge::is_always_lock_free,
              "cross-process counters need lock-free atomics");

inline void add(Counter& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}
inline void add(Gauge& g, int64_t n) {
  g.fetch_add(n, std::memory_order_relaxed);
}

// Response status classes, for counters by class.
enum class StatusClass : uint8_t { k1xx, k2xx, k3xx, k4xx, k5xx, kNone, kCount };
inline StatusClass statusClassOf(int status) {
  if (status < 100 || status > 599) return StatusClass::kNone;  // no response was sent
  return static_cast<StatusClass>(status / 100 - 1);
}
inline constexpr size_t kStatusClasses = static_cast<size_t>(StatusClass::kCount);

// A latency histogram in shared memory: one counter per bucket (not
// cumulative: an observation adds to exactly the first bucket whose bound it
// does not exceed, the last bucket being +Inf), and the sum in microseconds.
// The count is the sum of the buckets, so a reader always sees
// `_count == _bucket{le="+Inf"}`. Bounds cover 100 µs to 60 s.
inline constexpr uint64_t kHistogramBoundsUs[] = {
    100,    250,    500,    1000,    2500,    5000,    10000,    25000,    50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000};
inline constexpr size_t kHistogramBounds = std::size(kHistogramBoundsUs);
struct Histogram {
  Counter buckets[kHistogramBounds + 1] = {};  // the last one is +Inf
  Counter sum_us{0};

  void observe(uint64_t us) {
    size_t i = 0;
    while (i < kHistogramBounds && us > kHistogramBoundsUs[i])
      ++i;
    add(buckets[i]);
    add(sum_us, us);
  }
};

// How one field of a counters struct is read generically (folding a finished
// generation into the carried totals, and later /metrics).
struct CounterField {
  const char* name;  // lower_snake_case, unique within its struct
  size_t offset;     // of a Counter or a Gauge within the struct
  bool cumulative;   // Counter (true) or Gauge (false)
};

// Why a TLS handshake on a listener failed (counters by reason).
enum class TlsFailure : uint8_t {
  kProtocol,  // the peer's bytes were not an acceptable handshake (incl. plain HTTP)
  kEof,       // the peer closed or reset before the handshake finished
  kTimeout,   // the handshake did not finish within timeouts.header
};
inline constexpr size_t kTlsFailures = 3;

// Completed TLS handshakes are counted by protocol and by whether they
// resumed a session: [TLSv1.2 full, TLSv1.2 resumed, TLSv1.3 full, TLSv1.3
// resumed] (a listener or upstream allows no other protocol).
inline constexpr size_t kTlsHandshakeKinds = 4;
inline size_t tlsHandshakeKind(std::string_view protocol, bool resumed) {
  return (protocol == "TLSv1.3" ? 2 : 0) + (resumed ? 1 : 0);
}

// Per worker: the process as a whole.
struct alignas(kCacheLine) WorkerCounters {
  Counter connections_accepted{0};
  Counter connections_closed{0};
  Gauge connections_active{0};  // open client connections
  Gauge connections_idle{0};    // of those, idle between requests
  Counter requests{0};          // finished requests (any outcome)
  Counter bytes_received{0};    // from clients, including heads
  Counter bytes_sent{0};        // to clients, including heads
  Counter accept_errors{0};     // accept(2) failures, EMFILE included
  Counter access_log_lines_dropped{0};
  Counter requests_limited{0};        // 429s from rate_limit / connections_per_client
  Counter retry_budget_exhausted{0};  // retries refused by an upstream's retry_budget
  // TLS listeners: handshakes completed (by tlsHandshakeKind), and failed
  // by reason.
  Counter tls_handshakes[kTlsHandshakeKinds] = {};
  Counter tls_handshake_failures[3] = {};  // by TlsFailure
  // This worker's pid while it runs (0 = none; the master clears it when it
  // reaps the worker): what /metrics reads /proc/<pid>/stat of.
  Gauge pid{0};
  // 1 once this worker has stopped accepting and drains (a reload or a
  // stop); what admin /status reports as the worker's state.
  Gauge draining{0};

  static std::span<const CounterField> fields();
};

// Per worker per route (routes numbered across listeners in file order:
// config::Route::index).
struct alignas(kCacheLine) RouteCounters {
  Counter requests[kStatusClasses] = {};  // by StatusClass of the answer
  Counter bytes_received{0};
  Counter bytes_sent{0};
  Histogram duration;  // RequestRecord::duration

  static std::span<const CounterField> fields();
};

// Per worker per upstream server (numbered across upstreams in file order:
// config::UpstreamServer::index).
struct alignas(kCacheLine) ServerCounters {
  Counter requests{0};  // attempts sent to this server
  Gauge in_flight{0};   // attempts in progress
  Counter connect_failures{0};
  Counter timeouts{0};
  Counter resets{0};             // connection lost before or during the response
  Counter responses_5xx{0};      // 5xx answers from the server
  Counter invalid_responses{0};  // malformed responses
  Counter connections_opened{0};
  Gauge connections_active{0};  // in use by a request
  Gauge connections_idle{0};    // pooled
  Counter retries{0};           // attempts that were retries
  Counter ejections{0};         // times this worker ejected the server (passive health)
  // TLS connections opened to the server: full handshakes, and resumed
  // sessions (upstream session resumption at work).
  Counter tls_handshakes{0};
  Counter tls_resumed{0};
  Histogram response_time;  // request sent → first response byte (RequestRecord)

  static std::span<const CounterField> fields();
};

// A counters struct read as the array of 8-byte atomics it is (Counter and
// Gauge alike; alignment padding reads as 0): for folding and summing
// without naming each field. Bit i of gaugeMask<T>() is set when word i is a
// Gauge.
template <typename T>
inline constexpr size_t kWordsOf = sizeof(T) / sizeof(Counter);

template <typename T>
uint64_t gaugeMask() {
  static_assert(kWordsOf<T> <= 64);
  uint64_t mask = 0;
  for (const CounterField& field : T::fields()) {
    if (!field.cumulative) mask |= uint64_t{1} << (field.offset / sizeof(Counter));
  }
  return mask;
}

// Adds every word of `counters` into `into` (kWordsOf<T> of them); gauges
// only when `gauges` (a gauge is a live level: never carried).
template <typename T>
void addWords(const T& counters, uint64_t mask, bool gauges, uint64_t* into) {
  const auto* words = reinterpret_cast<const Counter*>(&counters);
  for (size_t i = 0; i < kWordsOf<T>; ++i) {
    if (!gauges && (mask >> i & 1) != 0) continue;
    into[i] += words[i].load(std::memory_order_relaxed);
  }
}

}  // namespace sluice::observe
