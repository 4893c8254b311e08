#include "event/timer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace sluice::event {
namespace {

using std::chrono::milliseconds;

class TimerQueueTest : public ::testing::Test {
 protected:
  // A timer that appends its name to fired_ when it fires.
  std::unique_ptr<Timer> make(const std::string& name) {
    return std::make_unique<Timer>(queue_, [this, name] { fired_.push_back(name); });
  }

  ManualClock clock_;
  TimerQueue queue_{clock_};
  std::vector<std::string> fired_;
};

TEST_F(TimerQueueTest, FiresInDeadlineOrder) {
  auto a = make("a"), b = make("b"), c = make("c");
  a->arm(milliseconds(30));
  b->arm(milliseconds(10));
  c->arm(milliseconds(20));
  EXPECT_EQ(queue_.size(), 3u);
  EXPECT_EQ(queue_.expire(), 0u);
  clock_.advance(milliseconds(15));
  EXPECT_EQ(queue_.expire(), 1u);
  clock_.advance(milliseconds(100));
  EXPECT_EQ(queue_.expire(), 2u);
  EXPECT_EQ(fired_, (std::vector<std::string>{"b", "c", "a"}));
  EXPECT_FALSE(a->armed());
  EXPECT_EQ(queue_.size(), 0u);
}

TEST_F(TimerQueueTest, EqualDeadlinesFireInArmOrder) {
  std::vector<std::unique_ptr<Timer>> timers;
  for (int i = 0; i < 8; ++i) {
    timers.push_back(make(std::to_string(i)));
    timers.back()->arm(milliseconds(5));
  }
  // Re-arming to the same deadline counts as arming anew: it goes last.
  timers[2]->arm(milliseconds(5));
  clock_.advance(milliseconds(5));
  EXPECT_EQ(queue_.expire(), 8u);
  EXPECT_EQ(fired_, (std::vector<std::string>{"0", "1", "3", "4", "5", "6", "7", "2"}));
}

TEST_F(TimerQueueTest, CancelledTimerDoesNotFire) {
  auto a = make("a"), b = make("b");
  a->arm(milliseconds(10));
  b->arm(milliseconds(10));
  a->cancel();
  EXPECT_FALSE(a->armed());
  EXPECT_EQ(queue_.size(), 1u);
  a->cancel();  // cancelling an idle timer is a no-op
  clock_.advance(milliseconds(10));
  EXPECT_EQ(queue_.expire(), 1u);
  EXPECT_EQ(fired_, (std::vector<std::string>{"b"}));
}

TEST_F(TimerQueueTest, RearmMovesEarlierAndLater) {
  auto a = make("a"), b = make("b"), c = make("c");
  a->arm(milliseconds(50));
  b->arm(milliseconds(20));
  c->arm(milliseconds(30));
  a->arm(milliseconds(10));  // earlier than all
  b->arm(milliseconds(40));  // later than c
  EXPECT_EQ(queue_.size(), 3u);
  EXPECT_EQ(a->deadline(), clock_.now() + milliseconds(10));
  clock_.advance(milliseconds(100));
  queue_.expire();
  EXPECT_EQ(fired_, (std::vector<std::string>{"a", "c", "b"}));
}

TEST_F(TimerQueueTest, ArmAtUsesAbsoluteDeadline) {
  auto a = make("a");
  a->armAt(clock_.now() + milliseconds(7));
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(7));
  clock_.advance(milliseconds(6));
  EXPECT_EQ(queue_.expire(), 0u);
  clock_.advance(milliseconds(1));
  EXPECT_EQ(queue_.expire(), 1u);
}

TEST_F(TimerQueueTest, TimeUntilNext) {
  EXPECT_LT(queue_.timeUntilNext().count(), 0);  // nothing armed
  auto a = make("a"), b = make("b");
  a->arm(milliseconds(100));
  b->arm(milliseconds(40));
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(40));
  clock_.advance(milliseconds(30));
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(10));
  clock_.advance(milliseconds(25));
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(0));  // overdue
  b->cancel();
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(45));
  a->cancel();
  EXPECT_LT(queue_.timeUntilNext().count(), 0);
}

TEST_F(TimerQueueTest, TimeUntilNextRoundsUpPartialMilliseconds) {
  // Truncating 0.5 ms to 0 would make the loop spin until the deadline.
  auto a = make("a");
  a->armAt(clock_.now() + std::chrono::microseconds(500));
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(1));
}

