#include "upstream/health_checker.h"

#include <chrono>
#include <cstring>
#include <random>

#include "core/log.h"
#include "net/connection.h"
#include "net/proxy_protocol.h"
#include "tls/client_context.h"

namespace sluice::upstream {

// One server being checked: its schedule, its counts, the probe in flight.
struct HealthChecker::Target {
  const config::Upstream* upstream = nullptr;
  uint32_t index = 0;  // server slot (config::UpstreamServer::index + k)
  net::Address address;
  std::string origin_name;
  std::unique_ptr<event::Timer> timer;
  std::unique_ptr<Probe> probe;
  uint32_t passes = 0;
  uint32_t failures = 0;
  // Expires with the target: a probe's result delivered after the target
  // left (its address left DNS, its generation ended) is dropped.
  std::shared_ptr<int> alive = std::make_shared<int>(0);
};

struct HealthChecker::Attached {
  std::shared_ptr<const config::Config> config;
  AddressTable table;
  ServerHealth* health = nullptr;
  std::vector<std::unique_ptr<Connector>> tls_connectors;  // per upstream, when TLS
  std::map<const config::Upstream*, Connector*> connectors;
  std::map<uint32_t, std::unique_ptr<Target>> targets;  // by server slot
};

// One probe: connect, send the request, read the status line.
class HealthChecker::Probe final : public net::ConnectionCallbacks {
 public:
  using Done = std::function<void(bool ok, const std::string& why)>;
  Probe(event::EventLoop& loop, Connector& connector, const Target& target, Done done)
      : loop_(loop),
        done_(std::move(done)),
        timeout_(loop.timers(), [this] { finish(false, "timed out"); }) {
    const config::HealthCheck& check = target.upstream->health_check;
    timeout_.arm(check.timeout);
    int error = 0;
    // A server that expects PROXY headers refuses a connection without one:
    // probes send one that speaks for no client (HAProxy sends PROXY on its
    // checks of send-proxy servers too).
    Buffer preface;
    if (target.upstream->send_proxy_protocol != config::SendProxyProtocol::kOff) {
      net::appendProxyLocalHeader(
          target.upstream->send_proxy_protocol == config::SendProxyProtocol::kV1
              ? net::ProxyVersion::kV1
              : net::ProxyVersion::kV2,
          preface);
    }
    std::unique_ptr<net::Transport> transport =
        connector.connect(target.address, target.origin_name, std::move(preface), &error);
    if (!transport) {
      // Reported from the loop, not from inside the caller's loop over targets.
      failed_at_start_ = error;
      timeout_.arm(event::Duration(0));
      return;
    }
    connection_ = std::make_unique<net::Connection>(loop, std::move(transport));
    connection_->setCallbacks(this);
    if (const int err = connection_->start(/*handshake=*/true); err != 0) {
      connection_.reset();
      failed_at_start_ = err;
      timeout_.arm(event::Duration(0));
      return;
    }
    const std::string host = !check.host.empty()           ? check.host
                             : !target.origin_name.empty() ? target.origin_name
                                                           : target.address.toString();
    const std::string request = "GET " + check.path + " HTTP/1.1\r\nHost: " + host +
                                "\r\nUser-Agent: sluice-health-check\r\nConnection: close\r\n\r\n";
    connection_->output().append(request.data(), request.size());
    connection_->wrote();
    expect_ = &check.expect;
  }
  ~Probe() {
    if (connection_) connection_->close();
  }
  int failedAtStart() const { return failed_at_start_; }

