// Integration tests of the master/worker processes: reload under load,
// graceful drain, respawn, `sluice -s`, resource use across reloads.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "integration/backend.h"
#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::vector<pid_t> childrenOf(pid_t parent) {
  std::vector<pid_t> children;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return children;
  while (dirent* entry = ::readdir(proc)) {
    pid_t pid = static_cast<pid_t>(std::atoi(entry->d_name));
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // Fields after the parenthesised command name: state ppid ...
    size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state;
    pid_t ppid;
    if (rest >> state >> ppid && ppid == parent && state != 'Z') children.push_back(pid);
  }
  ::closedir(proc);
  return children;
}

bool alive(pid_t pid) {
  return ::kill(pid, 0) == 0;
}

long statusField(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  }
  return -1;
}

size_t fdCount(pid_t pid) {
  size_t count = 0;
  DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (dir == nullptr) return 0;
  while (dirent* entry = ::readdir(dir))
    count += entry->d_name[0] != '.' ? 1 : 0;
  ::closedir(dir);
  return count;
}

// A config whose one respond route answers `body`, with a pid file, two
// workers and short timeouts so drains are quick.
std::string configWith(int port, const std::string& body, const std::string& dir, int workers = 2,
                       const std::string& extra_routes = "", const std::string& extra = "") {
  return "workers: " + std::to_string(workers) + "\n" + "pid_file: " + dir +
         "/sluice.pid\n"
         "shutdown_timeout: 10s\n"
         "log: {level: info, error: stderr, access: off}\n" +
         extra +
         "listeners:\n"
         "  - name: web\n"
         "    address: 127.0.0.1:" +
         std::to_string(port) +
         "\n"
         "    routes:\n" +
         extra_routes + "      - respond: {status: 200, body: \"" + body + "\"}\n";
}

