// Process-wide error log: levelled, line-oriented, written with one write(2)
// per line so lines from several processes never interleave. Text
// (`TIME [level] pid=N request_id=ID message`) or one JSON object per line;
// lines about a request carry its request id (SLUICE_LOG_REQUEST), the same
// id as the access log line and the X-Request-Id header.
// Owned by nobody: a small global configured once at start-up (and on reopen).
#pragma once

#include <string>
#include <string_view>

namespace sluice::log {

enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// Returns false for an unknown name.
bool parseLevel(std::string_view name, Level* out);

void setLevel(Level level);
Level level();

// Target is "stderr" or a file path (opened O_APPEND). Returns false and
// leaves the previous target in place when the file cannot be opened.
bool setTarget(const std::string& target, std::string* error);
// "text" (the default) or "json"; returns false for anything else.
bool setFormat(std::string_view format);
// Reopens the current file target (SIGUSR1 after log rotation).
void reopen();

bool enabled(Level level);
// The fd the log writes to (kept open across fork into workers).
int targetFd();
void write(Level level, std::string_view message, std::string_view request_id = {});

}  // namespace sluice::log

// Format with std::format-like concatenation kept simple: callers build the
// message; the macros skip building it when the level is off.
#define SLUICE_LOG(lvl, msg_expr)                                  \
  do {                                                             \
    if (::sluice::log::enabled(::sluice::log::Level::lvl)) {       \
      ::sluice::log::write(::sluice::log::Level::lvl, (msg_expr)); \
    }                                                              \
  } while (0)

// A line about one request: `request_id` (a string_view-able value) is
// written with it.
#define SLUICE_LOG_REQUEST(lvl, request_id, msg_expr)                            \
  do {                                                                           \
    if (::sluice::log::enabled(::sluice::log::Level::lvl)) {                     \
      ::sluice::log::write(::sluice::log::Level::lvl, (msg_expr), (request_id)); \
    }                                                                            \
  } while (0)
