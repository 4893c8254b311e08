#include "proxy/redirect_handler.h"

#include <utility>
#include <vector>

#include "http/path.h"

namespace sluice::proxy {
namespace {

// "example.com:8080" → "example.com"; "[::1]:8080" → "[::1]".
std::string_view withoutPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  const size_t colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

}  // namespace

std::string redirectLocation(const config::Redirect& redirect, std::string_view scheme,
                             std::string_view host, std::string_view target) {
  const std::string_view to_scheme =
      redirect.scheme.empty() ? scheme : std::string_view(redirect.scheme);
  const std::string_view to_host =
      redirect.host.empty() ? withoutPort(host) : std::string_view(redirect.host);
  std::string port;
  if (redirect.port) {
    // (Appended, not `":" + to_string()`: g++ 12 warns on that falsely.)
    port.push_back(':');
    port.append(std::to_string(*redirect.port));
  }
  std::string location;
  location.reserve(to_scheme.size() + 3 + to_host.size() + port.size() + target.size() + 1);
  location.append(to_scheme).append("://").append(to_host).append(port);
  location.append(target.empty() ? std::string_view("/") : target);
  return location;
}

void RedirectHandler::start() {
  const http::RequestHead& request = downstream_.request();
  const std::string location =
      redirectLocation(redirect_, downstream_.transportInfo().secure ? "https" : "http",
                       downstream_.requestHost(), http::originFormPart(request.target, nullptr));
  const std::vector<std::pair<std::string, std::string>> headers = {{"Location", location},
                                                                    {"Content-Type", "text/plain"}};
  downstream_.sendLocalResponse(redirect_.status, "Moved to " + location + "\n", headers,
                                observe::RequestOutcome::kOk);
}

}  // namespace sluice::proxy