  void onReadable() override {
    Buffer& in = connection_->input();
    const std::string_view bytes(in.data(), in.size());
    const size_t eol = bytes.find('\n');
    if (eol == std::string_view::npos) {
      if (bytes.size() > 1024) finish(false, "no status line");
      return;
    }
    // "HTTP/1.1 200 OK"
    int status = 0;
    if (bytes.size() >= 12 && bytes.substr(0, 5) == "HTTP/" && bytes[8] == ' ') {
      for (size_t i = 9; i < 12; ++i) {
        const char c = bytes[i];
        status = (c >= '0' && c <= '9') ? status * 10 + (c - '0') : -1000;
      }
    }
    if (status < 100) {
      finish(false, "not an HTTP response");
      return;
    }
    for (const auto& [low, high] : *expect_) {
      if (status >= low && status <= high) {
        finish(true, "");
        return;
      }
    }
    finish(false, "status " + std::to_string(status));
  }
  void onPeerClosed() override { finish(false, "closed without a response"); }
  void onTransportError(int error) override {
    finish(false, error == 0 ? "connection failed" : std::strerror(error));
  }

 private:
  void finish(bool ok, const std::string& why) {
    if (finished_) return;
    finished_ = true;
    timeout_.cancel();
    if (failed_at_start_ != 0) {
      ok = false;
    }
    if (connection_) connection_->setCallbacks(nullptr);
    // The owner destroys this probe; not from inside the connection's own
    // callback: later, at the end of the pass.
    Done done = std::move(done_);
    const std::string reason =
        failed_at_start_ != 0 ? std::string(std::strerror(failed_at_start_)) : why;
    loop_.defer([done = std::move(done), ok, reason] { done(ok, reason); });
  }

