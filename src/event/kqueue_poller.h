// KqueuePoller: the BSD/macOS Poller — EV_CLEAR read and write filters per fd,
// interest changes batched into the next kevent() wait, signals through
// EVFILT_SIGNAL. Owned by one EventLoop; single-threaded.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "event/poller.h"

// <sys/event.h> stays out of this header; on Linux the unit tests compile the
// poller against a test-only emulation that defines the same struct.
struct kevent;

namespace sluice::event {

class KqueuePoller final : public Poller {
 public:
  // Returns nullptr, with the errno in *error if given, when the kernel
  // refuses a kqueue (EMFILE, ENFILE, ENOMEM).
  static std::unique_ptr<KqueuePoller> create(int* error = nullptr);
  ~KqueuePoller() override;
  KqueuePoller(const KqueuePoller&) = delete;
  KqueuePoller& operator=(const KqueuePoller&) = delete;

  int add(int fd, uint64_t tag) override;
  int remove(int fd) override;
  int watchSignal(int signo) override;
  int wait(std::span<PollEvent> out, Duration timeout) override;
  const char* name() const override { return "kqueue"; }

 private:
  explicit KqueuePoller(int kq);
  void queueChange(int fd, int filter, unsigned flags, uint64_t tag);
  bool registered(int fd) const;
  void setRegistered(int fd, bool value);

  int kq_;
  std::vector<struct kevent> changes_;
  std::vector<struct kevent> events_;
  std::vector<bool> registered_;  // indexed by fd: added and not removed since
};

}  // namespace sluice::event
