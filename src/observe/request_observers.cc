#include "observe/request_observers.h"

#include <algorithm>

namespace sluice::observe {

void AccessLogObserver::onRequestFinished(const RequestRecord& record) {
  if (!log_.enabled()) return;
  AccessRecord line;
  line.client_ip = record.client_ip;
  line.method = record.method;
  line.target = record.target;
  line.version_minor = record.version_minor;
  line.status = record.status;
  line.body_bytes = record.body_bytes_sent;
  line.referer = record.referer;
  line.user_agent = record.user_agent;
  line.upstream = record.server;
  line.started = record.started;
  line.duration = record.duration;
  line.tls_protocol = record.tls_protocol;
  line.tls_cipher = record.tls_cipher;
  line.tls_server_name = record.tls_server_name;
  line.tls_client_subject = record.tls_client_subject;
  log_.append(line);
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
