// Timer and TimerQueue: one-shot timers in a binary min-heap ordered by
// (deadline, insertion sequence), so equal deadlines fire in FIFO order.
// add/cancel/re-arm are O(log n). A Timer is owned by its user (usually a
// connection) and must be cancelled or destroyed before its queue.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "event/clock.h"

namespace sluice::event {

class TimerQueue;

class Timer {
 public:
  Timer(TimerQueue& queue, std::function<void()> callback);
  ~Timer();  // cancels
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Fires `after` from now; re-arms (moves) if already armed.
  void arm(Duration after);
  void armAt(TimePoint deadline);
  void cancel();
  bool armed() const { return heap_index_ != kNotArmed && heap_index_ != kFiring; }
  TimePoint deadline() const { return deadline_; }

 private:
  friend class TimerQueue;
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
  std::function<void()> callback_;
  TimePoint deadline_{};
  // Order among equal deadlines; compared with wrap-around (timers armed
  // 2^31 arms apart are never pending together).
  uint32_t sequence_ = 0;
  uint32_t heap_index_ = kNotArmed;
};

class TimerQueue {
 public:
  explicit TimerQueue(Clock& clock) : clock_(clock) {}
  ~TimerQueue();

  // Time until the earliest deadline (zero if overdue), or negative if none.
  Duration timeUntilNext() const;
  // Fires every timer whose deadline <= now, in (deadline, sequence) order.
  // A callback may arm, cancel or destroy any timer, including itself; its
  // captures stay valid until it returns even if it destroyed its Timer.
  // The due set is fixed on entry: a timer armed by a callback (even for a
  // deadline <= now) fires on the next call, never in this one.
  // Returns how many fired.
  size_t expire();
  size_t size() const { return heap_.size(); }
  Clock& clock() const { return clock_; }

 private:
  friend class Timer;
  void insert(Timer* timer);
  void erase(Timer* timer);
  void removeAt(size_t index);
  void reposition(size_t index);
  void siftUp(size_t index);
  void siftDown(size_t index);
  static bool earlier(const Timer* a, const Timer* b);

  Clock& clock_;
  std::vector<Timer*> heap_;
  uint32_t next_sequence_ = 0;
  // The timers expire() collected as due and is firing; a slot becomes null
  // when a callback cancels, re-arms or destroys that timer first.
  std::vector<Timer*> due_;
  bool expiring_ = false;
  // Set by ~Timer when the timer whose callback is running is destroyed by
  // it (expire() then leaves the timer alone).
  bool firing_destroyed_ = false;
};

}  // namespace sluice::event
