// Server names resolved by a real DNS server: dnsmasq (Debian's
// dnsmasq-base) on a loopback port, answering from a hosts directory the
// test rewrites (dnsmasq re-reads it on change, inotify). Backends listen on
// 127.0.0.1-3 with one port, as the pods behind a headless Service do.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/backend.h"
#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Dnsmasq {
 public:
  Dnsmasq() : port_(freePort()) { ::mkdir(hostsDir().c_str(), 0700); }
  ~Dnsmasq() { stop(); }
  static bool available() { return ::access("/usr/sbin/dnsmasq", X_OK) == 0; }
  int port() const { return port_; }

  // Answers `name` with `ips` (none = the name does not exist: NXDOMAIN
  // for anything under .test). Written to a temporary file and renamed,
  // so dnsmasq never reads half a file.
  void setHosts(const std::string& name, const std::vector<std::string>& ips) {
    std::string text;
    for (const std::string& ip : ips)
      text += ip + " " + name + "\n";
    const std::string tmp = dir_.path() + "/tmp-hosts";
    std::ofstream(tmp) << text;
    std::rename(tmp.c_str(), (hostsDir() + "/hosts").c_str());
  }

  bool start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string port = "--port=" + std::to_string(port_);
      const std::string hosts = "--hostsdir=" + hostsDir();
      const std::string log = dir_.path() + "/dnsmasq.log";
      std::freopen(log.c_str(), "w", stdout);
      std::freopen(log.c_str(), "a", stderr);
      ::execl("/usr/sbin/dnsmasq", "dnsmasq", "--keep-in-foreground", port.c_str(),
              "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
              hosts.c_str(), "--local=/test/", "--local-ttl=1", "--pid-file",
              "--conf-file=/dev/null", "--user=root", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::this_thread::sleep_for(300ms);  // it binds before it answers anything
    return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string hostsDir() const { return dir_.path() + "/hosts.d"; }
  TempDir dir_;
  int port_;
  pid_t pid_ = -1;
};

// A backend per loopback address, all on one port, answering its address.
struct Servers {
  explicit Servers(int count) : port(freePort()) {
    for (int i = 1; i <= count; ++i) {
      Backend::Options options;
      options.bind_ip = "127.0.0.";
      options.bind_ip += std::to_string(i);
      options.port = port;
      const std::string ip = options.bind_ip;
      backends.push_back(std::make_unique<Backend>(
          [ip, this](const ReceivedRequest& r, int, int) {
            if (r.target == "/healthz") {
              return Reply::send(httpResponse(ip == sick_ip ? 500 : 200, "")).andClose();
            }
            if (r.target == "/slow") {
              return Reply::send(httpResponse(200, ip)).delayed(slow_delay);
            }
            return Reply::send(httpResponse(200, ip));
          },
          options));
    }
  }
  int port;
  milliseconds slow_delay{1500};
  std::string sick_ip = "none";  // its /healthz answers 500
  std::vector<std::unique_ptr<Backend>> backends;
};

