// Host: one upstream server as one worker sees it — its address and weight,
// requests in flight, consecutive failures, health, its counters in shared
// memory, and its pool of idle connections. Shared by the balancer (which
// picks among hosts) and the pool; owned by the worker's Cluster.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "event/clock.h"
#include "net/address.h"
#include "observe/counters.h"
#include "upstream/server_health.h"

namespace sluice::upstream {

class ConnPool;

// What became of one attempt to get a response from a host. Every path that
// ends an attempt reports one of these (Cluster::reportAttempt), so
// balancers and health see failures as they happen.
enum class AttemptOutcome : uint8_t {
  kSuccess,         // a response that is not a 5xx
  kConnectFailure,  // refused, unreachable, connect timeout
  kTimeout,         // response or send timeout
  kReset,           // closed or reset before the response ended
  kHttp5xx,         // the server answered 5xx
  kInvalid,         // a malformed response
  kCancelled,       // the client went away: says nothing about the host
};
const char* attemptOutcomeName(AttemptOutcome outcome);
bool isFailure(AttemptOutcome outcome);

enum class HealthState : uint8_t { kHealthy, kEjected };

struct Host {
  Host();
  ~Host();  // out of line: ConnPool is incomplete here
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  net::Address address;
  std::string address_text;  // address.toString(), for logs and records
  // The DNS name this address came from (config `address: NAME:PORT`);
  // empty for a numeric address. TLS verifies the server against it.
  std::string origin_name;
  // In service: a numeric address always; a DNS slot while the name
  // resolves to an address in it. An absent host keeps its object (requests
  // still in flight on it finish) but is offered to no balancer.
  bool present = true;
  uint32_t weight = 1;
  uint32_t index = 0;          // config::UpstreamServer::index
  uint32_t cluster_index = 0;  // position within its cluster
  int64_t in_flight = 0;       // this worker's attempts in progress
  uint32_t consecutive_failures = 0;
  HealthState health = HealthState::kHealthy;
  observe::ServerCounters* counters = nullptr;  // never null
  ServerHealth* shared_health = nullptr;        // never null; shared by the generation
  // This server's counters in every worker of the generation (this one's
  // included): least_conn adds up their in_flight.
  std::vector<const observe::ServerCounters*> peers;
  int64_t inFlightEverywhere() const;
  std::unique_ptr<ConnPool> pool;
};

}  // namespace sluice::upstream
