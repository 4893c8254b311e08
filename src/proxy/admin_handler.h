// AdminHandler: the admin listener's endpoints — `/healthz` (liveness: the
// process answers), `/ready` (readiness: 503 once the process is asked to
// stop, so load balancers take it out before connections are refused) and
// `/metrics` (Prometheus text 0.0.4, or OpenMetrics 1.0.0 when the Accept
// header asks for it; rendered by ServerContext::render_metrics) and
// `/status` (JSON: generations, workers, listeners, upstream servers;
// ServerContext::render_status).
// One per request; owned by its ServerConnection.
#pragma once

#include "proxy/handler.h"
#include "proxy/server_context.h"

namespace sluice::proxy {

class AdminHandler final : public RequestHandler {
 public:
  AdminHandler(Downstream& downstream, const ServerContext& server, bool connection_draining)
      : downstream_(downstream), server_(server), connection_draining_(connection_draining) {}
  void start() override;
  void cancel(observe::RequestOutcome) override {}

 private:
  void serveMetrics();
  void serveStatus();

  Downstream& downstream_;
  const ServerContext& server_;
  bool connection_draining_;
};

}  // namespace sluice::proxy