std::string bodyOf(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

// A backend that accepts one connection, reads a request, waits `delay`,
// then answers 200 "slow".
class SlowBackend {
 public:
  explicit SlowBackend(std::chrono::milliseconds delay) : port_(freePort()) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
          ::listen(listen_fd_, 16) == 0;
    thread_ = std::thread([this, delay] {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      (void)n;
      std::this_thread::sleep_for(delay);
      const char response[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow";
      ssize_t w = ::send(fd, response, sizeof response - 1, MSG_NOSIGNAL);
      (void)w;
      ::close(fd);
    });
  }
  ~SlowBackend() {
    ::shutdown(listen_fd_, SHUT_RDWR);  // unblocks accept() if nothing came
    thread_.join();
    ::close(listen_fd_);
  }
  bool ok() const { return ok_; }
  int port() const { return port_; }

 private:
  int port_;
  int listen_fd_ = -1;
  bool ok_ = false;
  std::thread thread_;
};

class ProcessTest : public ::testing::Test {
 protected:
  void TearDown() override {
    std::string log = sluice_.errorLog();
    EXPECT_EQ(log.find("AddressSanitizer"), std::string::npos) << log;
    EXPECT_EQ(log.find("runtime error:"), std::string::npos) << log;
  }
  std::string configPath() const { return sluice_.dir().path() + "/sluice.yaml"; }
  void rewriteConfig(const std::string& yaml) {
    std::string temp = configPath() + ".new";
    std::ofstream(temp) << yaml;
    ASSERT_EQ(std::rename(temp.c_str(), configPath().c_str()), 0);
  }
  CommandResult control(const std::string& action) {
    return runSluice({"-s", action, "-c", configPath()});
  }
  std::string get(int port, const std::string& path = "/") {
    RawClient c;
    if (!c.connect(port)) return "";
    c.send("GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n");
    return c.readResponse();
  }

  SluiceProcess sluice_;
};

// The workers of `parent` once there are `count` of them (start() returns
// when the first one answers; the others may still be starting).
std::vector<pid_t> waitForChildren(pid_t parent, size_t count) {
  auto deadline = Clock::now() + 5s;
  std::vector<pid_t> children = childrenOf(parent);
  while (children.size() != count && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    children = childrenOf(parent);
  }
  return children;
}

TEST_F(ProcessTest, StartsTheConfiguredNumberOfWorkers) {
  int port = freePort();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", sluice_.dir().path(), 3), port))
      << sluice_.errorLog();
  auto deadline = Clock::now() + 5s;
  while (childrenOf(sluice_.pid()).size() != 3 && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(childrenOf(sluice_.pid()).size(), 3u);
  std::ifstream pid_file(sluice_.dir().path() + "/sluice.pid");
  pid_t written = 0;
  pid_file >> written;
  EXPECT_EQ(written, sluice_.pid());
}

TEST_F(ProcessTest, ReloadWithControlCommandSwitchesConfig) {
  int port = freePort();
  const std::string dir = sluice_.dir().path();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", dir), port)) << sluice_.errorLog();
  EXPECT_EQ(bodyOf(get(port)), "A");
  rewriteConfig(configWith(port, "B", dir));
  CommandResult reload = control("reload");
  EXPECT_EQ(reload.exit_code, 0) << reload.output;
  EXPECT_NE(reload.output.find("generation 2 serving"), std::string::npos) << reload.output;
  EXPECT_EQ(bodyOf(get(port)), "B");
}

TEST_F(ProcessTest, ReloadWithBrokenConfigIsRejectedAndOldConfigKeepsServing) {
  int port = freePort();
  const std::string dir = sluice_.dir().path();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", dir), port)) << sluice_.errorLog();
  std::vector<pid_t> workers_before = waitForChildren(sluice_.pid(), 2);
  rewriteConfig(configWith(port, "B", dir) + "bogus_key: 1\n");
  CommandResult reload = control("reload");
  EXPECT_EQ(reload.exit_code, 1);
  EXPECT_NE(reload.output.find(configPath() + ":"), std::string::npos) << reload.output;
  EXPECT_NE(reload.output.find("bogus_key: unknown key"), std::string::npos) << reload.output;
  // The same check in the master itself, when signalled directly.
  ::kill(sluice_.pid(), SIGHUP);
  auto deadline = Clock::now() + 5s;
  while (sluice_.errorLog().find("reload failed") == std::string::npos && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  std::string log = sluice_.errorLog();
  EXPECT_NE(log.find("bogus_key: unknown key"), std::string::npos) << log;
  EXPECT_NE(log.find("reload failed"), std::string::npos) << log;
  EXPECT_EQ(bodyOf(get(port)), "A");
  std::vector<pid_t> workers_after = childrenOf(sluice_.pid());
  std::sort(workers_before.begin(), workers_before.end());
  std::sort(workers_after.begin(), workers_after.end());
  EXPECT_EQ(workers_before, workers_after);
}

TEST_F(ProcessTest, ReloadThatCannotBindFailsWithTheReason) {
  int port = freePort();
  int taken = freePort();
  const std::string dir = sluice_.dir().path();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", dir), port)) << sluice_.errorLog();
  // Occupy a port, then ask for it in a reload.
  SluiceProcess occupant;
  ASSERT_TRUE(occupant.start("listeners:\n  - address: 127.0.0.1:" + std::to_string(taken) +
                                 "\n    routes: [{respond: {status: 200}}]\n",
                             taken));
  std::string yaml = configWith(port, "B", dir) +
                     "  - name: extra\n"
                     "    address: 127.0.0.1:" +
                     std::to_string(taken) +
                     "\n"
                     "    routes: [{respond: {status: 200}}]\n";
  rewriteConfig(yaml);
  CommandResult reload = control("reload");
  EXPECT_EQ(reload.exit_code, 1) << reload.output;
  EXPECT_NE(reload.output.find("cannot bind 127.0.0.1:" + std::to_string(taken)), std::string::npos)
      << reload.output;
  EXPECT_EQ(bodyOf(get(port)), "A");
}

// A reload whose workers fail to start (here: an access log that cannot be
// opened) leaves the listeners exactly as they were: the port it added is
// not left bound with nothing accepting, the port it dropped still serves,
// and a worker respawned into the serving generation gets valid fds.
TEST_F(ProcessTest, FailedReloadLeavesTheListenersAsTheyWere) {
  const int port = freePort();
  const int kept = freePort();
  const int added = freePort();
  const std::string dir = sluice_.dir().path();
  const auto listener = [](const std::string& name, int at) {
    return "  - name: " + name + "\n    address: 127.0.0.1:" + std::to_string(at) +
           "\n    routes: [{respond: {status: 200, body: \"" + name + "\"}}]\n";
  };
  ASSERT_TRUE(sluice_.start(configWith(port, "A", dir) + listener("kept", kept), port))
      << sluice_.errorLog();
  std::string broken = configWith(port, "B", dir) + listener("added", added);
  const std::string off = "access: off";
  broken.replace(broken.find(off), off.size(), "access: " + dir + "/no/such/dir/access.log");
  rewriteConfig(broken);
  CommandResult reload = control("reload");
  EXPECT_EQ(reload.exit_code, 1) << reload.output;
  EXPECT_NE(sluice_.errorLog().find("access.log"), std::string::npos) << sluice_.errorLog();
  RawClient probe;
  EXPECT_FALSE(probe.connect(added)) << "a port of the failed config is still bound";
  EXPECT_EQ(bodyOf(get(port)), "A");
  EXPECT_EQ(bodyOf(get(kept)), "kept");
  // A respawn into the serving generation is handed its listeners intact.
  std::vector<pid_t> workers = waitForChildren(sluice_.pid(), 2);
  ASSERT_EQ(workers.size(), 2u);
  ASSERT_EQ(::kill(workers[0], SIGKILL), 0);
  ASSERT_EQ(::kill(workers[1], SIGKILL), 0);
  auto deadline = Clock::now() + 5s;
  std::vector<pid_t> now;
  do {
    std::this_thread::sleep_for(20ms);
    now = childrenOf(sluice_.pid());
  } while ((now.size() != 2 || std::find(now.begin(), now.end(), workers[0]) != now.end() ||
            std::find(now.begin(), now.end(), workers[1]) != now.end()) &&
           Clock::now() < deadline);
  ASSERT_EQ(now.size(), 2u);
  std::this_thread::sleep_for(200ms);  // the respawned workers start
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(bodyOf(get(port)), "A");
    EXPECT_EQ(bodyOf(get(kept)), "kept");
  }
  const std::string log = sluice_.errorLog();
  EXPECT_EQ(log.find("cannot watch listening socket"), std::string::npos) << log;
  // And a good reload afterwards still works, adding the port for real.
  rewriteConfig(configWith(port, "B", dir) + listener("added", added));
  reload = control("reload");
  EXPECT_EQ(reload.exit_code, 0) << reload.output;
  EXPECT_EQ(bodyOf(get(added)), "added");
  EXPECT_EQ(bodyOf(get(port)), "B");
  RawClient gone;
  EXPECT_FALSE(gone.connect(kept)) << "a port the new config dropped is still open";
}

TEST_F(ProcessTest, KilledWorkerIsReplacedAndServiceContinues) {
  int port = freePort();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", sluice_.dir().path()), port))
      << sluice_.errorLog();
  // Both workers up and the generation serving: a worker that dies while
  // the first generation starts fails the start (the master exits 1), which
  // is another test's subject.
  auto deadline = Clock::now() + 5s;
  while ((childrenOf(sluice_.pid()).size() != 2 ||
          sluice_.errorLog().find("generation 1 serving") == std::string::npos) &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  std::vector<pid_t> before = childrenOf(sluice_.pid());
  ASSERT_EQ(before.size(), 2u);
  ASSERT_NE(sluice_.errorLog().find("generation 1 serving"), std::string::npos);
  ASSERT_EQ(::kill(before[0], SIGKILL), 0);
  deadline = Clock::now() + 5s;
  std::vector<pid_t> after;
  while (Clock::now() < deadline) {
    after = childrenOf(sluice_.pid());
    if (after.size() == 2 && std::find(after.begin(), after.end(), before[0]) == after.end()) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(after.size(), 2u);
  EXPECT_EQ(std::find(after.begin(), after.end(), before[0]), after.end());
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(bodyOf(get(port)), "A");
  std::string log = sluice_.errorLog();
  EXPECT_NE(log.find("killed by signal 9"), std::string::npos) << log;
  EXPECT_NE(log.find("respawning worker slot"), std::string::npos) << log;
}

// Counters live in each generation's shared region and are carried on when
// a generation finishes: the totals the master reports at exit add up every
// request sent, across 5 reloads and a worker killed and respawned.
TEST_F(ProcessTest, CountersAddUpAcrossReloadsAndRespawns) {
  int port = freePort();
  const std::string dir = sluice_.dir().path();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", dir), port)) << sluice_.errorLog();
  int sent = 0;
  const auto send_some = [&](const char* body) {
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(bodyOf(get(port)), body);
      ++sent;
    }
  };
  for (int reload = 0; reload < 5; ++reload) {
    send_some(reload % 2 == 0 ? "A" : "B");
    rewriteConfig(configWith(port, reload % 2 == 0 ? "B" : "A", dir));
    CommandResult result = control("reload");
    ASSERT_EQ(result.exit_code, 0) << result.output;
  }
  send_some("B");
  std::vector<pid_t> workers = waitForChildren(sluice_.pid(), 2);
  ASSERT_FALSE(workers.empty());
  ASSERT_EQ(::kill(workers[0], SIGKILL), 0);
  auto deadline = Clock::now() + 5s;
  while (sluice_.errorLog().find("respawning worker slot") == std::string::npos &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  waitForChildren(sluice_.pid(), 2);
  send_some("B");
  ASSERT_EQ(sluice_.stop(SIGTERM), 0);
  const std::string log = sluice_.errorLog();
  std::smatch totals;
  ASSERT_TRUE(std::regex_search(log, totals,
                                std::regex("served (\\d+) requests on (\\d+) connections in "
                                           "(\\d+) generation")))
      << log;
  EXPECT_EQ(std::stoi(totals[1]), sent) << log;
  // One connection per request, and the start-up probe's.
  EXPECT_GE(std::stoi(totals[2]), sent) << log;
  EXPECT_LE(std::stoi(totals[2]), sent + 2) << log;
  EXPECT_EQ(std::stoi(totals[3]), 6) << log;
}

TEST_F(ProcessTest, SigtermDrainsInFlightRequestThenExits) {
  // A backend that answers after 1.5 s, so a request is in flight at SIGTERM.
  SlowBackend backend(1500ms);
  ASSERT_TRUE(backend.ok());
  int backend_port = backend.port();
  int port = freePort();
  std::string yaml =
      configWith(port, "A", sluice_.dir().path(), 1,
                 "      - match: {path_prefix: /slow}\n"
                 "        upstream: slow\n") +
      "upstreams:\n  slow:\n    servers: [{address: 127.0.0.1:" + std::to_string(backend_port) +
      "}]\n";
  ASSERT_TRUE(sluice_.start(yaml, port)) << sluice_.errorLog();
  RawClient c;
  ASSERT_TRUE(c.connect(port));
  ASSERT_TRUE(c.send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::this_thread::sleep_for(300ms);
  ::kill(sluice_.pid(), SIGTERM);
  std::string response = c.readResponse(false, 5000ms);
  EXPECT_EQ(statusOf(response), 200) << response;
  EXPECT_EQ(bodyOf(response), "slow");
  EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;
  EXPECT_EQ(sluice_.stop(0, 10000ms), 0);  // already stopping: signal 0 just waits
}

TEST_F(ProcessTest, SigintExitsAtOnce) {
  int port = freePort();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", sluice_.dir().path()), port));
  RawClient idle;
  ASSERT_TRUE(idle.connect(port));  // an open connection does not delay SIGINT
  std::vector<pid_t> workers = childrenOf(sluice_.pid());
  auto started = Clock::now();
  EXPECT_EQ(sluice_.stop(SIGINT, 5000ms), 0);
  EXPECT_LT(Clock::now() - started, 3s);
  for (pid_t worker : workers)
    EXPECT_FALSE(alive(worker)) << worker;
}

TEST_F(ProcessTest, ControlQuitStopsTheMasterAndItsWorkers) {
  int port = freePort();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", sluice_.dir().path()), port));
  std::vector<pid_t> workers = childrenOf(sluice_.pid());
  pid_t master = sluice_.pid();
  CommandResult quit = control("quit");
  EXPECT_EQ(quit.exit_code, 0) << quit.output;
  EXPECT_EQ(sluice_.stop(0, 5000ms), 0);
  EXPECT_FALSE(alive(master));
  for (pid_t worker : workers)
    EXPECT_FALSE(alive(worker));
  // The pid file and state file are gone.
  EXPECT_FALSE(std::ifstream(sluice_.dir().path() + "/sluice.pid").good());
}

TEST_F(ProcessTest, MasterResourcesStayFlatAcross100Reloads) {
  int port = freePort();
  const std::string dir = sluice_.dir().path();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", dir), port)) << sluice_.errorLog();
  pid_t master = sluice_.pid();
  auto reloadTo = [&](const std::string& body) {
    rewriteConfig(configWith(port, body, dir));
    CommandResult r = control("reload");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  };
  for (int i = 0; i < 10; ++i)
    reloadTo(i % 2 ? "A" : "B");
  size_t fds_after_10 = fdCount(master);
  long rss_after_10 = statusField(master, "VmRSS");
  for (int i = 0; i < 90; ++i)
    reloadTo(i % 2 ? "A" : "B");
  // Old generations finish draining (idle connections get a 1 s grace).
  auto deadline = Clock::now() + 10s;
  while (childrenOf(master).size() > 2 && Clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(childrenOf(master).size(), 2u);
  EXPECT_EQ(fdCount(master), fds_after_10);
  long rss_after_100 = statusField(master, "VmRSS");
  // Under AddressSanitizer freed memory sits in its quarantine, so RSS grows
  // without a leak; LeakSanitizer at exit is the check there.
  if (!kUnderAddressSanitizer) {
    EXPECT_LT(rss_after_100 - rss_after_10, 512) << "KiB grown over 90 reloads";
  }
  EXPECT_EQ(bodyOf(get(port)), "A");  // the last of the 100 reloads
}

// Under load from new connections, accepts spread over both workers.
TEST_F(ProcessTest, ConnectionsSpreadAcrossWorkers) {
  int port = freePort();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", sluice_.dir().path()), port));
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (!stop) {
        RawClient c;
        if (!c.connect(port) || !c.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n") ||
            statusOf(c.readResponse()) != 200) {
          ++failures;
        }
      }
    });
  }
  std::this_thread::sleep_for(2s);
  stop = true;
  for (auto& t : clients)
    t.join();
  EXPECT_EQ(failures, 0);
  ASSERT_EQ(sluice_.stop(SIGTERM), 0);
  std::string log = sluice_.errorLog();
  std::regex served("worker slot (\\d+) of generation \\d+ served (\\d+) requests");
  std::vector<double> counts;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), served); it != std::sregex_iterator();
       ++it) {
    counts.push_back(std::stod((*it)[2]));
  }
  ASSERT_EQ(counts.size(), 2u) << log;
  double total = counts[0] + counts[1];
  // Each worker has its own SO_REUSEPORT socket: the kernel hashes every new
  // connection to one of them, so the split is binomial around a half (with
  // 400 connections one standard deviation is 2.5 %; 0.57 is 2.8 of them).
  ASSERT_GT(total, 400);
  EXPECT_LE(counts[0] / total, 0.57) << counts[0] << " of " << total;
  EXPECT_LE(counts[1] / total, 0.57) << counts[1] << " of " << total;
}

