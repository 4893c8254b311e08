// Integration tests of what operators touch: the admin listener, drain_delay,
// `sluice health`, the access log (formats, reopen), watch_config.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string bodyOf(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

std::string get(int port, const std::string& path, const std::string& extra_headers = "") {
  RawClient c;
  if (!c.connect(port)) return "";
  c.send("GET " + path + " HTTP/1.1\r\nHost: h\r\n" + extra_headers + "\r\n");
  return c.readResponse();
}

// Polls `condition` every 20 ms for up to `limit`.
template <typename F>
bool eventually(F condition, std::chrono::milliseconds limit = 5000ms) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

class OperationsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    std::string log = sluice_.errorLog();
    EXPECT_EQ(log.find("AddressSanitizer"), std::string::npos) << log;
    EXPECT_EQ(log.find("runtime error:"), std::string::npos) << log;
  }
  std::string dir() const { return sluice_.dir().path(); }

  SluiceProcess sluice_;
  int port_ = freePort();
  int admin_port_ = freePort();
};

TEST_F(OperationsTest, AdminHealthAndReadiness) {
  std::string yaml = "admin: { address: 127.0.0.1:" + std::to_string(admin_port_) +
                     " }\n"
                     "listeners:\n  - address: 127.0.0.1:" +
                     std::to_string(port_) +
                     "\n    routes: [{respond: {status: 200, body: app}}]\n";
  ASSERT_TRUE(sluice_.start(yaml, port_)) << sluice_.errorLog();
  std::string health = get(admin_port_, "/healthz");
  EXPECT_EQ(statusOf(health), 200) << health;
  EXPECT_EQ(bodyOf(health), "ok\n");
  std::string ready = get(admin_port_, "/ready");
  EXPECT_EQ(statusOf(ready), 200);
  EXPECT_EQ(bodyOf(ready), "ready\n");
  EXPECT_EQ(statusOf(get(admin_port_, "/other")), 404);
  RawClient post;
  ASSERT_TRUE(post.connect(admin_port_));
  post.send("POST /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(statusOf(post.readResponse()), 405);
  // The admin listener does not serve the routes, nor the routes the admin paths.
  EXPECT_EQ(bodyOf(get(port_, "/healthz")), "app");
}

TEST_F(OperationsTest, DrainDelayFailsReadinessButKeepsServing) {
  std::string yaml =
      "drain_delay: 1500ms\n"
      "admin: { address: 127.0.0.1:" +
      std::to_string(admin_port_) +
      " }\n"
      "listeners:\n  - address: 127.0.0.1:" +
      std::to_string(port_) + "\n    routes: [{respond: {status: 200, body: app}}]\n";
  ASSERT_TRUE(sluice_.start(yaml, port_)) << sluice_.errorLog();
  auto sent = Clock::now();
  ASSERT_EQ(::kill(sluice_.pid(), SIGTERM), 0);
  EXPECT_TRUE(eventually([&] { return statusOf(get(admin_port_, "/ready")) == 503; }, 1000ms));
  EXPECT_EQ(bodyOf(get(admin_port_, "/ready")), "draining\n");
  // Still serving, on new connections too, during the delay.
  EXPECT_EQ(bodyOf(get(port_, "/")), "app");
  EXPECT_EQ(statusOf(get(admin_port_, "/healthz")), 200);
  EXPECT_EQ(sluice_.stop(0, 10000ms), 0);
  EXPECT_GE(Clock::now() - sent, 1400ms);
  EXPECT_NE(sluice_.errorLog().find("drain_delay"), std::string::npos);
}

TEST_F(OperationsTest, HealthCommandProbesTheAdminListener) {
  std::string yaml = "admin: { address: 127.0.0.1:" + std::to_string(admin_port_) +
                     " }\n"
                     "listeners:\n  - address: 127.0.0.1:" +
                     std::to_string(port_) + "\n    routes: [{respond: {status: 200}}]\n";
  ASSERT_TRUE(sluice_.start(yaml, port_)) << sluice_.errorLog();
  std::string config = dir() + "/sluice.yaml";
  CommandResult ok = runSluice({"health", "-c", config});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  // An invalid file on disk (mid-edit) does not make a serving process unhealthy.
  { std::ofstream(config, std::ios::app) << "not_a_key: 1\n"; }
  CommandResult still_ok = runSluice({"health", "-c", config});
  EXPECT_EQ(still_ok.exit_code, 0) << still_ok.output;
  CommandResult missing = runSluice({"health", "-c", config, "--path", "/nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("/nope: 404"), std::string::npos) << missing.output;
  ASSERT_EQ(sluice_.stop(SIGINT), 0);
  CommandResult down = runSluice({"health", "-c", config});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.output.find("cannot connect"), std::string::npos) << down.output;
  TempDir other;
  CommandResult no_admin = runSluice(
      {"health", "-c",
       other.write("n.yaml", "listeners: [{address: 127.0.0.1:1, routes: [{respond: {}}]}]\n")});
  EXPECT_EQ(no_admin.exit_code, 1);
  EXPECT_NE(no_admin.output.find("has no readable admin listener"), std::string::npos)
      << no_admin.output;
}

TEST_F(OperationsTest, AccessLogCombinedFormatAndReopen) {
  std::string log_path = dir() + "/access.log";
  std::string yaml = "log: { access: " + log_path +
                     " }\n"
                     "listeners:\n  - address: 127.0.0.1:" +
                     std::to_string(port_) +
                     "\n    routes: [{respond: {status: 201, body: hello}}]\n";
  ASSERT_TRUE(sluice_.start(yaml, port_)) << sluice_.errorLog();
  get(port_, "/path?q=1", "User-Agent: test-agent\r\nReferer: http://ref/\r\n");
  ASSERT_TRUE(eventually([&] { return !readFile(log_path).empty(); }));
  std::string line = readFile(log_path);
  EXPECT_NE(line.find("127.0.0.1 - - ["), std::string::npos) << line;
  EXPECT_NE(line.find("] \"GET /path?q=1 HTTP/1.1\" 201 5 \"http://ref/\" \"test-agent\"\n"),
            std::string::npos)
      << line;
  // Rotation: move the file away, SIGUSR1, and new lines go to a new file.
  std::string rotated = log_path + ".1";
  ASSERT_EQ(std::rename(log_path.c_str(), rotated.c_str()), 0);
  ASSERT_EQ(::kill(sluice_.pid(), SIGUSR1), 0);
  EXPECT_TRUE(eventually([&] {
    get(port_, "/after-rotation");
    return readFile(log_path).find("/after-rotation") != std::string::npos;
  }));
  // Lines written before the reopen stay in the rotated file.
  EXPECT_NE(readFile(rotated).find("/path?q=1"), std::string::npos);
  EXPECT_EQ(readFile(log_path).find("/path?q=1"), std::string::npos);
}

TEST_F(OperationsTest, AccessLogJsonFormat) {
  std::string log_path = dir() + "/access.json";
  std::string yaml = "log: { access: " + log_path +
                     ", access_format: json }\n"
                     "listeners:\n  - address: 127.0.0.1:" +
                     std::to_string(port_) + "\n    routes: [{respond: {status: 200, body: hi}}]\n";
  ASSERT_TRUE(sluice_.start(yaml, port_)) << sluice_.errorLog();
  get(port_, "/j\"son", "User-Agent: a\"b\r\n");
  ASSERT_TRUE(eventually([&] { return !readFile(log_path).empty(); }));
  std::string line = readFile(log_path);
  EXPECT_NE(line.find("\"method\":\"GET\",\"target\":\"/j\\\"son\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"status\":200,\"body_bytes\":2"), std::string::npos) << line;
  EXPECT_NE(line.find("\"user_agent\":\"a\\\"b\""), std::string::npos) << line;
  EXPECT_EQ(line.back(), '\n');
}

TEST_F(OperationsTest, AccessLogRecordsRejectedRequests) {
  std::string log_path = dir() + "/access.log";
  std::string yaml = "log: { access: " + log_path +
                     " }\n"
                     "listeners:\n  - address: 127.0.0.1:" +
                     std::to_string(port_) + "\n    routes: [{respond: {status: 200}}]\n";
  ASSERT_TRUE(sluice_.start(yaml, port_)) << sluice_.errorLog();
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  c.send("GET /x HTTP/1.1\r\nHost: h\r\nBad Header: 1\r\n\r\n");
  EXPECT_EQ(statusOf(c.readUntilClose()), 400);
  ASSERT_TRUE(eventually([&] { return !readFile(log_path).empty(); }));
  EXPECT_NE(readFile(log_path).find("\"-\" 400 16 \"-\" \"-\""), std::string::npos)
      << readFile(log_path);
}

TEST_F(OperationsTest, WatchConfigReloadsOnEditAndOnSymlinkSwap) {
  // Lay the file out as Kubernetes mounts a ConfigMap: the config is a
  // symlink into ..data, which is itself a symlink swapped atomically.
  namespace fs = std::filesystem;
  fs::path mount = fs::path(dir()) / "mount";
  fs::create_directories(mount / "..v1");
  auto config = [&](const std::string& body) {
    return "watch_config: true\n"
           "log: {access: off}\n"
           "listeners:\n  - address: 127.0.0.1:" +
           std::to_string(port_) + "\n    routes: [{respond: {status: 200, body: " + body + "}}]\n";
  };
  std::ofstream(mount / "..v1" / "sluice.yaml") << config("one");
  fs::create_directory_symlink("..v1", mount / "..data");
  fs::create_symlink("..data/sluice.yaml", mount / "sluice.yaml");

  // Start sluice on the mounted path (not through SluiceProcess::start, which
  // writes its own file).
  std::string log_path = dir() + "/watch.log";
  pid_t pid = ::fork();
  if (pid == 0) {
    FILE* out = std::freopen(log_path.c_str(), "w", stderr);
    (void)out;
    std::string path = (mount / "sluice.yaml").string();
    ::execl(sluiceBinary(), sluiceBinary(), "-c", path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_TRUE(eventually([&] { return bodyOf(get(port_, "/")) == "one"; }));

  // 1. A ConfigMap update: new directory, then ..data swapped by rename.
  fs::create_directories(mount / "..v2");
  std::ofstream(mount / "..v2" / "sluice.yaml") << config("two");
  fs::create_directory_symlink("..v2", mount / "..data_tmp");
  fs::rename(mount / "..data_tmp", mount / "..data");
  EXPECT_TRUE(eventually([&] { return bodyOf(get(port_, "/")) == "two"; })) << readFile(log_path);

  // 2. An invalid edit is rejected and the old config keeps serving.
  std::ofstream(mount / "..v2" / "sluice.yaml") << config("three") << "nonsense: 1\n";
  EXPECT_TRUE(eventually([&] {
    return readFile(log_path).find("nonsense: unknown key") != std::string::npos;
  })) << readFile(log_path);
  EXPECT_EQ(bodyOf(get(port_, "/")), "two");

  // 3. A plain in-place edit.
  std::ofstream(mount / "..v2" / "sluice.yaml") << config("four");
  EXPECT_TRUE(eventually([&] { return bodyOf(get(port_, "/")) == "four"; })) << readFile(log_path);

  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace sluice::testing
