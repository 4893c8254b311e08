#include "process/runtime_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sluice::process {
namespace {

bool replaceFile(const std::string& path, const std::string& content, std::string* error) {
  std::string temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot write " + temp + ": " + std::strerror(errno);
    return false;
  }
  ssize_t n = ::write(fd, content.data(), content.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(content.size()) || ::rename(temp.c_str(), path.c_str()) != 0) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    ::unlink(temp.c_str());
    return false;
  }
  return true;
}

}  // namespace

std::string stateFilePath(const std::string& pid_file) {
  return pid_file + ".state";
}

bool writePidFile(const std::string& path, pid_t pid, std::string* error) {
  return replaceFile(path, std::to_string(pid) + "\n", error);
}

std::optional<pid_t> readPidFile(const std::string& path, std::string* error) {
  std::ifstream in(path);
  long pid = 0;
  if (!in || !(in >> pid) || pid <= 0) {
    *error = "cannot read a pid from " + path + " (is sluice running?)";
    return std::nullopt;
  }
  return static_cast<pid_t>(pid);
}

bool writeRuntimeState(const std::string& path, const RuntimeState& state, std::string* error) {
  std::string text;
  text += "pid " + std::to_string(state.pid) + "\n";
  text += "generation " + std::to_string(state.generation) + "\n";
  text += "reloads " + std::to_string(state.reloads) + "\n";
  text += "last_reload " + state.last_reload + "\n";
  for (const std::string& e : state.errors)
    text += "error " + e + "\n";
  return replaceFile(path, text, error);
}

std::optional<RuntimeState> readRuntimeState(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  RuntimeState state;
  std::string line;
  while (std::getline(in, line)) {
    size_t space = line.find(' ');
    std::string key = line.substr(0, space);
    std::string value = space == std::string::npos ? "" : line.substr(space + 1);
    if (key == "pid") state.pid = static_cast<pid_t>(std::atol(value.c_str()));
    if (key == "generation") state.generation = static_cast<uint32_t>(std::atol(value.c_str()));
    if (key == "reloads") state.reloads = std::strtoull(value.c_str(), nullptr, 10);
    if (key == "last_reload") state.last_reload = value;
    if (key == "error") state.errors.push_back(value);
  }
  return state;
}

}  // namespace sluice::process
