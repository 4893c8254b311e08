// IoResult: the outcome of one non-blocking read or write, without exceptions.
// Value type; no ownership.
#pragma once

#include <cstddef>

namespace sluice {

struct IoResult {
  enum class Kind {
    kOk,     // `bytes` were transferred (> 0)
    kAgain,  // EAGAIN/EWOULDBLOCK: wait for the next readiness edge
    kEof,    // orderly shutdown by the peer (read returned 0)
    kError,  // `error` holds the errno
  };

  Kind kind = Kind::kOk;
  size_t bytes = 0;
  int error = 0;

  static IoResult ok(size_t n) { return {Kind::kOk, n, 0}; }
  static IoResult again() { return {Kind::kAgain, 0, 0}; }
  static IoResult eof() { return {Kind::kEof, 0, 0}; }
  static IoResult failed(int err) { return {Kind::kError, 0, err}; }

  bool isOk() const { return kind == Kind::kOk; }
  bool isAgain() const { return kind == Kind::kAgain; }
};

}  // namespace sluice
