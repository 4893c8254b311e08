// Poller: the kernel readiness interface behind the event loop, edge-triggered
// (epoll EPOLLET / kqueue EV_CLEAR). One registration per fd covers both
// directions. Owned by one EventLoop; single-threaded.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "event/clock.h"

namespace sluice::event {

// Readiness bits delivered with an event. kError always comes with
// kReadable|kWritable, and a read-side kPeerClosed with kReadable, so a
// handler that looks only at the direction bits still runs its I/O path and
// learns the errno or the EOF from the syscall.
enum ReadyBits : uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kPeerClosed = 1u << 2,  // EPOLLRDHUP/EPOLLHUP, EV_EOF: the peer shut down its write side
  kError = 1u << 3,       // EPOLLERR, EV_ERROR
};

// Backends use this value internally (epoll: the signalfd's registration;
// kqueue: the udata of EV_DELETE changes), so add() rejects it with EINVAL.
inline constexpr uint64_t kReservedTag = ~uint64_t{0};

struct PollEvent {
  enum class Source { kFd, kSignal };
  Source source = Source::kFd;
  uint64_t tag = 0;    // for kFd: the tag given to add()
  uint32_t ready = 0;  // for kFd: ReadyBits
  int signal = 0;      // for kSignal: the signal number
};

class Poller {
 public:
  virtual ~Poller() = default;

  // Registers `fd` for both directions, edge-triggered. `tag` comes back in
  // every PollEvent for this fd; it must not be kReservedTag. Returns 0 or an
  // errno (EEXIST if `fd` is already registered). A backend that batches
  // changes may report a failed registration later, as kError for `tag`.
  virtual int add(int fd, uint64_t tag) = 0;
  // Unregisters `fd` (call before close). Returns 0 or an errno (ENOENT if
  // `fd` is not registered).
  virtual int remove(int fd) = 0;
  // Delivers `signo` as a PollEvent of source kSignal instead of running a
  // handler; the caller has already blocked it with sigprocmask. Returns 0 or errno.
  virtual int watchSignal(int signo) = 0;
  // Waits up to `timeout` (negative = forever) and fills `out`. Returns the
  // number of events, 0 on timeout or EINTR, or -errno.
  virtual int wait(std::span<PollEvent> out, Duration timeout) = 0;

  virtual const char* name() const = 0;
};

// The backend for this platform: epoll on Linux, kqueue on BSD/macOS.
std::unique_ptr<Poller> makeDefaultPoller();

}  // namespace sluice::event
