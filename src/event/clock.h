// Clock: where the event loop reads "now". SystemClock for production,
// ManualClock for tests that step time without sleeping.
// Owned by whoever creates the loop; must outlive it.
#pragma once

#include <chrono>

namespace sluice::event {

using Duration = std::chrono::milliseconds;
using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

// Monotonic time (CLOCK_MONOTONIC via steady_clock).
class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  static SystemClock& instance();
};

// Time that only moves when a test says so.
class ManualClock final : public Clock {
 public:
  TimePoint now() const override { return now_; }
  void advance(Duration d) { now_ += d; }

 private:
  TimePoint now_{std::chrono::hours(1)};
};

}  // namespace sluice::event
