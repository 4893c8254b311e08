// The observers every worker hangs off the "request finished" event: the
// access log line, and the request counters in shared memory. Owned by the
// worker; live on its loop.
#pragma once

#include "observe/access_log.h"
#include "observe/counters.h"
#include "observe/request_record.h"

namespace sluice::observe {

class AccessLogObserver final : public RequestObserver {
 public:
  explicit AccessLogObserver(AccessLog& log) : log_(log) {}
  void onRequestFinished(const RequestRecord& record) override;

 private:
  AccessLog& log_;
};

class CountingObserver final : public RequestObserver {
 public:
  // `routes` is indexed by config::Route::index, `servers` by
  // config::UpstreamServer::index (either may be null).
  CountingObserver(WorkerCounters& worker, RouteCounters* routes, ServerCounters* servers = nullptr)
      : worker_(worker), routes_(routes), servers_(servers) {}
  void onRequestFinished(const RequestRecord& record) override;

 private:
  WorkerCounters& worker_;
  RouteCounters* routes_;
  ServerCounters* servers_;
};

}  // namespace sluice::observe