  event::EventLoop& loop_;
  Done done_;
  event::Timer timeout_;
  std::unique_ptr<net::Connection> connection_;
  const std::vector<std::pair<int, int>>* expect_ = nullptr;
  int failed_at_start_ = 0;
  bool finished_ = false;
};

HealthChecker::HealthChecker(event::EventLoop& loop)
    : loop_(loop), random_state_(std::random_device{}()) {}

HealthChecker::~HealthChecker() = default;

void HealthChecker::attach(uint32_t generation, std::shared_ptr<const config::Config> config,
                           AddressTable table, ServerHealth* health) {
  bool any = false;
  for (const config::Upstream& upstream : config->upstreams)
    any = any || upstream.health_check.enabled;
  if (!any) return;
  auto attached = std::make_unique<Attached>();
  attached->config = std::move(config);
  attached->table = table;
  attached->health = health;
  for (const config::Upstream& upstream : attached->config->upstreams) {
    if (!upstream.health_check.enabled) continue;
    Connector* connector = &sockets_;
    if (upstream.tls) {
      std::string error;
      std::shared_ptr<const tls::ClientContext> context =
          tls::ClientContext::create(*upstream.tls, &error);
      if (!context) {
        SLUICE_LOG(kError, "upstream " + upstream.name + ": health checks: TLS: " + error);
        continue;
      }
      attached->tls_connectors.push_back(std::make_unique<TlsConnector>(sockets_, context));
      connector = attached->tls_connectors.back().get();
    }
    attached->connectors[&upstream] = connector;
  }
  Attached& ref = *attached;
  generations_[generation] = std::move(attached);
  syncTargets(ref);
}

void HealthChecker::detach(uint32_t generation) {
  generations_.erase(generation);
}

void HealthChecker::addressesChanged(uint32_t generation) {
  auto it = generations_.find(generation);
  if (it != generations_.end()) syncTargets(*it->second);
}

size_t HealthChecker::probesRunning() const {
  size_t n = 0;
  for (const auto& [id, attached] : generations_) {
    for (const auto& [index, target] : attached->targets)
      n += target->probe ? 1 : 0;
  }
  return n;
}

void HealthChecker::syncTargets(Attached& attached) {
  // What should be probed now: every numeric server, every DNS address.
  std::map<uint32_t, std::pair<const config::Upstream*, std::pair<net::Address, std::string>>>
      wanted;
  for (const auto& [upstream, connector] : attached.connectors) {
    for (const config::UpstreamServer& server : upstream->servers) {
      if (!server.resolved()) {
        wanted[server.index] = {upstream, {server.address, ""}};
        continue;
      }
      NameState state;
      auto slots = readSlots(attached.table, server.index, server.slots, &state);
      if (!slots) continue;  // never: the master is the writer, and it is us
      for (uint32_t i = 0; i < server.slots; ++i) {
        if ((*slots)[i]) wanted[server.index + i] = {upstream, {*(*slots)[i], server.name}};
      }
    }
  }
  for (auto it = attached.targets.begin(); it != attached.targets.end();) {
    auto want = wanted.find(it->first);
    const bool same = want != wanted.end() && want->second.second.first == it->second->address;
    it = same ? std::next(it) : attached.targets.erase(it);
  }
  for (auto& [index, what] : wanted) {
    if (attached.targets.count(index) != 0) continue;
    auto target = std::make_unique<Target>();
    target->upstream = what.first;
    target->index = index;
    target->address = what.second.first;
    target->origin_name = what.second.second;
    Target* raw = target.get();
    Connector* connector = attached.connectors.at(what.first);
    ServerHealth* health = &attached.health[index];
    health->active_down.store(0, std::memory_order_relaxed);  // in service until proven otherwise
    raw->timer = std::make_unique<event::Timer>(loop_.timers(), [this, raw, connector, health] {
      const config::HealthCheck& check = raw->upstream->health_check;
      // Next probe: interval ± 10 %, from this one's start.
      random_state_ = random_state_ * 6364136223846793005ull + 1442695040888963407ull;
      const int64_t interval = check.interval.count();
      const int64_t jitter = interval / 10;
      const int64_t offset =
          jitter > 0 ? static_cast<int64_t>((random_state_ >> 33) % (2 * jitter + 1)) - jitter : 0;
      raw->timer->arm(event::Duration(interval + offset));
      if (raw->probe) return;  // the last one is still running (bounded by timeout < interval)
      raw->probe = std::make_unique<Probe>(
          loop_, *connector, *raw,
          [this, raw, health, alive = std::weak_ptr<int>(raw->alive)](bool ok,
                                                                      const std::string& why) {
            if (alive.expired()) return;
            raw->probe.reset();
            NamedFigures* figures = figures_ ? figures_(raw->upstream->name) : nullptr;
            const auto count = [figures](HealthFigure which) {
              if (figures != nullptr)
                figures->values[which].fetch_add(1, std::memory_order_relaxed);
            };
            count(kProbes);
            const config::HealthCheck& c = raw->upstream->health_check;
            const std::string who = "upstream " + raw->upstream->name + ": server " +
                                    raw->address.toString() +
                                    (raw->origin_name.empty() ? "" : " (" + raw->origin_name + ")");
            const bool down = health->active_down.load(std::memory_order_relaxed) != 0;
            if (ok) {
              raw->failures = 0;
              ++raw->passes;
              if (down && raw->passes >= c.healthy) {
                // Back: a passive ejection from the same outage ends too
                // (Envoy's successful_active_health_check_uneject_host).
                health->ejected_until_ms.store(0, std::memory_order_relaxed);
                health->consecutive_failures.store(0, std::memory_order_relaxed);
                health->active_down.store(0, std::memory_order_relaxed);
                count(kRecoveries);
                SLUICE_LOG(kInfo, who + " passes its health check again; back in service");
              }
            } else {
              raw->passes = 0;
              ++raw->failures;
              count(kProbeFailures);
              if (!down && raw->failures >= c.unhealthy) {
                health->active_down.store(1, std::memory_order_relaxed);
                count(kOutages);
                SLUICE_LOG(kWarn, who + " out of service: health check " + c.path + " failed " +
                                      std::to_string(raw->failures) + " times in a row (" + why +
                                      ")");
              }
            }
          });
    });
    // The first probe at once (a little spread over the first 100 ms).
    random_state_ = random_state_ * 6364136223846793005ull + 1442695040888963407ull;
    raw->timer->arm(event::Duration(static_cast<int64_t>((random_state_ >> 33) % 100)));
    attached.targets.emplace(index, std::move(target));
  }
}

}  // namespace sluice::upstream
