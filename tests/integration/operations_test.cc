// Integration tests of what operators touch: the admin listener, drain_delay,
// `sluice health`, the access log (formats, reopen), watch_config.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "integration/backend.h"
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

// A template of named fields (nginx's log_format variables): one line per
// request with the id the upstream saw, the upstream and the server, and the
// upstream's timings.
TEST_F(OperationsTest, AccessLogTemplateWritesNamedFields) {
  Backend backend(
      [](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(201, "made")); });
  const std::string log_path = dir() + "/access.log";
  const std::string yaml =
      "log:\n  access: " + log_path +
      "\n  access_format: \"id=$request_id up=$upstream srv=$upstream_addr "
      "st=$status/$upstream_status c=$upstream_connect_time h=$upstream_header_time "
      "n=$upstream_attempts end=$outcome l=$listener r=$route in=$request_length\"\n"
      "listeners:\n  - name: web\n    address: 127.0.0.1:" +
      std::to_string(port_) +
      "\n    routes:\n      - match: {path_prefix: /local}\n        respond: {status: 204}\n"
      "      - upstream: app\n"
      "upstreams:\n  app:\n    servers: [{address: 127.0.0.1:" +
      std::to_string(backend.port()) + "}]\n";
  ASSERT_TRUE(sluice_.start(yaml, port_)) << sluice_.errorLog();
  const std::string request = "GET /items HTTP/1.1\r\nHost: h\r\n\r\n";
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  c.send(request);
  EXPECT_EQ(statusOf(c.readResponse()), 201);
  c.send("GET /local HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(statusOf(c.readResponse()), 204);
  ASSERT_TRUE(backend.waitForRequests(1, 2000ms));
  const std::string id = backend.requests()[0].value("x-request-id");
  ASSERT_EQ(id.size(), 32u);
  ASSERT_TRUE(eventually([&] {
    const std::string text = readFile(log_path);
    return std::count(text.begin(), text.end(), '\n') == 2;
  }));
  const std::string text = readFile(log_path);
  const std::string proxied = text.substr(0, text.find('\n'));
  EXPECT_EQ(proxied.rfind("id=" + id + " up=app srv=127.0.0.1:" + std::to_string(backend.port()) +
                              " st=201/201 c=0.0",
                          0),
            0u)
      << text;
  EXPECT_NE(proxied.find(" n=1 end=ok l=web r=1 in=" + std::to_string(request.size())),
            std::string::npos)
      << text;
  EXPECT_NE(proxied.find(" h=0.0"), std::string::npos) << text;
  // Answered by sluice itself: a fresh id all the same, no upstream figures.
  const std::string local = text.substr(text.find('\n') + 1);
  EXPECT_EQ(local.find("id=" + id), std::string::npos) << text;
  EXPECT_NE(local.find(" up=- srv=- st=204/- c=- h=- n=0 end=ok l=web r=0 "), std::string::npos)
      << text;
  EXPECT_EQ(local.substr(3, 32).find_first_not_of("0123456789abcdef"), std::string::npos) << text;
}

// `log.error_format: json`: one object per line, and the lines about a
// request carry the id its access log line has.
TEST_F(OperationsTest, JsonErrorLogLinesCarryTheRequestId) {
  const int dead_port = freePort();  // nothing listens there
  const std::string access_path = dir() + "/access.log";
  const std::string yaml =
      "log:\n  error_format: json\n  access: " + access_path +
      "\n  access_format: json\n"
      "listeners:\n  - address: 127.0.0.1:" +
      std::to_string(port_) +
      "\n    routes: [{upstream: app}]\n"
      "upstreams:\n  app:\n    retries: 0\n    servers: [{address: 127.0.0.1:" +
      std::to_string(dead_port) + "}]\n";
  ASSERT_TRUE(sluice_.start(yaml, port_)) << sluice_.errorLog();
  EXPECT_EQ(statusOf(get(port_, "/down")), 502);
  ASSERT_TRUE(eventually([&] { return !readFile(access_path).empty(); }));
  const std::string access = readFile(access_path);
  const std::string key = "\"request_id\":\"";
  const size_t at = access.find(key);
  ASSERT_NE(at, std::string::npos) << access;
  const std::string id = access.substr(at + key.size(), 32);
  ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << access;
  ASSERT_TRUE(eventually([&] {
    return sluice_.errorLog().find("connect failed") != std::string::npos;
  })) << sluice_.errorLog();
  bool found = false;
  std::istringstream lines(sluice_.errorLog());
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    // Every line is one JSON object with the fixed keys first.
    EXPECT_EQ(line.rfind("{\"time\":\"", 0), 0u) << line;
    EXPECT_NE(line.find("\",\"level\":\""), std::string::npos) << line;
    EXPECT_EQ(line.back(), '}') << line;
    // The upstream's refusal (warn) and the 502 sent (info), both with the id.
    if (line.find("connect failed") != std::string::npos) {
      EXPECT_NE(line.find(",\"request_id\":\"" + id + "\",\"message\":\""), std::string::npos)
          << line;
      if (line.find("\"level\":\"warn\"") != std::string::npos &&
          line.find("\"message\":\"upstream app server 127.0.0.1:") != std::string::npos)
        found = true;
    }
  }
  EXPECT_TRUE(found) << sluice_.errorLog();
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
