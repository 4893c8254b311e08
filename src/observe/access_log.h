// AccessLog: one line per answered request, in the combined (nginx/Apache)
// or JSON format, to stdout or a file. Lines are buffered and written in
// batches (at 16 KiB or 100 ms after the first unwritten line) so logging
// costs no syscall per request. Writes never block the loop: stdout is
// reopened non-blocking (a pipe nobody reads would otherwise stall the
// worker); what the reader cannot take waits, up to 256 KiB, and beyond that
// whole lines are dropped and counted (never half a line). Owned by the
// worker; lives on its loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "event/timer.h"
#include "observe/counters.h"

namespace sluice::observe {

struct AccessRecord {
  std::string_view client_ip;
  std::string_view method;  // empty when the request line could not be parsed
  std::string_view target;
  int version_minor = 1;
  int status = 0;
  uint64_t body_bytes = 0;  // response body bytes sent to the client
  std::string_view referer;
  std::string_view user_agent;
  std::string_view upstream;  // server address, empty when sluice answered itself
  std::chrono::system_clock::time_point started;
  std::chrono::microseconds duration{0};
  // TLS listeners only (empty otherwise).
  std::string_view tls_protocol;
  std::string_view tls_cipher;
  std::string_view tls_server_name;
  std::string_view tls_client_subject;
};

class AccessLog {
 public:
  explicit AccessLog(event::TimerQueue& timers);
  ~AccessLog();  // flushes
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // `target` is "stdout", "off" or a file path; `format` "combined" or "json".
  bool open(const std::string& target, const std::string& format, std::string* error);
  bool enabled() const { return fd_ >= 0; }
  void append(const AccessRecord& record);
  void flush();
  // Reopens a file target (after rotation, SIGUSR1).
  void reopen();
  // Where dropped lines are counted (WorkerCounters::access_log_lines_dropped).
  void countDropsIn(Counter* dropped) { dropped_ = dropped; }
  uint64_t linesDropped() const { return lines_dropped_; }

 private:
  void appendCombined(const AccessRecord& record);
  void appendJson(const AccessRecord& record);

  int fd_ = -1;
  bool owns_fd_ = false;
  bool json_ = false;
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
