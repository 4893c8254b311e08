#include "event/kqueue_poller.h"

#ifdef SLUICE_KQUEUE_EMULATION_HEADER
// The Linux test build compiles this file against a stand-in for
// <sys/event.h>, named by the test target (tests/CMakeLists.txt), so that
// nothing under src/ depends on test code.
#include SLUICE_KQUEUE_EMULATION_HEADER
#else
// Older BSDs need <sys/types.h> before <sys/event.h>.
#include <sys/types.h>

#include <sys/event.h>
#endif

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <type_traits>
#include <utility>

namespace sluice::event {

namespace {

// udata is void* on FreeBSD, macOS and OpenBSD and intptr_t on older NetBSD.
using Udata = decltype(std::declval<struct kevent>().udata);
static_assert(sizeof(Udata) >= sizeof(uint64_t), "poller tags need a 64-bit kevent udata");

// Templates so that only the branch for this platform's udata type is compiled.
template <typename U = Udata>
U toUdata(uint64_t tag) {
  if constexpr (std::is_pointer_v<U>) {
    return reinterpret_cast<U>(static_cast<uintptr_t>(tag));
  } else {
    return static_cast<U>(tag);
  }
}

template <typename U = Udata>
uint64_t fromUdata(U udata) {
  if constexpr (std::is_pointer_v<U>) {
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(udata));
  } else {
    return static_cast<uint64_t>(udata);
  }
}

struct kevent makeChange(uintptr_t ident, int filter, unsigned flags, uint64_t tag) {
  struct kevent change {};
  change.ident = ident;
  change.filter = static_cast<decltype(change.filter)>(filter);
  change.flags = static_cast<decltype(change.flags)>(flags);
  change.udata = toUdata(tag);
  return change;
}

uint32_t toReadyBits(const struct kevent& event) {
  uint32_t ready = event.filter == EVFILT_READ ? kReadable : kWritable;
  if (event.flags & EV_EOF) {
    // On the read filter: the peer shut down its write side. On the write
    // filter: the peer is gone and writes will fail (EPIPE).
    ready |= kPeerClosed;
    // With EV_EOF a socket's pending error (ECONNRESET, ...) is in fflags.
    if (event.fflags != 0) ready |= kError | kReadable | kWritable;
  }
  return ready;
}

}  // namespace

std::unique_ptr<KqueuePoller> KqueuePoller::create(int* error) {
  const int kq = kqueue();
  if (kq < 0) {
    if (error != nullptr) *error = errno;
    return nullptr;
  }
  // A kqueue is not inherited across fork() but its descriptor survives
  // exec(); not every BSD has a kqueue1()/kqueuex() with a CLOEXEC flag.
  fcntl(kq, F_SETFD, FD_CLOEXEC);
  return std::unique_ptr<KqueuePoller>(new KqueuePoller(kq));
}

KqueuePoller::KqueuePoller(int kq) : kq_(kq) {}

KqueuePoller::~KqueuePoller() {
  close(kq_);
}

bool KqueuePoller::registered(int fd) const {
  return fd >= 0 && static_cast<size_t>(fd) < registered_.size() &&
         registered_[static_cast<size_t>(fd)];
}

void KqueuePoller::setRegistered(int fd, bool value) {
  if (static_cast<size_t>(fd) >= registered_.size()) {
    registered_.resize(static_cast<size_t>(fd) + 1, false);
  }
  registered_[static_cast<size_t>(fd)] = value;
}

void KqueuePoller::queueChange(int fd, int filter, unsigned flags, uint64_t tag) {
  changes_.push_back(makeChange(static_cast<uintptr_t>(fd), filter, flags, tag));
}

int KqueuePoller::add(int fd, uint64_t tag) {
  if (fd < 0) return EBADF;
  if (tag == kReservedTag) return EINVAL;
  if (registered(fd)) return EEXIST;
  // EV_CLEAR resets the filter state after each report: the edge-triggered
  // contract of poller.h. Both filters carry the tag so either can be merged
  // into one PollEvent.
  queueChange(fd, EVFILT_READ, EV_ADD | EV_CLEAR, tag);
  queueChange(fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, tag);
  setRegistered(fd, true);
  return 0;
}

int KqueuePoller::remove(int fd) {
  if (!registered(fd)) return ENOENT;
  setRegistered(fd, false);
  // An add still in the changelist never reached the kernel: dropping it is
  // the whole removal. (A DELETE queued by an earlier remove stays, in order.)
  const auto dropped = std::erase_if(changes_, [fd](const struct kevent& change) {
    return change.ident == static_cast<uintptr_t>(fd) && (change.flags & EV_ADD) != 0;
  });
  if (dropped != 0) return 0;
  // Batched like the adds. The caller closes fd right after this, and close()
  // already detaches the knotes, so when the batch reaches the kernel these
  // deletes usually fail with EBADF, or ENOENT if the number was reused;
  // wait() discards those errors by their reserved udata. Queued in order
  // before any later add of a reused number, they can never hit the new file.
  queueChange(fd, EVFILT_READ, EV_DELETE, kReservedTag);
  queueChange(fd, EVFILT_WRITE, EV_DELETE, kReservedTag);
  return 0;
}

