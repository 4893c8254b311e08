// ServerContext: what every connection of one worker shares under one config
// generation — the config snapshot, a router per listener, and the hook to
// hand a closed connection back to its owner. Owned by the worker; outlives
// all its connections.
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
#include "observe/access_log.h"
#include "proxy/router.h"
#include "upstream/cluster.h"

namespace sluice::proxy {

class ClientConnection;

struct ListenerContext {
  const config::Listener* listener = nullptr;  // null for the admin listener
  std::unique_ptr<Router> router;              // null for the admin listener
  bool admin = false;                          // serves /healthz and /ready instead of routes
};

struct ServerContext {
  event::EventLoop* loop = nullptr;
  std::shared_ptr<const config::Config> config;
  std::vector<ListenerContext> listeners;    // config->listeners, then the admin listener
  observe::AccessLog* access_log = nullptr;  // null = no access log
  // Set by the master when the process stops being ready (drain_delay).
  const std::atomic<bool>* not_ready = nullptr;
  // One per configured upstream, by name.
  std::unordered_map<std::string, std::unique_ptr<upstream::Cluster>> clusters;
  // Called once when a connection has closed its socket; the owner destroys
  // it at the end of the loop pass.
  std::function<void(ClientConnection*)> on_closed;
  // Set when the worker drains: the next response on each connection says
  // `Connection: close`.
  bool draining = false;
};

}  // namespace sluice::proxy