TEST_F(TimerQueueTest, CallbackDestroysItsOwnTimer) {
  std::unique_ptr<Timer> self;
  int calls = 0;
  size_t seen = 0;
  const std::string owned(64, 'x');  // captured by value: lives on the heap
  self = std::make_unique<Timer>(queue_, [&, owned] {
    ++calls;
    self.reset();
    // The captures must still be alive here (ASan checks it).
    seen = owned.size();
  });
  auto after = make("after");
  self->arm(milliseconds(1));
  after->arm(milliseconds(1));
  clock_.advance(milliseconds(1));
  EXPECT_EQ(queue_.expire(), 2u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, 64u);
  EXPECT_EQ(self, nullptr);
  EXPECT_EQ(fired_, (std::vector<std::string>{"after"}));
}

TEST_F(TimerQueueTest, CallbackRearmsThenDestroysItsOwnTimer) {
  // Re-armed (and perhaps cancelled) first, then destroyed, by its own
  // heap-held callback: the callable must outlive the call (ASan checks).
  for (const bool cancel_first : {false, true}) {
    std::unique_ptr<Timer> self;
    size_t seen = 0;
    const std::string owned(64, 'y');  // captured by value: held on the heap
    self = std::make_unique<Timer>(queue_, [&, owned] {
      self->arm(milliseconds(5));
      if (cancel_first) self->cancel();
      self.reset();
      seen = owned.size();
    });
    self->arm(milliseconds(1));
    clock_.advance(milliseconds(1));
    EXPECT_EQ(queue_.expire(), 1u);
    EXPECT_EQ(seen, 64u);
    EXPECT_EQ(self, nullptr);
    EXPECT_EQ(queue_.size(), 0u);
  }
}

TEST_F(TimerQueueTest, CallbackThatRearmsAndCancelsItselfCanBeArmedAgain) {
  int calls = 0;
  Timer self(queue_, [&] {
    ++calls;
    self.arm(milliseconds(5));
    self.cancel();
  });
  self.arm(milliseconds(1));
  clock_.advance(milliseconds(1));
  EXPECT_EQ(queue_.expire(), 1u);
  EXPECT_FALSE(self.armed());
  self.arm(milliseconds(1));
  clock_.advance(milliseconds(1));
  EXPECT_EQ(queue_.expire(), 1u);
  EXPECT_EQ(calls, 2);
}

TEST_F(TimerQueueTest, CallbackRearmingItselfForNowFiresOncePerExpire) {
  // With a ManualClock, arm(0) is due at once; expire() must still return.
  int calls = 0;
  Timer self(queue_, [&] {
    ++calls;
    self.arm(milliseconds(0));
  });
  self.arm(milliseconds(0));
  EXPECT_EQ(queue_.expire(), 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(self.armed());
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(0));
  EXPECT_EQ(queue_.expire(), 1u);
  EXPECT_EQ(calls, 2);
}

TEST_F(TimerQueueTest, PeriodicTimerRearmsItselfLater) {
  int calls = 0;
  Timer tick(queue_, [&] {
    ++calls;
    tick.arm(milliseconds(10));
  });
  tick.arm(milliseconds(10));
  for (int i = 0; i < 5; ++i) {
    clock_.advance(milliseconds(10));
    EXPECT_EQ(queue_.expire(), 1u);
  }
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(10));
}

TEST_F(TimerQueueTest, TimerArmedByCallbackForNowWaitsForNextExpire) {
  auto late = make("late");
  Timer first(queue_, [&] {
    fired_.push_back("first");
    late->armAt(clock_.now() - milliseconds(5));  // already overdue
  });
  auto second = make("second");
  first.arm(milliseconds(1));
  second->arm(milliseconds(2));
  clock_.advance(milliseconds(2));
  // Both were due on entry and fire; "late" was not and does not.
  EXPECT_EQ(queue_.expire(), 2u);
  EXPECT_EQ(fired_, (std::vector<std::string>{"first", "second"}));
  EXPECT_TRUE(late->armed());
  EXPECT_EQ(queue_.expire(), 1u);
  EXPECT_EQ(fired_.back(), "late");
}

