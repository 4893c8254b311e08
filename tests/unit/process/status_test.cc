// StatusCollector over hand-built shared memory (two live generations, one
// server in both, a DNS name), then the same document through
// formatStatusTable.
#include "process/status.h"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "core/json.h"
#include "process/status_table.h"

namespace sluice::process {
namespace {

struct MappedState {
  SharedState* state = SharedState::create();
  ~MappedState() { ::munmap(state, sizeof(SharedState)); }
};

void publish(SharedState& shared, size_t entry, uint32_t id, const CounterRegion* region) {
  shared.beginWrite();
  shared.live[entry].region.store(region);
  shared.live[entry].id.store(id);
  shared.endWrite();
}

std::shared_ptr<const config::Config> load(const std::string& text) {
  config::LoadResult result = config::loadConfigText(text, "sluice.yaml");
  EXPECT_TRUE(result.ok()) << (result.errors.empty() ? "" : result.errors[0]);
  return result.config;
}

// Label sets as Master::publishGeneration gives them.
void labelServers(SharedState& shared, const config::Config& config, CounterRegion& region) {
  std::vector<uint32_t> servers(config.serverCount(), SharedState::kNoLabelSet);
  for (const config::Upstream& upstream : config.upstreams) {
    for (const config::UpstreamServer& server : upstream.servers) {
      const std::string label = server.resolved() ? server.name + ":" + std::to_string(server.port)
                                                  : server.address.toString();
      const uint32_t set = shared.labelSetFor(LabelSet::Kind::kServer, upstream.name, label, "");
      for (uint32_t slot = 0; slot < server.slots; ++slot)
        servers[server.index + slot] = set;
    }
  }
  region.setLabelSets(std::vector<uint32_t>(config.routeCount(), SharedState::kNoLabelSet),
                      std::move(servers));
  region.setConfigChecksum(config.sha256);
}

std::string squashBlanks(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

const JsonValue* serverRow(const JsonValue& doc, std::string_view upstream,
                           std::string_view address) {
  for (const JsonValue& u : doc["upstreams"].items) {
    if (u["name"].str() != upstream) continue;
    for (const JsonValue& s : u["servers"].items) {
      if (s["address"].str() == address) return &s;
    }
  }
  return nullptr;
}

constexpr const char* kOld = R"(admin: {address: 127.0.0.1:9901}
listeners:
  - name: web
    address: 127.0.0.1:8080
    routes: [{upstream: app}]
upstreams:
  app:
    servers:
      - address: 127.0.0.1:8081
)";

constexpr const char* kNew = R"(admin: {address: 127.0.0.1:9901}
listeners:
  - name: "we\"b"
    address: 127.0.0.1:8080
    routes: [{upstream: app}, {upstream: names}]
upstreams:
  app:
    health_check: {interval: 1s, timeout: 1s}
    servers:
      - address: 127.0.0.1:8082
      - address: 127.0.0.1:8081
  names:
    servers:
      - {address: app.test:8000, max_addresses: 2}
      - {address: never.test:8000, max_addresses: 1}
)";

class StatusCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_config_ = load(kOld);
    new_config_ = load(kNew);
    ASSERT_TRUE(old_config_ && new_config_);
    g1_ = CounterRegion::create(2, old_config_->routeCount(), old_config_->serverCount());
    g2_ = CounterRegion::create(2, new_config_->routeCount(), new_config_->serverCount());
    labelServers(shared(), *old_config_, *g1_);
    labelServers(shared(), *new_config_, *g2_);
    publish(shared(), 0, 1, g1_.get());
    publish(shared(), 5, 2, g2_.get());
    shared().figures.serving_generation.store(2);
    shared().figures.master_pid.store(77);
  }
  SharedState& shared() { return *mapped_.state; }

  MappedState mapped_;
  std::shared_ptr<const config::Config> old_config_;
  std::shared_ptr<const config::Config> new_config_;
  std::unique_ptr<CounterRegion> g1_;
  std::unique_ptr<CounterRegion> g2_;
};

