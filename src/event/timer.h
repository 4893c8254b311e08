// Timer and TimerQueue: one-shot timers in a binary min-heap ordered by
// (deadline, arm sequence), so equal deadlines fire in FIFO order.
// add/cancel/re-arm are O(log n); a re-arm that moves the deadline later by
// less than kLazySlack is O(1). A Timer is owned by its user (usually a
// connection) and must be cancelled or destroyed before its queue.
//
// Time: arm() counts from the queue's cached time, which the event loop
// refreshes once after each wait (as nginx's ngx_time_update does), so
// arming a timer never reads the clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "event/clock.h"

namespace sluice::event {

class TimerQueue;

class Timer {
 public:
  // A re-arm that moves an armed timer's deadline later by less than this
  // leaves the heap alone: the timer keeps its place, and when that place
  // comes due it is put back at the deadline it was re-armed for. nginx
  // leaves such a timer alone too (NGX_TIMER_LAZY_DELAY, 300 ms) but then
  // fires it early; this one never fires early. Idle and send timeouts are
  // pushed back by a few milliseconds on every read or write.
  static constexpr std::chrono::nanoseconds kLazySlack = std::chrono::milliseconds(300);

  // `callback`: any callable. One that is trivially copyable and no bigger
  // than a pointer (a lambda capturing `this`, as almost every user's is)
  // is kept inside the Timer; anything else is allocated once, here.
  template <typename Callback>
  Timer(TimerQueue& queue, Callback callback);
  ~Timer();  // cancels
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Fires `after` from the queue's current time; re-arms (moves) if
  // already armed.
  void arm(Duration after);
  void armAt(TimePoint deadline);
  void cancel();
  bool armed() const { return heap_index_ != kNotArmed && heap_index_ != kFiring; }
  // When it fires (the deadline it was last armed for).
  TimePoint deadline() const { return deadline_ + std::chrono::nanoseconds(lag_ns_); }

 private:
  friend class TimerQueue;
  // The callback, type-erased in two words: `thunk_` calls or destroys what
  // `state_` holds (the callable itself, or a pointer to it on the heap).
  enum class Op : uint8_t { kCall, kDestroy };
  using Thunk = void (*)(Op op, void* state);
  struct State {
    alignas(void*) unsigned char bytes[sizeof(void*)];
  };
  template <typename Callback>
  static constexpr bool kInline =
      sizeof(Callback) <= sizeof(State) && alignof(Callback) <= alignof(State) &&
      std::is_trivially_copyable_v<Callback>&& std::is_trivially_destructible_v<Callback>;

  // heap_index_ is the timer's slot in the heap, or one of these. 32 bits
  // (a queue holds fewer than 2^31 timers): every connection has a timer,
  // and an idle connection should be small.
  static constexpr uint32_t kNotArmed = 0xFFFFFFFFu;
  // Its callback is running (TimerQueue::expire): not armed, and a
  // destructor running now must tell expire().
  static constexpr uint32_t kFiring = 0xFFFFFFFEu;
  // Set while the timer sits in the batch that expire() is about to fire;
  // the low bits are its slot in TimerQueue::due_.
  static constexpr uint32_t kDueFlag = 0x80000000u;
  bool inDueBatch() const { return armed() && (heap_index_ & kDueFlag) != 0; }

  TimerQueue& queue_;
  Thunk thunk_;
  State state_;
  // The heap key: deadline, then order among equal deadlines (compared with
  // wrap-around: timers armed 2^31 arms apart are never pending together).
  TimePoint deadline_{};
  uint32_t sequence_ = 0;
  uint32_t heap_index_ = kNotArmed;
  // A lazy re-arm (kLazySlack): how much later than the key the timer is
  // really due, and the sequence it was re-armed with. The key is put right
  // when it comes due; wanted_sequence_ == sequence_ means nothing to put
  // right. 32 bits each: the slack is well under 2^32 ns.
  uint32_t lag_ns_ = 0;
  uint32_t wanted_sequence_ = 0;
};

class TimerQueue {
 public:
  explicit TimerQueue(Clock& clock) : clock_(clock), now_(clock.now()) {}
  ~TimerQueue();

  // The cached time that arm() counts from, and a fresh read of the clock
  // into it. The event loop refreshes it after every wait.
  TimePoint now() const { return now_; }
  TimePoint updateTime() { return now_ = clock_.now(); }

  // Refreshes the time; then the time until the earliest heap key (zero if
  // overdue), or negative if nothing is armed. A lazily re-armed timer can
  // make this shorter than its deadline: the wake-up then only moves it.
  Duration timeUntilNext();
  // Refreshes the time, then fireDue().
  size_t expire() {
    updateTime();
    return fireDue();
  }
  // Fires every timer whose deadline <= now(), in (deadline, sequence) order.
  // A callback may arm, cancel or destroy any timer, including itself; its
  // captures stay valid until it returns even if it destroyed its Timer.
  // The due set is fixed on entry: a timer armed by a callback (even for a
  // deadline <= now) fires on the next call, never in this one.
  // Returns how many fired.
  size_t fireDue();
  size_t size() const { return heap_.size(); }
  Clock& clock() const { return clock_; }

 private:
  friend class Timer;
  void insert(Timer* timer);
  // Puts a timer that expire() took off the heap back at the deadline and
  // sequence a lazy re-arm gave it.
  void reinsertLazy(Timer* timer);
  void erase(Timer* timer);
  void removeAt(size_t index);
  void reposition(size_t index);
  void siftUp(size_t index);
  void siftDown(size_t index);
  static bool earlier(const Timer* a, const Timer* b);

  Clock& clock_;
  TimePoint now_;
  std::vector<Timer*> heap_;
  uint32_t next_sequence_ = 0;
  // The timers expire() collected as due and is firing; a slot becomes null
  // when a callback cancels, re-arms or destroys that timer first.
  std::vector<Timer*> due_;
  bool expiring_ = false;
  // The timer whose callback is running, and whether ~Timer ran for it
  // meanwhile (fireDue() then destroys the callable and leaves the timer
  // alone).
  Timer* firing_ = nullptr;
  bool firing_destroyed_ = false;
};

template <typename Callback>
Timer::Timer(TimerQueue& queue, Callback callback) : queue_(queue) {
  if constexpr (kInline<Callback>) {
    new (state_.bytes) Callback(std::move(callback));
    thunk_ = [](Op op, void* state) {
      if (op == Op::kCall) (*std::launder(reinterpret_cast<Callback*>(state)))();
    };
  } else {
    Callback* held = new Callback(std::move(callback));
    std::memcpy(state_.bytes, &held, sizeof held);
    thunk_ = [](Op op, void* state) {
      Callback* callable;
      std::memcpy(&callable, state, sizeof callable);
      if (op == Op::kCall) {
        (*callable)();
      } else {
        delete callable;
      }
    };
  }
}

}  // namespace sluice::event
