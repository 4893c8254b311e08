// AccessLog: one line per answered request, in the combined (nginx/Apache)
// or JSON format or a template of named fields (observe::AccessFormat), to stdout or a file. Lines
// are buffered and written in batches (at 16 KiB or 100 ms after the first unwritten line) so
// logging costs no syscall per request. Writes never block the loop: stdout is reopened
// non-blocking (a pipe nobody reads would otherwise stall the worker); what the reader cannot take
// waits, up to 256 KiB, and beyond that whole lines are dropped and counted (never half a line).
// Owned by the worker; lives on its loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "event/timer.h"
#include "observe/access_format.h"
#include "observe/counters.h"
#include "observe/request_record.h"

namespace sluice::observe {

class AccessLog {
 public:
  explicit AccessLog(event::TimerQueue& timers);
  ~AccessLog();  // flushes
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // `target` is "stdout", "off" or a file path; `format` as the config's
  // log.access_format ("combined", "json" or a template).
  bool open(const std::string& target, const std::string& format, std::string* error);
  bool enabled() const { return fd_ >= 0; }
  void append(const RequestRecord& record);
  void flush();
  // Reopens a file target (after rotation, SIGUSR1).
  void reopen();
  // Where dropped lines are counted (WorkerCounters::access_log_lines_dropped).
  void countDropsIn(Counter* dropped) { dropped_ = dropped; }
  uint64_t linesDropped() const { return lines_dropped_; }

 private:
  int fd_ = -1;
  bool owns_fd_ = false;
  AccessFormat format_;
  std::string path_;
  void dropLines(size_t keep_from);
  std::string pending_;
  // Bytes of pending_'s first line already written (a partial write): that
  // line is finished before anything else, so lines stay whole.
  size_t head_written_ = 0;
  uint64_t lines_dropped_ = 0;
  Counter* dropped_ = nullptr;
  event::Timer flush_timer_;
};

}  // namespace sluice::observe
