#include "observe/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace sluice::observe {
namespace {

constexpr size_t kFlushBytes = 16 * 1024;
constexpr event::Duration kFlushDelay{100};
// What may wait for a slow reader of the log before lines are dropped.
constexpr size_t kMaxPendingBytes = 256 * 1024;

}  // namespace

AccessLog::AccessLog(event::TimerQueue& timers) : flush_timer_(timers, [this] { flush(); }) {}

AccessLog::~AccessLog() {
  flush();
  if (owns_fd_) ::close(fd_);
}

bool AccessLog::open(const std::string& target, const std::string& format, std::string* error) {
  if (!AccessFormat::parse(format, &format_, error)) {
    *error = "access log format: " + *error;
    return false;
  }
  if (target == "off") {
    fd_ = -1;
    return true;
  }
  if (target == "stdout") {
    // A description of our own, non-blocking, so that setting O_NONBLOCK
    // does not change stdout for the processes that share it. Sockets
    // (journald) cannot be reopened this way: then stdout itself.
    int fd = ::open("/proc/self/fd/1", O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      fd_ = fd;
      owns_fd_ = true;
    } else {
      fd_ = STDOUT_FILENO;
      owns_fd_ = false;
      const int flags = ::fcntl(fd_, F_GETFL);
      if (flags >= 0) ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
    }
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

void AccessLog::append(const RequestRecord& record) {
  if (fd_ < 0) return;
  format_.append(record, &pending_);
  if (pending_.size() >= kFlushBytes) {
    flush();
  } else if (!flush_timer_.armed()) {
    flush_timer_.arm(kFlushDelay);
  }
}

void AccessLog::flush() {
  flush_timer_.cancel();
  if (fd_ < 0) {
    pending_.clear();
    return;
  }
  size_t written = head_written_;
  bool blocked = false;
  while (written < pending_.size()) {
    ssize_t n = ::write(fd_, pending_.data() + written, pending_.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      blocked = true;  // the reader is slow: keep the rest for later
      break;
    }
    if (n <= 0) {
      // A failing disk or a closed pipe: drop the rest of the batch.
      uint64_t lines = 0;
      for (size_t k = written; k < pending_.size(); ++k)
        lines += pending_[k] == '\n' ? 1 : 0;
      lines_dropped_ += lines;
      if (dropped_ != nullptr) add(*dropped_, lines);
      pending_.clear();
      head_written_ = 0;
      return;
    }
    written += static_cast<size_t>(n);
  }
  if (!blocked) {
    pending_.clear();
    head_written_ = 0;
    return;
  }
  // Keep from the start of the line the write stopped in.
  size_t line_start = pending_.rfind('\n', written == 0 ? 0 : written - 1);
  line_start = line_start == std::string::npos || written == 0 ? 0 : line_start + 1;
  pending_.erase(0, line_start);
  head_written_ = written - line_start;
  if (pending_.size() > kMaxPendingBytes) dropLines(pending_.size() - kMaxPendingBytes);
  if (!pending_.empty()) flush_timer_.arm(kFlushDelay);
}

// Drops whole lines from the front of pending_ (after the partly written
// one, which is kept to be finished) until about `bytes` are gone; counts them.
void AccessLog::dropLines(size_t bytes) {
  size_t from = 0;
  if (head_written_ > 0) {
    const size_t end = pending_.find('\n');
    from = end == std::string::npos ? pending_.size() : end + 1;
  }
  size_t to = std::min(pending_.size(), from + bytes);
  if (to < pending_.size()) {
    const size_t end = pending_.find('\n', to == 0 ? 0 : to - 1);
    to = end == std::string::npos ? pending_.size() : end + 1;
  }
  uint64_t lines = 0;
  for (size_t k = from; k < to; ++k)
    lines += pending_[k] == '\n' ? 1 : 0;
  pending_.erase(from, to - from);
  if (from == 0) head_written_ = 0;
  lines_dropped_ += lines;
  if (dropped_ != nullptr) add(*dropped_, lines);
}

}  // namespace sluice::observe
