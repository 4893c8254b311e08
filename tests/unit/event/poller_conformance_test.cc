// One suite, every backend: epoll and, on Linux, KqueuePoller over the
// test-only kqueue emulation (on BSD/macOS: the real kqueue).
#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "event/poller.h"
#include "unit/event/test_support.h"

namespace sluice::event {
namespace {

using testing::blockSignal;
using testing::closedFdNumber;
using testing::readAvailable;
using testing::SocketPair;
using testing::writeAll;

#ifdef __linux__
struct EpollBackend {
  static constexpr const char* kName = "Epoll";
  static std::unique_ptr<Poller> make() { return EpollPoller::create(); }
};
#endif
#ifdef SLUICE_TEST_KQUEUE
struct KqueueBackend {
#ifdef SLUICE_KQUEUE_EMULATION
  static constexpr const char* kName = "KqueueEmulated";
#else
  static constexpr const char* kName = "Kqueue";
#endif
  static std::unique_ptr<Poller> make() {
    return KqueuePoller::create();
  }
};
#endif

#if defined(__linux__) && defined(SLUICE_TEST_KQUEUE)
using Backends = ::testing::Types<EpollBackend, KqueueBackend>;
#elif defined(__linux__)
using Backends = ::testing::Types<EpollBackend>;
#else
using Backends = ::testing::Types<KqueueBackend>;
#endif

struct BackendNames {
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};

template <typename B>
class PollerConformance : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(poller_, nullptr); }

  // Several non-blocking waits: a batching backend may need one call to
  // submit its changes before events show (a call whose changelist has
  // errors returns only those errors on FreeBSD).
  std::vector<PollEvent> collect(size_t batch = 64, int calls = 4) {
    std::vector<PollEvent> all;
    std::vector<PollEvent> out(batch);
    for (int i = 0; i < calls; ++i) {
      const int n = poller_->wait(out, Duration(0));
      EXPECT_GE(n, 0);
      for (int j = 0; j < n; ++j)
        all.push_back(out[static_cast<size_t>(j)]);
    }
    return all;
  }

  static std::vector<PollEvent> forTag(const std::vector<PollEvent>& events, uint64_t tag) {
    std::vector<PollEvent> matching;
    for (const PollEvent& event : events) {
      if (event.source == PollEvent::Source::kFd && event.tag == tag) matching.push_back(event);
    }
    return matching;
  }

  static int countWith(const std::vector<PollEvent>& events, uint32_t bits) {
    int count = 0;
    for (const PollEvent& event : events) {
      if ((event.ready & bits) == bits) ++count;
    }
    return count;
  }

  std::unique_ptr<Poller> poller_ = B::make();
};

TYPED_TEST_SUITE(PollerConformance, Backends, BackendNames);

TYPED_TEST(PollerConformance, WritableReportedOnRegistration) {
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  ASSERT_EQ(this->poller_->add(pair.near(), 7), 0);
  const auto events = this->forTag(this->collect(), 7);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].ready & kWritable);
  EXPECT_FALSE(events[0].ready & kReadable);
  EXPECT_FALSE(events[0].ready & (kPeerClosed | kError));
}

TYPED_TEST(PollerConformance, EdgeTriggeredReadable) {
  SocketPair pair;
  ASSERT_EQ(this->poller_->add(pair.near(), 7), 0);
  this->collect();  // the registration edge

  ASSERT_TRUE(writeAll(pair.far(), "hello"));
  auto events = this->forTag(this->collect(), 7);
  ASSERT_EQ(events.size(), 1u) << "one write, one edge";
  EXPECT_TRUE(events[0].ready & kReadable);

  // Not drained, but no new data: edge-triggered means silence.
  EXPECT_TRUE(this->collect().empty());

  EXPECT_EQ(readAvailable(pair.near()), "hello");  // to EAGAIN
  EXPECT_TRUE(this->collect().empty());
  ASSERT_TRUE(writeAll(pair.far(), "again"));
  events = this->forTag(this->collect(), 7);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].ready & kReadable);
}

TYPED_TEST(PollerConformance, ReadableAndWritableOfOneFdComeAsOneEvent) {
  SocketPair pair;
  ASSERT_TRUE(writeAll(pair.far(), "x"));
  ASSERT_EQ(this->poller_->add(pair.near(), 7), 0);
  const auto events = this->forTag(this->collect(), 7);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ready & (kReadable | kWritable), kReadable | kWritable);
}

TYPED_TEST(PollerConformance, PeerCloseReportsPeerClosedAndReadable) {
  SocketPair pair;
  ASSERT_EQ(this->poller_->add(pair.near(), 7), 0);
  this->collect();
  pair.closeSide(1);
  const auto events = this->forTag(this->collect(), 7);
  ASSERT_GE(events.size(), 1u);
  EXPECT_GE(this->countWith(events, kPeerClosed | kReadable), 1);
  EXPECT_EQ(this->countWith(events, kError), 0);
  char byte;
  EXPECT_EQ(read(pair.near(), &byte, 1), 0);  // the EOF the bits announced
}

TYPED_TEST(PollerConformance, HalfCloseReportsPeerClosed) {
  SocketPair pair;
  ASSERT_EQ(this->poller_->add(pair.near(), 7), 0);
  this->collect();
  ASSERT_EQ(shutdown(pair.far(), SHUT_WR), 0);
  const auto events = this->forTag(this->collect(), 7);
  EXPECT_GE(this->countWith(events, kPeerClosed | kReadable), 1);
}

TYPED_TEST(PollerConformance, RemoveStopsEvents) {
  SocketPair pair;
  ASSERT_EQ(this->poller_->add(pair.near(), 7), 0);
  this->collect();
  ASSERT_EQ(this->poller_->remove(pair.near()), 0);
  ASSERT_TRUE(writeAll(pair.far(), "x"));
  EXPECT_TRUE(this->forTag(this->collect(), 7).empty());
}

