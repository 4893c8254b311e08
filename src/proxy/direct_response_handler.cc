#include "proxy/direct_response_handler.h"

namespace sluice::proxy {

void DirectResponseHandler::start() {
  downstream_.sendLocalResponse(response_.status, response_.body, response_.headers,
                                observe::RequestOutcome::kOk);
}

}  // namespace sluice::proxy
