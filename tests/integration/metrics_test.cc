// Integration tests of the admin listener's /metrics with the real binary:
// figures summed over every worker (whichever answers), kept across
// reloads, in both exposition formats.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kRequests2xx =
    "sluice_http_requests_total{listener=\"web\",route=\"0\",upstream=\"\",code=\"2xx\"} ";

std::string bodyOf(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

// The value of the sample that starts with `prefix` (name and labels, then a
// space), or -1.
double sampleValue(const std::string& text, const std::string& prefix) {
  size_t at = text.find("\n" + prefix);
  if (at == std::string::npos) return -1;
  at += 1 + prefix.size();
  return std::strtod(text.c_str() + at, nullptr);
}

class MetricsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // Not sanitizerReport(): one test kills a worker on purpose.
    const std::string log = sluice_.errorLog();
    EXPECT_EQ(log.find("AddressSanitizer"), std::string::npos) << log;
    EXPECT_EQ(log.find("runtime error:"), std::string::npos) << log;
  }
  std::string configPath() const { return sluice_.dir().path() + "/sluice.yaml"; }
  std::string config(const std::string& body) const {
    return "workers: 2\n"
           "pid_file: " +
           sluice_.dir().path() +
           "/sluice.pid\n"
           "shutdown_timeout: 5s\n"
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
           "      - respond: {status: 200, body: \"" +
           body + "\"}\n";
  }
  void rewriteConfig(const std::string& yaml) {
    const std::string temp = configPath() + ".new";
    std::ofstream(temp) << yaml;
    ASSERT_EQ(std::rename(temp.c_str(), configPath().c_str()), 0);
  }
  // One scrape on a new connection (so the kernel spreads them over the
  // workers); a 503 (an older generation's worker during a reload) is
  // retried. Returns the full response.
  std::string scrape(const std::string& accept = "") {
    for (int attempt = 0; attempt < 50; ++attempt) {
      RawClient c;
      if (!c.connect(admin_port_)) return "";
      c.send("GET /metrics HTTP/1.1\r\nHost: h\r\n" +
             (accept.empty() ? std::string() : "Accept: " + accept + "\r\n") +
             "Connection: close\r\n\r\n");
      std::string response = c.readResponse();
      if (statusOf(response) != 503) return response;
      std::this_thread::sleep_for(20ms);
    }
    return "";
  }
  int sendRequests(int n, const std::string& body) {
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      RawClient c;
      if (!c.connect(port_)) continue;
      c.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
      ok += bodyOf(c.readResponse()) == body ? 1 : 0;
    }
    return ok;
  }

  int port_ = freePort();
  int admin_port_ = freePort();
  SluiceProcess sluice_;
};

TEST_F(MetricsTest, CountsAddUpOverWorkersAndNeverDecreaseAcrossReloads) {
  ASSERT_TRUE(sluice_.start(config("A"), port_)) << sluice_.errorLog();
  const std::vector<pid_t> workers = waitForChildProcesses(sluice_.pid(), 2);
  ASSERT_EQ(workers.size(), 2u);
  constexpr int kPerRound = 40;
  int sent = sendRequests(kPerRound, "A");
  ASSERT_EQ(sent, kPerRound);

  // Every scrape, whichever worker answers, has all of them.
  for (int i = 0; i < 10; ++i) {
    const std::string response = scrape();
    ASSERT_EQ(statusOf(response), 200) << response;
    EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
              std::string::npos)
        << response;
    EXPECT_EQ(sampleValue(bodyOf(response), kRequests2xx), sent) << bodyOf(response);
  }
  // Each worker in turn answers (the other stopped, so it cannot accept):
  // both give the sum over both.
  for (const pid_t answering : workers) {
    for (const pid_t other : workers)
      if (other != answering) ::kill(other, SIGSTOP);
    const std::string text = bodyOf(scrape());
    for (const pid_t other : workers)
      if (other != answering) ::kill(other, SIGCONT);
    EXPECT_EQ(sampleValue(text, kRequests2xx), sent) << "answered by " << answering << "\n" << text;
  }
  double previous_requests = sent;
  double previous_bytes = sampleValue(bodyOf(scrape()), "sluice_client_sent_bytes_total ");
  ASSERT_GT(previous_bytes, 0);

  for (int reload = 1; reload <= 5; ++reload) {
    const std::string body = reload % 2 == 0 ? "A" : "B";
    rewriteConfig(config(body));
    const CommandResult result = runSluice({"-s", "reload", "-c", configPath()});
    ASSERT_EQ(result.exit_code, 0) << result.output;
    // Scrapes while the old generation drains, and after.
    for (int i = 0; i < 5; ++i) {
      const std::string text = bodyOf(scrape());
      const double requests = sampleValue(text, kRequests2xx);
      const double bytes = sampleValue(text, "sluice_client_sent_bytes_total ");
      EXPECT_GE(requests, previous_requests) << text;
      EXPECT_GE(bytes, previous_bytes) << text;
      previous_requests = requests;
      previous_bytes = bytes;
    }
    sent += sendRequests(kPerRound / 4, body);
  }
  ASSERT_EQ(sent, kPerRound + 5 * (kPerRound / 4));
  const auto deadline = Clock::now() + 10s;
  std::string text;
  // Once every old generation has finished, its counts are all carried.
  do {
    text = bodyOf(scrape());
    if (sampleValue(text, "sluice_live_generations ") == 1) break;
    std::this_thread::sleep_for(50ms);
  } while (Clock::now() < deadline);
  EXPECT_EQ(sampleValue(text, "sluice_live_generations "), 1) << text;
  for (int i = 0; i < 6; ++i) {
    text = bodyOf(scrape());
    EXPECT_EQ(sampleValue(text, kRequests2xx), sent) << text;
  }
  EXPECT_EQ(sampleValue(text, "sluice_config_reloads_total{result=\"success\"} "), 5) << text;
  EXPECT_EQ(sampleValue(text, "sluice_config_reloads_total{result=\"failure\"} "), 0) << text;
  EXPECT_EQ(sampleValue(text, "sluice_config_last_reload_successful "), 1) << text;
  EXPECT_EQ(sampleValue(text, "sluice_generation "), 6) << text;
  EXPECT_GT(sampleValue(text, "sluice_config_last_reload_success_timestamp_seconds "),
            1.7e9);                                              // a Unix time, not 0
  EXPECT_EQ(sampleValue(text, "sluice_processes "), 3) << text;  // the master and 2 workers
  EXPECT_GT(sampleValue(text, "sluice_process_resident_memory_bytes "), 0) << text;
  EXPECT_GT(sampleValue(text, "sluice_process_open_fds "), 0) << text;
  // Request durations: the histogram's count is the request count.
  EXPECT_EQ(sampleValue(text,
                        "sluice_http_request_duration_seconds_count{listener=\"web\",route=\"0\","
                        "upstream=\"\"} "),
            sent)
      << text;
}

