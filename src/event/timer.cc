#include "event/timer.h"

#include <cstring>
#include <utility>

namespace sluice::event {

Timer::~Timer() {
  if (heap_index_ == kNotArmed) {
    // Not armed and not firing: the queue may even be gone (a timer
    // detached by ~TimerQueue), so it is not touched.
    thunk_(Op::kDestroy, state_.bytes);
    return;
  }
  // Armed, due or firing: the queue is alive.
  if (queue_.firing_ == this) {
    // Destroyed by its own callback (which may have re-armed it first):
    // the running callable is fireDue()'s to destroy once it returns.
    queue_.firing_destroyed_ = true;
    cancel();
    return;
  }
  thunk_(Op::kDestroy, state_.bytes);
  cancel();
}

void Timer::arm(Duration after) {
  armAt(queue_.now() + after);
}

void Timer::armAt(TimePoint deadline) {
  if (armed() && !inDueBatch()) {
    // Re-arming takes a fresh sequence: among equal deadlines the timer now
    // counts as the last one armed.
    const auto later_by = deadline - deadline_;
    if (later_by >= later_by.zero() && later_by < kLazySlack) {
      lag_ns_ = static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(later_by).count());
      wanted_sequence_ = queue_.next_sequence_++;
      return;
    }
    deadline_ = deadline;
    lag_ns_ = 0;
    sequence_ = wanted_sequence_ = queue_.next_sequence_++;
    queue_.reposition(heap_index_);
    return;
  }
  cancel();
  deadline_ = deadline;
  queue_.insert(this);
}

void Timer::cancel() {
  if (!armed()) return;
  if (inDueBatch()) {
    queue_.due_[heap_index_ & ~kDueFlag] = nullptr;
    heap_index_ = kNotArmed;
  } else {
    queue_.erase(this);
  }
  // Re-armed and cancelled by its own running callback: still firing.
  if (queue_.firing_ == this) heap_index_ = kFiring;
}

TimerQueue::~TimerQueue() {
  // Timers outliving their queue break the ownership rule in timer.h; detach
  // them anyway so their destructors do not write into freed memory.
  for (Timer* timer : heap_)
    timer->heap_index_ = Timer::kNotArmed;
  for (Timer* timer : due_) {
    if (timer != nullptr) timer->heap_index_ = Timer::kNotArmed;
  }
}

Duration TimerQueue::timeUntilNext() {
  updateTime();
  if (heap_.empty()) return Duration(-1);
  const auto left = heap_.front()->deadline_ - now_;
  if (left <= TimePoint::duration::zero()) return Duration(0);
  // Round up: a wait truncated to 0 ms would spin until the deadline passes.
  return std::chrono::ceil<Duration>(left);
}

size_t TimerQueue::fireDue() {
  // A callback that calls fireDue() again would fire timers out of order.
  if (expiring_) return 0;
  const TimePoint now = now_;
  // Collect the due set before running any callback (libuv does the same):
  // a callback that re-arms its timer for a deadline <= now must not make
  // this call loop forever, and ordering among the due timers stays exact.
  while (!heap_.empty() && heap_.front()->deadline_ <= now) {
    Timer* timer = heap_.front();
    removeAt(0);
    if (timer->wanted_sequence_ != timer->sequence_) {
      // Lazily re-armed: back in at its real key, and collected from there
      // if that is due too.
      reinsertLazy(timer);
      continue;
    }
    timer->heap_index_ = Timer::kDueFlag | static_cast<uint32_t>(due_.size());
    due_.push_back(timer);
  }
  expiring_ = true;
  size_t fired = 0;
  for (size_t i = 0; i < due_.size(); ++i) {
    Timer* timer = due_[i];
    if (timer == nullptr) continue;  // cancelled, re-armed or destroyed by an earlier callback
    due_[i] = nullptr;
    // The callback may destroy its own Timer while it runs: call a copy of
    // the callback's two words (for an inline callable, its captures), and
    // if ~Timer said it ran (firing_destroyed_), destroy what they hold
    // afterwards. It may also re-arm it, which gives it a heap slot again.
    timer->heap_index_ = Timer::kFiring;
    firing_ = timer;
    firing_destroyed_ = false;
    const Timer::Thunk thunk = timer->thunk_;
    Timer::State state;
    std::memcpy(state.bytes, timer->state_.bytes, sizeof state.bytes);
    ++fired;
    thunk(Timer::Op::kCall, state.bytes);
    firing_ = nullptr;
    if (firing_destroyed_) {
      thunk(Timer::Op::kDestroy, state.bytes);
    } else if (timer->heap_index_ == Timer::kFiring) {
      timer->heap_index_ = Timer::kNotArmed;
    }
  }
  due_.clear();
  expiring_ = false;
  return fired;
}

bool TimerQueue::earlier(const Timer* a, const Timer* b) {
  if (a->deadline_ != b->deadline_) return a->deadline_ < b->deadline_;
  return static_cast<int32_t>(a->sequence_ - b->sequence_) < 0;
}

void TimerQueue::insert(Timer* timer) {
  timer->sequence_ = timer->wanted_sequence_ = next_sequence_++;
  timer->lag_ns_ = 0;
  timer->heap_index_ = static_cast<uint32_t>(heap_.size());
  heap_.push_back(timer);
  siftUp(timer->heap_index_);
}

void TimerQueue::reinsertLazy(Timer* timer) {
  timer->deadline_ += std::chrono::nanoseconds(timer->lag_ns_);
  timer->lag_ns_ = 0;
  timer->sequence_ = timer->wanted_sequence_;
  timer->heap_index_ = static_cast<uint32_t>(heap_.size());
  heap_.push_back(timer);
  siftUp(timer->heap_index_);
}

void TimerQueue::erase(Timer* timer) {
  removeAt(timer->heap_index_);
}

void TimerQueue::removeAt(size_t index) {
  Timer* removed = heap_[index];
  removed->heap_index_ = Timer::kNotArmed;
  Timer* last = heap_.back();
  heap_.pop_back();
  if (last == removed) return;
  heap_[index] = last;
  last->heap_index_ = static_cast<uint32_t>(index);
  reposition(index);
}

void TimerQueue::reposition(size_t index) {
  if (index > 0 && earlier(heap_[index], heap_[(index - 1) / 2])) {
    siftUp(index);
  } else {
    siftDown(index);
  }
}

void TimerQueue::siftUp(size_t index) {
  Timer* timer = heap_[index];
  while (index > 0) {
    const size_t parent = (index - 1) / 2;
    if (!earlier(timer, heap_[parent])) break;
    heap_[index] = heap_[parent];
    heap_[index]->heap_index_ = static_cast<uint32_t>(index);
    index = parent;
  }
  heap_[index] = timer;
  timer->heap_index_ = static_cast<uint32_t>(index);
}

void TimerQueue::siftDown(size_t index) {
  Timer* timer = heap_[index];
  const size_t size = heap_.size();
  while (true) {
    size_t child = 2 * index + 1;
    if (child >= size) break;
    if (child + 1 < size && earlier(heap_[child + 1], heap_[child])) ++child;
    if (!earlier(heap_[child], timer)) break;
    heap_[index] = heap_[child];
    heap_[index]->heap_index_ = static_cast<uint32_t>(index);
    index = child;
  }
  heap_[index] = timer;
  timer->heap_index_ = static_cast<uint32_t>(index);
}

}  // namespace sluice::event
