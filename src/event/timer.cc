#include "event/timer.h"

#include <utility>

namespace sluice::event {

Timer::Timer(TimerQueue& queue, std::function<void()> callback)
    : queue_(queue), callback_(std::move(callback)) {}

Timer::~Timer() {
  // Only while expire() runs this timer's callback (so the queue is alive).
  if (heap_index_ == kFiring) queue_.firing_destroyed_ = true;
  // A timer detached by ~TimerQueue is not armed, so this never touches a
  // queue that is gone.
  cancel();
}

void Timer::arm(Duration after) {
  armAt(queue_.clock().now() + after);
}

void Timer::armAt(TimePoint deadline) {
  if (armed() && !inDueBatch()) {
    // Re-arming takes a fresh sequence: among equal deadlines the timer now
    // counts as the last one armed.
    deadline_ = deadline;
    sequence_ = queue_.next_sequence_++;
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
    return;
  }
  queue_.erase(this);
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

Duration TimerQueue::timeUntilNext() const {
  if (heap_.empty()) return Duration(-1);
  const auto left = heap_.front()->deadline_ - clock_.now();
  if (left <= TimePoint::duration::zero()) return Duration(0);
  // Round up: a wait truncated to 0 ms would spin until the deadline passes.
  return std::chrono::ceil<Duration>(left);
}

size_t TimerQueue::expire() {
  // A callback that calls expire() again would fire timers out of order.
  if (expiring_) return 0;
  const TimePoint now = clock_.now();
  // Collect the due set before running any callback (libuv does the same):
  // a callback that re-arms its timer for a deadline <= now must not make
  // this call loop forever, and ordering among the due timers stays exact.
  while (!heap_.empty() && heap_.front()->deadline_ <= now) {
    Timer* timer = heap_.front();
    removeAt(0);
    timer->heap_index_ = Timer::kDueFlag | static_cast<uint32_t>(due_.size());
    due_.push_back(timer);
  }
  expiring_ = true;
  size_t fired = 0;
  for (size_t i = 0; i < due_.size(); ++i) {
    Timer* timer = due_[i];
    if (timer == nullptr) continue;  // cancelled, re-armed or destroyed by an earlier callback
    due_[i] = nullptr;
    // The callback may destroy its own Timer, which would destroy the
    // std::function while it runs; run a moved-out copy and give it back only
    // if the timer survived (~Timer sets firing_destroyed_). It may also
    // re-arm it, which gives it a heap slot again.
    timer->heap_index_ = Timer::kFiring;
    firing_destroyed_ = false;
    std::function<void()> callback = std::move(timer->callback_);
    ++fired;
    callback();
    if (!firing_destroyed_) {
      if (timer->heap_index_ == Timer::kFiring) timer->heap_index_ = Timer::kNotArmed;
      timer->callback_ = std::move(callback);
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
  timer->sequence_ = next_sequence_++;
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
