// EventLoop: one per worker thread. Waits on the Poller, dispatches fd
// readiness to IoHandlers, fires timers, delivers signals as events and runs
// deferred tasks at the end of each pass. Owned by the worker; everything
// registered with it must be used from its thread only.
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "event/clock.h"
#include "event/poller.h"
#include "event/timer.h"

namespace sluice::event {

// Receives readiness for one fd. Edge-triggered: a handler must read/write
// until EAGAIN, or call EventLoop::addPending() when it stops early.
class IoHandler {
 public:
  virtual void onReady(uint32_t ready_bits) = 0;

 protected:
  ~IoHandler() = default;
};

// An object the loop may destroy at the end of a pass, when no callback of
// it can be on the stack any more (Envoy's DeferredDeletable).
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};

class EventLoop {
 public:
  explicit EventLoop(Clock& clock = SystemClock::instance());
  EventLoop(Clock& clock, std::unique_ptr<Poller> poller);  // tests inject a backend
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registers fd (both directions, edge-triggered). Returns 0 or errno.
  int addFd(int fd, IoHandler* handler);
  // Unregisters fd; call before close(fd). Events for fd still queued in the
  // current batch, and any pending re-delivery, are dropped — so an fd number
  // closed and reused within one batch never reaches its new owner.
  void removeFd(int fd);
  // The same for an fd the caller closes at once and that no other
  // descriptor (a dup, a forked child's copy) refers to: the kernel takes a
  // closed file out of the epoll set or kqueue itself, so this skips the
  // poller call (nginx's NGX_CLOSE_EVENT) — one syscall fewer per
  // connection.
  void forgetFd(int fd);

  // Re-delivers `ready_bits` to fd's handler on the next pass, without waiting
  // for the kernel (which will not report an edge again). Used when a handler
  // stopped on its per-pass I/O budget, or resumes reading after backpressure.
  void addPending(int fd, uint32_t ready_bits);

  // Runs `task` at the end of the current pass (after all events and timers);
  // the place to destroy connections safely.
  void defer(std::function<void()> task);
  // Destroys `object` at the end of the current pass, after the deferred
  // tasks: how connections and handlers leave, since the code that decides
  // to drop one is often running inside that object's own callback.
  void deferDelete(std::unique_ptr<DeferredDeletable> object);

  // Delivers `signo` as a loop event: blocks it for the process and calls
  // `handler` from the loop. Returns 0 or errno.
  int watchSignal(int signo, std::function<void(int)> handler);

  // One pass: wait (bounded by the nearest timer and `max_wait`; negative =
  // no bound other than timers; zero when pending work exists), dispatch
  // events, expire timers, run pending re-deliveries, run deferred tasks.
  void runOnce(Duration max_wait = Duration(-1));
  // Runs passes until stop().
  void run();
  void stop();

  // "Now" as read once after the last wait (nginx's ngx_current_msec):
  // timers, request and upstream timings all count from it, so handling an
  // event never reads the clock. A duration measured with it is exact to
  // within the loop pass it ends in.
  TimePoint now() const { return timers_.now(); }
  // The wall-clock time of now(), for timestamps (the access log): the
  // offset between the two clocks is read again at most once a second.
  std::chrono::system_clock::time_point wallNow();
  // A Clock whose now() is the loop's cached now(), for parts that take a
  // Clock (p2c_ewma's decay).
  const Clock& cachedClock() const { return cached_clock_; }
  TimerQueue& timers() { return timers_; }
  const char* backendName() const;

 private:
  static constexpr size_t kMaxEvents = 256;

  // One per fd number up to the highest in use: 16 bytes, since every
  // connection has one.
  struct Registration {
    IoHandler* handler = nullptr;  // non-null exactly while the fd is registered
    uint32_t generation = 0;
    bool active() const { return handler != nullptr; }
    // Bits queued by addPending() and not yet delivered; non-zero means the
    // fd already has an entry in pending_ (or in the list being run).
    uint32_t pending_ready = 0;
  };

  Registration* find(int fd, uint32_t generation);
  void unregister(int fd, bool from_poller);
  void dispatch(const PollEvent& event);
  void runPending();
  void runDeferred();

  class CachedClock final : public Clock {
   public:
    explicit CachedClock(const TimerQueue& timers) : timers_(timers) {}
    TimePoint now() const override { return timers_.now(); }

   private:
    const TimerQueue& timers_;
  };

  Clock& clock_;
  std::unique_ptr<Poller> poller_;
  TimerQueue timers_;
  CachedClock cached_clock_{timers_};
  // wallNow(): system_clock minus steady time, and when that was read.
  std::chrono::system_clock::duration wall_offset_{};
  TimePoint wall_offset_read_at_{};
  bool wall_offset_known_ = false;
  std::vector<Registration> registrations_;  // indexed by fd
  uint32_t next_generation_ = 1;
  struct Pending {
    int fd;
    uint32_t generation;
  };
  std::vector<Pending> pending_;
  std::vector<Pending> pending_running_;  // spare capacity, swapped with pending_
  std::vector<std::function<void()>> deferred_;
  std::vector<std::function<void()>> deferred_running_;  // same, for deferred_
  std::vector<std::unique_ptr<DeferredDeletable>> doomed_;
  std::vector<std::unique_ptr<DeferredDeletable>> doomed_running_;
  std::vector<std::pair<int, std::function<void(int)>>> signal_handlers_;
  std::vector<PollEvent> events_;
  bool stopped_ = false;
};

}  // namespace sluice::event
