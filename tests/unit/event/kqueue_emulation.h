// Test-only model of the BSD kqueue API (kqueue(), kevent(), struct kevent and
// the EV_* / EVFILT_* values sluice uses) built on epoll and signalfd, so that
// KqueuePoller's logic runs in Linux CI. Owned by the unit_event test binary;
// never linked into sluice. Linux only.
//
// What it models (FreeBSD semantics): per-(ident, filter) knotes with udata;
// EV_ADD on an existing knote updates it; EV_CLEAR knotes are edge-triggered
// (EPOLLET), others level-triggered; EV_DELETE; knotes vanish when their fd is
// closed (detected lazily: epoll forgets a closed file, so a later change on
// the reused number sees ENOENT); changelist errors become EV_ERROR entries
// while the event list has room, then kevent() fails with -1 and skips the
// rest; a call with changelist errors returns only those errors; EV_EOF on
// EPOLLRDHUP/EPOLLHUP; triggered knotes that did not fit stay queued for the
// next call; EVFILT_SIGNAL with data = deliveries since the last report.
//
// What it does not model: it reads signals through a signalfd, so a watched
// signal must be blocked (real kqueue also sees unblocked and SIG_IGN ones);
// on EPOLLERR it sets fflags to EIO instead of the socket's error (reading
// SO_ERROR would clear it); data is 0 for read/write knotes; one epoll
// registration per fd cannot mix EV_CLEAR and level-triggered knotes (EINVAL);
// adding or deleting one filter re-arms the other one as epoll_ctl(MOD) does.
#pragma once
// It stands in for a system header and, like <sys/event.h>, names a function
// and a struct `kevent`, which -Wshadow would reject outside system headers.
#pragma GCC system_header

#include <time.h>

#include <cstddef>
#include <cstdint>
#include <vector>

struct kevent {
  uintptr_t ident;
  int16_t filter;
  uint16_t flags;
  uint32_t fflags;
  intptr_t data;
  void* udata;
};

// Values as in FreeBSD's <sys/event.h>.
inline constexpr int16_t EVFILT_READ = -1;
inline constexpr int16_t EVFILT_WRITE = -2;
inline constexpr int16_t EVFILT_SIGNAL = -6;
inline constexpr uint16_t EV_ADD = 0x0001;
inline constexpr uint16_t EV_DELETE = 0x0002;
inline constexpr uint16_t EV_CLEAR = 0x0020;
inline constexpr uint16_t EV_ERROR = 0x4000;
inline constexpr uint16_t EV_EOF = 0x8000;

int kqueue();
int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist,
           int nevents, const struct timespec* timeout);

namespace sluice::test::kqueue_emulation {

struct Stats {
  size_t kevent_calls = 0;
  size_t changes_submitted = 0;
  std::vector<struct kevent> last_changelist;  // as passed to the last kevent() call
};

// What `kq` has seen so far; empty for an unknown kq.
Stats stats(int kq);
// The descriptor returned by the latest kqueue() call, or -1.
int lastQueue();

}  // namespace sluice::test::kqueue_emulation
