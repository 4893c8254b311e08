// EpollPoller: the Linux Poller — one edge-triggered epoll registration per fd
// and one signalfd for all watched signals. Owned by one EventLoop; single-threaded.
#pragma once

#include <signal.h>
#include <sys/epoll.h>

#include <memory>
#include <vector>

#include "event/poller.h"

namespace sluice::event {

class EpollPoller final : public Poller {
 public:
  // Returns nullptr, with the errno in *error if given, when the kernel
  // refuses an epoll instance (EMFILE, ENFILE, ENOMEM).
  static std::unique_ptr<EpollPoller> create(int* error = nullptr);
  ~EpollPoller() override;
  EpollPoller(const EpollPoller&) = delete;
  EpollPoller& operator=(const EpollPoller&) = delete;

  int add(int fd, uint64_t tag) override;
  int remove(int fd) override;
  int watchSignal(int signo) override;
  int wait(std::span<PollEvent> out, Duration timeout) override;
  const char* name() const override { return "epoll"; }

 private:
  explicit EpollPoller(int epoll_fd);
  size_t readSignals(std::span<PollEvent> out);

  int epoll_fd_;
  int signal_fd_ = -1;
  sigset_t signal_mask_;
  std::vector<epoll_event> events_;
};

}  // namespace sluice::event