TEST_F(MetricsTest, FailedReloadAndOpenMetrics) {
  ASSERT_TRUE(sluice_.start(config("A"), port_)) << sluice_.errorLog();
  waitForChildProcesses(sluice_.pid(), 2);
  rewriteConfig("workers: [\n");
  // `sluice -s reload` would refuse the file itself: signal the master.
  ASSERT_EQ(::kill(sluice_.pid(), SIGHUP), 0);
  const auto deadline = Clock::now() + 5s;
  while (sluice_.errorLog().find("reload failed") == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_NE(sluice_.errorLog().find("reload failed"), std::string::npos) << sluice_.errorLog();
  const std::string response =
      scrape("application/openmetrics-text;version=1.0.0,text/plain;q=0.5");
  ASSERT_EQ(statusOf(response), 200) << response;
  EXPECT_NE(response.find("Content-Type: application/openmetrics-text; version=1.0.0; "
                          "charset=utf-8\r\n"),
            std::string::npos)
      << response;
  const std::string text = bodyOf(response);
  EXPECT_EQ(sampleValue(text, "sluice_config_last_reload_successful "), 0) << text;
  EXPECT_EQ(sampleValue(text, "sluice_config_reloads_total{result=\"failure\"} "), 1) << text;
  EXPECT_NE(text.find("\n# TYPE sluice_config_reloads counter\n"), std::string::npos) << text;
  ASSERT_GE(text.size(), 6u);
  EXPECT_EQ(text.substr(text.size() - 6), "# EOF\n");
  // HEAD gets the head only; other methods are refused.
  RawClient c;
  ASSERT_TRUE(c.connect(admin_port_));
  c.send("HEAD /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(statusOf(c.readResponse(true)), 200);
}

// A worker killed and respawned into its slot: nothing it counted is lost.
TEST_F(MetricsTest, RespawnedWorkerKeepsItsSlotsCounts) {
  ASSERT_TRUE(sluice_.start(config("A"), port_)) << sluice_.errorLog();
  const std::vector<pid_t> workers = waitForChildProcesses(sluice_.pid(), 2);
  ASSERT_EQ(workers.size(), 2u);
  const int sent = sendRequests(30, "A");
  ASSERT_EQ(sent, 30);
  // Killed before its generation serves, a worker would fail the start.
  const auto serving = Clock::now() + 5s;
  while (sampleValue(bodyOf(scrape()), "sluice_generation ") != 1 && Clock::now() < serving)
    std::this_thread::sleep_for(20ms);
  ASSERT_EQ(::kill(workers[0], SIGKILL), 0);
  std::string text;
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    text = bodyOf(scrape());
    if (sampleValue(text, "sluice_worker_respawns_total ") == 1 &&
        sampleValue(text, "sluice_processes ") == 3) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(sampleValue(text, "sluice_worker_respawns_total "), 1) << text;
  EXPECT_EQ(sampleValue(text, "sluice_processes "), 3) << text;
  EXPECT_EQ(sampleValue(text, kRequests2xx), sent) << text;
  EXPECT_GE(sampleValue(text, "sluice_process_cpu_seconds_total "), 0) << text;
}

// promtool's linter accepts a scrape taken while requests are being served.
TEST_F(MetricsTest, PromtoolAcceptsAScrapeUnderLoad) {
  // As the e2e tests treat their peers: tools/setup.sh installs it, so a
  // missing promtool is a failure, not a skip.
  ASSERT_EQ(std::system("command -v promtool >/dev/null 2>&1"), 0)
      << "promtool is missing (Debian package prometheus; tools/setup.sh installs it)";
  ASSERT_TRUE(sluice_.start(config("A"), port_)) << sluice_.errorLog();
  waitForChildProcesses(sluice_.pid(), 2);
  std::atomic<bool> stop{false};
  std::thread load([&] {
    while (!stop)
      sendRequests(1, "A");
  });
  std::this_thread::sleep_for(100ms);
  const std::string text = bodyOf(scrape());
  stop = true;
  load.join();
  const std::string path = sluice_.dir().path() + "/scrape.txt";
  std::ofstream(path) << text;
  EXPECT_GT(sampleValue(text, kRequests2xx), 0) << text;
  EXPECT_EQ(std::system(("promtool check metrics < " + path + " > " + path + ".out 2>&1").c_str()),
            0)
      << text;
}

}  // namespace
}  // namespace sluice::testing
