// libFuzzer target: the whole proxy state machine — ServerConnection,
// ProxyHandler, both codecs, the pool — over in-memory transports with a
// driven clock. The input is a little program: bytes from the client, bytes
// from the upstream, closes, resets, time passing. Besides "no crash, no
// sanitizer report" it checks that once everything is torn down no request
// is left counted in flight and no connection is left counted open.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "event/clock.h"
#include "event/event_loop.h"
#include "net/memory_transport.h"
#include "observe/request_observers.h"
#include "proxy/server_connection.h"
#include "proxy/server_context.h"
#include "unit/support/memory_connector.h"

namespace {

using namespace sluice;

constexpr char kConfig[] = R"(
timeouts: { header: 2s, body: 2s, idle: 5s, send: 2s, linger: 1s, linger_total: 3s }
limits: { max_header_bytes: 4k, max_headers: 20, max_body_bytes: 64k }
listeners:
  - address: 127.0.0.1:8080
    routes:
      - match: { path_prefix: /local }
        respond: { status: 200, body: "local\n" }
      - upstream: app
upstreams:
  app:
    servers: [{ address: 127.0.0.1:9001 }, { address: 127.0.0.1:9002 }]
    retries: 1
    keepalive: { max_idle: 2, idle_timeout: 3s }
    timeouts: { connect: 1s, response: 1s, send: 1s }
)";

const std::shared_ptr<const config::Config>& fuzzConfig() {
  static const std::shared_ptr<const config::Config> config = [] {
    config::LoadResult loaded = config::loadConfigText(kConfig, "fuzz.yaml");
    if (!loaded.ok()) std::abort();
    return loaded.config;
  }();
  return config;
}

// Byte strings the program can send, so that the fuzzer reaches deep states
// without having to discover HTTP from nothing.
const char* const kSnippets[] = {
    "GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /local HTTP/1.1\r\nHost: h\r\n\r\n",
    "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
    "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
    "5\r\nhello\r\n0\r\n\r\n",
    "hello",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\n",
    "HTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.1 200 OK\r\n\r\nuntil close",
    "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "HEAD /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
};

struct World {
  event::ManualClock clock;
  event::EventLoop loop{clock};
  testing::MemoryConnector connector;
  observe::WorkerCounters worker;
  std::vector<observe::RouteCounters> routes;
  std::vector<observe::ServerCounters> servers;
  std::unique_ptr<observe::CountingObserver> counting;
  limit::ClientTable* table = nullptr;
  proxy::ServerContext server;
  std::vector<std::unique_ptr<net::MemoryTransport>> client_ends;
  std::vector<std::unique_ptr<proxy::ServerConnection>> clients;

  World() {
    const auto& config = fuzzConfig();
    routes = std::vector<observe::RouteCounters>(config->routeCount());
    servers = std::vector<observe::ServerCounters>(config->serverCount());
    counting = std::make_unique<observe::CountingObserver>(worker, routes.data());
    server.loop = &loop;
    server.config = config;
    server.connector = &connector;
    table = limit::ClientTable::createPrivate(256);
    server.client_table = table;
    server.parser_limits.max_header_bytes = config->limits.max_header_bytes;
    server.parser_limits.max_headers = config->limits.max_headers;
    server.parser_limits.max_body_bytes = config->limits.max_body_bytes;
    server.worker_counters = &worker;
    server.route_counters = routes.data();
    server.server_counters = servers.data();
    server.observers = {counting.get()};
    server.on_closed = [](proxy::ServerConnection*) {};
    proxy::ListenerContext listener;
    listener.listener = &config->listeners[0];
    listener.name = "fuzz";
    listener.router = std::make_unique<proxy::Router>(config->listeners[0].routes);
    server.listeners.push_back(std::move(listener));
    for (const config::Upstream& upstream : config->upstreams) {
      server.clusters.emplace(upstream.name, std::make_unique<upstream::Cluster>(
                                                 loop, upstream, connector, servers.data()));
    }
  }

  net::MemoryTransport& addClient() {
    auto pair = net::MemoryTransport::makePair(64 * 1024);
    client_ends.push_back(std::move(pair.second));
    clients.push_back(std::make_unique<proxy::ServerConnection>(
        server, server.listeners[0], std::move(pair.first),
        *net::Address::parse("127.0.0.1:40000", nullptr)));
    clients.back()->start();
    return *client_ends.back();
  }

  void step() {
    for (int i = 0; i < 4; ++i)
      loop.runOnce(event::Duration(0));
  }

  ~World() {
    clients.clear();
    step();
    server.clusters.clear();
    step();
    limit::ClientTable::destroy(table);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int64_t servers_in_flight = 0;
  int64_t open_connections = 0;
  {
    World world;
    world.addClient();
    size_t i = 0;
    auto next = [&]() -> uint8_t { return i < size ? data[i++] : 0; };
    while (i < size) {
      const uint8_t op = next();
      const uint8_t arg = next();
      net::MemoryTransport& client = *world.client_ends.back();
      switch (op % 12) {
        case 0:  // client sends a snippet
          client.send(kSnippets[arg % (sizeof kSnippets / sizeof kSnippets[0])]);
          break;
        case 1: {  // client sends raw fuzz bytes
          const size_t n = std::min<size_t>(arg, size - i);
          client.send(std::string(reinterpret_cast<const char*>(data + i), n));
          i += n;
          break;
        }
        case 2:  // an upstream answers with a snippet
          if (world.connector.connections() > 0) {
            world.connector.server(arg % world.connector.connections())
                .end->send(kSnippets[(arg / 7) % (sizeof kSnippets / sizeof kSnippets[0])]);
          }
          break;
        case 3: {  // an upstream sends raw fuzz bytes
          const size_t n = std::min<size_t>(arg, size - i);
          if (world.connector.connections() > 0) {
            world.connector.server(arg % world.connector.connections())
                .end->send(std::string(reinterpret_cast<const char*>(data + i), n));
          }
          i += n;
          break;
        }
        case 4:
          world.step();
          break;
        case 5:
          world.clock.advance(event::Duration(250 * (1 + arg % 8)));
          world.step();
          break;
        case 6:
          client.shutdownWrite();
          break;
        case 7:
          client.reset();
          break;
        case 8:
          if (world.connector.connections() > 0) {
            world.connector.server(arg % world.connector.connections()).end->shutdownWrite();
          }
          break;
        case 9:
          if (world.connector.connections() > 0) {
            world.connector.server(arg % world.connector.connections()).end->reset();
          }
          break;
        case 10:  // the client reads what it got (frees the window)
          client.takeReceived();
          break;
        case 11:
          if (arg % 4 == 0) world.connector.refuse("127.0.0.1:9001");
          if (arg % 4 == 1) world.connector.accept("127.0.0.1:9001");
          if (arg % 4 == 2) world.connector.holdHandshakes(true);
          if (arg % 4 == 3) world.connector.holdHandshakes(false);
          if (arg % 8 == 7 && world.clients.size() < 4) world.addClient();
          break;
      }
    }
    world.step();
    world.clients.clear();
    world.step();
    for (const auto& s : world.servers)
      servers_in_flight += s.in_flight.load();
    open_connections = world.worker.connections_active.load();
  }
  // Every attempt that started ended; every connection that opened closed.
  if (servers_in_flight != 0 || open_connections != 0) std::abort();
  return 0;
}