TYPED_TEST(PollerConformance, RemoveBeforeFirstWait) {
  SocketPair pair;
  ASSERT_TRUE(writeAll(pair.far(), "x"));
  ASSERT_EQ(this->poller_->add(pair.near(), 7), 0);
  ASSERT_EQ(this->poller_->remove(pair.near()), 0);
  EXPECT_TRUE(this->collect().empty());
}

TYPED_TEST(PollerConformance, ReAddAfterRemoveUsesNewTag) {
  SocketPair pair;
  ASSERT_EQ(this->poller_->add(pair.near(), 7), 0);
  this->collect();
  ASSERT_EQ(this->poller_->remove(pair.near()), 0);
  ASSERT_EQ(this->poller_->add(pair.near(), 8), 0);
  ASSERT_TRUE(writeAll(pair.far(), "x"));
  const auto events = this->collect();
  EXPECT_TRUE(this->forTag(events, 7).empty());
  EXPECT_GE(this->countWith(this->forTag(events, 8), kReadable), 1);
}

TYPED_TEST(PollerConformance, RemoveCloseAndReuseOfTheNumber) {
  SocketPair old_pair;
  const int fd = old_pair.near();
  ASSERT_EQ(this->poller_->add(fd, 7), 0);
  this->collect();
  ASSERT_EQ(this->poller_->remove(fd), 0);
  old_pair.closeSide(0);

  SocketPair fresh;
  ASSERT_EQ(dup2(fresh.near(), fd), fd);  // the new socket gets the old number
  ASSERT_TRUE(writeAll(fresh.far(), "new"));
  ASSERT_EQ(this->poller_->add(fd, 8), 0);
  const auto events = this->collect();
  EXPECT_TRUE(this->forTag(events, 7).empty());
  const auto fresh_events = this->forTag(events, 8);
  EXPECT_GE(this->countWith(fresh_events, kReadable), 1);
  EXPECT_EQ(this->countWith(fresh_events, kError), 0);
  close(fd);
}

TYPED_TEST(PollerConformance, RegistrationErrors) {
  SocketPair pair;
  ASSERT_EQ(this->poller_->add(pair.near(), 7), 0);
  EXPECT_EQ(this->poller_->add(pair.near(), 8), EEXIST);
  EXPECT_EQ(this->poller_->remove(pair.far()), ENOENT);
  EXPECT_EQ(this->poller_->add(pair.far(), kReservedTag), EINVAL);
  ASSERT_EQ(this->poller_->remove(pair.near()), 0);
  EXPECT_EQ(this->poller_->remove(pair.near()), ENOENT);
}

TYPED_TEST(PollerConformance, WaitTimesOutWithNothingReady) {
  SocketPair pair;
  ASSERT_EQ(this->poller_->add(pair.near(), 7), 0);
  this->collect();
  std::vector<PollEvent> out(8);
  EXPECT_EQ(this->poller_->wait(out, Duration(0)), 0);
  EXPECT_EQ(this->poller_->wait(out, Duration(1)), 0);  // a real (1 ms) wait
  EXPECT_LT(this->poller_->wait(std::span<PollEvent>(), Duration(0)), 0);
}

TYPED_TEST(PollerConformance, SmallBatchesLoseNoEdges) {
  constexpr int kPairs = 5;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  for (int i = 0; i < kPairs; ++i) {
    pairs.push_back(std::make_unique<SocketPair>());
    ASSERT_TRUE(writeAll(pairs.back()->far(), "x"));
    ASSERT_EQ(this->poller_->add(pairs.back()->near(), static_cast<uint64_t>(100 + i)), 0);
  }
  // Room for two events per call; with edge-triggering nothing may be lost.
  const auto events = this->collect(2, 3 * kPairs);
  for (int i = 0; i < kPairs; ++i) {
    const auto mine = this->forTag(events, static_cast<uint64_t>(100 + i));
    EXPECT_EQ(this->countWith(mine, kReadable), 1) << "pair " << i;
  }
}

TYPED_TEST(PollerConformance, SignalsArriveAsEvents) {
  blockSignal(SIGUSR1);
  blockSignal(SIGUSR2);
  ASSERT_EQ(this->poller_->watchSignal(SIGUSR2), 0);
  ASSERT_EQ(this->poller_->watchSignal(SIGUSR1), 0);  // the watched set grows
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  int usr1 = 0, usr2 = 0;
  for (const PollEvent& event : this->collect()) {
    ASSERT_EQ(event.source, PollEvent::Source::kSignal);
    if (event.signal == SIGUSR1) ++usr1;
    if (event.signal == SIGUSR2) ++usr2;
  }
  EXPECT_EQ(usr1, 1);
  EXPECT_EQ(usr2, 1);
  // Consumed: nothing more.
  EXPECT_TRUE(this->collect().empty());
}

TYPED_TEST(PollerConformance, SignalsShareABatchWithFdEvents) {
  blockSignal(SIGUSR2);
  SocketPair pair;
  ASSERT_TRUE(writeAll(pair.far(), "x"));
  ASSERT_EQ(this->poller_->watchSignal(SIGUSR2), 0);
  ASSERT_EQ(this->poller_->add(pair.near(), 7), 0);
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  int signals = 0;
  const auto events = this->collect(2, 4);
  for (const PollEvent& event : events) {
    if (event.source == PollEvent::Source::kSignal && event.signal == SIGUSR2) ++signals;
  }
  EXPECT_EQ(signals, 1);
  EXPECT_EQ(this->countWith(this->forTag(events, 7), kReadable), 1);
}

}  // namespace
}  // namespace sluice::event