// Listening sockets on 127.0.0.1:`port` (from /proc/net/tcp: state 0A).
int listeningSockets(int port) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  char wanted[32];
  std::snprintf(wanted, sizeof wanted, "0100007F:%04X", port);
  int count = 0;
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (local == wanted && state == "0A") ++count;
  }
  return count;
}

std::string reusePortConfig(int port, int workers, bool reuse_port, const std::string& dir) {
  return "workers: " + std::to_string(workers) + "\npid_file: " + dir +
         "/sluice.pid\n"
         "log: {level: info, error: stderr, access: off}\n"
         "listeners:\n"
         "  - address: 127.0.0.1:" +
         std::to_string(port) + "\n    reuse_port: " + (reuse_port ? "true" : "false") +
         "\n    routes: [{respond: {status: 200}}]\n";
}

TEST_F(ProcessTest, EachWorkerHasItsOwnListeningSocketUnlessReusePortIsOff) {
  int port = freePort();
  ASSERT_TRUE(sluice_.start(reusePortConfig(port, 3, true, sluice_.dir().path()), port))
      << sluice_.errorLog();
  EXPECT_EQ(listeningSockets(port), 3);
  ASSERT_EQ(sluice_.stop(SIGTERM), 0);

  SluiceProcess shared;
  ASSERT_TRUE(shared.start(reusePortConfig(port, 3, false, shared.dir().path()), port))
      << shared.errorLog();
  EXPECT_EQ(listeningSockets(port), 1);
  EXPECT_EQ(statusOf(get(port)), 200);
}

