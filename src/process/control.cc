#include "process/control.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "config/config.h"
#include "net/socket.h"
#include "process/runtime_files.h"
#include "process/status_table.h"

namespace sluice::process {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPollInterval = std::chrono::milliseconds(50);
// How long a reload may take to have its workers serving.
constexpr auto kReloadWait = std::chrono::seconds(60);

// Gone, or a zombie its parent has not reaped yet (it has exited all the same).
bool exited(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

int waitForReload(pid_t pid, const std::string& state_path, uint64_t reloads_before) {
  auto deadline = Clock::now() + kReloadWait;
  while (Clock::now() < deadline) {
    std::optional<RuntimeState> state = readRuntimeState(state_path);
    if (state && state->pid == pid && state->reloads > reloads_before) {
      if (state->last_reload == "ok") {
        std::printf("sluice: reloaded; generation %u serving\n", state->generation);
        return 0;
      }
      for (const std::string& error : state->errors)
        std::fprintf(stderr, "%s\n", error.c_str());
      std::fprintf(stderr, "sluice: reload failed; the previous configuration is still serving\n");
      return 1;
    }
    if (exited(pid)) {
      std::fprintf(stderr, "sluice: the master (pid %d) exited during the reload\n", pid);
      return 1;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  std::fprintf(stderr, "sluice: no reload outcome after %llds\n",
               static_cast<long long>(kReloadWait.count()));
  return 1;
}

int waitForExit(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (exited(pid)) {
      std::printf("sluice: stopped\n");
      return 0;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  std::fprintf(stderr, "sluice: the master (pid %d) is still running\n", pid);
  return 1;
}

// One blocking GET with an overall deadline; returns the status or 0.
int probe(const net::Address& address, const std::string& path, std::chrono::milliseconds limit,
          std::string* error) {
  auto deadline = Clock::now() + limit;
  auto remaining = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<int64_t>(left.count(), 0));
  };
  bool in_progress = false;
  int fd = net::connectTo(address, &in_progress);
  if (fd < 0) {
    *error = "cannot connect to " + address.toString() + ": " + std::strerror(-fd);
    return 0;
  }
  pollfd p{fd, POLLOUT, 0};
  if (in_progress && (::poll(&p, 1, remaining()) <= 0 || net::takeSocketError(fd) != 0)) {
    *error = "cannot connect to " + address.toString();
    ::close(fd);
    return 0;
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    *error = "cannot send to " + address.toString();
    ::close(fd);
    return 0;
  }
  std::string response;
  char buf[512];
  while (response.find("\r\n") == std::string::npos) {
    pollfd r{fd, POLLIN, 0};
    if (::poll(&r, 1, remaining()) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (response.size() < 12 || response.compare(0, 5, "HTTP/") != 0) {
    *error = "no HTTP response from " + address.toString();
    return 0;
  }
  return std::atoi(response.c_str() + 9);
}

// One blocking `GET path` with `Connection: close` and an overall deadline:
// the status (0 on failure, with *error set) and the body.
int fetch(const net::Address& address, const std::string& path, std::chrono::milliseconds limit,
          std::string* body, std::string* error) {
  auto deadline = Clock::now() + limit;
  auto remaining = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<int64_t>(left.count(), 0));
  };
  bool in_progress = false;
  int fd = net::connectTo(address, &in_progress);
  if (fd < 0) {
    *error = "cannot connect to " + address.toString() + ": " + std::strerror(-fd);
    return 0;
  }
  pollfd p{fd, POLLOUT, 0};
  if (in_progress) {
    const int ready = ::poll(&p, 1, remaining());
    const int failure = ready > 0 ? net::takeSocketError(fd) : 0;
    if (ready <= 0 || failure != 0) {
      *error = "cannot connect to " + address.toString() +
               (failure != 0 ? std::string(": ") + std::strerror(failure) : ": timed out");
      ::close(fd);
      return 0;
    }
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    *error = "cannot send to " + address.toString();
    ::close(fd);
    return 0;
  }
  std::string response;
  char buf[16384];
  bool closed = false;
  while (!closed) {
    pollfd r{fd, POLLIN, 0};
    if (::poll(&r, 1, remaining()) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      closed = true;
      break;
    }
    response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t head_end = response.find("\r\n\r\n");
  if (response.size() < 12 || response.compare(0, 5, "HTTP/") != 0 ||
      head_end == std::string::npos) {
    *error = "no HTTP response from " + address.toString();
    return 0;
  }
  const int status = std::atoi(response.c_str() + 9);
  *body = response.substr(head_end + 4);
  // Content-Length says whether all of it came before the deadline.
  std::string head = response.substr(0, head_end);
  std::transform(head.begin(), head.end(), head.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const size_t length_at = head.find("\r\ncontent-length:");
  if (length_at != std::string::npos) {
    const size_t expected = std::strtoull(head.c_str() + length_at + 17, nullptr, 10);
    if (body->size() != expected) {
      *error = "incomplete response from " + address.toString() + " (" +
               std::to_string(body->size()) + " of " + std::to_string(expected) + " bytes)";
      return 0;
    }
  } else if (!closed) {
    *error = "incomplete response from " + address.toString();
    return 0;
  }
  return status;
}

}  // namespace

int runStatusCommand(const std::string& config_path, bool json) {
  std::optional<net::Address> admin = config::peekAdminAddress(config_path);
  if (!admin) {
    std::fprintf(stderr, "sluice: %s has no readable admin listener (admin: { address: ... })\n",
                 config_path.c_str());
    return 1;
  }
  // During a reload a worker of the older generation may take the
  // connection: it answers 503 (it cannot see the newer one), a new
  // connection soon reaches a worker that can answer.
  constexpr int kAttempts = 30;
  constexpr auto kRetryAfter = std::chrono::milliseconds(100);
  std::string body;
  std::string error;
  int status = 0;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    body.clear();
    error.clear();
    status = fetch(*admin, "/status", std::chrono::milliseconds(2000), &body, &error);
    if (status != 503) break;
    std::this_thread::sleep_for(kRetryAfter);
  }
  if (status == 0) {
    std::fprintf(stderr, "sluice: %s\n", error.c_str());
    return 1;
  }
  if (status != 200) {
    std::fprintf(stderr, "sluice: GET /status on %s answered %d%s\n", admin->toString().c_str(),
                 status, status == 404 ? " (is this a sluice admin listener?)" : "");
    return 1;
  }
  if (json) {
    std::fwrite(body.data(), 1, body.size(), stdout);
    if (body.empty() || body.back() != '\n') std::fputc('\n', stdout);
    return 0;
  }
  std::optional<std::string> table = formatStatusTable(body, &error);
  if (!table) {
    std::fprintf(stderr, "sluice: /status on %s: %s\n", admin->toString().c_str(), error.c_str());
    return 1;
  }
  std::fwrite(table->data(), 1, table->size(), stdout);
  return 0;
}

int runHealthCommand(const std::string& config_path, const std::string& path) {
  // The file may be mid-edit and invalid while the running (old, valid)
  // config serves: only the admin address is read from it.
  std::optional<net::Address> admin = config::peekAdminAddress(config_path);
  if (!admin) {
    std::fprintf(stderr, "sluice: %s has no readable admin listener (admin: { address: ... })\n",
                 config_path.c_str());
    return 1;
  }
  std::string error;
  int status = probe(*admin, path, std::chrono::milliseconds(2000), &error);
  if (status == 200) {
    std::printf("sluice: %s: 200\n", path.c_str());
    return 0;
  }
  if (status == 0) {
    std::fprintf(stderr, "sluice: %s\n", error.c_str());
  } else {
    std::fprintf(stderr, "sluice: %s: %d\n", path.c_str(), status);
  }
  return 1;
}

int runControlCommand(const std::string& action, const std::string& config_path) {
  int sig;
  if (action == "reload") {
    sig = SIGHUP;
  } else if (action == "stop") {
    sig = SIGINT;  // fast: nginx's `stop`
  } else if (action == "quit") {
    sig = SIGQUIT;  // graceful: finish in-flight requests
  } else {
    std::fprintf(stderr, "sluice: -s takes reload, stop or quit, not \"%s\"\n", action.c_str());
    return 2;
  }
  // The file must be valid before anything is signalled: the master would
  // reject it anyway, and this way the error is printed here, located.
  config::LoadResult loaded = config::loadConfigFile(config_path);
  if (!loaded.ok()) {
    for (const std::string& error : loaded.errors)
      std::fprintf(stderr, "%s\n", error.c_str());
    std::fprintf(stderr, "sluice: configuration file %s test failed; nothing was signalled\n",
                 config_path.c_str());
    return 1;
  }
  const std::string& pid_file = loaded.config->pid_file;
  if (pid_file.empty()) {
    std::fprintf(stderr, "sluice: %s sets no pid_file, so the running master cannot be found\n",
                 config_path.c_str());
    return 1;
  }
  std::string error;
  std::optional<pid_t> pid = readPidFile(pid_file, &error);
  if (!pid) {
    std::fprintf(stderr, "sluice: %s\n", error.c_str());
    return 1;
  }
  std::string state_path = stateFilePath(pid_file);
  std::optional<RuntimeState> before = readRuntimeState(state_path);
  uint64_t reloads_before = before && before->pid == *pid ? before->reloads : 0;
  if (::kill(*pid, sig) != 0) {
    std::fprintf(stderr, "sluice: cannot signal pid %d: %s\n", *pid, std::strerror(errno));
    return 1;
  }
  if (sig == SIGHUP) return waitForReload(*pid, state_path, reloads_before);
  // quit: drain_delay, then the drain itself, then the master's kill grace.
  auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(
      loaded.config->drain_delay + loaded.config->shutdown_timeout + std::chrono::seconds(10));
  return waitForExit(*pid, limit);
}

}  // namespace sluice::process
