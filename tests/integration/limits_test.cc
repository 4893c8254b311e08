// Per-client limits on the real binary with two workers: a request rate per
// route (rate_limit) and open connections per client address
// (limits.connections_per_client), counted across workers, answered 429
// with Retry-After; another client address (127.0.0.2) is unaffected.
#include <signal.h>

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "integration/backend.h"
#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

class LimitsTest : public ::testing::Test {
 protected:
  void start(const std::string& limits, const std::string& rate_limit) {
    const std::string yaml =
        "workers: 2\n"
        "shutdown_timeout: 1s\n"
        "log: {level: info, error: stderr, access: off}\n"
        "limits: " +
        limits +
        "\n"
        "listeners:\n"
        "  - name: web\n"
        "    address: 127.0.0.1:" +
        std::to_string(port_) +
        "\n"
        "    routes:\n"
        "      - match: {path_prefix: /limited}\n"
        "        respond: {status: 200, body: \"ok\"}\n"
        "        rate_limit: " +
        rate_limit +
        "\n"
        "      - respond: {status: 200, body: \"free\"}\n";
    ASSERT_TRUE(sluice_.start(yaml, port_)) << sluice_.errorLog();
  }
  void TearDown() override {
    if (sluice_.running()) {
      sluice_.stop(SIGTERM);
      EXPECT_EQ(sanitizerReport(sluice_.errorLog()), "");
    }
  }
  // Status of one request on a new connection from `source`.
  int get(const std::string& path, const std::string& source = "127.0.0.1",
          std::string* response = nullptr) {
    RawClient c;
    if (!c.connectFrom(port_, source)) return -1;
    c.send("GET " + path + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    std::string got = c.readResponse();
    if (response) *response = got;
    return statusOf(got);
  }
  int port_ = freePort();
  SluiceProcess sluice_;
};

TEST_F(LimitsTest, RateLimitHoldsAcrossWorkersAndPerClient) {
  // 1 per minute, burst 5: exactly 5 pass, whichever worker takes each
  // connection (new connections spread over both).
  start("{}", "{requests: 1, per: 1m, burst: 5}");
  int ok = 0;
  int limited = 0;
  std::string refusal;
  for (int i = 0; i < 12; ++i) {
    std::string response;
    const int status = get("/limited", "127.0.0.1", &response);
    if (status == 200) ++ok;
    if (status == 429) {
      ++limited;
      refusal = response;
    }
  }
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(limited, 7);
  EXPECT_NE(refusal.find("\r\nRetry-After: "), std::string::npos) << refusal;
  // Another client address has its own bucket; other routes are unlimited.
  EXPECT_EQ(get("/limited", "127.0.0.2"), 200);
  EXPECT_EQ(get("/other", "127.0.0.1"), 200);
}

TEST_F(LimitsTest, RateLimitKeyedByAHeader) {
  start("{}", "{requests: 1, per: 1m, burst: 2, key: \"header:X-Api-Key\"}");
  auto with_key = [&](const std::string& key) {
    RawClient c;
    EXPECT_TRUE(c.connect(port_));
    c.send("GET /limited HTTP/1.1\r\nHost: h\r\nX-Api-Key: " + key + "\r\n\r\n");
    return statusOf(c.readResponse());
  };
  EXPECT_EQ(with_key("a"), 200);
  EXPECT_EQ(with_key("a"), 200);
  EXPECT_EQ(with_key("a"), 429);
  EXPECT_EQ(with_key("b"), 200);  // the same address, another key
}

TEST_F(LimitsTest, ManyDistinctKeysDoNotGrowTheWorkers) {
  start("{max_requests_per_connection: 0}",
        "{requests: 1, per: 1m, burst: 1, key: \"header:X-Api-Key\"}");
  // Distinct keys over a keep-alive connection. The shared table has a fixed
  // size (4 MiB): the first 20 000 keys touch all of its pages, the next
  // 20 000 (evicting older ones) must not grow the workers at all. (Unit
  // tests cover 100 000 keys and what eviction keeps.)
  std::vector<pid_t> workers = waitForChildProcesses(sluice_.pid(), 2);
  ASSERT_EQ(workers.size(), 2u);
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  auto send_keys = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_TRUE(c.send("GET /limited HTTP/1.1\r\nHost: h\r\nX-Api-Key: k" + std::to_string(i) +
                         "\r\n\r\n"));
      ASSERT_EQ(statusOf(c.readResponse()), 200) << i;
    }
  };
  auto rss = [&] {
    long total = 0;
    for (pid_t w : workers)
      total += vmRssKiB(w);
    return total;
  };
  send_keys(0, 20000);
  const long warmed = rss();
  send_keys(20000, 40000);
  const long after = rss();
  if (!kUnderAddressSanitizer) {
    EXPECT_LT(after - warmed, 512) << warmed << " KiB -> " << after << " KiB";
  }
}

TEST_F(LimitsTest, ConnectionsPerClientAreCountedAcrossWorkers) {
  start("{connections_per_client: 2}", "{requests: 1000, per: 1s}");
  // The start-up probe's connection is released once a worker sees it close.
  std::this_thread::sleep_for(300ms);
  RawClient first;
  RawClient second;
  ASSERT_TRUE(first.connectFrom(port_, "127.0.0.1"));
  ASSERT_TRUE(second.connectFrom(port_, "127.0.0.1"));
  for (RawClient* c : {&first, &second}) {
    c->send("GET /other HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_EQ(statusOf(c->readResponse()), 200);
  }
  // Both are open (on one worker or two): a third from the same address is
  // refused, one from another address is not.
  std::string response;
  EXPECT_EQ(get("/other", "127.0.0.1", &response), 429);
  EXPECT_NE(response.find("\r\nRetry-After: 1\r\n"), std::string::npos) << response;
  EXPECT_EQ(get("/other", "127.0.0.2"), 200);
  // Closing one frees its place.
  first = RawClient();
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(get("/other", "127.0.0.1"), 200);
}

}  // namespace
}  // namespace sluice::testing