TEST_F(TimerQueueTest, CallbackCancelsOrDestroysAnotherDueTimer) {
  auto victim = make("victim");
  auto destroyed = make("destroyed");
  auto rearmed = make("rearmed");
  Timer killer(queue_, [&] {
    fired_.push_back("killer");
    EXPECT_TRUE(victim->armed());  // due but not fired yet: still armed
    victim->cancel();
    destroyed.reset();
    rearmed->arm(milliseconds(50));
  });
  killer.arm(milliseconds(1));
  victim->arm(milliseconds(2));
  destroyed->arm(milliseconds(3));
  rearmed->arm(milliseconds(4));
  clock_.advance(milliseconds(10));
  EXPECT_EQ(queue_.expire(), 1u);
  EXPECT_EQ(fired_, (std::vector<std::string>{"killer"}));
  EXPECT_FALSE(victim->armed());
  EXPECT_TRUE(rearmed->armed());
  EXPECT_EQ(queue_.size(), 1u);
  clock_.advance(milliseconds(50));
  EXPECT_EQ(queue_.expire(), 1u);
  EXPECT_EQ(fired_.back(), "rearmed");
}

TEST_F(TimerQueueTest, DestroyedTimerLeavesQueue) {
  auto a = make("a"), b = make("b"), c = make("c");
  a->arm(milliseconds(1));
  b->arm(milliseconds(2));
  c->arm(milliseconds(3));
  b.reset();
  EXPECT_EQ(queue_.size(), 2u);
  clock_.advance(milliseconds(3));
  EXPECT_EQ(queue_.expire(), 2u);
  EXPECT_EQ(fired_, (std::vector<std::string>{"a", "c"}));
}

TEST_F(TimerQueueTest, ArmCountsFromTheQueuesCachedTime) {
  // The loop refreshes the queue's time once per pass; arming reads no
  // clock. Time the queue has not seen yet does not count.
  clock_.advance(milliseconds(100));
  auto a = make("a");
  a->arm(milliseconds(10));
  EXPECT_EQ(a->deadline() + milliseconds(90), clock_.now());
  EXPECT_EQ(queue_.updateTime(), clock_.now());
  a->arm(milliseconds(10));
  EXPECT_EQ(a->deadline(), clock_.now() + milliseconds(10));
}

TEST_F(TimerQueueTest, RearmLaterWithinTheSlackKeepsItsPlaceAndNeverFiresEarly) {
  static_assert(Timer::kLazySlack > milliseconds(100));
  auto a = make("a"), b = make("b");
  a->arm(milliseconds(100));
  b->arm(milliseconds(150));
  a->arm(milliseconds(200));  // 100 ms later: left where it was in the heap
  EXPECT_EQ(a->deadline(), clock_.now() + milliseconds(200));
  EXPECT_TRUE(a->armed());
  EXPECT_EQ(queue_.size(), 2u);
  // Its old place still wakes the loop; the wake-up only moves it.
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(100));
  clock_.advance(milliseconds(100));
  EXPECT_EQ(queue_.expire(), 0u);
  EXPECT_TRUE(a->armed());
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(50));
  clock_.advance(milliseconds(50));
  EXPECT_EQ(queue_.expire(), 1u);
  clock_.advance(milliseconds(49));
  EXPECT_EQ(queue_.expire(), 0u);
  clock_.advance(milliseconds(1));
  EXPECT_EQ(queue_.expire(), 1u);
  EXPECT_EQ(fired_, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(queue_.size(), 0u);
}

TEST_F(TimerQueueTest, RearmBeyondTheSlackOrEarlierMovesAtOnce) {
  const auto slack = std::chrono::duration_cast<milliseconds>(Timer::kLazySlack);
  auto a = make("a"), b = make("b");
  a->arm(milliseconds(100));
  a->arm(milliseconds(100) + slack);
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(100) + slack);
  b->arm(milliseconds(100));
  b->arm(milliseconds(40));  // earlier: always moved
  EXPECT_EQ(queue_.timeUntilNext(), milliseconds(40));
}

TEST_F(TimerQueueTest, ALazilyRearmedTimerCancelsAndRearmsCleanly) {
  auto a = make("a");
  a->arm(milliseconds(10));
  a->arm(milliseconds(20));  // lazy
  a->cancel();
  EXPECT_FALSE(a->armed());
  EXPECT_EQ(queue_.size(), 0u);
  a->arm(milliseconds(5));
  EXPECT_EQ(a->deadline(), clock_.now() + milliseconds(5));
  clock_.advance(milliseconds(5));
  EXPECT_EQ(queue_.expire(), 1u);
}

TEST_F(TimerQueueTest, CallbackBiggerThanAPointerLivesAndDiesWithItsTimer) {
  auto token = std::make_shared<int>(7);
  int seen = 0;
  {
    Timer timer(queue_, [token, &seen] { seen = *token; });
    EXPECT_EQ(token.use_count(), 2);  // the Timer holds its own copy
    timer.arm(milliseconds(1));
    clock_.advance(milliseconds(1));
    EXPECT_EQ(queue_.expire(), 1u);
    EXPECT_EQ(seen, 7);
    EXPECT_EQ(token.use_count(), 2);  // still held after firing: it can fire again
  }
  EXPECT_EQ(token.use_count(), 1);
}

