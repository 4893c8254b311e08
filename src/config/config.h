// Config: the typed, immutable form of sluice.yaml. Produced by
// loadConfigFile() and shared read-only (shared_ptr<const Config>) by
// everything that serves under it; a worker keeps one snapshot for its life.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "event/clock.h"
#include "net/address.h"
#include "tls/settings.h"

namespace sluice::config {

// The one duration type (the event loop's), so config values need no cast.
using Duration = event::Duration;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct LogConfig {
  std::string level = "info";         // error | warn | info | debug
  std::string error = "stderr";       // stderr or a file path
  std::string error_format = "text";  // text | json
  std::string access = "stdout";      // stdout, a file path, or off
  // combined | json | a template of $fields (observe::AccessFormat)
  std::string access_format = "combined";
};

struct ClientTimeouts {
  Duration header{std::chrono::seconds(10)};
  Duration body{std::chrono::seconds(30)};
  Duration idle{std::chrono::seconds(60)};
  Duration send{std::chrono::seconds(30)};
  // Lingering close (after a final response while the client may still be
  // sending): the gap allowed between its reads, and the total time.
  // nginx's lingering_timeout and lingering_time.
  Duration linger{std::chrono::seconds(5)};
  Duration linger_total{std::chrono::seconds(30)};
  // An upgraded connection (WebSocket) with no byte either way this long
  // is closed (HAProxy's `timeout tunnel`).
  Duration tunnel_idle{std::chrono::hours(1)};
};

struct Limits {
  uint64_t max_header_bytes = 16 * 1024;
  uint32_t max_headers = 100;
  uint64_t max_body_bytes = 0;  // 0 = unlimited
  uint32_t max_connections = 10000;
  uint32_t max_requests_per_connection = 1000;  // 0 = unlimited
  // Open connections one client address may hold across all workers
  // (0 = unlimited); beyond it its requests get 429.
  uint32_t connections_per_client = 0;
};

// Request headers with which a client could speak for sluice (top-level
// `headers`).
struct HeaderSettings {
  // underscores: keep — pass header names containing `_` (default drop).
  bool keep_underscores = false;
  // request_id: keep — pass X-Request-Id from peers outside trusted_proxies
  // too (default generate: replace it with a fresh id).
  bool keep_untrusted_request_id = false;
  // forwarded: add — also send RFC 7239 `Forwarded` (for, proto, host),
  // extending a trusted peer's and replacing anyone else's, as X-Forwarded-*.
  bool rfc7239_forwarded = false;
};

// How request paths are normalized for routing and forwarded (top-level
// `paths`; see http/path.h).
struct PathSettings {
  // forward: original — send the path as received (default normalized).
  bool forward_original = false;
  // escaped_slashes: keep — keep %2F, %5C and `\` as ordinary characters
  // (default reject: answer 400).
  bool keep_escaped_slashes = false;
};

// A condition on a request header or query parameter.
struct FieldMatch {
  std::string name;                  // header: lower-cased; query parameter: as written
  std::optional<std::string> value;  // exact value; unset = present (any value)
};

struct RouteMatch {
  std::string host;                  // empty = any; exact (lower-cased) or "*.suffix"
  std::string path_prefix;           // empty = any
  std::vector<std::string> methods;  // empty = any; exact (methods are case-sensitive)
  std::vector<FieldMatch> headers;   // all must hold
  std::vector<FieldMatch> query;     // all must hold
};

// Header edits a route applies (`request_headers`, `response_headers`).
// Values may name variables: ${client_ip}, ${client_port}, ${scheme},
// ${host}, ${request_id} (checked when loading).
struct HeaderRules {
  HeaderList set;                   // replace (every existing copy), or add when absent
  HeaderList add;                   // append another copy
  std::vector<std::string> remove;  // lower-cased names
  bool empty() const { return set.empty() && add.empty() && remove.empty(); }
};

// `rate_limit:` on a route — a token bucket per key, shared by all workers.
struct RateLimit {
  uint32_t requests = 0;  // tokens added per `per`
  Duration per{std::chrono::seconds(1)};
  uint32_t burst = 0;  // bucket size (0 = `requests`)
  std::string header;  // key: this header's value; empty = client_ip
  double ratePerSecond() const {
    return static_cast<double>(requests) * 1000.0 / static_cast<double>(per.count());
  }
};

// Per-route overrides of the client-side body timeout and the upstream's
// response timeout (the head timeout cannot be per route: routing needs the head).
struct RouteTimeouts {
  std::optional<Duration> body;
  std::optional<Duration> response;
};

struct DirectResponse {
  int status = 200;
  std::string body;
  HeaderList headers;  // names as written
};

// `redirect:` — answer with a redirect to the same path and query under
// another scheme, host or port (nginx's `return 308 https://$host$request_uri`).
struct Redirect {
  std::string scheme;            // "http" or "https"; empty = the request's
  int status = 308;              // 301, 302, 303, 307 or 308
  std::string host;              // empty = the request's host (without its port)
  std::optional<uint16_t> port;  // unset = none in the Location (the scheme's default)
};

struct Route {
  // Position among all routes of all listeners in file order (listener 0's
  // routes first): the route's slot in per-route counters.
  uint32_t index = 0;
  RouteMatch match;
  std::string upstream;                   // set when the action is proxying
  std::optional<DirectResponse> respond;  // set when the action is a direct response
  std::optional<Redirect> redirect;       // set when the action is a redirect
  // Send the client's verified certificate to the upstream in this header
  // (lower-cased; empty = never). The client's own header of that name is
  // always dropped.
  std::string client_cert_header;
  // A client that closes its connection while its request is at the
  // upstream: false = cancel the upstream request and log a client abort
  // (499, nginx's default); true = let it finish (nginx's
  // proxy_ignore_client_abort on).
  bool ignore_client_abort = false;
  // Retries (upstream retry_on) may replay requests with a non-idempotent
  // method or a body (kept up to 64 KiB for that) — nginx's
  // `proxy_next_upstream non_idempotent`. Off: such requests are sent once.
  bool retry_non_idempotent = false;
  // Path rewrites before forwarding (at most one): remove this prefix, or
  // replace match.path_prefix with this.
  std::string strip_prefix;
  std::optional<std::string> rewrite_prefix;
  HeaderRules request_headers;
  HeaderRules response_headers;
  std::optional<uint64_t> max_body_bytes;  // overrides limits.max_body_bytes (0 = unlimited)
  RouteTimeouts timeouts;
  std::optional<RateLimit> rate_limit;
  // Protocols a request may switch to through this route (`Upgrade:`
  // tokens, lower-cased, e.g. "websocket"); empty = none (Upgrade is then
  // stripped like any hop-by-hop header).
  std::vector<std::string> upgrade;
};

struct Listener {
  std::string name;  // defaults to the address text
  net::Address address;
  // Connections start with a PROXY protocol header (v1 or v2), accepted
  // only from trusted_proxies; its client address is used everywhere.
  bool proxy_protocol = false;
  // `reuse_port:` — a TCP listener gets one socket per worker (SO_REUSEPORT
  // group) so that the kernel spreads connections evenly across workers.
  bool reuse_port = true;
  // `tls:` — the listener serves only TLS (docs/tls.md). Unset = plain HTTP.
  std::optional<tls::ServerSettings> tls;
  std::vector<Route> routes;
};

struct UpstreamServer {
  // Position among all server slots of all upstreams in file order: the
  // first of this entry's `slots` consecutive slots in per-server counters
  // and health.
  uint32_t index = 0;
  // An address entry has one slot; a DNS name has `max_addresses`, one per
  // address it may resolve to (src/upstream/resolved_addresses.h).
  uint32_t slots = 1;
  net::Address address;  // numeric address (when `name` is empty)
  std::string name;      // a DNS name, resolved and re-resolved (docs/upstreams.md)
  uint16_t port = 0;     // with `name`
  uint32_t weight = 1;
  std::string where;  // `file:line:col: path: ` of the address, for later warnings
  bool resolved() const { return !name.empty(); }
};

// `resolver:` — how DNS names of servers are looked up (c-ares, by the
// master for all workers). No addresses = /etc/resolv.conf (nameservers,
// search, ndots).
struct Resolver {
  std::vector<net::Address> addresses;
  Duration timeout{std::chrono::seconds(2)};
  uint32_t attempts = 2;
  // Re-resolve at the answer's TTL, clamped to [min_interval, max_interval].
  Duration min_interval{std::chrono::seconds(1)};
  Duration max_interval{std::chrono::seconds(60)};
  bool operator==(const Resolver&) const = default;
};

// `health_check:` — active probes, one per server per interval for the
// whole process (the master sends them), results shared by every worker.
struct HealthCheck {
  bool enabled = false;
  std::string path = "/healthz";
  Duration interval{std::chrono::seconds(5)};
  Duration timeout{std::chrono::seconds(1)};
  uint32_t healthy = 2;                                 // passes in a row that bring a server back
  uint32_t unhealthy = 3;                               // failures in a row that take it out
  std::vector<std::pair<int, int>> expect{{200, 399}};  // inclusive status ranges
  std::string host;                                     // Host header; empty = the server's address
};

// `all_down:` — what a request does when every server of its upstream is
// out (ejected or failing its health check).
enum class AllDown : uint8_t {
  kTryAll,  // pick among them anyway (Envoy's panic mode)
  kRefuse,  // answer 503 at once
};

struct Keepalive {
  uint32_t max_idle = 32;
  Duration idle_timeout{std::chrono::seconds(20)};
};

struct UpstreamTimeouts {
  Duration connect{std::chrono::seconds(2)};
  Duration response{std::chrono::seconds(30)};
  Duration send{std::chrono::seconds(30)};
};

// `balance:` — how a server is chosen for each attempt (src/upstream/, one
// file per policy).
enum class BalancePolicy : uint8_t {
  kRoundRobin,  // smooth weighted round robin
  kLeastConn,   // fewest requests in flight (all workers) per weight
  kRandom,      // weighted random
  kP2cEwma,     // power of two choices over peak-EWMA latency × in flight
  kHash,        // consistent hashing (Maglev) of a request key
};

// `hash: { key: … }` — what a `balance: hash` upstream hashes.
struct HashKey {
  enum class Kind : uint8_t { kClientIp, kHeader, kCookie, kUri };
  Kind kind = Kind::kClientIp;
  std::string name;  // header (lower-cased) or cookie name
};
const char* balancePolicyName(BalancePolicy policy);

// `send_proxy_protocol:` — a PROXY header sluice sends first on each new
// connection to the upstream, saying who the client is.
enum class SendProxyProtocol : uint8_t { kOff, kV1, kV2 };

// `passive:` — servers that fail `failures` times in a row (connect
// failures, timeouts, resets, invalid responses, 5xx) are ejected for
// `ejection` × the times they were ejected (at most 10×), shared by all
// workers; never more than `max_ejected_percent` of an upstream at once.
struct PassiveHealth {
  uint32_t failures = 5;  // 0 = off
  Duration ejection{std::chrono::seconds(30)};
  uint32_t max_ejected_percent = 50;
};

// `retry_on:` — what makes an attempt worth retrying on another server.
// Only connect failures are retried for any request; the others only for
// requests that can be replayed (idempotent method, no body) and whose
// response has not started.
struct RetryOn {
  bool connect_failure = true;
  bool reset = false;
  bool timeout = false;
  std::vector<int> statuses;  // e.g. 502, 503, 504
};

// `retry_budget:` — retries allowed = ratio × requests + min_per_second ×
// 10 s, over a sliding 10 s window (Finagle's RetryBudget), per worker.
struct RetryBudget {
  bool enabled = true;
  uint32_t ratio_percent = 20;
  uint32_t min_per_second = 3;
};

struct Upstream {
  std::string name;
  SendProxyProtocol send_proxy_protocol = SendProxyProtocol::kOff;
  BalancePolicy balance = BalancePolicy::kRoundRobin;
  HashKey hash;  // for balance: hash
  std::vector<UpstreamServer> servers;
  uint32_t retries = 1;
  Keepalive keepalive;
  UpstreamTimeouts timeouts;
  PassiveHealth passive;
  RetryOn retry_on;
  std::optional<Duration> per_try_timeout;  // until the response head, per attempt
  RetryBudget retry_budget;
  std::optional<tls::ClientSettings> tls;  // TLS to the servers (docs/tls.md)
  HealthCheck health_check;
  AllDown all_down = AllDown::kTryAll;
  bool hasResolvedServers() const;
};

struct Config {
  std::string source_path;
  // SHA-256 (lower-case hex) of the bytes this config was loaded from: which
  // file content a generation runs (admin /status, `sluice status`).
  std::string sha256;
  uint32_t workers = 0;  // 0 = auto (one per CPU)
  std::string pid_file;  // empty = none
  Duration shutdown_timeout{std::chrono::seconds(30)};
  // On SIGTERM: fail readiness (admin /ready → 503) but keep serving this
  // long before draining, so load balancers stop sending first.
  Duration drain_delay{0};
  // Reload by itself when the config file changes (inotify / kqueue vnode).
  bool watch_config = false;
  // The admin listener (/healthz, /ready); unset = none.
  std::optional<net::Address> admin_address;
  LogConfig log;
  ClientTimeouts timeouts;
  Limits limits;
  std::vector<net::CidrRange> trusted_proxies;  // empty = trust no peer's X-Forwarded-*
  HeaderSettings headers;
  PathSettings paths;
  std::vector<Listener> listeners;
  std::vector<Upstream> upstreams;  // in file order
  Resolver resolver;

  const Upstream* findUpstream(const std::string& name) const;
  // Totals of Route::index and UpstreamServer::index (sizes of the
  // per-route and per-server counter arrays).
  uint32_t routeCount() const;
  uint32_t serverCount() const;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null on failure
  // One line per problem: `file:line:col: path: message`.
  std::vector<std::string> errors;
  // Same format: what is allowed but probably wrong (an expired
  // certificate). Printed by `sluice -t`, logged at start and reload.
  std::vector<std::string> warnings;
  bool ok() const { return config != nullptr; }
};

// Reads, parses and validates `path`. Never throws.
LoadResult loadConfigFile(const std::string& path);
// Only `admin.address`, read without validating the rest: `sluice health`
// must keep working while the file on disk is being edited into something
// invalid (the running config is still the old, valid one). Never throws.
std::optional<net::Address> peekAdminAddress(const std::string& path);

// Same, from text (tests); `display_name` is used in error locations.
LoadResult loadConfigText(const std::string& text, const std::string& display_name);

}  // namespace sluice::config
