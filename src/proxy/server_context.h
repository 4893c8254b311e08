// ServerContext: what every connection of one worker shares under one config
// generation — the config snapshot, a router per listener, the clusters, the
// connector for upstream connections, the observers of finished requests,
// the worker's counters, and the hook to hand a closed connection back to
// its owner. Owned by the worker; outlives all its connections.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "event/event_loop.h"
#include "http/request_parser.h"
#include "http/server_codec.h"
#include "limit/client_table.h"
#include "observe/counters.h"
#include "observe/metrics_text.h"
#include "observe/request_record.h"
#include "proxy/router.h"
#include "tls/server_context.h"
#include "upstream/cluster.h"
#include "upstream/connector.h"

namespace sluice::proxy {

// What a client connection knows about the request in progress beyond its
// codec: taken from the worker's spares when the request's first byte
// arrives and given back when it is done, so that an idle keep-alive
// connection carries none of it and steady traffic allocates none (the
// strings keep their storage between requests).
struct RequestState {
  observe::RequestRecord record;  // record.request_id and client_ip point here
  std::string id;
  std::string client_ip;
  std::string host;  // normalized (${host})
  RequestPath path;  // the target as routed and as forwarded
  const config::Route* route = nullptr;
  uint64_t body_limit = 0;  // the route's max_body_bytes (0 = none)
  uint64_t body_seen = 0;
  event::TimePoint start{};  // first byte of the request
  uint64_t bytes_read_at_start = 0;
  uint64_t bytes_written_at_start = 0;

  void reset() {
    record = observe::RequestRecord();
    id.clear();
    client_ip.clear();
    host.clear();
    path.ok = false;
    route = nullptr;
    body_limit = body_seen = 0;
    start = {};
    bytes_read_at_start = bytes_written_at_start = 0;
  }
};

class ServerConnection;

struct ListenerContext {
  const config::Listener* listener = nullptr;  // null for the admin listener
  std::string name;                            // for records and logs
  std::unique_ptr<Router> router;              // null for the admin listener
  bool admin = false;                          // serves /healthz and /ready instead of routes
  // The listener's TLS (certificates loaded by this worker), or null.
  std::shared_ptr<const tls::ServerContext> tls;
};

// A peer listed in trusted_proxies: its X-Forwarded-* and PROXY headers are
// believed.
inline bool isTrustedPeer(const config::Config& config, const net::Address& peer) {
  for (const net::CidrRange& range : config.trusted_proxies) {
    if (range.contains(peer)) return true;
  }
  return false;
}

struct ServerContext {
  event::EventLoop* loop = nullptr;
  std::shared_ptr<const config::Config> config;
  std::vector<ListenerContext> listeners;  // config->listeners, then the admin listener
  // Told about every finished request, in order (access log, counters).
  std::vector<observe::RequestObserver*> observers;
  // Renders the admin `/metrics` into `body` and returns the status: 200, or
  // 503 when this worker cannot give complete figures (a newer generation
  // answers). Unset = no metrics (404). Set by the worker.
  std::function<int(observe::MetricsFormat format, std::string* body)> render_metrics;
  // The buffer /metrics renders into, kept between scrapes.
  mutable std::string metrics_buffer;
  // Renders the admin `/status` JSON into `body`; 200, or 503 as for
  // /metrics (a newer generation's workers answer). Unset = 404.
  std::function<int(std::string* body)> render_status;
  mutable std::string status_buffer;
  // Set by the master when the process stops being ready (drain_delay).
  const std::atomic<bool>* not_ready = nullptr;
  // One per configured upstream, by name.
  std::unordered_map<std::string, std::unique_ptr<upstream::Cluster>> clusters;
  // Opens upstream connections (sockets; tests inject in-memory ones).
  upstream::Connector* connector = nullptr;
  // This worker's counters (never null): one WorkerCounters, arrays indexed
  // by config::Route::index and config::UpstreamServer::index.
  observe::WorkerCounters* worker_counters = nullptr;
  observe::RouteCounters* route_counters = nullptr;
  observe::ServerCounters* server_counters = nullptr;
  http::ParserLimits parser_limits;
  // Per-client rate buckets and connection counts shared by all workers
  // (never null).
  limit::ClientTable* client_table = nullptr;
  // Per-request codecs of idle connections, kept warm for the next request:
  // a keep-alive connection costs no allocation per request.
  std::vector<std::unique_ptr<http::ServerCodec>> spare_codecs;
  std::vector<std::unique_ptr<RequestState>> spare_requests;
  // Strings whose storage a finished request left (the upstream request
  // head), for the next request to write into.
  std::vector<std::string> spare_strings;
  // Called once when a connection has closed its socket; the owner destroys
  // it at the end of the loop pass.
  std::function<void(ServerConnection*)> on_closed;
  // Set when the worker drains: the next response on each connection says
  // `Connection: close`.
  bool draining = false;
};

}  // namespace sluice::proxy