std::string bodyOf(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

class DnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Dnsmasq::available()) << "dnsmasq is missing: tools/setup.sh installs dnsmasq-base";
  }

  std::string config(int port, int server_port, int workers, const std::string& upstream_extra = "",
                     int admin_port = 0) {
    return "workers: " + std::to_string(workers) +
           (admin_port != 0 ? "\nadmin: {address: 127.0.0.1:" + std::to_string(admin_port) + "}"
                            : "") +
           "\nresolver:\n  addresses: [127.0.0.1:" + std::to_string(dns_.port()) +
           "]\n  timeout: 300ms\n  attempts: 1\n  min_interval: 100ms\n  max_interval: 300ms\n"
           "listeners:\n  - address: 127.0.0.1:" +
           std::to_string(port) +
           "\n    routes:\n      - upstream: app\nupstreams:\n  app:\n    servers:\n"
           "      - address: app.test:" +
           std::to_string(server_port) + "\n" + upstream_extra;
  }

  // One request on a new connection: "status body".
  std::string get(int port, const std::string& target = "/") {
    RawClient c;
    if (!c.connect(port)) return "no connection";
    c.send("GET " + target + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    const std::string response = c.readResponse(false, 5000ms);
    return std::to_string(statusOf(response)) + " " + bodyOf(response);
  }

  // Sends requests until one answers `want` (or 5 s pass).
  bool eventually(int port, const std::string& want) {
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      if (get(port) == want) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  Dnsmasq dns_;
  SluiceProcess sluice_;
};

TEST_F(DnsTest, AddressesAddedChangedAndRemovedAreFollowed) {
  Servers servers(3);
  dns_.setHosts("app.test", {"127.0.0.1"});
  ASSERT_TRUE(dns_.start());
  const int port = freePort();
  const int admin = freePort();
  ASSERT_TRUE(sluice_.start(config(port, servers.port, 2, "", admin), port)) << sluice_.errorLog();
  ASSERT_TRUE(eventually(port, "200 127.0.0.1")) << sluice_.errorLog();
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(get(port), "200 127.0.0.1");

  // Added: both are used.
  dns_.setHosts("app.test", {"127.0.0.1", "127.0.0.2"});
  ASSERT_TRUE(eventually(port, "200 127.0.0.2")) << sluice_.errorLog();
  int seen_first = 0;
  for (int i = 0; i < 20; ++i)
    seen_first += get(port) == "200 127.0.0.1" ? 1 : 0;
  EXPECT_GT(seen_first, 0);
  EXPECT_LT(seen_first, 20);

  // Changed: only the new address gets requests once the change is seen.
  dns_.setHosts("app.test", {"127.0.0.3"});
  ASSERT_TRUE(eventually(port, "200 127.0.0.3")) << sluice_.errorLog();
  std::this_thread::sleep_for(400ms);  // the other worker, too
  const int before1 = servers.backends[0]->requestCount();
  const int before2 = servers.backends[1]->requestCount();
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(get(port), "200 127.0.0.3");
  EXPECT_EQ(servers.backends[0]->requestCount(), before1);
  EXPECT_EQ(servers.backends[1]->requestCount(), before2);

  // Removed from DNS: a failed lookup keeps the last good answer.
  dns_.setHosts("app.test", {});
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(get(port), "200 127.0.0.3");
  // The DNS server gone: same.
  dns_.stop();
  std::this_thread::sleep_for(600ms);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(get(port), "200 127.0.0.3");
  const std::string log = sluice_.errorLog();
  EXPECT_NE(log.find("dns: app.test resolves to 127.0.0.1, 127.0.0.2 (was 127.0.0.1)"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("dns: app.test resolves to 127.0.0.3 (was 127.0.0.1, 127.0.0.2)"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("keeping the last answer (127.0.0.3)"), std::string::npos) << log;
  // One lookup for the whole process, not one per worker: each change is
  // logged once, by the master.
  EXPECT_EQ(log.find("resolves to 127.0.0.3"), log.rfind("resolves to 127.0.0.3")) << log;
  // And counted once: first answer, +.2, -> .3 are three changes.
  const std::string metrics = get(admin, "/metrics");
  EXPECT_NE(metrics.find("sluice_dns_changes_total{name=\"app.test\"} 3\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sluice_dns_addresses{name=\"app.test\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sluice_dns_lookup_failures_total{name=\"app.test\"} "), std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("sluice_dns_lookup_failures_total{name=\"app.test\"} 0\n"),
            std::string::npos)
      << metrics;
  EXPECT_EQ(sanitizerReport(log), "");
}

TEST_F(DnsTest, AnUnresolvedNameAnswers503UntilItResolvesWithoutARestart) {
  Servers servers(1);
  dns_.setHosts("other.test", {"127.0.0.1"});  // app.test: NXDOMAIN
  ASSERT_TRUE(dns_.start());
  const int port = freePort();
  const std::string yaml = config(port, servers.port, 1);
  // `sluice -t` warns, located, and passes.
  TempDir dir;
  const std::string path = dir.write("sluice.yaml", yaml);
  CommandResult check = runSluice({"-t", "-c", path});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find(path + ":15:18: upstreams.app.servers[0].address: warning: app.test "
                                     "does not resolve (Domain name not found); its upstream "
                                     "answers 503 until it does"),
            std::string::npos)
      << check.output;
  // Start-up does not fail on it.
  ASSERT_TRUE(sluice_.start(yaml, port)) << sluice_.errorLog();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(get(port).substr(0, 3), "503");
  EXPECT_EQ(servers.backends[0]->requestCount(), 0);
  dns_.setHosts("app.test", {"127.0.0.1"});
  EXPECT_TRUE(eventually(port, "200 127.0.0.1")) << sluice_.errorLog();
  const std::string log = sluice_.errorLog();
  EXPECT_NE(
      log.find("upstream app: app.test:" + std::to_string(servers.port) + " does not resolve"),
      std::string::npos)
      << log;
  EXPECT_EQ(sanitizerReport(log), "");
}

TEST_F(DnsTest, RequestsInFlightAndPooledConnectionsSurviveAChange) {
  Servers servers(2);
  dns_.setHosts("app.test", {"127.0.0.1", "127.0.0.2"});
  ASSERT_TRUE(dns_.start());
  const int port = freePort();
  ASSERT_TRUE(sluice_.start(config(port, servers.port, 1), port)) << sluice_.errorLog();
  ASSERT_TRUE(eventually(port, "200 127.0.0.2")) << sluice_.errorLog();
  ASSERT_TRUE(eventually(port, "200 127.0.0.1")) << sluice_.errorLog();
  // Requests held by both servers while 127.0.0.1 leaves DNS.
  std::vector<std::string> slow(4);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < slow.size(); ++i)
    clients.emplace_back([&, i] { slow[i] = get(port, "/slow"); });
  std::this_thread::sleep_for(300ms);
  dns_.setHosts("app.test", {"127.0.0.2"});
  for (auto& t : clients)
    t.join();
  int on_first = 0;
  for (const std::string& s : slow) {
    EXPECT_EQ(s.substr(0, 3), "200") << s;
    on_first += s == "200 127.0.0.1" ? 1 : 0;
  }
  EXPECT_GT(on_first, 0);  // finished on the address that left
  ASSERT_TRUE(eventually(port, "200 127.0.0.2"));
  std::this_thread::sleep_for(300ms);
  // The server that stayed keeps its pool: no new connection for these.
  const int connections = servers.backends[1]->connections();
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(get(port), "200 127.0.0.2");
  EXPECT_EQ(servers.backends[1]->connections(), connections);
  EXPECT_EQ(sanitizerReport(sluice_.errorLog()), "");
}

TEST_F(DnsTest, AReloadServesTheLastAnswerEvenWithTheDnsServerDown) {
  Servers servers(1);
  dns_.setHosts("app.test", {"127.0.0.1"});
  ASSERT_TRUE(dns_.start());
  const int port = freePort();
  ASSERT_TRUE(sluice_.start(config(port, servers.port, 2), port)) << sluice_.errorLog();
  ASSERT_TRUE(eventually(port, "200 127.0.0.1")) << sluice_.errorLog();
  dns_.stop();
  ::kill(sluice_.pid(), SIGHUP);
  const auto deadline = Clock::now() + 5s;
  while (sluice_.errorLog().find("generation 2 serving") == std::string::npos &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(sluice_.errorLog().find("generation 2 serving"), std::string::npos)
      << sluice_.errorLog();
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(get(port), "200 127.0.0.1");
  EXPECT_EQ(sanitizerReport(sluice_.errorLog()), "");
}

TEST_F(DnsTest, AnAddressAddedByDnsIsHealthCheckedAtOnce) {
  Servers servers(2);
  servers.sick_ip = "127.0.0.2";
  dns_.setHosts("app.test", {"127.0.0.1"});
  ASSERT_TRUE(dns_.start());
  const int port = freePort();
  ASSERT_TRUE(sluice_.start(config(port, servers.port, 2,
                                   "    health_check: { path: /healthz, interval: 10s, timeout: "
                                   "500ms, unhealthy: 1 }\n"),
                            port))
      << sluice_.errorLog();
  ASSERT_TRUE(eventually(port, "200 127.0.0.1")) << sluice_.errorLog();
  dns_.setHosts("app.test", {"127.0.0.1", "127.0.0.2"});
  // With a 10 s interval, only a probe at once can find it this soon.
  const std::string out = "upstream app: server 127.0.0.2:" + std::to_string(servers.port) +
                          " (app.test) out of service: health check /healthz failed 1 times in a "
                          "row (status 500)";
  const auto deadline = Clock::now() + 3s;
  while (sluice_.errorLog().find(out) == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_NE(sluice_.errorLog().find(out), std::string::npos) << sluice_.errorLog();
  std::this_thread::sleep_for(100ms);
  const int sick_before = servers.backends[1]->requestCount();
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(get(port), "200 127.0.0.1");
  EXPECT_EQ(servers.backends[1]->requestCount(), sick_before);
  EXPECT_EQ(sanitizerReport(sluice_.errorLog()), "");
}

}  // namespace
}  // namespace sluice::testing
