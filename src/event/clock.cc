#include "event/clock.h"

namespace sluice::event {

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

}  // namespace sluice::event
