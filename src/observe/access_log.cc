#include "observe/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace sluice::observe {
namespace {

constexpr size_t kFlushBytes = 16 * 1024;
constexpr event::Duration kFlushDelay{100};

// Combined-format fields are quoted: escape what would break the quoting or
// the line (as nginx does with \xHH).
void appendQuoted(std::string_view value, std::string* out) {
  out->push_back('"');
  if (value.empty()) out->push_back('-');
  for (unsigned char c : value) {
    if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", c);
      out->append(escaped);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

void appendJsonString(std::string_view value, std::string* out) {
  out->push_back('"');
  for (unsigned char c : value) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char escaped[7];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out->append(escaped);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

std::string_view orDash(std::string_view value) {
  return value.empty() ? "-" : value;
}

}  // namespace

AccessLog::AccessLog(event::TimerQueue& timers) : flush_timer_(timers, [this] { flush(); }) {}

AccessLog::~AccessLog() {
  flush();
  if (owns_fd_) ::close(fd_);
}

bool AccessLog::open(const std::string& target, const std::string& format, std::string* error) {
  json_ = format == "json";
  if (target == "off") {
    fd_ = -1;
    return true;
  }
  if (target == "stdout") {
    fd_ = STDOUT_FILENO;
    owns_fd_ = false;
    return true;
  }
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot open access log " + target + ": " + std::strerror(errno);
    return false;
  }
  fd_ = fd;
  owns_fd_ = true;
  path_ = target;
  return true;
}

void AccessLog::reopen() {
  if (!owns_fd_ || path_.empty()) return;
  flush();
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;  // keep writing to the old file rather than nowhere
  ::close(fd_);
  fd_ = fd;
}

void AccessLog::append(const AccessRecord& record) {
  if (fd_ < 0) return;
  if (json_) {
    appendJson(record);
  } else {
    appendCombined(record);
  }
  if (pending_.size() >= kFlushBytes) {
    flush();
  } else if (!flush_timer_.armed()) {
    flush_timer_.arm(kFlushDelay);
  }
}

void AccessLog::flush() {
  flush_timer_.cancel();
  size_t written = 0;
  while (written < pending_.size()) {
    ssize_t n = ::write(fd_, pending_.data() + written, pending_.size() - written);
    if (n < 0 && errno == EINTR) continue;
    // A full pipe or a failing disk must not stall or kill request handling:
    // drop the batch rather than block the loop.
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  pending_.clear();
}

void AccessLog::appendCombined(const AccessRecord& r) {
  char time_text[40];
  std::time_t seconds = std::chrono::system_clock::to_time_t(r.started);
  std::tm local;
  ::localtime_r(&seconds, &local);
  std::strftime(time_text, sizeof time_text, "[%d/%b/%Y:%H:%M:%S %z]", &local);
  std::string& out = pending_;
  out.append(orDash(r.client_ip)).append(" - - ").append(time_text).push_back(' ');
  if (r.method.empty()) {
    out.append("\"-\"");
  } else {
    std::string line(r.method);
    line.append(" ").append(r.target).append(r.version_minor == 0 ? " HTTP/1.0" : " HTTP/1.1");
    appendQuoted(line, &out);
  }
  out.append(" ").append(std::to_string(r.status)).append(" ");
  out.append(std::to_string(r.body_bytes)).push_back(' ');
  appendQuoted(r.referer, &out);
  out.push_back(' ');
  appendQuoted(r.user_agent, &out);
  out.push_back('\n');
}

void AccessLog::appendJson(const AccessRecord& r) {
  char time_text[40];
  std::time_t seconds = std::chrono::system_clock::to_time_t(r.started);
  std::tm utc;
  ::gmtime_r(&seconds, &utc);
  std::strftime(time_text, sizeof time_text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  std::string& out = pending_;
  out.append("{\"time\":\"").append(time_text).append("\",\"client\":");
  appendJsonString(r.client_ip, &out);
  out.append(",\"method\":");
  appendJsonString(r.method, &out);
  out.append(",\"target\":");
  appendJsonString(r.target, &out);
  out.append(",\"protocol\":\"").append(r.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1");
  out.append("\",\"status\":").append(std::to_string(r.status));
  out.append(",\"body_bytes\":").append(std::to_string(r.body_bytes));
  out.append(",\"duration_ms\":").append(std::to_string(r.duration.count() / 1000.0));
  out.append(",\"referer\":");
  appendJsonString(r.referer, &out);
  out.append(",\"user_agent\":");
  appendJsonString(r.user_agent, &out);
  out.append(",\"upstream\":");
  appendJsonString(r.upstream, &out);
  out.append("}\n");
}

}  // namespace sluice::observe
