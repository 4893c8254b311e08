#include "process/worker.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "core/log.h"
#include "net/proxy_protocol_transport.h"
#include "net/raw_transport.h"
#include "net/socket.h"
#include "tls/tls_transport.h"

namespace sluice::process {
namespace {

// Connections accepted per listener per loop pass, so one busy listener
// cannot starve established connections.
constexpr int kAcceptBudgetPerPass = 64;
constexpr event::Duration kAcceptRetryAfterEmfile{500};

}  // namespace

Worker::Worker(std::shared_ptr<const config::Config> config, std::vector<int> listen_fds,
               WorkerOptions options)
    : access_log_(loop_.timers()), options_(options) {
  server_.loop = &loop_;
  server_.config = std::move(config);
  server_.not_ready = options_.not_ready;
  server_.connector = &connector_;
  if (options_.client_table == nullptr) {
    own_client_table_ = limit::ClientTable::createPrivate(4096);
    server_.client_table = own_client_table_;
  } else {
    server_.client_table = options_.client_table;
  }
  const config::Limits& limits = server_.config->limits;
  server_.parser_limits.max_header_bytes = limits.max_header_bytes;
  server_.parser_limits.max_headers = limits.max_headers;
  // The parser's body limit is a backstop: the largest any route allows
  // (0 = unlimited); each request's own limit is its route's, checked by the
  // connection once the request is routed.
  server_.parser_limits.max_body_bytes = limits.max_body_bytes;
  for (const config::Listener& listener : server_.config->listeners) {
    for (const config::Route& route : listener.routes) {
      if (!route.max_body_bytes) continue;
      const uint64_t current = server_.parser_limits.max_body_bytes;
      const uint64_t wanted = *route.max_body_bytes;
      if (current != 0 && (wanted == 0 || wanted > current)) {
        server_.parser_limits.max_body_bytes = wanted;
      }
    }
  }
  if (const CounterRegion* region = options_.counters) {
    region->resetGauges(options_.slot);  // a respawn starts with nothing open
    region->worker(options_.slot).pid.store(::getpid());
    address_table_ = region->addressTable();
    server_.worker_counters = &region->worker(options_.slot);
    server_.route_counters = region->routeCounters(options_.slot);
    server_.server_counters = region->serverCounters(options_.slot);
  } else {
    local_route_counters_ = std::vector<observe::RouteCounters>(server_.config->routeCount());
    local_server_counters_ = std::vector<observe::ServerCounters>(server_.config->serverCount());
    server_.worker_counters = &local_worker_counters_;
    server_.route_counters = local_route_counters_.data();
    server_.server_counters = local_server_counters_.data();
  }
  std::string error;
  if (access_log_.open(server_.config->log.access, server_.config->log.access_format, &error)) {
    access_log_.countDropsIn(&server_.worker_counters->access_log_lines_dropped);
    access_log_observer_ = std::make_unique<observe::AccessLogObserver>(access_log_);
    server_.observers.push_back(access_log_observer_.get());
  } else {
    // As nginx: a log that cannot be opened fails the start (and so the
    // reload, with the old generation still serving), rather than serving
    // unlogged. run() reports it before the worker says it is ready.
    start_error_ = error;
  }
  counting_observer_ = std::make_unique<observe::CountingObserver>(
      *server_.worker_counters, server_.route_counters, server_.server_counters);
  server_.observers.push_back(counting_observer_.get());
  server_.on_closed = [this](proxy::ServerConnection* c) { onConnectionClosed(c); };
  if (options_.shared != nullptr) {
    metrics_ = std::make_unique<MetricsCollector>(*options_.shared, options_.generation);
    server_.render_metrics = [this](observe::MetricsFormat format, std::string* body) {
      return metrics_->render(format, body) == MetricsCollector::Result::kOk ? 200 : 503;
    };
    if (options_.counters != nullptr) {
      status_ = std::make_unique<StatusCollector>(*options_.shared, options_.generation,
                                                  *server_.config, *options_.counters);
      server_.render_status = [this](std::string* body) {
        return status_->render(body) == StatusCollector::Result::kOk ? 200 : 503;
      };
    }
  }
  if (options_.ticket_keys == nullptr) own_ticket_keys_.rotate();
  tls::useTicketKeyRing(options_.ticket_keys != nullptr ? options_.ticket_keys : &own_ticket_keys_);
  for (const config::Listener& listener : server_.config->listeners) {
    proxy::ListenerContext context;
    context.listener = &listener;
    context.name = listener.name;
    context.router = std::make_unique<proxy::Router>(listener.routes);
    if (listener.tls) {
      // Every file is read again here, so a reload (a new generation) picks
      // up renewed certificates; a failure fails the start.
      std::string tls_error;
      context.tls = tls::ServerContext::create(*listener.tls, &tls_error);
      if (!context.tls && start_error_.empty()) {
        start_error_ = "listener " + listener.name + ": TLS: " + tls_error;
      }
    }
    server_.listeners.push_back(std::move(context));
  }
  if (server_.config->admin_address) {
    proxy::ListenerContext admin;
    admin.admin = true;
    admin.name = "admin";
    server_.listeners.push_back(std::move(admin));
  }
  for (const config::Upstream& upstream : server_.config->upstreams) {
    std::shared_ptr<const tls::ClientContext> upstream_tls;
    if (upstream.tls) {
      std::string tls_error;
      upstream_tls = tls::ClientContext::create(*upstream.tls, &tls_error);
      if (!upstream_tls && start_error_.empty()) {
        start_error_ = "upstream " + upstream.name + ": TLS: " + tls_error;
      }
    }
    server_.clusters.emplace(
        upstream.name,
        std::make_unique<upstream::Cluster>(
            loop_, upstream, connector_, server_.server_counters,
            options_.counters != nullptr ? options_.counters->serverHealth() : nullptr,
            std::move(upstream_tls),
            address_table_.sequence != nullptr ? &address_table_ : nullptr));
  }
  if (const CounterRegion* region = options_.counters) {
    // least_conn counts a server's requests in flight in every worker.
    for (auto& [name, cluster] : server_.clusters) {
      for (size_t i = 0; i < cluster->hostCount(); ++i) {
        upstream::Host& host = cluster->host(i);
        for (uint32_t slot = 0; slot < region->slots(); ++slot)
          host.peers.push_back(&region->serverCounters(slot)[host.index]);
      }
    }
  }
  for (size_t i = 0; i < listen_fds.size(); ++i) {
    acceptors_.push_back(std::make_unique<Acceptor>(*this, i, listen_fds[i]));
  }
}

Worker::~Worker() {
  accepting_ = false;
  for (auto& acceptor : acceptors_) {
    loop_.removeFd(acceptor->fd());
    ::close(acceptor->fd());
  }
  acceptors_.clear();
  connections_.clear();
  // Connections destroyed above doomed their handlers and upstream
  // connections, which still refer to the clusters: destroy them first.
  loop_.runOnce(event::Duration(0));
  server_.clusters.clear();
  loop_.runOnce(event::Duration(0));
  limit::ClientTable::destroy(own_client_table_);
}

int Worker::run() {
  // A client that goes away mid-write must give EPIPE, not kill the process.
  ::signal(SIGPIPE, SIG_IGN);
  loop_.watchSignal(SIGTERM, [this](int) { beginDrain("SIGTERM"); });
  loop_.watchSignal(SIGQUIT, [this](int) { beginDrain("SIGQUIT"); });
  loop_.watchSignal(SIGINT, [this](int) {
    SLUICE_LOG(kInfo, "SIGINT: stopping now");
    loop_.stop();
  });
  loop_.watchSignal(SIGUSR1, [this](int) {
    SLUICE_LOG(kInfo, "SIGUSR1: reopening log files");
    log::reopen();
    access_log_.reopen();
  });
  if (!start_error_.empty()) {
    SLUICE_LOG(kError, start_error_);
    return 1;
  }
  for (auto& acceptor : acceptors_) {
    int err = loop_.addFd(acceptor->fd(), acceptor.get());
    if (err != 0) {
      SLUICE_LOG(kError, std::string("cannot watch listening socket: ") + std::strerror(err));
      return 1;
    }
  }
  if (options_.ready_fd >= 0) {
    char ready = 'R';
    ssize_t n = ::write(options_.ready_fd, &ready, 1);
    (void)n;  // the master treats a missing byte as a failed start
    ::close(options_.ready_fd);
    options_.ready_fd = -1;
  }
  loop_.run();
  return exit_code_;
}

void Worker::Acceptor::onReady(uint32_t) {
  worker_.acceptFrom(listener_index_, fd_);
}

void Worker::acceptFrom(size_t listener_index, int listen_fd) {
  if (!accepting_) return;
  const uint32_t max_connections = server_.config->limits.max_connections;
  for (int i = 0; i < kAcceptBudgetPerPass; ++i) {
    if (connections_.size() >= max_connections) {
      // Leave the rest in the kernel's queue; resume when a connection closes.
      accept_paused_ = true;
      return;
    }
    net::Address peer;
    int fd = net::acceptFrom(listen_fd, &peer);
    if (fd < 0) {
      if (fd == -EAGAIN) return;
      if (fd == -EMFILE || fd == -ENFILE) {
        // Resume when a connection closes, or on a timer: the descriptors
        // may be held by something else (upstream connections, another
        // process's share of ENFILE), and with no client connection open
        // nothing else would wake us (nginx waits accept_mutex_delay, 500 ms).
        SLUICE_LOG(kError, "accept: out of file descriptors; pausing accepts for 500 ms");
        observe::add(server_.worker_counters->accept_errors);
        accept_paused_ = true;
        if (!accept_retry_) {
          accept_retry_ =
              std::make_unique<event::Timer>(loop_.timers(), [this] { resumeAccepting(); });
        }
        accept_retry_->arm(kAcceptRetryAfterEmfile);
        return;
      }
      SLUICE_LOG(kWarn, std::string("accept failed: ") + std::strerror(-fd));
      return;
    }
    if (peer.family() != net::Address::Family::kUnix) net::setNoDelay(fd);
    observe::add(server_.worker_counters->connections_accepted);
    const proxy::ListenerContext& listener = server_.listeners[listener_index];
    const bool proxy_protocol = listener.listener != nullptr && listener.listener->proxy_protocol;
    if (!listener.tls && !proxy_protocol) {
      // The common case: a plain socket, its transport inside the connection.
      adopt(std::make_unique<proxy::ServerConnection>(server_, listener, fd, std::move(peer)),
            /*handshake=*/false);
      continue;
    }
    std::unique_ptr<net::Transport> transport =
        std::make_unique<net::RawTransport>(fd, /*connecting=*/false);
    bool handshake = false;
    if (listener.tls) {
      transport = std::make_unique<tls::TlsTransport>(std::move(transport), *listener.tls);
      handshake = true;
    }
    if (proxy_protocol) {
      // A PROXY header is believed only from a load balancer we trust;
      // anyone else could claim any address.
      if (!proxy::isTrustedPeer(*server_.config, peer)) {
        SLUICE_LOG(kWarn, "listener " + listener.name + ": " + peer.toString() +
                              " is not in trusted_proxies but the listener expects a PROXY "
                              "header; connection closed");
        observe::add(server_.worker_counters->connections_closed);
        continue;  // the transport closes the fd
      }
      transport = std::make_unique<net::ProxyProtocolTransport>(std::move(transport));
      handshake = true;
    }
    adopt(std::make_unique<proxy::ServerConnection>(server_, listener, std::move(transport),
                                                    std::move(peer)),
          handshake);
  }
  // Budget spent with connections possibly still queued: come back next pass.
  loop_.addPending(listen_fd, event::kReadable);
}

void Worker::adopt(std::unique_ptr<proxy::ServerConnection> connection, bool handshake) {
  proxy::ServerConnection* raw = connection.get();
  addConnection(std::move(connection));
  if (!raw->start(handshake)) removeConnection(raw);
}

void Worker::resumeAccepting() {
  if (!accept_paused_ || !accepting_) return;
  accept_paused_ = false;
  if (accept_retry_) accept_retry_->cancel();
  // Edge-triggered: connections already queued raise no new event.
  for (auto& acceptor : acceptors_)
    loop_.addPending(acceptor->fd(), event::kReadable);
}

void Worker::addConnection(std::unique_ptr<proxy::ServerConnection> connection) {
  connection->setOwnerSlot(static_cast<uint32_t>(connections_.size()));
  connections_.push_back(std::move(connection));
}

void Worker::removeConnection(proxy::ServerConnection* connection) {
  const uint32_t slot = connection->ownerSlot();
  if (slot >= connections_.size() || connections_[slot].get() != connection) return;
  std::unique_ptr<proxy::ServerConnection> gone = std::move(connections_[slot]);
  if (slot + 1 != connections_.size()) {
    connections_[slot] = std::move(connections_.back());
    connections_[slot]->setOwnerSlot(slot);
  }
  connections_.pop_back();
  // `gone` is destroyed here, after the table is consistent again.
}

void Worker::onConnectionClosed(proxy::ServerConnection* connection) {
  // Destroy at the end of the pass: the connection may still be on the stack.
  observe::add(server_.worker_counters->connections_closed);
  loop_.defer([this, connection] {
    removeConnection(connection);
    resumeAccepting();
    maybeFinishDrain();
  });
}

void Worker::beginDrain(const char* why) {
  if (!accepting_) return;
  SLUICE_LOG(kInfo, std::string(why) + ": draining " + std::to_string(connections_.size()) +
                        " connection(s), at most " +
                        std::to_string(server_.config->shutdown_timeout.count()) + "ms");
  server_.draining = true;
  server_.worker_counters->draining.store(1, std::memory_order_relaxed);
  stopAccepting();
  drain_deadline_ = std::make_unique<event::Timer>(loop_.timers(), [this] {
    SLUICE_LOG(kWarn, "shutdown_timeout reached with " + std::to_string(connections_.size()) +
                          " connection(s) open; closing them");
    loop_.stop();
  });
  drain_deadline_->arm(server_.config->shutdown_timeout);
  std::vector<proxy::ServerConnection*> open;
  for (auto& owned : connections_)
    open.push_back(owned.get());
  for (proxy::ServerConnection* c : open)
    c->beginDrain();
  maybeFinishDrain();
}

void Worker::stopAccepting() {
  accepting_ = false;
  for (auto& acceptor : acceptors_) {
    loop_.removeFd(acceptor->fd());
    ::close(acceptor->fd());
  }
  acceptors_.clear();
}

void Worker::maybeFinishDrain() {
  if (!accepting_ && connections_.empty()) loop_.stop();
}

}  // namespace sluice::process
