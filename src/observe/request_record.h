// RequestRecord: everything known about one request when it finishes — the
// single "request finished" event. The server connection fills it as the
// request goes and hands it to every RequestObserver once (access log,
// counters, later metrics); nothing else logs or counts a request.
// Value type, valid only during the observer call (its views point into the
// connection's state).
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace sluice::observe {

// How the request ended, as an operator needs to tell them apart.
enum class RequestOutcome : uint8_t {
  kOk,                   // a complete response was sent
  kBadRequest,           // sluice refused the request (4xx/5xx it generated itself)
  kClientAbort,          // the client went away before the response ended
  kClientTimeout,        // the client was too slow (head, body or send timeout)
  kUpstreamUnavailable,  // no server could be reached (connect failures, none left)
  kUpstreamTimeout,      // connect, response or send to the upstream timed out
  kUpstreamReset,        // the upstream closed or reset before its response ended
  kUpstreamInvalid,      // the upstream's response was malformed
  kDraining,             // the connection was closed by a draining worker
  kLimited,              // refused by rate_limit or connections_per_client (429)
};
const char* outcomeName(RequestOutcome outcome);

struct RequestRecord {
  // Where it came from.
  std::string_view listener;  // the listener's name
  std::string_view client_ip;
  uint16_t client_port = 0;
  std::string_view request_id;
  // What it asked (empty when the request line could not be parsed).
  std::string_view method;
  std::string_view target;
  int version_minor = 1;
  std::string_view host;
  std::string_view referer;
  std::string_view user_agent;
  // How it was routed.
  int32_t route_index = -1;   // config::Route::index, -1 = no route
  std::string_view upstream;  // upstream name, empty when sluice answered itself
  int32_t server_index = -1;  // config::UpstreamServer::index of the last attempt
  std::string_view server;    // its address text
  uint32_t attempts = 0;      // upstream attempts (retries + 1), 0 = none
  // What it got.
  int status = 0;               // sent to the client; 0 = nothing was sent
  int upstream_status = 0;      // the upstream's final status, 0 = none
  uint64_t bytes_received = 0;  // from the client for this request, head included
  uint64_t bytes_sent = 0;      // to the client, head included
  uint64_t body_bytes_sent = 0;
  RequestOutcome outcome = RequestOutcome::kOk;
  // When.
  std::chrono::system_clock::time_point started;      // wall clock, for logs
  std::chrono::microseconds duration{0};              // first byte in to last byte queued
  std::chrono::microseconds upstream_connect{-1};     // -1 = no connect was made
  std::chrono::microseconds upstream_first_byte{-1};  // request sent → first response byte
  // TLS listeners only (empty otherwise).
  std::string_view tls_protocol;
  std::string_view tls_cipher;
  std::string_view tls_server_name;
  std::string_view tls_client_subject;  // verified client certificate (mTLS)
};

class RequestObserver {
 public:
  virtual void onRequestFinished(const RequestRecord& record) = 0;

 protected:
  ~RequestObserver() = default;
};

}  // namespace sluice::observe