TEST_F(TimerQueueTest, CallbackCapturingOnlyAPointerIsKeptInline) {
  // What every connection's timers capture: [this]. Kept in the Timer's
  // own two words, no heap block.
  int calls = 0;
  int* counter = &calls;
  auto capture_pointer = [counter] { ++*counter; };
  static_assert(sizeof(capture_pointer) <= sizeof(void*));
  static_assert(std::is_trivially_copyable_v<decltype(capture_pointer)>);
  Timer timer(queue_, capture_pointer);
  timer.arm(milliseconds(0));
  EXPECT_EQ(queue_.expire(), 1u);
  EXPECT_EQ(calls, 1);
  static_assert(sizeof(Timer) <= 48, "every connection has a timer: keep it small");
}

TEST(TimerQueueLifetime, QueueDestroyedWithArmedTimersDetachesThem) {
  ManualClock clock;
  auto queue = std::make_unique<TimerQueue>(clock);
  Timer a(*queue, [] {});
  Timer b(*queue, [] {});
  a.arm(milliseconds(1));
  b.arm(milliseconds(2));
  queue.reset();
  EXPECT_FALSE(a.armed());
  EXPECT_FALSE(b.armed());
  // ~Timer runs after the queue is gone; ASan checks it does not touch it.
}

// Random arm/re-arm/cancel/destroy against a reference model of the
// (deadline, sequence) order, with deadlines up to `max_after` ms ahead and
// steps of time up to `max_advance` ms. Fixed seed: deterministic.
void checkAgainstReferenceModel(int64_t max_after, int64_t max_advance) {
  ManualClock clock;
  TimerQueue queue(clock);
  constexpr int kTimers = 64;
  std::vector<int> fired;
  std::vector<std::unique_ptr<Timer>> timers(kTimers);
  // Reference: (deadline offset, sequence, id) of the armed timers.
  using Key = std::tuple<int64_t, uint64_t, int>;
  std::set<Key> model;
  std::vector<Key> key_of(kTimers);
  std::vector<bool> armed(kTimers, false);
  uint64_t sequence = 0;
  int64_t now = 0;
  auto disarm = [&](int id) {
    if (armed[id]) model.erase(key_of[id]);
    armed[id] = false;
  };
  for (int id = 0; id < kTimers; ++id) {
    timers[id] = std::make_unique<Timer>(queue, [&fired, id] { fired.push_back(id); });
  }
  std::mt19937 rng(12345);
  for (int step = 0; step < 20000; ++step) {
    const int id = static_cast<int>(rng() % kTimers);
    switch (rng() % 8) {
      case 0:
      case 1:
      case 2: {
        const int64_t after = static_cast<int64_t>(rng() % static_cast<uint64_t>(max_after));
        timers[id]->arm(milliseconds(after));
        disarm(id);
        key_of[id] = Key{now + after, sequence++, id};
        model.insert(key_of[id]);
        armed[id] = true;
        break;
      }
      case 3:
        timers[id]->cancel();
        disarm(id);
        break;
      case 4:
        timers[id] = std::make_unique<Timer>(queue, [&fired, id] { fired.push_back(id); });
        disarm(id);
        break;
      default: {
        const int64_t advance = static_cast<int64_t>(rng() % static_cast<uint64_t>(max_advance));
        clock.advance(milliseconds(advance));
        now += advance;
        std::vector<int> expected;
        while (!model.empty() && std::get<0>(*model.begin()) <= now) {
          const int due = std::get<2>(*model.begin());
          expected.push_back(due);
          armed[due] = false;
          model.erase(model.begin());
        }
        fired.clear();
        ASSERT_EQ(queue.expire(), expected.size()) << "step " << step;
        ASSERT_EQ(fired, expected) << "step " << step;
        break;
      }
    }
    ASSERT_EQ(queue.size(), model.size()) << "step " << step;
  }
}

TEST(TimerQueueModel, MatchesReferenceOrder) {
  // Every re-arm within the lazy slack.
  checkAgainstReferenceModel(50, 7);
}

TEST(TimerQueueModel, MatchesReferenceOrderAcrossTheLazySlack) {
  // Re-arms on both sides of the slack, earlier and later.
  checkAgainstReferenceModel(1000, 120);
}

}  // namespace
}  // namespace sluice::event
