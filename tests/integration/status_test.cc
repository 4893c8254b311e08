// Integration tests of the admin listener's /status and `sluice status` with
// the real binary (2 workers): every server address with its health (one
// failing its active check, one ejected by passive health), requests in
// flight, pooled connections, the workers' pids and states, the config
// checksum, and the same across a reload (a draining generation still
// listed, with its own checksum and its request in flight).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "integration/backend.h"
#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string bodyOf(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

std::string squashBlanks(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

// sha256sum of a file (coreutils), to check the checksum independently of
// sluice's own code.
std::string sha256sum(const std::string& path) {
  FILE* pipe = ::popen(("sha256sum '" + path + "'").c_str(), "r");
  if (pipe == nullptr) return "";
  char line[256] = {};
  const bool read = std::fgets(line, sizeof line, pipe) != nullptr;
  ::pclose(pipe);
  return read ? std::string(line).substr(0, 64) : "";
}

// The server object of `address` in a /status body: from its "address" to
// the end of its "pool" object.
std::string serverObject(const std::string& body, const std::string& address) {
  const std::string start = "{\"address\":\"" + address + "\"";
  const size_t at = body.find(start);
  if (at == std::string::npos) return "";
  const size_t end = body.find("}}", at);
  return end == std::string::npos ? "" : body.substr(at, end + 2 - at);
}

int64_t number(const std::string& object, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(object, m, std::regex("\"" + key + "\":(-?[0-9]+)"))) return -1;
  return std::stoll(m[1]);
}

class StatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto script = [](const ReceivedRequest& r, int, int) {
      if (r.target == "/healthz") return Reply::send(httpResponse(200, "")).andClose();
      if (r.target.find("/slow") != std::string::npos)
        return Reply::send(httpResponse(200, "slow")).delayed(3000ms);
      return Reply::send(httpResponse(200, "ok"));
    };
    for (auto& backend : up_)
      backend = std::make_unique<Backend>(script);
  }
  void TearDown() override {
    const std::string report = sanitizerReport(sluice_.errorLog());
    EXPECT_EQ(report, "") << sluice_.errorLog();
  }
  std::string configPath() const { return sluice_.dir().path() + "/sluice.yaml"; }
  // `edge` keeps no health check: its dead server is ejected by passive
  // health after one connect failure. `app` probes every 200 ms.
  std::string config(const std::string& comment = "") const {
    const auto server = [](int port) {
      return "      - address: 127.0.0.1:" + std::to_string(port) + "\n";
    };
    return "# " + comment +
           "\n"
           "workers: 2\n"
           "pid_file: " +
           sluice_.dir().path() +
           "/sluice.pid\n"
           "shutdown_timeout: 10s\n"
           "log: {level: info, error: stderr, access: off}\n"
           "admin: {address: 127.0.0.1:" +
           std::to_string(admin_port_) +
           "}\n"
           "listeners:\n"
           "  - name: web\n"
           "    address: 127.0.0.1:" +
           std::to_string(port_) +
           "\n"
           "    routes:\n"
           "      - {match: {path_prefix: /edge}, upstream: edge}\n"
           "      - {upstream: app}\n"
           "upstreams:\n"
           "  app:\n"
           "    health_check: {interval: 200ms, timeout: 200ms, unhealthy: 1, healthy: 1}\n"
           "    servers:\n" +
           server(up_[0]->port()) + server(up_[1]->port()) + server(dead_app_) +
           "  edge:\n"
           "    passive: {failures: 1, ejection: 60s, max_ejected: 50%}\n"
           "    servers:\n" +
           server(up_[2]->port()) + server(dead_edge_);
  }
  // GET /status on a new connection; a 503 (an older generation's worker
  // during a reload) is retried.
  std::string status() {
    for (int attempt = 0; attempt < 50; ++attempt) {
      RawClient c;
      if (!c.connect(admin_port_)) return "";
      c.send("GET /status HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
      std::string response = c.readResponse();
      if (statusOf(response) != 503) return response;
      std::this_thread::sleep_for(20ms);
    }
    return "";
  }
  std::string get(const std::string& target) {
    RawClient c;
    if (!c.connect(port_)) return "no connection";
    c.send("GET " + target + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    const std::string response = c.readResponse();
    return std::to_string(statusOf(response)) + " " + bodyOf(response);
  }
  // Until `check` holds for a /status body (5 s at most); returns the last body.
  template <typename Check>
  std::string statusUntil(Check check) {
    std::string body;
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      body = bodyOf(status());
      if (check(body)) break;
      std::this_thread::sleep_for(50ms);
    }
    return body;
  }

  std::unique_ptr<Backend> up_[3];
  int dead_app_ = freePort();  // nothing listens on these
  int dead_edge_ = freePort();
  int port_ = freePort();
  int admin_port_ = freePort();
  SluiceProcess sluice_;
};

