#include "event/epoll_poller.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace sluice::event {

namespace {

constexpr uint32_t kFdInterest = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;

int toEpollTimeout(Duration timeout) {
  if (timeout.count() < 0) return -1;
  return static_cast<int>(std::min<Duration::rep>(timeout.count(), INT_MAX));
}

uint32_t toReadyBits(uint32_t events) {
  uint32_t ready = 0;
  if (events & EPOLLIN) ready |= kReadable;
  if (events & EPOLLOUT) ready |= kWritable;
  // EOF is read like data, so a half-close is also a read edge.
  if (events & (EPOLLRDHUP | EPOLLHUP)) ready |= kPeerClosed | kReadable;
  if (events & EPOLLERR) ready |= kError;
  // EPOLLERR and EPOLLHUP can come without EPOLLIN/EPOLLOUT (a reset
  // connection, a failed connect); nginx adds both directions so that some
  // handler's read or write runs and meets the error. We do the same.
  if (events & (EPOLLERR | EPOLLHUP)) ready |= kReadable | kWritable;
  return ready;
}

}  // namespace

std::unique_ptr<EpollPoller> EpollPoller::create(int* error) {
  const int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    if (error != nullptr) *error = errno;
    return nullptr;
  }
  return std::unique_ptr<EpollPoller>(new EpollPoller(fd));
}

EpollPoller::EpollPoller(int epoll_fd) : epoll_fd_(epoll_fd) {
  sigemptyset(&signal_mask_);
}

EpollPoller::~EpollPoller() {
  if (signal_fd_ >= 0) close(signal_fd_);
  close(epoll_fd_);
}

int EpollPoller::add(int fd, uint64_t tag) {
  if (tag == kReservedTag) return EINVAL;
  epoll_event event{};
  event.events = kFdInterest;
  event.data.u64 = tag;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) return errno;
  return 0;
}

int EpollPoller::remove(int fd) {
  // Kernels before 2.6.9 reject a null event even for EPOLL_CTL_DEL.
  epoll_event unused{};
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, &unused) != 0) return errno;
  return 0;
}

int EpollPoller::watchSignal(int signo) {
  sigset_t mask = signal_mask_;
  if (sigaddset(&mask, signo) != 0) return EINVAL;
  // signalfd() on an existing signalfd replaces its mask, so one fd (and one
  // epoll registration) serves every watched signal.
  const int fd = signalfd(signal_fd_, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return errno;
  if (signal_fd_ < 0) {
    epoll_event event{};
    // Level-triggered on purpose: readSignals() stops when the caller's
    // batch is full, and the siginfo left in the fd must wake the next wait.
    event.events = EPOLLIN;
    event.data.u64 = kReservedTag;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
      const int error = errno;
      close(fd);
      return error;
    }
    signal_fd_ = fd;
  }
  signal_mask_ = mask;
  return 0;
}

int EpollPoller::wait(std::span<PollEvent> out, Duration timeout) {
  if (out.empty()) return -EINVAL;
  if (events_.size() < out.size()) events_.resize(out.size());
  const int count =
      epoll_wait(epoll_fd_, events_.data(), static_cast<int>(out.size()), toEpollTimeout(timeout));
  if (count < 0) return errno == EINTR ? 0 : -errno;

  size_t filled = 0;
  bool signals_ready = false;
  for (int i = 0; i < count; ++i) {
    const epoll_event& event = events_[static_cast<size_t>(i)];
    if (event.data.u64 == kReservedTag) {
      signals_ready = true;
      continue;
    }
    PollEvent& slot = out[filled++];
    slot.source = PollEvent::Source::kFd;
    slot.tag = event.data.u64;
    slot.ready = toReadyBits(event.events);
    slot.signal = 0;
  }
  // Last, so the signals get the signalfd's own slot plus whatever is left.
  if (signals_ready) filled += readSignals(out.subspan(filled));
  return static_cast<int>(filled);
}

size_t EpollPoller::readSignals(std::span<PollEvent> out) {
  constexpr size_t kChunk = 16;
  signalfd_siginfo infos[kChunk];
  size_t filled = 0;
  while (filled < out.size()) {
    const size_t want = std::min(kChunk, out.size() - filled);
    const ssize_t n = read(signal_fd_, infos, want * sizeof(signalfd_siginfo));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: drained
    const size_t got = static_cast<size_t>(n) / sizeof(signalfd_siginfo);
    for (size_t i = 0; i < got; ++i) {
      PollEvent& slot = out[filled++];
      slot.source = PollEvent::Source::kSignal;
      slot.tag = 0;
      slot.ready = 0;
      slot.signal = static_cast<int>(infos[i].ssi_signo);
    }
    if (got < want) break;
  }
  return filled;
}

std::unique_ptr<Poller> makeDefaultPoller() {
  return EpollPoller::create();
}

}  // namespace sluice::event
