#include "observe/request_observers.h"

#include <algorithm>

namespace sluice::observe {

void AccessLogObserver::onRequestFinished(const RequestRecord& record) {
  if (!log_.enabled()) return;
  log_.append(record);
}

void CountingObserver::onRequestFinished(const RequestRecord& record) {
  add(worker_.requests);
  add(worker_.bytes_received, record.bytes_received);
  add(worker_.bytes_sent, record.bytes_sent);
  if (record.server_index >= 0 && servers_ != nullptr && record.upstream_first_byte.count() >= 0) {
    servers_[record.server_index].response_time.observe(
        static_cast<uint64_t>(record.upstream_first_byte.count()));
  }
  if (record.route_index < 0 || routes_ == nullptr) return;
  RouteCounters& route = routes_[record.route_index];
  add(route.requests[static_cast<size_t>(statusClassOf(record.status))]);
  add(route.bytes_received, record.bytes_received);
  add(route.bytes_sent, record.bytes_sent);
  route.duration.observe(static_cast<uint64_t>(std::max<int64_t>(0, record.duration.count())));
}

}  // namespace sluice::observe
