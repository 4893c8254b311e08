#include "core/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace sluice::log {
namespace {

struct State {
  Level level = Level::kInfo;
  int fd = STDERR_FILENO;
  std::string path;  // empty = stderr
  bool json = false;
};

State& state() {
  static State s;
  return s;
}

const char* levelName(Level level) {
  switch (level) {
    case Level::kError:
      return "error";
    case Level::kWarn:
      return "warn";
    case Level::kInfo:
      return "info";
    case Level::kDebug:
      return "debug";
  }
  return "?";
}

}  // namespace

bool parseLevel(std::string_view name, Level* out) {
  static constexpr std::pair<std::string_view, Level> kNames[] = {{"error", Level::kError},
                                                                  {"warn", Level::kWarn},
                                                                  {"info", Level::kInfo},
                                                                  {"debug", Level::kDebug}};
  for (const auto& [n, l] : kNames) {
    if (n == name) {
      *out = l;
      return true;
    }
  }
  return false;
}

int targetFd() {
  return state().fd;
}

void setLevel(Level level) {
  state().level = level;
}
Level level() {
  return state().level;
}
bool enabled(Level level) {
  return static_cast<int>(level) <= static_cast<int>(state().level);
}

bool setTarget(const std::string& target, std::string* error) {
  State& s = state();
  if (target == "stderr") {
    if (s.fd != STDERR_FILENO) ::close(s.fd);
    s.fd = STDERR_FILENO;
    s.path.clear();
    return true;
  }
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (error) *error = "cannot open error log " + target + ": " + std::strerror(errno);
    return false;
  }
  if (s.fd != STDERR_FILENO) ::close(s.fd);
  s.fd = fd;
  s.path = target;
  return true;
}

bool setFormat(std::string_view format) {
  if (format != "text" && format != "json") return false;
  state().json = format == "json";
  return true;
}

void reopen() {
  State& s = state();
  if (!s.path.empty()) setTarget(std::string(s.path), nullptr);
}

namespace {

void appendJsonString(std::string_view value, std::string* out) {
  out->push_back('"');
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      const char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      out->append(escaped, sizeof escaped);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

}  // namespace

void write(Level level, std::string_view message, std::string_view request_id) {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm tm_utc;
  ::gmtime_r(&now, &tm_utc);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  std::string line;
  line.reserve(message.size() + 96);
  if (state().json) {
    line.append("{\"time\":\"").append(stamp).append("\",\"level\":\"");
    line.append(levelName(level)).append("\",\"pid\":").append(std::to_string(::getpid()));
    if (!request_id.empty()) {
      line.append(",\"request_id\":");
      appendJsonString(request_id, &line);
    }
    line.append(",\"message\":");
    appendJsonString(message, &line);
    line.append("}\n");
  } else {
    line.append(stamp).append(" [").append(levelName(level)).append("] ");
    line.append("pid=").append(std::to_string(::getpid())).append(" ");
    if (!request_id.empty()) line.append("request_id=").append(request_id).append(" ");
    line.append(message).push_back('\n');
  }
  // One write per line keeps lines whole when several processes share a fd.
  ssize_t rc = ::write(state().fd, line.data(), line.size());
  (void)rc;
}

}  // namespace sluice::log
