// The master's pid file and its state file (`<pid_file>.state`), through
// which `sluice -s reload` learns whether a reload it asked for took effect.
// Free functions; files are replaced atomically (write + rename).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::process {

struct RuntimeState {
  pid_t pid = 0;
  uint32_t generation = 0;          // the serving generation
  uint64_t reloads = 0;             // reload attempts resolved so far
  std::string last_reload;          // "none", "ok" or "failed"
  std::vector<std::string> errors;  // of the last failed reload
};

std::string stateFilePath(const std::string& pid_file);
bool writePidFile(const std::string& path, pid_t pid, std::string* error);
std::optional<pid_t> readPidFile(const std::string& path, std::string* error);
bool writeRuntimeState(const std::string& path, const RuntimeState& state, std::string* error);
std::optional<RuntimeState> readRuntimeState(const std::string& path);

}  // namespace sluice::process
