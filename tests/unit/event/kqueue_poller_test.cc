// KqueuePoller specifics that the conformance suite cannot see: the
// changelist it hands to kevent(), its EV_ERROR handling and signal setup.
// Runs on Linux against the test-only emulation (kqueue_emulation.h), which
// records every changelist; see docs/event-loop.md for what that proves.
#ifdef SLUICE_KQUEUE_EMULATION

#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <vector>

#include "event/kqueue_poller.h"
#include "unit/event/kqueue_emulation.h"
#include "unit/event/test_support.h"

namespace sluice::event {
namespace {

namespace kqemu = sluice::test::kqueue_emulation;
using testing::blockSignal;
using testing::closedFdNumber;
using testing::SocketPair;
using testing::writeAll;

uint64_t tagOf(const struct kevent& change) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(change.udata));
}

class KqueuePollerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    poller_ = KqueuePoller::create();
    ASSERT_NE(poller_, nullptr);
    kq_ = kqemu::lastQueue();
  }

  int waitOnce(size_t batch = 64) {
    out_.assign(batch, PollEvent{});
    const int n = poller_->wait(out_, Duration(0));
    out_.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return n;
  }

  std::unique_ptr<KqueuePoller> poller_;
  int kq_ = -1;
  std::vector<PollEvent> out_;
};

TEST_F(KqueuePollerTest, AddsAreBatchedIntoTheNextWait) {
  SocketPair a, b;
  ASSERT_EQ(poller_->add(a.near(), 1), 0);
  ASSERT_EQ(poller_->add(b.near(), 2), 0);
  EXPECT_EQ(kqemu::stats(kq_).kevent_calls, 0u) << "add() must not call the kernel";
  waitOnce();
  const kqemu::Stats stats = kqemu::stats(kq_);
  EXPECT_EQ(stats.kevent_calls, 1u);
  ASSERT_EQ(stats.last_changelist.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const struct kevent& change = stats.last_changelist[i];
    EXPECT_EQ(change.flags, EV_ADD | EV_CLEAR) << i;
    EXPECT_EQ(change.filter, i % 2 == 0 ? EVFILT_READ : EVFILT_WRITE) << i;
    EXPECT_EQ(static_cast<int>(change.ident), i < 2 ? a.near() : b.near()) << i;
    EXPECT_EQ(tagOf(change), i < 2 ? 1u : 2u) << i;
  }
}

TEST_F(KqueuePollerTest, RemovingAQueuedAddSubmitsNothing) {
  SocketPair a;
  ASSERT_EQ(poller_->add(a.near(), 1), 0);
  ASSERT_EQ(poller_->remove(a.near()), 0);
  ASSERT_TRUE(writeAll(a.far(), "x"));
  EXPECT_EQ(waitOnce(), 0);
  EXPECT_EQ(kqemu::stats(kq_).changes_submitted, 0u);
}

TEST_F(KqueuePollerTest, RemoveQueuesDeletesForBothFilters) {
  SocketPair a;
  ASSERT_EQ(poller_->add(a.near(), 1), 0);
  waitOnce();
  ASSERT_EQ(poller_->remove(a.near()), 0);
  EXPECT_EQ(waitOnce(), 0);
  const auto& changes = kqemu::stats(kq_).last_changelist;
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].filter, EVFILT_READ);
  EXPECT_EQ(changes[1].filter, EVFILT_WRITE);
  for (const struct kevent& change : changes) {
    EXPECT_EQ(change.flags, EV_DELETE);
    EXPECT_EQ(static_cast<int>(change.ident), a.near());
    EXPECT_EQ(tagOf(change), kReservedTag);
  }
}

TEST_F(KqueuePollerTest, DeletesFailingAfterCloseAreSilent) {
  SocketPair a;
  const int fd = a.near();
  ASSERT_EQ(poller_->add(fd, 1), 0);
  waitOnce();
  ASSERT_EQ(poller_->remove(fd), 0);
  a.closeSide(0);  // close() detaches the knotes; the queued deletes get EBADF
  EXPECT_EQ(waitOnce(), 0);
  EXPECT_EQ(kqemu::stats(kq_).last_changelist.size(), 2u);
}

