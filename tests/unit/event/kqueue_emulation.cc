#ifdef __linux__

#include "unit/event/kqueue_emulation.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <map>
#include <memory>
#include <optional>

namespace {

using sluice::test::kqueue_emulation::Stats;

constexpr uint64_t kSignalFdData = ~uint64_t{0};

struct Knote {
  uint16_t flags;
  void* udata;
};

struct Watch {
  std::optional<Knote> read;
  std::optional<Knote> write;
  bool empty() const { return !read && !write; }
};

struct Queue {
  explicit Queue(int fd) : epoll_fd(fd) { sigemptyset(&signal_mask); }
  int epoll_fd;
  int signal_fd = -1;
  sigset_t signal_mask;
  std::map<int, Watch> fds;
  std::map<int, void*> signals;        // signo -> udata
  std::deque<struct kevent> overflow;  // triggered, did not fit in the last event list
  Stats stats;
};

std::map<int, std::unique_ptr<Queue>>& queues() {
  static std::map<int, std::unique_ptr<Queue>> all;
  return all;
}

int last_queue = -1;

uint32_t epollMask(const Watch& watch) {
  uint32_t mask = 0;
  if (watch.read) mask |= EPOLLIN | EPOLLRDHUP;
  if (watch.write) mask |= EPOLLOUT;
  const Knote& any = watch.read ? *watch.read : *watch.write;
  if (any.flags & EV_CLEAR) mask |= EPOLLET;
  return mask;
}

bool isOpen(int fd) {
  return fcntl(fd, F_GETFD) != -1;
}

void purgeOverflow(Queue& queue, uintptr_t ident, int16_t filter) {
  std::erase_if(queue.overflow, [&](const struct kevent& event) {
    return event.ident == ident && event.filter == filter;
  });
}

// close() on BSD detaches every knote of the fd; here we learn of it late.
void forgetFd(Queue& queue, int fd) {
  queue.fds.erase(fd);
  purgeOverflow(queue, static_cast<uintptr_t>(fd), EVFILT_READ);
  purgeOverflow(queue, static_cast<uintptr_t>(fd), EVFILT_WRITE);
}

int ctl(Queue& queue, int op, int fd, const Watch* watch) {
  epoll_event event{};
  if (watch != nullptr) event.events = epollMask(*watch);
  event.data.u64 = static_cast<uint64_t>(fd);
  return epoll_ctl(queue.epoll_fd, op, fd, &event) == 0 ? 0 : errno;
}

int addFdKnote(Queue& queue, const struct kevent& change) {
  const int fd = static_cast<int>(change.ident);
  if (!isOpen(fd)) {
    forgetFd(queue, fd);
    return EBADF;
  }
  auto it = queue.fds.find(fd);
  // Is the file we watched still behind this number? epoll drops a closed
  // file, so ENOENT here means close() happened (and took the knotes along).
  if (it != queue.fds.end() && ctl(queue, EPOLL_CTL_MOD, fd, &it->second) != 0) {
    forgetFd(queue, fd);
    it = queue.fds.end();
  }
  const bool existed = it != queue.fds.end();
  Watch watch = existed ? it->second : Watch{};
  std::optional<Knote>& knote = change.filter == EVFILT_READ ? watch.read : watch.write;
  const std::optional<Knote>& other = change.filter == EVFILT_READ ? watch.write : watch.read;
  if (other && ((other->flags ^ change.flags) & EV_CLEAR) != 0) return EINVAL;
  knote = Knote{static_cast<uint16_t>(change.flags & EV_CLEAR), change.udata};
  const int error = ctl(queue, existed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &watch);
  if (error != 0) return error;
  queue.fds[fd] = watch;
  return 0;
}

int deleteFdKnote(Queue& queue, const struct kevent& change) {
  const int fd = static_cast<int>(change.ident);
  if (!isOpen(fd)) {
    forgetFd(queue, fd);
    return EBADF;
  }
  auto it = queue.fds.find(fd);
  if (it == queue.fds.end()) return ENOENT;
  Watch watch = it->second;
  std::optional<Knote>& knote = change.filter == EVFILT_READ ? watch.read : watch.write;
  if (!knote) return ENOENT;
  knote.reset();
  const int error = watch.empty() ? ctl(queue, EPOLL_CTL_DEL, fd, nullptr)
                                  : ctl(queue, EPOLL_CTL_MOD, fd, &watch);
  if (error != 0) {
    forgetFd(queue, fd);  // the watched file was closed; the number is reused
    return ENOENT;
  }
  purgeOverflow(queue, change.ident, change.filter);
  if (watch.empty()) {
    queue.fds.erase(it);
  } else {
    it->second = watch;
  }
  return 0;
}

int updateSignalFd(Queue& queue, const sigset_t& mask) {
  const int fd = signalfd(queue.signal_fd, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return errno;
  if (queue.signal_fd < 0) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = kSignalFdData;
    if (epoll_ctl(queue.epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
      const int error = errno;
      close(fd);
      return error;
    }
    queue.signal_fd = fd;
  }
  queue.signal_mask = mask;
  return 0;
}

int changeSignalKnote(Queue& queue, const struct kevent& change) {
  const int signo = static_cast<int>(change.ident);
  sigset_t mask = queue.signal_mask;
  if (change.flags & EV_ADD) {
    if (sigaddset(&mask, signo) != 0) return EINVAL;
    const int error = updateSignalFd(queue, mask);
    if (error != 0) return error;
    queue.signals[signo] = change.udata;
    return 0;
  }
  if (queue.signals.erase(signo) == 0) return ENOENT;
  sigdelset(&mask, signo);
  return updateSignalFd(queue, mask);
}

int apply(Queue& queue, const struct kevent& change) {
  const bool add = (change.flags & EV_ADD) != 0;
  const bool del = (change.flags & EV_DELETE) != 0;
  if (add == del) return EINVAL;  // the model knows only these two actions
  switch (change.filter) {
    case EVFILT_READ:
    case EVFILT_WRITE:
      return add ? addFdKnote(queue, change) : deleteFdKnote(queue, change);
    case EVFILT_SIGNAL:
      return changeSignalKnote(queue, change);
    default:
      return EINVAL;
  }
}

int toMilliseconds(const struct timespec* timeout) {
  if (timeout == nullptr) return -1;
  const long long ms = static_cast<long long>(timeout->tv_sec) * 1000 +
                       (static_cast<long long>(timeout->tv_nsec) + 999999) / 1000000;
  return ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms);
}

struct kevent makeEvent(uintptr_t ident, int16_t filter, uint16_t flags, uint32_t fflags,
                        intptr_t data, void* udata) {
  struct kevent event {};
  event.ident = ident;
  event.filter = filter;
  event.flags = flags;
  event.fflags = fflags;
  event.data = data;
  event.udata = udata;
  return event;
}

template <typename Emit>
void readSignals(Queue& queue, Emit&& emit) {
  std::map<int, intptr_t> counts;
  signalfd_siginfo info;
  while (read(queue.signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    ++counts[static_cast<int>(info.ssi_signo)];
  }
  for (const auto& [signo, count] : counts) {
    auto it = queue.signals.find(signo);
    if (it == queue.signals.end()) continue;
    emit(makeEvent(static_cast<uintptr_t>(signo), EVFILT_SIGNAL, 0, 0, count, it->second));
  }
}

}  // namespace

int kqueue() {
  const int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return -1;
  std::unique_ptr<Queue>& slot = queues()[fd];
  // close(kq) is invisible to the model: state left under this number is
  // from a queue already closed. Its signalfd is still open (only the model
  // could close it), so closing it here cannot hit anyone else's fd.
  if (slot != nullptr && slot->signal_fd >= 0) close(slot->signal_fd);
  slot = std::make_unique<Queue>(fd);
  last_queue = fd;
  return fd;
}

int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist,
           int nevents, const struct timespec* timeout) {
  auto found = queues().find(kq);
  if (found == queues().end() || !isOpen(kq)) {
    errno = EBADF;
    return -1;
  }
  if (nchanges < 0 || nevents < 0) {
    errno = EINVAL;
    return -1;
  }
  Queue& queue = *found->second;
  ++queue.stats.kevent_calls;
  queue.stats.changes_submitted += static_cast<size_t>(nchanges);
  queue.stats.last_changelist.assign(changelist, changelist + nchanges);

  int filled = 0;
  for (int i = 0; i < nchanges; ++i) {
    const int error = apply(queue, changelist[i]);
    if (error == 0) continue;
    if (filled >= nevents) {
      errno = error;
      return -1;
    }
    struct kevent& slot = eventlist[filled++];
    slot = changelist[i];
    slot.flags = EV_ERROR;
    slot.data = error;
  }
  if (filled > 0 || nevents == 0) return filled;

  while (filled < nevents && !queue.overflow.empty()) {
    eventlist[filled++] = queue.overflow.front();
    queue.overflow.pop_front();
  }
  if (filled == nevents) return filled;

  std::vector<epoll_event> ready(static_cast<size_t>(nevents - filled));
  const int count = epoll_wait(queue.epoll_fd, ready.data(), static_cast<int>(ready.size()),
                               filled > 0 ? 0 : toMilliseconds(timeout));
  if (count < 0) return filled > 0 ? filled : -1;
  auto emit = [&](const struct kevent& event) {
    if (filled < nevents) {
      eventlist[filled++] = event;
    } else {
      queue.overflow.push_back(event);
    }
  };
  for (int i = 0; i < count; ++i) {
    const epoll_event& event = ready[static_cast<size_t>(i)];
    if (event.data.u64 == kSignalFdData) {
      readSignals(queue, emit);
      continue;
    }
    const int fd = static_cast<int>(event.data.u64);
    auto it = queue.fds.find(fd);
    if (it == queue.fds.end()) continue;
    const Watch& watch = it->second;
    const uint32_t bits = event.events;
    const uint32_t fflags = (bits & EPOLLERR) ? EIO : 0;
    const auto ident = static_cast<uintptr_t>(fd);
    if (watch.read && (bits & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
      const bool eof = (bits & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
      emit(makeEvent(ident, EVFILT_READ, eof ? EV_EOF : 0, eof ? fflags : 0, 0, watch.read->udata));
    }
    if (watch.write && (bits & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
      const bool eof = (bits & (EPOLLHUP | EPOLLERR)) != 0;
      emit(makeEvent(ident, EVFILT_WRITE, eof ? EV_EOF : 0, eof ? fflags : 0, 0,
                     watch.write->udata));
    }
  }
  return filled;
}

namespace sluice::test::kqueue_emulation {

Stats stats(int kq) {
  auto found = queues().find(kq);
  return found == queues().end() ? Stats{} : found->second->stats;
}

int lastQueue() {
  return last_queue;
}

}  // namespace sluice::test::kqueue_emulation

#endif  // __linux__