TEST_F(StatusCollectorTest, ReportsGenerationsWorkersAndServers) {
  // Generation 1 drains: one worker left (slot 1 exited), with 3 connections.
  g1_->worker(0).pid.store(101);
  g1_->worker(0).draining.store(1);
  observe::add(g1_->worker(0).connections_active, 3);
  // Generation 2 serves with two workers.
  g2_->worker(0).pid.store(201);
  g2_->worker(1).pid.store(202);
  observe::add(g2_->worker(1).connections_active, 5);
  observe::add(g2_->worker(1).connections_idle, 2);
  observe::add(g2_->worker(1).requests, 9);
  // 127.0.0.1:8081: index 0 in generation 1, index 1 in generation 2; its
  // in-flight requests and pool add up over both.
  observe::add(g1_->serverCounters(0)[0].in_flight, 2);
  observe::add(g1_->serverCounters(0)[0].connections_idle, 1);
  observe::add(g2_->serverCounters(0)[1].in_flight, 1);
  observe::add(g2_->serverCounters(1)[1].connections_active, 4);
  // 127.0.0.1:8082 fails its health check; 8081 is ejected for a while.
  g2_->serverHealth()[0].active_down.store(1);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
  g2_->serverHealth()[1].ejected_until_ms.store(now_ms + 20000);
  g2_->serverHealth()[1].consecutive_failures.store(5);
  // app.test resolved to one address (its second slot empty); never.test not.
  const config::UpstreamServer& app_test = new_config_->upstreams[1].servers[0];
  upstream::writeSlots(g2_->addressTable(), app_test.index,
                       {net::Address::parse("127.0.0.3:8000", nullptr), std::nullopt},
                       upstream::NameState::kResolved);
  observe::add(g2_->serverCounters(0)[app_test.index].connections_idle, 6);

  StatusCollector collector(shared(), 2, *new_config_, *g2_);
  std::string body;
  ASSERT_EQ(collector.render(&body), StatusCollector::Result::kOk);
  std::string error;
  std::optional<JsonValue> doc = parseJson(body, &error);
  ASSERT_TRUE(doc) << error << "\n" << body;
  EXPECT_EQ((*doc)["master_pid"].integer(), 77);
  EXPECT_EQ((*doc)["answered_by"]["pid"].integer(), ::getpid());
  EXPECT_EQ((*doc)["answered_by"]["generation"].integer(), 2);
  EXPECT_EQ((*doc)["config"]["path"].str(), "sluice.yaml");
  EXPECT_EQ((*doc)["config"]["sha256"].str(), new_config_->sha256);
  EXPECT_EQ((*doc)["serving_generation"].integer(), 2);

  const auto& generations = (*doc)["generations"].items;
  ASSERT_EQ(generations.size(), 2u);
  EXPECT_EQ(generations[0]["id"].integer(), 1);
  EXPECT_EQ(generations[0]["state"].str(), "draining");
  EXPECT_EQ(generations[0]["config_sha256"].str(), old_config_->sha256);
  EXPECT_EQ(generations[0]["workers"].items[0]["pid"].integer(), 101);
  EXPECT_EQ(generations[0]["workers"].items[0]["state"].str(), "draining");
  EXPECT_EQ(generations[0]["workers"].items[0]["connections"].integer(), 3);
  EXPECT_EQ(generations[0]["workers"].items[1]["state"].str(), "exited");
  EXPECT_EQ(generations[1]["state"].str(), "serving");
  EXPECT_EQ(generations[1]["config_sha256"].str(), new_config_->sha256);
  EXPECT_EQ(generations[1]["workers"].items[1]["pid"].integer(), 202);
  EXPECT_EQ(generations[1]["workers"].items[1]["state"].str(), "serving");
  EXPECT_EQ(generations[1]["workers"].items[1]["connections"].integer(), 5);
  EXPECT_EQ(generations[1]["workers"].items[1]["idle_connections"].integer(), 2);
  EXPECT_EQ(generations[1]["workers"].items[1]["requests"].integer(), 9);

  const auto& listeners = (*doc)["listeners"].items;
  ASSERT_EQ(listeners.size(), 2u);
  EXPECT_EQ(listeners[0]["name"].str(), "we\"b");  // escaped, and read back
  EXPECT_EQ(listeners[0]["routes"].integer(), 2);
  EXPECT_EQ(listeners[1]["name"].str(), "admin");
  EXPECT_EQ(listeners[1]["address"].str(), "127.0.0.1:9901");

  const JsonValue* down = serverRow(*doc, "app", "127.0.0.1:8082");
  ASSERT_TRUE(down) << body;
  EXPECT_EQ((*down)["health"].str(), "down");
  EXPECT_FALSE((*down)["ejected"].boolean);
  EXPECT_FALSE((*down)["in_service"].boolean);
  EXPECT_TRUE((*down)["dns_name"].isNull());
  const JsonValue* ejected = serverRow(*doc, "app", "127.0.0.1:8081");
  ASSERT_TRUE(ejected);
  EXPECT_EQ((*ejected)["health"].str(), "up");
  EXPECT_TRUE((*ejected)["ejected"].boolean);
  EXPECT_GT((*ejected)["ejected_for_ms"].integer(), 15000);
  EXPECT_EQ((*ejected)["consecutive_failures"].integer(), 5);
  EXPECT_EQ((*ejected)["in_flight"].integer(), 3);  // 2 in generation 1 + 1 in 2
  EXPECT_EQ((*ejected)["pool"]["idle"].integer(), 1);
  EXPECT_EQ((*ejected)["pool"]["active"].integer(), 4);
  const JsonValue* named = serverRow(*doc, "names", "127.0.0.3:8000");
  ASSERT_TRUE(named) << body;
  EXPECT_EQ((*named)["dns_name"].str(), "app.test");
  EXPECT_EQ((*named)["dns_state"].str(), "resolved");
  EXPECT_EQ((*named)["health"].str(), "unchecked");
  EXPECT_TRUE((*named)["in_service"].boolean);
  EXPECT_EQ((*named)["pool"]["idle"].integer(), 6);
  // never.test: one row with no address.
  const auto& names = (*doc)["upstreams"].items[1]["servers"].items;
  ASSERT_EQ(names.size(), 2u);
  EXPECT_TRUE(names[1]["address"].isNull());
  EXPECT_EQ(names[1]["dns_name"].str(), "never.test");
  EXPECT_EQ(names[1]["dns_state"].str(), "pending");

  // The same document as `sluice status` prints it.
  std::optional<std::string> table = formatStatusTable(body, &error);
  ASSERT_TRUE(table) << error;
  EXPECT_NE(table->find("sha256      " + new_config_->sha256 + "\n"), std::string::npos) << *table;
  // Columns are padded to their widest cell: compare with runs of blanks
  // squashed to one.
  const std::string rows = squashBlanks(*table);
  EXPECT_NE(rows.find("\napp 127.0.0.1:8082 - down no 0 0 0\n"), std::string::npos) << rows;
  EXPECT_NE(rows.find("\napp 127.0.0.1:8081 - up yes (20s) 3 1 4\n"), std::string::npos) << rows;
  EXPECT_NE(rows.find("\nnames 127.0.0.3:8000 app.test unchecked no 0 6 0\n"), std::string::npos);
  EXPECT_NE(rows.find("\nnames - never.test (pending) unchecked no 0 0 0\n"), std::string::npos);
  EXPECT_NE(
      rows.find("\n1 draining " + old_config_->sha256.substr(0, 12) + " 0 101 draining 3 0 0\n"),
      std::string::npos)
      << rows;
  EXPECT_NE(
      rows.find("\n2 serving " + new_config_->sha256.substr(0, 12) + " 1 202 serving 5 2 9\n"),
      std::string::npos);
  EXPECT_NE(rows.find("\nwe\"b 127.0.0.1:8080 no no 2\n"), std::string::npos);
}

// An older generation's worker cannot read the newer region: 503, as /metrics.
TEST_F(StatusCollectorTest, OlderGenerationDefersToNewer) {
  StatusCollector older(shared(), 1, *old_config_, *g1_);
  std::string body;
  EXPECT_EQ(older.render(&body), StatusCollector::Result::kNotNewest);
  EXPECT_TRUE(body.empty());
}

TEST(StatusTable, RefusesWhatIsNotAStatusDocument) {
  std::string error;
  EXPECT_FALSE(formatStatusTable("{\"a\":1}", &error));
  EXPECT_NE(error.find("not a /status document"), std::string::npos);
  EXPECT_FALSE(formatStatusTable("{", &error));
}

}  // namespace
}  // namespace sluice::process
