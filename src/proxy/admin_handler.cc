#include "proxy/admin_handler.h"

#include "proxy/router.h"

namespace sluice::proxy {

void AdminHandler::start() {
  const http::RequestHead& request = downstream_.request();
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "text/plain"},
                                                              {"Cache-Control", "no-store"}};
  const bool not_ready = server_.draining || connection_draining_ ||
                         (server_.not_ready != nullptr && server_.not_ready->load());
  // The same normalized path the routes of other listeners match.
  const RequestPath request_path = resolveRequestPath(request.target, server_.config->paths);
  const std::string_view path = request_path.match_path;
  if (!request_path.ok) {
    downstream_.sendError(400, observe::RequestOutcome::kBadRequest, request_path.error);
  } else if (request.method != "GET" && request.method != "HEAD") {
    headers.emplace_back("Allow", "GET, HEAD");
    downstream_.sendLocalResponse(405, "405 Method Not Allowed\n", headers,
                                  observe::RequestOutcome::kOk);
  } else if (path == "/healthz") {
    downstream_.sendLocalResponse(200, "ok\n", headers, observe::RequestOutcome::kOk);
  } else if (path == "/metrics" && server_.render_metrics) {
    serveMetrics();
  } else if (path == "/status" && server_.render_status) {
    serveStatus();
  } else if (path == "/ready") {
    downstream_.sendLocalResponse(not_ready ? 503 : 200, not_ready ? "draining\n" : "ready\n",
                                  headers, observe::RequestOutcome::kOk);
  } else {
    downstream_.sendLocalResponse(404, "404 Not Found\n", headers, observe::RequestOutcome::kOk);
  }
}

void AdminHandler::serveStatus() {
  std::string& body = server_.status_buffer;
  body.clear();
  const int status = server_.render_status(&body);
  if (status != 200) {
    const std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Type", "text/plain"}, {"Cache-Control", "no-store"}, {"Retry-After", "1"}};
    downstream_.sendLocalResponse(status,
                                  "503 a newer generation of workers serves /status; retry\n",
                                  headers, observe::RequestOutcome::kOk);
    return;
  }
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
  downstream_.sendLocalResponse(200, body, headers, observe::RequestOutcome::kOk);
}

void AdminHandler::serveMetrics() {
  const http::RequestHead& request = downstream_.request();
  const http::Header* accept = request.find("accept");
  const observe::MetricsFormat format =
      observe::metricsFormatFor(accept != nullptr ? std::string_view(accept->value) : "");
  // One buffer per worker, reused: its capacity stays from the last scrape.
  std::string& body = server_.metrics_buffer;
  body.clear();
  const int status = server_.render_metrics(format, &body);
  if (status != 200) {
    const std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Type", "text/plain"}, {"Cache-Control", "no-store"}, {"Retry-After", "1"}};
    downstream_.sendLocalResponse(status,
                                  "503 a newer generation of workers serves /metrics; retry\n",
                                  headers, observe::RequestOutcome::kOk);
    return;
  }
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", std::string(observe::metricsContentType(format))},
      {"Cache-Control", "no-store"}};
  downstream_.sendLocalResponse(200, body, headers, observe::RequestOutcome::kOk);
}

}  // namespace sluice::proxy
