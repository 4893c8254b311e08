// DirectResponseHandler: answers a `respond` route with its configured
// status, headers and body; any request body is read and discarded by the
// connection. One per request; owned by its ServerConnection.
#pragma once

#include "config/config.h"
#include "proxy/handler.h"

namespace sluice::proxy {

class DirectResponseHandler final : public RequestHandler {
 public:
  DirectResponseHandler(Downstream& downstream, const config::DirectResponse& response)
      : downstream_(downstream), response_(response) {}
  void start() override;
  void cancel(observe::RequestOutcome) override {}

 private:
  Downstream& downstream_;
  const config::DirectResponse& response_;
};

}  // namespace sluice::proxy
