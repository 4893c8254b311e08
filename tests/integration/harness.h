// Test harness for integration tests: runs the real sluice binary with a
// generated config on loopback ephemeral ports, and talks to it over raw
// sockets. Each test owns its SluiceProcess and clients.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace sluice::testing {

// True in builds instrumented with AddressSanitizer, whose allocator
// (redzones, quarantine) makes RSS-based measurements meaningless.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif

using std::chrono::milliseconds;

// The sluice binary under test: $SLUICE_BINARY_UNDER_TEST when set (to run
// these tests against another build, e.g. to show a test fails before a
// fix), else the one built with the tests.
const char* sluiceBinary();

// A loopback TCP port that was free a moment ago.
int freePort();

// A temporary directory removed (with its files) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};

// Runs sluice with `args` to completion (e.g. `-t -c FILE`).
CommandResult runSluice(const std::vector<std::string>& args);

class SluiceProcess {
 public:
  SluiceProcess() = default;
  ~SluiceProcess();

  // Writes `yaml` to a temp file, starts `sluice -c` on it and waits until
  // `wait_port` accepts connections (or the unix socket path exists).
  // Returns false if it exited or did not come up within 10 s.
  bool start(const std::string& yaml, int wait_port);
  bool startUnix(const std::string& yaml, const std::string& socket_path);
  // Sends `sig` and waits up to `timeout` for exit; returns the exit status
  // (exit code, or 128+signal), or -1 if it did not exit (then it is killed).
  int stop(int sig, milliseconds timeout = milliseconds(10000));
  bool running();
  pid_t pid() const { return pid_; }
  std::string errorLog() const;
  const TempDir& dir() const { return dir_; }
  // Before start(): sluice's stdout goes to `fd` (a pipe, say) instead of
  // the error log file.
  void setStdout(int fd) { stdout_fd_ = fd; }

 private:
  bool launch(const std::string& yaml);
  TempDir dir_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
};

class RawClient {
 public:
  RawClient() = default;
  ~RawClient();
  RawClient(RawClient&& other) noexcept;
  RawClient& operator=(RawClient&& other) noexcept;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connect(int port, const std::string& host = "127.0.0.1");
  // To 127.0.0.1:port from another loopback source address (127.0.0.2…),
  // to look like another client.
  bool connectFrom(int port, const std::string& source_ip);
  bool connectUnix(const std::string& path);
  bool send(const std::string& bytes);
  void shutdownWrite();
  // Reads until EOF or `timeout` passes; returns what arrived.
  std::string readUntilClose(milliseconds timeout = milliseconds(5000));
  // Same; *closed says whether the peer closed (EOF or reset) rather than
  // the time running out.
  std::string readUntilClose(milliseconds timeout, bool* closed);
  // Reads exactly one response (head + Content-Length/chunked body, none for
  // `head_request`/204/304/1xx); empty on timeout or EOF before a full head.
  std::string readResponse(bool head_request = false, milliseconds timeout = milliseconds(5000));
  // True if the server closed the connection within `timeout` (EOF or reset)
  // with no further bytes; bytes that arrive instead go to *unexpected.
  bool closedByPeer(milliseconds timeout, std::string* unexpected = nullptr);
  int fd() const { return fd_; }

 private:
  // 1 = bytes appended, 0 = EOF or error, -1 = timeout.
  int fillOnce(milliseconds timeout);
  bool fill(milliseconds timeout) { return fillOnce(timeout) > 0; }
  int fd_ = -1;
  std::string pending_;
};

// Replaces the value of the Date header with "X" so responses compare byte
// for byte.
std::string maskDate(std::string response);

// Status code of the first response in `bytes`, or 0.
int statusOf(const std::string& bytes);

// The first line of a sanitizer report (ASan, LSan, UBSan) in `log`, or of
// the master's report of a worker killed by a signal (a crash the master
// survives by respawning the worker), or "".
std::string sanitizerReport(const std::string& log);

// Resident set size of process `pid` in KiB (VmRSS), or -1.
long vmRssKiB(pid_t pid);

// The live child processes of `parent` (e.g. sluice's workers), from /proc.
std::vector<pid_t> childProcesses(pid_t parent);
// The same once there are `count` of them (5 s at most): the kernel accepts
// on the master's listening socket before the master has forked them all,
// so SluiceProcess::start() can return first.
std::vector<pid_t> waitForChildProcesses(pid_t parent, size_t count);

// A sluice config with one listener whose every request goes to upstream
// `app` (the servers below); the fields are YAML flow values.
struct ProxyConfig {
  struct Server {
    int port;
    int weight = 1;
  };
  std::vector<Server> servers;
  int retries = 1;
  std::string keepalive = "{max_idle: 32, idle_timeout: 20s}";
  std::string upstream_timeouts = "{connect: 2s, response: 5s, send: 5s}";
  std::string timeouts = "{header: 5s, body: 5s, idle: 60s, send: 5s}";
  std::string limits = "{max_header_bytes: 8k, max_headers: 50}";
  std::string trusted_proxies = "[127.0.0.1/32]";
  int workers = 1;
  std::string balance;         // upstreams.app.balance, when not empty
  std::string hash;            // upstreams.app.hash, when not empty
  std::string passive;         // upstreams.app.passive, when not empty
  std::string upstream_extra;  // more lines for upstreams.app ("    key: value\n")
  std::string route_extra;     // more lines for the route ("        key: value\n")
};
std::string proxyConfigYaml(int listen_port, const ProxyConfig& config);

}  // namespace sluice::testing