TEST_F(StatusTest, ReportsWorkersAndEveryServerWithItsHealth) {
  ASSERT_TRUE(sluice_.start(config(), port_)) << sluice_.errorLog();
  const std::vector<pid_t> workers = waitForChildProcesses(sluice_.pid(), 2);
  ASSERT_EQ(workers.size(), 2u);
  for (int i = 0; i < 6; ++i) {
    // Connect failures on the dead servers are retried on the live one.
    EXPECT_EQ(get("/edge"), "200 ok");
    EXPECT_EQ(get("/"), "200 ok");
  }
  const std::string up0 = "127.0.0.1:" + std::to_string(up_[0]->port());
  const std::string up1 = "127.0.0.1:" + std::to_string(up_[1]->port());
  const std::string up2 = "127.0.0.1:" + std::to_string(up_[2]->port());
  const std::string dead_app = "127.0.0.1:" + std::to_string(dead_app_);
  const std::string dead_edge = "127.0.0.1:" + std::to_string(dead_edge_);
  // The dead app server fails its first probe (200 ms); the dead edge
  // server was ejected by the requests above.
  std::string body = statusUntil([&](const std::string& b) {
    return serverObject(b, dead_app).find("\"health\":\"down\"") != std::string::npos;
  });

  const std::string response = status();
  ASSERT_EQ(statusOf(response), 200) << response;
  EXPECT_NE(response.find("\r\nContent-Type: application/json\r\n"), std::string::npos) << response;
  EXPECT_NE(response.find("\r\nCache-Control: no-store\r\n"), std::string::npos) << response;
  body = bodyOf(response);
  ASSERT_EQ(body.front(), '{') << body;
  ASSERT_EQ(body.back(), '}') << body;

  const std::string sha = sha256sum(configPath());
  ASSERT_EQ(sha.size(), 64u);
  EXPECT_NE(body.find("\"version\":\"0.1.0\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"master_pid\":" + std::to_string(sluice_.pid()) + ","), std::string::npos);
  EXPECT_NE(body.find("\"config\":{\"path\":\"" + configPath() + "\",\"sha256\":\"" + sha + "\"}"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("\"generations\":[{\"id\":1,\"state\":\"serving\",\"config_sha256\":\"" +
                      sha + "\",\"workers\":["),
            std::string::npos)
      << body;
  for (const pid_t pid : workers) {
    EXPECT_NE(body.find("\"pid\":" + std::to_string(pid) + ",\"state\":\"serving\""),
              std::string::npos)
        << pid << "\n"
        << body;
  }
  EXPECT_NE(body.find("{\"name\":\"web\",\"address\":\"127.0.0.1:" + std::to_string(port_) +
                      "\",\"tls\":false,\"proxy_protocol\":false,\"routes\":2,\"admin\":false}"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("{\"name\":\"admin\",\"address\":\"127.0.0.1:" + std::to_string(admin_port_) +
                      "\""),
            std::string::npos);

  // Each server with its health: the prefix of its object is exact.
  const std::string numeric = "\",\"dns_name\":null,\"dns_state\":null,\"weight\":1,";
  for (const std::string& address : {up0, up1}) {
    EXPECT_EQ(serverObject(body, address)
                  .find("{\"address\":\"" + address + numeric +
                        "\"health\":\"up\",\"ejected\":false,\"ejected_for_ms\":0,"
                        "\"consecutive_failures\":0,\"in_service\":true,\"in_flight\":0,"),
              0u)
        << body;
  }
  EXPECT_EQ(
      serverObject(body, dead_app)
          .find("{\"address\":\"" + dead_app + numeric + "\"health\":\"down\",\"ejected\":false,"),
      0u)
      << body;
  EXPECT_NE(serverObject(body, dead_app).find("\"in_service\":false"), std::string::npos);
  EXPECT_EQ(serverObject(body, up2).find("{\"address\":\"" + up2 + numeric +
                                         "\"health\":\"unchecked\",\"ejected\":false,"),
            0u)
      << body;
  const std::string ejected = serverObject(body, dead_edge);
  EXPECT_EQ(ejected.find("{\"address\":\"" + dead_edge + numeric +
                         "\"health\":\"unchecked\",\"ejected\":true,"),
            0u)
      << body;
  EXPECT_GT(number(ejected, "ejected_for_ms"), 30000) << ejected;
  // Keep-alive to the servers that answered: pooled connections (in
  // whichever worker took the requests), none in use.
  EXPECT_GE(number(serverObject(body, up0), "idle") + number(serverObject(body, up1), "idle"), 1)
      << body;
  EXPECT_GE(number(serverObject(body, up2), "idle"), 1) << body;
  EXPECT_EQ(number(serverObject(body, up2), "active"), 0) << body;
  EXPECT_EQ(number(serverObject(body, dead_edge), "idle"), 0) << body;

  // A request in progress shows as in flight on its server.
  RawClient slow;
  ASSERT_TRUE(slow.connect(port_));
  slow.send("GET /edge/slow HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  // Both figures, not the first alone: they are separate counters, written
  // one after the other by the worker and read one after the other by
  // whichever worker answers /status (a fresh-clone CI run once read
  // in_flight 1 with active still 0).
  body = statusUntil([&](const std::string& b) {
    return number(serverObject(b, up2), "in_flight") == 1 &&
           number(serverObject(b, up2), "active") == 1;
  });
  EXPECT_EQ(number(serverObject(body, up2), "in_flight"), 1) << body;
  EXPECT_EQ(number(serverObject(body, up2), "active"), 1) << body;

  // The same as `sluice status` prints it.
  CommandResult table = runSluice({"status", "-c", configPath()});
  ASSERT_EQ(table.exit_code, 0) << table.output;
  const std::string rows = squashBlanks(table.output);
  EXPECT_NE(rows.find("version 0.1.0\n"), std::string::npos) << rows;
  EXPECT_NE(rows.find("\nsha256 " + sha + "\n"), std::string::npos) << rows;
  EXPECT_NE(rows.find("\ngeneration 1 serving\n"), std::string::npos) << rows;
  for (const pid_t pid : workers) {
    EXPECT_NE(std::regex_search(rows, std::regex("\n1 serving " + sha.substr(0, 12) + " [01] " +
                                                 std::to_string(pid) +
                                                 " serving [0-9]+ [0-9]+ "
                                                 "[0-9]+\n")),
              false)
        << pid << "\n"
        << rows;
  }
  EXPECT_NE(rows.find("\nweb 127.0.0.1:" + std::to_string(port_) + " no no 2\n"), std::string::npos)
      << rows;
  EXPECT_TRUE(std::regex_search(rows, std::regex("\napp " + up0 + " - up no 0 [0-9]+ 0\n")))
      << rows;
  EXPECT_TRUE(std::regex_search(rows, std::regex("\napp " + up1 + " - up no 0 [0-9]+ 0\n")))
      << rows;
  EXPECT_NE(rows.find("\napp " + dead_app + " - down no 0 0 0\n"), std::string::npos) << rows;
  EXPECT_TRUE(std::regex_search(rows, std::regex("\nedge " + up2 + " - unchecked no 1 [0-9]+ 1\n")))
      << rows;
  EXPECT_TRUE(std::regex_search(
      rows, std::regex("\nedge " + dead_edge + " - unchecked yes \\([0-9]+s\\) 0 0 0\n")))
      << rows;

  CommandResult json = runSluice({"status", "--json", "-c", configPath()});
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_EQ(json.output.rfind("{\"version\":\"0.1.0\",", 0), 0u) << json.output;
  EXPECT_NE(json.output.find(serverObject(body, dead_app).substr(0, 60)), std::string::npos);
  EXPECT_EQ(bodyOf(slow.readResponse()), "slow");
}

// A reload: the serving generation and the checksum move; the draining
// generation stays listed, with its own checksum and the request it still
// serves in flight.
TEST_F(StatusTest, FollowsAReload) {
  ASSERT_TRUE(sluice_.start(config("first"), port_)) << sluice_.errorLog();
  ASSERT_EQ(waitForChildProcesses(sluice_.pid(), 2).size(), 2u);
  const std::string first_sha = sha256sum(configPath());
  const std::string up2 = "127.0.0.1:" + std::to_string(up_[2]->port());
  std::string body = bodyOf(status());
  EXPECT_NE(body.find("\"sha256\":\"" + first_sha + "\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"serving_generation\":1,"), std::string::npos) << body;

  // A slow request keeps generation 1 draining after the reload.
  RawClient slow;
  ASSERT_TRUE(slow.connect(port_));
  slow.send("GET /edge/slow HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(up_[2]->waitForRequests(1, 2000ms));

  const std::string temp = configPath() + ".new";
  std::ofstream(temp) << config("second");
  ASSERT_EQ(std::rename(temp.c_str(), configPath().c_str()), 0);
  const std::string second_sha = sha256sum(configPath());
  ASSERT_NE(second_sha, first_sha);
  CommandResult reload = runSluice({"-s", "reload", "-c", configPath()});
  ASSERT_EQ(reload.exit_code, 0) << reload.output << sluice_.errorLog();

  body = bodyOf(status());
  EXPECT_NE(
      body.find("\"config\":{\"path\":\"" + configPath() + "\",\"sha256\":\"" + second_sha + "\"}"),
      std::string::npos)
      << body;
  EXPECT_NE(body.find("\"answered_by\":{\"pid\":"), std::string::npos);
  EXPECT_NE(body.find(",\"generation\":2}"), std::string::npos) << body;
  EXPECT_NE(body.find("\"serving_generation\":2,"), std::string::npos) << body;
  EXPECT_NE(body.find("\"reloads\":{\"succeeded\":1,\"failed\":0,\"last_successful\":true}"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("{\"id\":1,\"state\":\"draining\",\"config_sha256\":\"" + first_sha + "\""),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("{\"id\":2,\"state\":\"serving\",\"config_sha256\":\"" + second_sha + "\""),
            std::string::npos)
      << body;
  // Generation 1's worker that holds the slow request drains.
  EXPECT_NE(body.find("\"state\":\"draining\",\"connections\":1,"), std::string::npos) << body;
  // Its request in flight counts on the server (generation 1's counters,
  // added to generation 2's row of the same address).
  EXPECT_EQ(number(serverObject(body, up2), "in_flight"), 1) << body;

  CommandResult table = runSluice({"status", "-c", configPath()});
  ASSERT_EQ(table.exit_code, 0) << table.output;
  const std::string rows = squashBlanks(table.output);
  EXPECT_NE(rows.find("\ngeneration 2 serving\n"), std::string::npos) << rows;
  EXPECT_NE(rows.find("\nsha256 " + second_sha + "\n"), std::string::npos) << rows;
  EXPECT_NE(rows.find("\n1 draining " + first_sha.substr(0, 12) + " "), std::string::npos) << rows;
  EXPECT_NE(rows.find("\n2 serving " + second_sha.substr(0, 12) + " "), std::string::npos) << rows;
  EXPECT_NE(rows.find("\nreloads 1 succeeded, 0 failed\n"), std::string::npos) << rows;

  EXPECT_EQ(bodyOf(slow.readResponse()), "slow");
  slow = RawClient();  // closed: the draining worker has nothing left
  // Once it finished, generation 1 is gone.
  body =
      statusUntil([](const std::string& b) { return b.find("{\"id\":1,") == std::string::npos; });
  EXPECT_EQ(body.find("{\"id\":1,"), std::string::npos) << body;
  EXPECT_NE(body.find("\"generations\":[{\"id\":2,\"state\":\"serving\""), std::string::npos)
      << body;
}

TEST(StatusCommand, FailsWithAMessage) {
  TempDir dir;
  const std::string no_admin =
      dir.write("none.yaml",
                "listeners:\n  - address: 127.0.0.1:1\n    routes: [{respond: {status: 200}}]\n");
  CommandResult result = runSluice({"status", "-c", no_admin});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("has no readable admin listener"), std::string::npos)
      << result.output;

  const int closed = freePort();
  const std::string refused = dir.write(
      "refused.yaml", "admin: {address: 127.0.0.1:" + std::to_string(closed) +
                          "}\nlisteners:\n  - address: 127.0.0.1:1\n    routes: [{respond: "
                          "{status: 200}}]\n");
  result = runSluice({"status", "-c", refused});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("cannot connect to 127.0.0.1:" + std::to_string(closed) +
                               ": Connection refused"),
            std::string::npos)
      << result.output;

  // Something else on the admin address: not a 200.
  Backend other([](const ReceivedRequest&, int, int) {
    return Reply::send(httpResponse(404, "no")).andClose();
  });
  const std::string wrong =
      dir.write("wrong.yaml", "admin: {address: 127.0.0.1:" + std::to_string(other.port()) +
                                  "}\nlisteners:\n  - address: 127.0.0.1:1\n    routes: [{respond: "
                                  "{status: 200}}]\n");
  result = runSluice({"status", "-c", wrong});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("GET /status on 127.0.0.1:" + std::to_string(other.port()) +
                               " answered 404"),
            std::string::npos)
      << result.output;
}

}  // namespace
}  // namespace sluice::testing
