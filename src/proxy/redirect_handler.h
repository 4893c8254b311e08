// RedirectHandler: answers a `redirect` route with its status and a
// Location of the same path and query under the configured scheme, host
// and port (nginx's `return 308 https://$host$request_uri`), so that a
// plain listener can send clients to the TLS one. One per request; owned
// by its ServerConnection.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"
#include "proxy/handler.h"

namespace sluice::proxy {

class RedirectHandler final : public RequestHandler {
 public:
  RedirectHandler(Downstream& downstream, const config::Redirect& redirect)
      : downstream_(downstream), redirect_(redirect) {}
  void start() override;
  void cancel(observe::RequestOutcome) override {}

 private:
  Downstream& downstream_;
  const config::Redirect& redirect_;
};

// The Location for a request to `host` (maybe with a port) and origin-form
// `target`, arriving over `scheme`.
std::string redirectLocation(const config::Redirect& redirect, std::string_view scheme,
                             std::string_view host, std::string_view target);

}  // namespace sluice::proxy