TEST_F(KqueuePollerTest, FailedAddIsReportedAsErrorForItsTag) {
  const int fd = closedFdNumber();
  ASSERT_GE(fd, 0);
  ASSERT_EQ(poller_->add(fd, 9), 0);  // batched: the kernel has not seen it yet
  ASSERT_EQ(waitOnce(), 1);
  EXPECT_EQ(out_[0].tag, 9u);
  EXPECT_EQ(out_[0].ready & (kError | kReadable | kWritable), kError | kReadable | kWritable);
  ASSERT_EQ(poller_->remove(fd), 0);
  EXPECT_EQ(waitOnce(), 0);  // its deletes fail too, silently
}

TEST_F(KqueuePollerTest, ChangelistNeverExceedsTheEventList) {
  // More failing changes than the event list has room for would make
  // kevent() fail and drop the rest of the changelist.
  std::vector<std::unique_ptr<SocketPair>> doomed;
  for (int i = 0; i < 3; ++i) {
    doomed.push_back(std::make_unique<SocketPair>());
    ASSERT_EQ(poller_->add(doomed.back()->near(), static_cast<uint64_t>(10 + i)), 0);
  }
  waitOnce();
  for (auto& pair : doomed) {
    ASSERT_EQ(poller_->remove(pair->near()), 0);
    pair->closeSide(0);  // six deletes that will fail with EBADF
  }
  SocketPair survivor;
  ASSERT_TRUE(writeAll(survivor.far(), "x"));
  ASSERT_EQ(poller_->add(survivor.near(), 42), 0);
  bool readable = false;
  for (int i = 0; i < 8; ++i) {
    ASSERT_GE(waitOnce(2), 0);
    EXPECT_LE(kqemu::stats(kq_).last_changelist.size(), 2u);
    for (const PollEvent& event : out_) {
      EXPECT_EQ(event.tag, 42u);
      EXPECT_FALSE(event.ready & kError);
      if (event.ready & kReadable) readable = true;
    }
  }
  EXPECT_TRUE(readable) << "the add queued behind the failing deletes was lost";
}

TEST_F(KqueuePollerTest, EofOnTheReadFilterMeansPeerClosed) {
  SocketPair a;
  ASSERT_EQ(poller_->add(a.near(), 1), 0);
  waitOnce();
  ASSERT_EQ(shutdown(a.far(), SHUT_WR), 0);
  ASSERT_EQ(waitOnce(), 1);
  EXPECT_EQ(out_[0].ready & (kPeerClosed | kReadable), kPeerClosed | kReadable);
  EXPECT_FALSE(out_[0].ready & kError);
}

TEST_F(KqueuePollerTest, SignalsUseEvfiltSignalAndIgnoreTheDefaultAction) {
  blockSignal(SIGUSR2);
  ASSERT_EQ(poller_->watchSignal(SIGUSR2), 0);
  const auto stats = kqemu::stats(kq_);
  EXPECT_EQ(stats.kevent_calls, 1u) << "watchSignal submits at once";
  ASSERT_EQ(stats.last_changelist.size(), 1u);
  EXPECT_EQ(stats.last_changelist[0].filter, EVFILT_SIGNAL);
  EXPECT_EQ(stats.last_changelist[0].flags, EV_ADD);
  EXPECT_EQ(static_cast<int>(stats.last_changelist[0].ident), SIGUSR2);
  struct sigaction action {};
  ASSERT_EQ(sigaction(SIGUSR2, nullptr, &action), 0);
  EXPECT_EQ(action.sa_handler, SIG_IGN);

  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  ASSERT_EQ(waitOnce(), 1);
  EXPECT_EQ(out_[0].source, PollEvent::Source::kSignal);
  EXPECT_EQ(out_[0].signal, SIGUSR2);
}

TEST_F(KqueuePollerTest, SigchldKeepsTheDefaultDisposition) {
  // SIG_IGN for SIGCHLD would make the kernel reap children unseen.
  blockSignal(SIGCHLD);
  ASSERT_EQ(poller_->watchSignal(SIGCHLD), 0);
  struct sigaction action {};
  ASSERT_EQ(sigaction(SIGCHLD, nullptr, &action), 0);
  EXPECT_EQ(action.sa_handler, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);  // SIG_DFL: a pending one is discarded
}

}  // namespace
}  // namespace sluice::event

#endif  // SLUICE_KQUEUE_EMULATION
