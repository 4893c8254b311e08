#include "process/control.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "config/config.h"
#include "process/runtime_files.h"

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

}  // namespace

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
  auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(
      loaded.config->shutdown_timeout + std::chrono::seconds(10));
  return waitForExit(*pid, limit);
}

}  // namespace sluice::process
