#include "config/config.h"

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

using std::chrono::seconds;

// The repository root: $SLUICE_SOURCE_DIR when set (CI, out-of-tree runs),
// else found from this file's own path, which stays valid however ctest is
// started.
std::filesystem::path sourceDir() {
  if (const char* dir = std::getenv("SLUICE_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return std::filesystem::path(__FILE__).parent_path() / "../../..";
}

TEST(ConfigTest, FindUpstream) {
  Config config;
  for (const char* name : {"a", "b"}) {
    Upstream upstream;
    upstream.name = name;
    config.upstreams.push_back(upstream);
  }
  EXPECT_EQ(config.findUpstream("b"), &config.upstreams[1]);
  EXPECT_EQ(config.findUpstream("a"), &config.upstreams[0]);
  EXPECT_EQ(config.findUpstream("c"), nullptr);
  EXPECT_EQ(config.findUpstream(""), nullptr);
}

TEST(ConfigTest, DefaultConfigFileLoads) {
  const std::filesystem::path path = sourceDir() / "conf/sluice.yaml";
  LoadResult result = loadConfigFile(path.string());
  for (const std::string& e : result.errors)
    ADD_FAILURE() << e;
  ASSERT_TRUE(result.ok());
  const Config& c = *result.config;

  EXPECT_EQ(c.workers, 1u);
  EXPECT_EQ(c.pid_file, "");  // nothing that needs root
  ASSERT_EQ(c.listeners.size(), 3u);

  const Listener& web = c.listeners[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.address.toString(), "127.0.0.1:8080");
  ASSERT_EQ(web.routes.size(), 2u);
  EXPECT_EQ(web.routes[0].match.path_prefix, "/healthz");
  ASSERT_TRUE(web.routes[0].respond.has_value());
  EXPECT_EQ(web.routes[0].respond->status, 200);
  EXPECT_EQ(web.routes[0].respond->body, "ok\n");
  EXPECT_EQ(web.routes[0].respond->headers, (HeaderList{{"content-type", "text/plain"}}));
  EXPECT_EQ(web.routes[1].match.host, "");
  EXPECT_EQ(web.routes[1].match.path_prefix, "");
  EXPECT_EQ(web.routes[1].upstream, "demo");

  const char* names[] = {"demo-a", "demo-b"};
  const char* addresses[] = {"127.0.0.1:9001", "127.0.0.1:9002"};
  for (int i = 0; i < 2; ++i) {
    const Listener& demo = c.listeners[static_cast<size_t>(i) + 1];
    EXPECT_EQ(demo.name, names[i]);
    EXPECT_EQ(demo.address.toString(), addresses[i]);
    ASSERT_EQ(demo.routes.size(), 1u);
    EXPECT_EQ(demo.routes[0].match.path_prefix, "");
    ASSERT_TRUE(demo.routes[0].respond.has_value());
    EXPECT_EQ(demo.routes[0].respond->status, 200);
    EXPECT_EQ(demo.routes[0].respond->body, std::string("hello from ") + names[i] + "\n");
  }

  ASSERT_EQ(c.upstreams.size(), 1u);
  const Upstream* demo = c.findUpstream("demo");
  ASSERT_NE(demo, nullptr);
  EXPECT_EQ(demo->balance, BalancePolicy::kRoundRobin);
  ASSERT_EQ(demo->servers.size(), 2u);
  EXPECT_EQ(demo->servers[0].address.toString(), "127.0.0.1:9001");
  EXPECT_EQ(demo->servers[0].weight, 1u);
  EXPECT_EQ(demo->servers[1].address.toString(), "127.0.0.1:9002");
  EXPECT_EQ(demo->servers[1].weight, 1u);
  EXPECT_EQ(demo->keepalive.max_idle, 32u);
  EXPECT_EQ(demo->keepalive.idle_timeout, seconds(20));
  EXPECT_EQ(demo->timeouts.connect, seconds(2));
  EXPECT_EQ(demo->timeouts.response, seconds(30));
  EXPECT_EQ(demo->timeouts.send, seconds(30));
}

TEST(ConfigTest, ExampleConfigsLoad) {
  const std::filesystem::path dir = sourceDir() / "conf/examples";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++count;
    LoadResult result = loadConfigFile(entry.path().string());
    EXPECT_TRUE(result.ok()) << entry.path();
    for (const std::string& e : result.errors)
      ADD_FAILURE() << e;
  }
  EXPECT_GT(count, 0);
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

TEST(ConfigIndexes, RoutesAndServersAreNumberedInFileOrder) {
  const std::string yaml = R"(
listeners:
  - address: 127.0.0.1:8080
    routes:
      - match: { path_prefix: /a }
        upstream: one
      - upstream: two
  - address: 127.0.0.1:8081
    routes:
      - respond: { status: 200 }
upstreams:
  one:
    servers: [{ address: 127.0.0.1:9001 }, { address: 127.0.0.1:9002 }]
  two:
    servers: [{ address: 127.0.0.1:9003 }]
)";
  LoadResult loaded = loadConfigText(yaml, "t.yaml");
  ASSERT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors.front());
  const Config& config = *loaded.config;
  EXPECT_EQ(config.routeCount(), 3u);
  EXPECT_EQ(config.serverCount(), 3u);
  EXPECT_EQ(config.listeners[0].routes[0].index, 0u);
  EXPECT_EQ(config.listeners[0].routes[1].index, 1u);
  EXPECT_EQ(config.listeners[1].routes[0].index, 2u);
  EXPECT_EQ(config.upstreams[0].servers[1].index, 1u);
  EXPECT_EQ(config.upstreams[1].servers[0].index, 2u);
}

}  // namespace
}  // namespace sluice::config
