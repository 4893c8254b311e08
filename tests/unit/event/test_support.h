// Helpers shared by the event tests: non-blocking socketpairs, signal
// blocking, and the list of Poller backends the tests run against.
// Test-only; owned by the unit_event binary.
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "event/poller.h"

#ifdef __linux__
#include "event/epoll_poller.h"
#endif
#if defined(SLUICE_KQUEUE_EMULATION) || !defined(__linux__)
#include "event/kqueue_poller.h"
#define SLUICE_TEST_KQUEUE 1
#endif

namespace sluice::event::testing {

// A connected, non-blocking AF_UNIX stream pair; closes what it still owns.
class SocketPair {
 public:
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0) {
      for (int i = 0; i < 2; ++i) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
        fds_[i] = fds[i];
      }
    }
  }
  ~SocketPair() {
    closeSide(0);
    closeSide(1);
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;

  bool ok() const { return fds_[0] >= 0 && fds_[1] >= 0; }
  int near() const { return fds_[0]; }  // the side the code under test watches
  int far() const { return fds_[1]; }   // the side the test writes into
  void closeSide(int side) {
    if (fds_[side] >= 0) close(fds_[side]);
    fds_[side] = -1;
  }
  // Gives up ownership of one side (the test closes or re-numbers it).
  int release(int side) {
    const int fd = fds_[side];
    fds_[side] = -1;
    return fd;
  }

 private:
  int fds_[2] = {-1, -1};
};

inline bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until EAGAIN (or EOF/error); returns what it read.
inline std::string readAvailable(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// What signalfd (and EventLoop::watchSignal) need before a signal is watched.
inline void blockSignal(int signo) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Returns a fd number that is certainly closed right now.
inline int closedFdNumber() {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  close(fds[1]);
  close(fds[0]);
  return fds[0];
}

struct Backend {
  const char* name;
  std::unique_ptr<Poller> (*make)();
};

inline std::vector<Backend> allBackends() {
  std::vector<Backend> backends;
#ifdef __linux__
  backends.push_back({"Epoll", [] { return std::unique_ptr<Poller>(EpollPoller::create()); }});
#endif
#ifdef SLUICE_TEST_KQUEUE
#ifdef SLUICE_KQUEUE_EMULATION
  constexpr const char* kKqueueName = "KqueueEmulated";
#else
  constexpr const char* kKqueueName = "Kqueue";
#endif
  backends.push_back({kKqueueName, [] { return std::unique_ptr<Poller>(KqueuePoller::create()); }});
#endif
  return backends;
}

}  // namespace sluice::event::testing