// SO_REUSEPORT would let a second process of the same user share the port
// silently; sluice checks with a plain bind first and refuses, as it would
// without reuse_port.
TEST_F(ProcessTest, ASecondSluiceOnTheSamePortIsRefused) {
  int port = freePort();
  ASSERT_TRUE(sluice_.start(reusePortConfig(port, 2, true, sluice_.dir().path()), port))
      << sluice_.errorLog();
  SluiceProcess second;
  // start() sees the port answer (the first sluice does); the second exits.
  second.start(reusePortConfig(port, 2, true, second.dir().path()), port);
  auto deadline = Clock::now() + 5s;
  while (second.running() && Clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(second.running());
  EXPECT_NE(second.errorLog().find("cannot bind 127.0.0.1:" + std::to_string(port) +
                                   ": Address already in use"),
            std::string::npos)
      << second.errorLog();
  EXPECT_EQ(listeningSockets(port), 2);
}

// A reload that changes the worker count adds or closes slot sockets; the
// sockets of the slots that stay are the same ones, so nothing queued on
// them is lost, and every request in between is answered.
TEST_F(ProcessTest, ReloadThatChangesTheWorkerCountResizesTheSocketGroup) {
  int port = freePort();
  ASSERT_TRUE(sluice_.start(reusePortConfig(port, 2, true, sluice_.dir().path()), port))
      << sluice_.errorLog();
  EXPECT_EQ(listeningSockets(port), 2);
  for (int workers : {3, 1, 2}) {
    rewriteConfig(reusePortConfig(port, workers, true, sluice_.dir().path()));
    CommandResult reload = control("reload");
    ASSERT_EQ(reload.exit_code, 0) << reload.output;
    EXPECT_EQ(listeningSockets(port), workers);
    // Every connection is answered, whichever slot socket it hashes to.
    for (int i = 0; i < 40; ++i) {
      RawClient c;
      ASSERT_TRUE(c.connect(port));
      ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
      std::string response = c.readResponse();
      ASSERT_EQ(statusOf(response), 200) << response;
    }
  }
}

// A client that says `Connection: close` and sends nothing more is closed
// on as soon as its response is written: no lingering close (its socket is
// gone from the worker while the client still holds its end). When sluice
// decides to close a keep-alive connection (here max_requests_per_connection)
// the client may be sending its next request already: sluice lingers.
TEST_F(ProcessTest, LingersOnlyWhenTheClientMayStillBeSending) {
  int port = freePort();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", sluice_.dir().path(), 1, "",
                                       "limits: {max_requests_per_connection: 1}\n"
                                       "timeouts: {linger: 5s}\n"),
                            port))
      << sluice_.errorLog();
  std::vector<pid_t> workers = waitForChildren(sluice_.pid(), 1);
  ASSERT_EQ(workers.size(), 1u);
  const pid_t worker = workers[0];
  std::this_thread::sleep_for(200ms);  // the start-up probe's connection is gone
  const size_t baseline = fdCount(worker);
  auto fdsSettleAt = [&](size_t wanted, std::chrono::milliseconds within) {
    auto deadline = Clock::now() + within;
    while (fdCount(worker) != wanted && Clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    return fdCount(worker);
  };

  RawClient done;  // says it is done: closed on at once
  ASSERT_TRUE(done.connect(port));
  ASSERT_TRUE(done.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(bodyOf(done.readUntilClose()), "A");
  EXPECT_EQ(fdsSettleAt(baseline, 2000ms), baseline);

  RawClient kept;  // expects keep-alive; sluice closes after one request
  ASSERT_TRUE(kept.connect(port));
  ASSERT_TRUE(kept.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  const std::string response = kept.readUntilClose();
  EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;
  // Lingering: the worker still reads what this client sends.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(fdCount(worker), baseline + 1);
  // The bytes of a next request, sent late, are read and discarded, not
  // answered with a reset; the client's close ends the linger.
  EXPECT_TRUE(kept.send("GET /next HTTP/1.1\r\nHost: h\r\n\r\n"));
  kept.shutdownWrite();
  EXPECT_EQ(fdsSettleAt(baseline, 2000ms), baseline);
}

// Rapid reloads while every old generation still has a request in flight:
// at most 4 generations drain at once, the oldest beyond that is stopped.
TEST_F(ProcessTest, DrainingGenerationsAreCapped) {
  Backend silent([](const ReceivedRequest&, int, int) { return Reply::silent(); });
  int port = freePort();
  const std::string dir = sluice_.dir().path();
  auto config = [&](const std::string& body) {
    return configWith(port, body, dir, 1,
                      "      - match: {path_prefix: /hang}\n"
                      "        upstream: silent\n") +
           "upstreams:\n  silent:\n    servers: [{address: 127.0.0.1:" +
           std::to_string(silent.port()) + "}]\n    timeouts: {response: 60s}\n";
  };
  ASSERT_TRUE(sluice_.start(config("g1"), port)) << sluice_.errorLog();
  std::vector<std::unique_ptr<RawClient>> hanging;
  for (int generation = 2; generation <= 7; ++generation) {
    // A request in flight on the serving generation keeps it draining later.
    hanging.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(hanging.back()->connect(port));
    ASSERT_TRUE(hanging.back()->send("GET /hang HTTP/1.1\r\nHost: h\r\n\r\n"));
    std::this_thread::sleep_for(100ms);
    // Built with append: g++ 12 warns falsely (-Wrestrict) on "g" + string.
    rewriteConfig(config(std::string("g").append(std::to_string(generation))));
    CommandResult reload = control("reload");
    ASSERT_EQ(reload.exit_code, 0) << reload.output;
  }
  // Generations 1-6 were asked to drain; only 4 may still be draining.
  auto deadline = Clock::now() + 5s;
  while (childrenOf(sluice_.pid()).size() > 5 && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(childrenOf(sluice_.pid()).size(), 5u);  // 4 draining + the serving one
  std::string log = sluice_.errorLog();
  EXPECT_NE(log.find("too many generations draining; stopping generation 1 now"), std::string::npos)
      << log;
  EXPECT_NE(log.find("too many generations draining; stopping generation 2 now"), std::string::npos)
      << log;
  EXPECT_EQ(bodyOf(get(port)), "g7");
  // The stopped generations' clients were cut off, not left hanging.
  EXPECT_TRUE(hanging[0]->closedByPeer(2000ms));
  EXPECT_TRUE(hanging[1]->closedByPeer(2000ms));
  ASSERT_EQ(sluice_.stop(SIGINT), 0);
}

// The acceptance test of reloads: full-speed clients, 20 reloads between two
// configs with an invalid one in between, a slow request across a reload.
TEST_F(ProcessTest, ReloadUnderLoadLosesNothing) {
  int port = freePort();
  const std::string dir = sluice_.dir().path();
  ASSERT_TRUE(sluice_.start(configWith(port, "A", dir), port)) << sluice_.errorLog();

  std::atomic<bool> stop{false};
  std::atomic<int> new_conn_ok{0}, new_conn_failed{0};
  std::atomic<int> keepalive_ok{0}, keepalive_unclean{0}, keepalive_clean_closes{0};
  std::string first_failure;
  std::mutex failure_mutex;
  auto noteFailure = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (first_failure.empty()) first_failure = what;
  };

  std::thread new_connections([&] {
    while (!stop) {
      RawClient c;
      std::string response;
      if (c.connect(port) && c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")) {
        response = c.readResponse();
      }
      std::string body = bodyOf(response);
      if (statusOf(response) == 200 && (body == "A" || body == "B")) {
        ++new_conn_ok;
      } else {
        ++new_conn_failed;
        noteFailure("new-connection client got [" + response + "]");
      }
    }
  });
  std::thread keep_alive([&] {
    auto client = std::make_unique<RawClient>();
    bool connected = client->connect(port);
    while (!stop) {
      if (!connected) {
        client = std::make_unique<RawClient>();
        connected = client->connect(port);
        if (!connected) {
          ++keepalive_unclean;
          noteFailure("keep-alive client could not reconnect");
          continue;
        }
      }
      RawClient& c = *client;
      if (!c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")) {
        ++keepalive_unclean;
        noteFailure("keep-alive send failed");
        connected = false;
        continue;
      }
      std::string response = c.readResponse();
      if (statusOf(response) != 200) {
        // The server closed while a request was outstanding: not clean.
        ++keepalive_unclean;
        noteFailure("keep-alive request lost: [" + response + "]");
        connected = false;
        continue;
      }
      ++keepalive_ok;
      if (response.find("\r\nConnection: close\r\n") != std::string::npos) {
        // A clean close between requests: the server said so, then closed.
        if (c.closedByPeer(3000ms)) ++keepalive_clean_closes;
        connected = false;
      }
    }
  });

  // A slow request in flight across a reload: a proxied request to a backend
  // that takes 5 s, through a listener that exists in both configs.
  SlowBackend backend(5000ms);
  ASSERT_TRUE(backend.ok());
  int backend_port = backend.port();
  auto withSlowRoute = [&](const std::string& body) {
    return configWith(port, body, dir, 2,
                      "      - match: {path_prefix: /slow}\n"
                      "        upstream: slow\n") +
           "upstreams:\n  slow:\n    servers: [{address: 127.0.0.1:" +
           std::to_string(backend_port) + "}]\n    timeouts: {response: 20s}\n";
  };
  rewriteConfig(withSlowRoute("A"));
  ASSERT_EQ(control("reload").exit_code, 0);
  std::string slow_response;
  std::thread slow_client([&] {
    RawClient c;
    if (c.connect(port) && c.send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")) {
      slow_response = c.readResponse(false, 15000ms);
    }
  });
  std::this_thread::sleep_for(200ms);

  for (int i = 0; i < 20; ++i) {
    std::string body = i % 2 ? "A" : "B";
    if (i == 10) {
      rewriteConfig(withSlowRoute("C") + "not_a_key: true\n");
      EXPECT_EQ(control("reload").exit_code, 1);
      EXPECT_NE(bodyOf(get(port)), "C");
    }
    rewriteConfig(withSlowRoute(body));
    CommandResult reload = control("reload");
    ASSERT_EQ(reload.exit_code, 0) << reload.output;
    // The new config is in effect for every new connection from now on.
    EXPECT_EQ(bodyOf(get(port)), body) << "after reload " << i;
    std::this_thread::sleep_for(100ms);
  }
  stop = true;
  new_connections.join();
  keep_alive.join();
  slow_client.join();

  EXPECT_EQ(new_conn_failed, 0) << first_failure;
  EXPECT_EQ(keepalive_unclean, 0) << first_failure;
  EXPECT_GT(new_conn_ok, 100);
  EXPECT_GT(keepalive_ok, 100);
  EXPECT_GT(keepalive_clean_closes, 0);  // the drains really happened under it
  EXPECT_EQ(statusOf(slow_response), 200) << slow_response;
  EXPECT_EQ(bodyOf(slow_response), "slow");

  pid_t master = sluice_.pid();
  std::set<pid_t> workers_seen;
  for (pid_t p : childrenOf(master))
    workers_seen.insert(p);
  EXPECT_EQ(sluice_.stop(SIGTERM), 0);
  for (pid_t p : workers_seen)
    EXPECT_FALSE(alive(p)) << "worker left behind: " << p;
}

}  // namespace
}  // namespace sluice::testing
