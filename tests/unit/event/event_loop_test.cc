#include "event/event_loop.h"

#include <gtest/gtest.h>

#include <csignal>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "unit/event/test_support.h"

namespace sluice::event {
namespace {

using std::chrono::milliseconds;
using testing::allBackends;
using testing::Backend;
using testing::blockSignal;
using testing::readAvailable;
using testing::SocketPair;
using testing::writeAll;

// Records every onReady() and runs an optional action.
class RecordingHandler final : public IoHandler {
 public:
  void onReady(uint32_t ready_bits) override {
    calls.push_back(ready_bits);
    if (action) action(ready_bits);
  }
  int countWith(uint32_t bits) const {
    int count = 0;
    for (uint32_t ready : calls) {
      if ((ready & bits) == bits) ++count;
    }
    return count;
  }

  std::vector<uint32_t> calls;
  std::function<void(uint32_t)> action;
};

class EventLoopTest : public ::testing::TestWithParam<Backend> {
 protected:
  ManualClock clock_;
  EventLoop loop_{clock_, GetParam().make()};
};

TEST_P(EventLoopTest, UsesTheInjectedBackend) {
  const std::string expected =
      std::string(GetParam().name).starts_with("Epoll") ? "epoll" : "kqueue";
  EXPECT_EQ(loop_.backendName(), expected);
}

TEST_P(EventLoopTest, HandlerDrainsToEagainInOnePass) {
  SocketPair pair;
  const std::string payload(100000, 'x');  // several reads' worth
  size_t total = 0;
  RecordingHandler handler;
  handler.action = [&](uint32_t ready) {
    if (!(ready & kReadable)) return;
    total += readAvailable(pair.near()).size();
    char byte;
    EXPECT_EQ(read(pair.near(), &byte, 1), -1);
    EXPECT_EQ(errno, EAGAIN);
  };
  ASSERT_EQ(loop_.addFd(pair.near(), &handler), 0);
  ASSERT_TRUE(writeAll(pair.far(), std::string_view(payload).substr(0, 60000)));
  loop_.runOnce(Duration(0));
  EXPECT_EQ(total, 60000u);
  const size_t calls = handler.calls.size();
  loop_.runOnce(Duration(0));
  EXPECT_EQ(handler.calls.size(), calls) << "drained, no new data: no new event";
  ASSERT_TRUE(writeAll(pair.far(), std::string_view(payload).substr(0, 500)));
  loop_.runOnce(Duration(0));
  EXPECT_EQ(total, 60500u);
}

TEST_P(EventLoopTest, PendingRedeliversWhatTheKernelWillNotReportAgain) {
  SocketPair pair;
  std::string received;
  RecordingHandler handler;
  // Reads at most 4 bytes per call, like a handler out of its I/O budget.
  handler.action = [&](uint32_t ready) {
    if (!(ready & kReadable)) return;
    char buf[4];
    const ssize_t n = read(pair.near(), buf, sizeof buf);
    if (n > 0) received.append(buf, static_cast<size_t>(n));
    if (n == static_cast<ssize_t>(sizeof buf)) loop_.addPending(pair.near(), kReadable);
  };
  ASSERT_EQ(loop_.addFd(pair.near(), &handler), 0);
  ASSERT_TRUE(writeAll(pair.far(), "0123456789"));
  // Pass 1: the kernel edge (4 bytes), then the pending phase of the same
  // pass (4 more); the handler queues itself again for the next pass.
  loop_.runOnce(Duration(0));
  EXPECT_EQ(received, "01234567");
  EXPECT_EQ(handler.calls.size(), 2u);
  // Pass 2 has no new kernel edge; only the pending list delivers the rest.
  // No max_wait: a pass with pending work must not block.
  loop_.runOnce();
  EXPECT_EQ(received, "0123456789");
  EXPECT_EQ(handler.calls.size(), 3u);
  loop_.runOnce(Duration(0));
  EXPECT_EQ(handler.calls.size(), 3u);
}

TEST_P(EventLoopTest, AddPendingTwiceInOnePassDeliversOnce) {
  SocketPair pair;
  RecordingHandler handler;
  ASSERT_EQ(loop_.addFd(pair.near(), &handler), 0);
  loop_.runOnce(Duration(0));  // registration edge
  handler.calls.clear();
  loop_.addPending(pair.near(), kReadable);
  loop_.addPending(pair.near(), kWritable);
  loop_.runOnce(Duration(0));
  ASSERT_EQ(handler.calls.size(), 1u);
  EXPECT_EQ(handler.calls[0], kReadable | kWritable);
}

TEST_P(EventLoopTest, StaleEventForAClosedAndReusedFdIsDropped) {
  // Two fds ready in one batch. Whichever handler runs first removes and
  // closes the other fd, then puts a new socket under the same number with a
  // new handler. The old fd's event, still in the batch, must reach nobody.
  SocketPair a, b;
  const int fd_a = a.release(0);
  const int fd_b = b.release(0);
  RecordingHandler handler_a, handler_b, newcomer;
  SocketPair fresh;
  int victim = -1;
  auto takeOver = [&](int other) {
    if (victim >= 0) return;
    victim = other;
    loop_.removeFd(other);
    close(other);
    ASSERT_EQ(dup2(fresh.near(), other), other);
    ASSERT_TRUE(writeAll(fresh.far(), "new"));
    ASSERT_EQ(loop_.addFd(other, &newcomer), 0);
  };
  handler_a.action = [&](uint32_t) { takeOver(fd_b); };
  handler_b.action = [&](uint32_t) { takeOver(fd_a); };
  ASSERT_EQ(loop_.addFd(fd_a, &handler_a), 0);
  ASSERT_EQ(loop_.addFd(fd_b, &handler_b), 0);
  ASSERT_TRUE(writeAll(a.far(), "a"));
  ASSERT_TRUE(writeAll(b.far(), "b"));

  loop_.runOnce(Duration(0));
  ASSERT_GE(victim, 0);
  const RecordingHandler& victim_handler = victim == fd_a ? handler_a : handler_b;
  EXPECT_TRUE(victim_handler.calls.empty()) << "the removed handler got its old event";
  EXPECT_TRUE(newcomer.calls.empty()) << "the new owner got the old fd's event";

  for (int i = 0; i < 3 && newcomer.calls.empty(); ++i)
    loop_.runOnce(Duration(0));
  EXPECT_GE(newcomer.countWith(kReadable), 1);
  EXPECT_TRUE(victim_handler.calls.empty());
  loop_.removeFd(fd_a);
  loop_.removeFd(fd_b);
  close(fd_a);
  close(fd_b);
}

TEST_P(EventLoopTest, HandlerMayRemoveAndCloseItsOwnFd) {
  SocketPair pair;
  const int fd = pair.release(0);
  auto handler = std::make_unique<RecordingHandler>();
  RecordingHandler* raw = handler.get();
  int destroyed = 0;
  raw->action = [&, raw](uint32_t) {
    loop_.removeFd(fd);
    close(fd);
    loop_.addPending(fd, kReadable);  // ignored: no longer registered
    // Destroy the handler at the end of the pass, never inside onReady().
    loop_.defer([&] {
      EXPECT_EQ(handler.get(), raw);
      handler.reset();
      ++destroyed;
    });
  };
  ASSERT_EQ(loop_.addFd(fd, raw), 0);
  ASSERT_TRUE(writeAll(pair.far(), "x"));
  loop_.runOnce(Duration(0));
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(handler, nullptr);
  loop_.runOnce(Duration(0));
}

TEST_P(EventLoopTest, RemoveFdDropsPendingRedelivery) {
  SocketPair pair;
  RecordingHandler first, second;
  ASSERT_EQ(loop_.addFd(pair.near(), &first), 0);
  loop_.runOnce(Duration(0));  // registration edge: writable
  first.calls.clear();
  loop_.addPending(pair.near(), kReadable);
  loop_.removeFd(pair.near());
  loop_.runOnce(Duration(0));
  EXPECT_TRUE(first.calls.empty());

  // Same fd number, new registration: the old pending entry stays dead.
  loop_.addPending(pair.near(), kReadable);  // ignored: not registered
  ASSERT_EQ(loop_.addFd(pair.near(), &second), 0);
  loop_.runOnce(Duration(0));
  loop_.runOnce(Duration(0));
  EXPECT_EQ(second.countWith(kReadable), 0) << "nothing was ever written";
  EXPECT_TRUE(first.calls.empty());
}

TEST_P(EventLoopTest, RegistrationErrors) {
  SocketPair pair;
  RecordingHandler handler;
  EXPECT_EQ(loop_.addFd(-1, &handler), EBADF);
  ASSERT_EQ(loop_.addFd(pair.near(), &handler), 0);
  EXPECT_EQ(loop_.addFd(pair.near(), &handler), EEXIST);
  loop_.removeFd(pair.far());  // never registered: no-op
  loop_.removeFd(12345);       // beyond the table: no-op
  loop_.removeFd(pair.near());
  loop_.removeFd(pair.near());  // twice: no-op
  EXPECT_EQ(loop_.addFd(pair.near(), &handler), 0);
}

TEST_P(EventLoopTest, PeerCloseReachesTheHandler) {
  SocketPair pair;
  RecordingHandler handler;
  ASSERT_EQ(loop_.addFd(pair.near(), &handler), 0);
  loop_.runOnce(Duration(0));
  pair.closeSide(1);
  loop_.runOnce(Duration(0));
  EXPECT_GE(handler.countWith(kPeerClosed | kReadable), 1);
}

TEST_P(EventLoopTest, RunOnceFiresDueTimers) {
  int fired = 0;
  Timer timer(loop_.timers(), [&] { ++fired; });
  timer.arm(milliseconds(100));
  loop_.runOnce(Duration(0));
  EXPECT_EQ(fired, 0);
  clock_.advance(milliseconds(99));
  loop_.runOnce(Duration(0));
  EXPECT_EQ(fired, 0);
  clock_.advance(milliseconds(1));
  loop_.runOnce(Duration(0));
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(loop_.now(), clock_.now());
}

// now() is the time read after the last wait: handling events between two
// waits does not read the clock, so time stands still until the next pass.
TEST_P(EventLoopTest, NowIsTheTimeReadAfterTheLastWait) {
  loop_.runOnce(Duration(0));
  const auto before = loop_.now();
  clock_.advance(milliseconds(40));
  EXPECT_EQ(loop_.now(), before);
  EXPECT_EQ(loop_.cachedClock().now(), before);
  loop_.runOnce(Duration(0));
  EXPECT_EQ(loop_.now(), before + milliseconds(40));
  EXPECT_EQ(loop_.cachedClock().now(), loop_.now());
}

// wallNow() moves with the cached time; the offset to the system clock is
// read again only after a second (here the steady clock is a ManualClock,
// so after that re-read wallNow() is the real system time).
TEST_P(EventLoopTest, WallNowFollowsTheCachedTimeAndReReadsTheOffsetEachSecond) {
  loop_.runOnce(Duration(0));
  const auto first = loop_.wallNow();
  EXPECT_LE(std::chrono::abs(first - std::chrono::system_clock::now()), std::chrono::seconds(1));
  clock_.advance(milliseconds(300));
  EXPECT_EQ(loop_.wallNow(), first);  // no pass yet: the cached time stands
  loop_.runOnce(Duration(0));
  EXPECT_EQ(loop_.wallNow() - first, milliseconds(300));
  clock_.advance(milliseconds(5000));
  loop_.runOnce(Duration(0));
  const auto reread = loop_.wallNow();
  EXPECT_LE(std::chrono::abs(reread - std::chrono::system_clock::now()), std::chrono::seconds(1));
  EXPECT_LT(reread - first, milliseconds(5000));  // the fake 5 s did not all become wall time
}

TEST_P(EventLoopTest, OverdueTimerMakesTheWaitZero) {
  int fired = 0;
  Timer timer(loop_.timers(), [&] { ++fired; });
  timer.arm(milliseconds(5));
  clock_.advance(milliseconds(5));
  loop_.runOnce();  // no max_wait: the due timer bounds the wait to zero
  EXPECT_EQ(fired, 1);
}

TEST_P(EventLoopTest, PassOrderIsEventsTimersPendingDeferred) {
  SocketPair pair;
  std::vector<std::string> order;
  RecordingHandler handler;
  handler.action = [&](uint32_t) {
    if (handler.calls.size() == 1) {
      order.push_back("io");
      loop_.addPending(pair.near(), kReadable);
      loop_.defer([&] { order.push_back("deferred"); });
    } else {
      order.push_back("pending");
    }
  };
  Timer timer(loop_.timers(), [&] { order.push_back("timer"); });
  ASSERT_EQ(loop_.addFd(pair.near(), &handler), 0);
  ASSERT_TRUE(writeAll(pair.far(), "x"));
  timer.arm(milliseconds(0));
  loop_.runOnce(Duration(0));
  EXPECT_EQ(order, (std::vector<std::string>{"io", "timer", "pending", "deferred"}));
}

TEST_P(EventLoopTest, PendingAddedByPendingHandlerWaitsForNextPass) {
  SocketPair pair;
  RecordingHandler handler;
  ASSERT_EQ(loop_.addFd(pair.near(), &handler), 0);
  loop_.runOnce(Duration(0));
  handler.calls.clear();
  handler.action = [&](uint32_t) { loop_.addPending(pair.near(), kReadable); };
  loop_.addPending(pair.near(), kReadable);
  loop_.runOnce(Duration(0));
  EXPECT_EQ(handler.calls.size(), 1u) << "a re-added entry must not run in the same pass";
  loop_.runOnce(Duration(0));
  EXPECT_EQ(handler.calls.size(), 2u);
  handler.action = nullptr;
  loop_.runOnce(Duration(0));
}

TEST_P(EventLoopTest, DeferredTasksRunInOrderIncludingNestedOnes) {
  std::vector<std::string> order;
  loop_.defer([&] {
    order.push_back("a");
    loop_.defer([&] {
      order.push_back("c");
      loop_.defer([&] { order.push_back("d"); });
    });
  });
  loop_.defer([&] { order.push_back("b"); });
  loop_.runOnce();  // deferred work bounds the wait to zero
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST_P(EventLoopTest, SignalReachesItsHandler) {
  std::vector<int> received;
  ASSERT_EQ(loop_.watchSignal(SIGUSR2, [&](int signo) { received.push_back(signo); }), 0);
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);  // blocked now, so it waits for the loop
  loop_.runOnce(Duration(0));
  EXPECT_EQ(received, std::vector<int>{SIGUSR2});
  loop_.runOnce(Duration(0));
  EXPECT_EQ(received.size(), 1u);
}

TEST_P(EventLoopTest, WatchSignalRejectsAnInvalidNumber) {
  EXPECT_EQ(loop_.watchSignal(0, [](int) {}), EINVAL);
  EXPECT_NE(loop_.watchSignal(100000, [](int) {}), 0);
}

TEST_P(EventLoopTest, StopEndsRunAfterThePass) {
  int passes_after_stop = 0;
  loop_.defer([&] {
    loop_.stop();
    loop_.defer([&] { ++passes_after_stop; });  // same drain: still runs
  });
  loop_.run();
  EXPECT_EQ(passes_after_stop, 1);
  // run() can be entered again.
  int fired = 0;
  Timer timer(loop_.timers(), [&] {
    ++fired;
    loop_.stop();
  });
  timer.arm(milliseconds(0));
  loop_.run();
  EXPECT_EQ(fired, 1);
}

}  // namespace
}  // namespace sluice::event

namespace sluice::event::testing {
// gtest prints the parameter into test listings; a name beats a byte dump.
void PrintTo(const Backend& backend, std::ostream* os) {
  *os << backend.name;
}
}  // namespace sluice::event::testing

namespace sluice::event {
namespace {

std::string backendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(EventLoop, EventLoopTest, ::testing::ValuesIn(allBackends()), backendName);

TEST(EventLoopDefault, UsesThePlatformBackend) {
  EventLoop loop;
#ifdef __linux__
  EXPECT_STREQ(loop.backendName(), "epoll");
#else
  EXPECT_STREQ(loop.backendName(), "kqueue");
#endif
  EXPECT_GE(loop.now().time_since_epoch().count(), 0);
  loop.runOnce(Duration(0));
}

}  // namespace
}  // namespace sluice::event
