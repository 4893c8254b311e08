#include "event/event_loop.h"

#include <pthread.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "core/log.h"

namespace sluice::event {

namespace {

std::unique_ptr<Poller> defaultPollerOrDie() {
  std::unique_ptr<Poller> poller = makeDefaultPoller();
  if (poller == nullptr) {
    // Without a poller a worker cannot serve anything; the master restarts it.
    const int error = errno;
    SLUICE_LOG(kError,
               std::string("event loop: cannot create the kernel poller: ") + std::strerror(error));
    std::abort();
  }
  return poller;
}

uint64_t makeTag(int fd, uint32_t generation) {
  return (uint64_t{generation} << 32) | static_cast<uint32_t>(fd);
}

}  // namespace

EventLoop::EventLoop(Clock& clock) : EventLoop(clock, defaultPollerOrDie()) {}

EventLoop::EventLoop(Clock& clock, std::unique_ptr<Poller> poller)
    : clock_(clock), poller_(std::move(poller)), timers_(clock), events_(kMaxEvents) {
  if (poller_ == nullptr) {
    SLUICE_LOG(kError, "event loop: constructed without a poller");
    std::abort();
  }
}

// Signals stay blocked after the loop is gone: unblocking one that is pending
// would run its default action (for SIGTERM: exit) in the middle of shutdown.
// Deferred tasks still queued are dropped, not run: they would call into a
// loop that is half destroyed.
EventLoop::~EventLoop() {
  // Doomed objects are destroyed (not leaked) while the loop is still whole:
  // their destructors unregister fds and cancel timers.
  while (!doomed_.empty()) {
    doomed_running_.swap(doomed_);
    doomed_running_.clear();
  }
}

int EventLoop::addFd(int fd, IoHandler* handler) {
  if (fd < 0) return EBADF;
  if (handler == nullptr) return EINVAL;
  if (static_cast<size_t>(fd) >= registrations_.size()) {
    registrations_.resize(static_cast<size_t>(fd) + 1);
  }
  Registration& reg = registrations_[static_cast<size_t>(fd)];
  if (reg.active()) return EEXIST;
  uint32_t generation = next_generation_++;
  if (generation == 0) generation = next_generation_++;  // 0 never names a live registration
  const int error = poller_->add(fd, makeTag(fd, generation));
  if (error != 0) return error;
  reg.handler = handler;
  reg.generation = generation;
  reg.pending_ready = 0;
  return 0;
}

void EventLoop::removeFd(int fd) {
  unregister(fd, /*from_poller=*/true);
}

void EventLoop::forgetFd(int fd) {
  unregister(fd, /*from_poller=*/false);
}

void EventLoop::unregister(int fd, bool from_poller) {
  if (fd < 0 || static_cast<size_t>(fd) >= registrations_.size()) return;
  Registration& reg = registrations_[static_cast<size_t>(fd)];
  if (!reg.active()) return;
  const int error = from_poller ? poller_->remove(fd) : 0;
  if (error != 0) {
    SLUICE_LOG(kWarn, "event loop: removing fd " + std::to_string(fd) +
                          " from the poller failed: " + std::strerror(error));
  }
  // Events for fd already in this batch, and entries in the pending list
  // being run, carry the old generation; the inactive registration (or a new
  // generation, once the number is reused) makes dispatch drop them.
  if (reg.pending_ready != 0) {
    std::erase_if(pending_, [fd](const Pending& p) { return p.fd == fd; });
  }
  reg.handler = nullptr;
  reg.pending_ready = 0;
}

void EventLoop::addPending(int fd, uint32_t ready_bits) {
  if (fd < 0 || static_cast<size_t>(fd) >= registrations_.size() || ready_bits == 0) return;
  Registration& reg = registrations_[static_cast<size_t>(fd)];
  if (!reg.active()) return;
  if (reg.pending_ready == 0) pending_.push_back(Pending{fd, reg.generation});
  reg.pending_ready |= ready_bits;
}

void EventLoop::defer(std::function<void()> task) {
  deferred_.push_back(std::move(task));
}

void EventLoop::deferDelete(std::unique_ptr<DeferredDeletable> object) {
  if (object) doomed_.push_back(std::move(object));
}

int EventLoop::watchSignal(int signo, std::function<void(int)> handler) {
  // macOS's sigaddset() does not check the number; reject the obvious here.
  if (signo <= 0) return EINVAL;
  sigset_t set;
  sigemptyset(&set);
  if (sigaddset(&set, signo) != 0) return EINVAL;
  sigset_t previous;
  // Block before the poller watches it, so an instance arriving in between
  // stays pending for the poller instead of running the default action.
  // signalfd only sees blocked signals; kqueue does not need the block but
  // it is harmless there.
  int error = pthread_sigmask(SIG_BLOCK, &set, &previous);
  if (error != 0) return error;
  error = poller_->watchSignal(signo);
  if (error != 0) {
    if (sigismember(&previous, signo) == 0) pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    return error;
  }
  for (auto& entry : signal_handlers_) {
    if (entry.first == signo) {
      entry.second = std::move(handler);
      return 0;
    }
  }
  signal_handlers_.emplace_back(signo, std::move(handler));
  return 0;
}

void EventLoop::runOnce(Duration max_wait) {
  Duration timeout = timers_.timeUntilNext();
  if (max_wait.count() >= 0 && (timeout.count() < 0 || max_wait < timeout)) timeout = max_wait;
  if (!pending_.empty() || !deferred_.empty() || !doomed_.empty()) timeout = Duration(0);

  const int count = poller_->wait(events_, timeout);
  // The one clock read after the wait: every timer armed while this pass's
  // events are handled counts from it.
  timers_.updateTime();
  if (count < 0) {
    SLUICE_LOG(kError, std::string("event loop: ") + poller_->name() +
                           " wait failed: " + std::strerror(-count));
  }
  for (int i = 0; i < count; ++i)
    dispatch(events_[static_cast<size_t>(i)]);

  timers_.fireDue();
  runPending();
  runDeferred();
}

std::chrono::system_clock::time_point EventLoop::wallNow() {
  using std::chrono::system_clock;
  const TimePoint now = timers_.now();
  if (!wall_offset_known_ || now < wall_offset_read_at_ ||
      now - wall_offset_read_at_ >= std::chrono::seconds(1)) {
    wall_offset_ =
        system_clock::now().time_since_epoch() -
        std::chrono::duration_cast<system_clock::duration>(clock_.now().time_since_epoch());
    wall_offset_read_at_ = now;
    wall_offset_known_ = true;
  }
  return system_clock::time_point(
      std::chrono::duration_cast<system_clock::duration>(now.time_since_epoch()) + wall_offset_);
}

void EventLoop::run() {
  while (!stopped_)
    runOnce();
  stopped_ = false;  // the loop can be run again
}

void EventLoop::stop() {
  stopped_ = true;
}

const char* EventLoop::backendName() const {
  return poller_->name();
}

EventLoop::Registration* EventLoop::find(int fd, uint32_t generation) {
  if (fd < 0 || static_cast<size_t>(fd) >= registrations_.size()) return nullptr;
  Registration& reg = registrations_[static_cast<size_t>(fd)];
  if (!reg.active() || reg.generation != generation) return nullptr;
  return &reg;
}

void EventLoop::dispatch(const PollEvent& event) {
  if (event.source == PollEvent::Source::kSignal) {
    for (const auto& entry : signal_handlers_) {
      if (entry.first != event.signal) continue;
      // A copy: the handler may call watchSignal(), which can reallocate
      // signal_handlers_ under the running std::function.
      std::function<void(int)> handler = entry.second;
      handler(event.signal);
      return;
    }
    return;
  }
  const int fd = static_cast<int>(static_cast<uint32_t>(event.tag));
  const auto generation = static_cast<uint32_t>(event.tag >> 32);
  // The stale-event guard: an earlier handler in this batch may have removed
  // this fd, closed it, and even registered a new socket under the same
  // number. Only the registration the event was produced for may see it.
  Registration* reg = find(fd, generation);
  if (reg == nullptr) return;
  reg->handler->onReady(event.ready);
}

void EventLoop::runPending() {
  if (pending_.empty()) return;
  // Swap first: handlers that stop early again call addPending() and land in
  // the next pass, so one busy connection cannot starve the loop.
  pending_running_.swap(pending_);
  for (const Pending& entry : pending_running_) {
    Registration* reg = find(entry.fd, entry.generation);
    if (reg == nullptr || reg->pending_ready == 0) continue;
    const uint32_t ready = reg->pending_ready;
    reg->pending_ready = 0;
    reg->handler->onReady(ready);
  }
  pending_running_.clear();
}

void EventLoop::runDeferred() {
  // Tasks queued by deferred tasks (and objects doomed by destructors) run
  // in this same drain, after the ones already queued: destruction chains
  // finish before the next wait.
  while (!deferred_.empty() || !doomed_.empty()) {
    deferred_running_.swap(deferred_);
    for (auto& task : deferred_running_)
      task();
    deferred_running_.clear();
    doomed_running_.swap(doomed_);
    doomed_running_.clear();  // destructors may doom more objects into doomed_
  }
}

}  // namespace sluice::event
