// IoResult: the outcome of one non-blocking read or write, without exceptions.
// Value type; no ownership.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice {

// Which readiness resumes an operation that returned kAgain. A plain socket
// read waits for readable and a write for writable; a TLS read may need the
// socket writable (and a TLS write readable) while a record is in flight.
enum class WaitFor : uint8_t { kReadable, kWritable };

struct IoResult {
  enum class Kind : uint8_t {
    kOk,     // `bytes` were transferred (> 0)
    kAgain,  // nothing now: retry when `wait_for` readiness arrives
    kEof,    // orderly shutdown by the peer (read returned 0)
    kError,  // `error` holds the errno
  };

  Kind kind = Kind::kOk;
  WaitFor wait_for = WaitFor::kReadable;  // for kAgain
  // For kOk reads: the transport knows nothing more is waiting (a plain
  // socket read that returned less than the space offered). Under
  // edge-triggered readiness the next bytes bring a new edge, so the reader
  // stops here instead of reading again just to get EAGAIN.
  bool drained = false;
  size_t bytes = 0;
  int error = 0;

  static IoResult ok(size_t n, bool drained = false) {
    IoResult r;
    r.bytes = n;
    r.drained = drained;
    return r;
  }
  static IoResult again(WaitFor wait_for) {
    IoResult r;
    r.kind = Kind::kAgain;
    r.wait_for = wait_for;
    return r;
  }
  static IoResult eof() {
    IoResult r;
    r.kind = Kind::kEof;
    return r;
  }
  static IoResult failed(int err) {
    IoResult r;
    r.kind = Kind::kError;
    r.error = err;
    return r;
  }

  bool isOk() const { return kind == Kind::kOk; }
  bool isAgain() const { return kind == Kind::kAgain; }
  bool isEof() const { return kind == Kind::kEof; }
  bool isError() const { return kind == Kind::kError; }
};

}  // namespace sluice
