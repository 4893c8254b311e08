// Active health checks against real sockets: probes from the master (one
// per server per interval, whatever the number of workers), a server killed
// under load taken out and brought back, and what all_down does when no
// server is left.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "integration/backend.h"
#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Server {
  explicit Server(std::string label, int port = 0) : name(std::move(label)) { start(port); }
  void start(int port) {
    Backend::Options options;
    options.port = port;
    backend = std::make_unique<Backend>(
        [this](const ReceivedRequest& r, int, int) {
          if (r.target == "/healthz") {
            ++probes;
            return Reply::send(httpResponse(healthy ? 200 : 500, "")).andClose();
          }
          return Reply::send(httpResponse(200, name));
        },
        options);
  }
  std::string name;
  std::atomic<bool> healthy{true};
  std::atomic<int> probes{0};
  std::unique_ptr<Backend> backend;
};

std::string bodyOf(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

std::string get(int port) {
  RawClient c;
  if (!c.connect(port)) return "no connection";
  c.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  const std::string response = c.readResponse(false, 5000ms);
  return std::to_string(statusOf(response)) + " " + bodyOf(response);
}

std::string config(int port, const std::vector<int>& servers, const std::string& extra,
                   int workers = 2) {
  std::string yaml = "workers: " + std::to_string(workers) +
                     "\nlisteners:\n  - address: 127.0.0.1:" + std::to_string(port) +
                     "\n    routes:\n      - upstream: app\nupstreams:\n  app:\n    servers:\n";
  for (int server : servers)
    yaml += "      - address: 127.0.0.1:" + std::to_string(server) + "\n";
  return yaml + extra;
}

bool waitForLog(SluiceProcess& sluice, const std::string& text, milliseconds timeout = 5000ms) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (sluice.errorLog().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST(HealthCheckTest, OneProbePerServerPerIntervalForTheWholeProcess) {
  Server a("a");
  const int port = freePort();
  SluiceProcess sluice;
  ASSERT_TRUE(sluice.start(config(port, {a.backend->port()},
                                  "    health_check: { path: /healthz, interval: 200ms, "
                                  "timeout: 100ms }\n",
                                  /*workers=*/4),
                           port))
      << sluice.errorLog();
  std::this_thread::sleep_for(100ms);
  const int before = a.probes.load();
  std::this_thread::sleep_for(2000ms);
  const int probes = a.probes.load() - before;
  // 2 s / 200 ms = 10 (± jitter and scheduling); four workers each probing
  // would make it 40.
  EXPECT_GE(probes, 7);
  EXPECT_LE(probes, 13);
  const std::vector<ReceivedRequest> requests = a.backend->requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests.back().method, "GET");
  EXPECT_EQ(requests.back().value("User-Agent"), "sluice-health-check");
  EXPECT_EQ(requests.back().value("Host"), "127.0.0.1:" + std::to_string(a.backend->port()));
  EXPECT_EQ(sanitizerReport(sluice.errorLog()), "");
}

TEST(HealthCheckTest, AServerKilledUnderLoadIsTakenOutAndBroughtBack) {
  Server a("a");
  Server b("b");
  const int b_port = b.backend->port();
  const int port = freePort();
  SluiceProcess sluice;
  const int admin = freePort();
  ASSERT_TRUE(sluice.start(config(port, {a.backend->port(), b_port},
                                  "    health_check: { path: /healthz, interval: 200ms, "
                                  "timeout: 150ms, unhealthy: 2, healthy: 2 }\n"
                                  "    retry_on: [connect_failure, reset]\n"
                                  "admin: {address: 127.0.0.1:" +
                                      std::to_string(admin) + "}\n"),
                           port))
      << sluice.errorLog();
  // Load from four clients through the kill, the detection and the return.
  std::atomic<bool> running{true};
  std::atomic<int> sent{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      while (running) {
        const std::string r = get(port);
        ++sent;
        if (r.substr(0, 3) != "200") ++failed;
        std::this_thread::sleep_for(5ms);
      }
    });
  }
  std::this_thread::sleep_for(500ms);
  b.backend->stop();  // killed: connections refused from now on
  EXPECT_TRUE(waitForLog(sluice, "server 127.0.0.1:" + std::to_string(b_port) +
                                     " out of service: health check /healthz failed 2 times"))
      << sluice.errorLog();
  // Detected: every request goes to a, at once, no retry needed.
  const int sent_at_detection = sent.load();
  const int failed_at_detection = failed.load();
  std::this_thread::sleep_for(500ms);
  EXPECT_GT(sent.load() - sent_at_detection, 20);
  EXPECT_EQ(failed.load(), failed_at_detection);
  b.start(b_port);
  EXPECT_TRUE(waitForLog(sluice, "server 127.0.0.1:" + std::to_string(b_port) +
                                     " passes its health check again; back in service"))
      << sluice.errorLog();
  std::this_thread::sleep_for(500ms);
  running = false;
  for (auto& t : clients)
    t.join();
  // Back in the rotation: client requests reach it again, not only probes.
  int served_by_b = 0;
  for (const ReceivedRequest& r : b.backend->requests())
    served_by_b += r.target == "/" ? 1 : 0;
  EXPECT_GT(served_by_b, 5);
  // Before detection a request can still lose the race with the kill (in
  // flight on b, or on a pooled connection b closed): a few at most, since
  // refused connects and resets of GETs are retried on a.
  EXPECT_LE(failed_at_detection, 3) << "of " << sent.load();
  EXPECT_EQ(failed.load(), failed_at_detection);
  // Counted once by the master: one outage, one recovery.
  RawClient scrape;
  ASSERT_TRUE(scrape.connect(admin));
  scrape.send("GET /metrics HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  const std::string metrics = scrape.readUntilClose();
  EXPECT_NE(metrics.find("sluice_health_check_outages_total{upstream=\"app\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sluice_health_check_recoveries_total{upstream=\"app\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_EQ(sanitizerReport(sluice.errorLog()), "");
}

TEST(HealthCheckTest, AllDownRefuseAnswers503AtOnceTryAllStillTries) {
  for (const std::string mode : {"refuse", "try_all"}) {
    SCOPED_TRACE(mode);
    Server a("a");
    a.healthy = false;  // /healthz answers 500, / still works
    const int port = freePort();
    SluiceProcess sluice;
    ASSERT_TRUE(sluice.start(config(port, {a.backend->port()},
                                    "    health_check: { path: /healthz, interval: 100ms, "
                                    "timeout: 80ms, unhealthy: 1, expect: [200-299] }\n"
                                    "    all_down: " +
                                        mode + "\n"),
                             port))
        << sluice.errorLog();
    ASSERT_TRUE(waitForLog(sluice,
                           "out of service: health check /healthz failed 1 times in a "
                           "row (status 500)"))
        << sluice.errorLog();
    const std::string r = get(port);
    if (mode == "refuse") {
      EXPECT_EQ(r.substr(0, 3), "503") << r;
      EXPECT_TRUE(waitForLog(sluice, "every server is out of service (all_down: refuse)"));
    } else {
      EXPECT_EQ(r, "200 a");  // Envoy's panic mode: better than nothing
    }
    EXPECT_EQ(sanitizerReport(sluice.errorLog()), "");
  }
}

}  // namespace
}  // namespace sluice::testing