int KqueuePoller::watchSignal(int signo) {
  if (signo <= 0) return EINVAL;  // kevent() rejects numbers past the last signal
  // Submitted at once (rare, and the caller wants its errno now). The knote
  // goes first: with SIG_IGN installed and no knote, an arriving signal would
  // be discarded unseen.
  const struct kevent change = makeChange(static_cast<uintptr_t>(signo), EVFILT_SIGNAL, EV_ADD, 0);
  const struct timespec no_wait {};
  if (kevent(kq_, &change, 1, nullptr, 0, &no_wait) != 0) return errno;
  // EVFILT_SIGNAL records deliveries but does not replace the disposition,
  // and blocking is per thread; SIG_IGN keeps a thread that did not block the
  // signal from running the default action (often: exit). Not for SIGCHLD:
  // SIG_IGN there makes the kernel reap children and post nothing, so it
  // keeps SIG_DFL, whose action is to ignore (libevent does the same).
  struct sigaction action {};
  action.sa_handler = signo == SIGCHLD ? SIG_DFL : SIG_IGN;
  sigemptyset(&action.sa_mask);
  if (sigaction(signo, &action, nullptr) != 0) return errno;
  return 0;
}

int KqueuePoller::wait(std::span<PollEvent> out, Duration timeout) {
  if (out.empty()) return -EINVAL;
  if (events_.size() < out.size()) events_.resize(out.size());

  // A change that fails comes back as an EV_ERROR entry only while the event
  // list has room; past that kevent() returns -1 and the rest of the
  // changelist is lost. So never submit more changes than the event list
  // holds, and if some stay queued, poll instead of sleeping so they go in
  // on the very next call.
  const size_t submit = std::min(changes_.size(), out.size());
  const bool more_changes = submit < changes_.size();
  struct timespec until {};  // zero: poll
  if (!more_changes && timeout.count() > 0) {
    until.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    until.tv_nsec = static_cast<long>(timeout.count() % 1000) * 1000000L;
  }
  const struct timespec* until_ptr = (!more_changes && timeout.count() < 0) ? nullptr : &until;
  const int count = kevent(kq_, changes_.data(), static_cast<int>(submit), events_.data(),
                           static_cast<int>(out.size()), until_ptr);
  const int error = errno;
  // The kernel applies the changelist before it sleeps, so an EINTR still
  // consumed it. On any other failure we cannot tell how far it got; retrying
  // the same list could fail forever, so it is dropped too.
  changes_.erase(changes_.begin(), changes_.begin() + static_cast<std::ptrdiff_t>(submit));
  if (count < 0) return error == EINTR ? 0 : -error;

  size_t filled = 0;
  for (int i = 0; i < count; ++i) {
    const struct kevent& event = events_[static_cast<size_t>(i)];
    if (event.filter == EVFILT_SIGNAL) {
      // data counts deliveries since the last report; like any pending
      // signal they coalesce into one.
      if (event.flags & EV_ERROR) continue;
      PollEvent& slot = out[filled++];
      slot = PollEvent{};
      slot.source = PollEvent::Source::kSignal;
      slot.signal = static_cast<int>(event.ident);
      continue;
    }
    if (event.filter != EVFILT_READ && event.filter != EVFILT_WRITE) continue;
    const uint64_t tag = fromUdata(event.udata);
    const int fd = static_cast<int>(event.ident);
    uint32_t ready;
    if (event.flags & EV_ERROR) {
      // A failed delete means close() got there first: nothing to report.
      if (tag == kReservedTag) continue;
      ready = kError | kReadable | kWritable;  // a failed add: the fd will see no edges
    } else {
      ready = toReadyBits(event);
    }
    // Events for an fd removed while its delete was still queued (only
    // possible when the changelist outgrew one call).
    if (!registered(fd)) continue;
    // Read and write knotes of one fd usually come back side by side.
    if (filled > 0 && out[filled - 1].source == PollEvent::Source::kFd &&
        out[filled - 1].tag == tag) {
      out[filled - 1].ready |= ready;
      continue;
    }
    PollEvent& slot = out[filled++];
    slot = PollEvent{};
    slot.tag = tag;
    slot.ready = ready;
  }
  return static_cast<int>(filled);
}

#ifndef SLUICE_KQUEUE_EMULATION
std::unique_ptr<Poller> makeDefaultPoller() {
  return KqueuePoller::create();
}
#endif

}  // namespace sluice::event
