// ClientConnection: one accepted client socket — reads and parses requests
// (keep-alive, pipelining in order), answers each through its route, enforces
// the client-side timeouts and limits, and closes cleanly. Owned by the
// worker's connection table (unique_ptr); lives on the worker's loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "buffer/buffer.h"
#include "event/event_loop.h"
#include "event/timer.h"
#include "http/request_parser.h"
#include "net/address.h"
#include "proxy/proxy_exchange.h"
#include "proxy/server_context.h"

namespace sluice::proxy {

class ClientConnection final : public event::IoHandler {
 public:
  ClientConnection(ServerContext& server, const ListenerContext& listener, int fd,
                   net::Address peer);
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Registers with the loop and arms the first header timeout.
  bool start();
  void onReady(uint32_t ready_bits) override;

  // Worker drain: close now if idle between requests, else after the response
  // in progress (which then carries `Connection: close`).
  void beginDrain();
  bool closed() const { return fd_ < 0; }
  bool idle() const;
  uint32_t requestsServed() const { return requests_; }

  // --- for the ProxyExchange of the current request ---
  event::EventLoop& loop() const { return *server_.loop; }
  const net::Address& peer() const { return peer_; }
  Buffer& output() { return out_; }
  bool outputAboveHighWatermark() const;
  // Writes queued output now; false if the connection closed meanwhile.
  bool flushOutput();
  // Whether the response now being sent may leave the connection open: not
  // once the worker started draining, even mid-request.
  bool keepAlive() const { return keep_alive_ && !draining_ && !server_.draining; }
  // The response is close-delimited: no further request on this connection.
  void closeAfterResponse() { keep_alive_ = false; }
  // For the access log: what the upstream answered and how much went out.
  void noteUpstreamResponse(int status, std::string upstream) {
    request().response_status = status;
    request().upstream = std::move(upstream);
  }
  void countResponseBody(size_t bytes) { request().response_body_bytes += bytes; }
  // The upstream send buffer drained: parse and forward more request body.
  void resumeInput();
  // The response was fully queued. `request_complete` says whether the client
  // had sent the whole request (if not, the connection cannot be reused).
  void onExchangeDone(bool request_complete);
  // No response could be obtained: answer with this status.
  void respondFromExchange(int status);
  // The response broke after it started: close without pretending it ended.
  void abortFromExchange(const std::string& reason);

 private:
  // Why the connection is (not) reading: inspectable state rather than flags.
  enum class Phase {
    kWaitingHead,       // idle between requests or reading a head
    kReadingBody,       // reading a request body (forwarded, or discarded if answered)
    kAwaitingResponse,  // request read in full; its response is still coming
    kFinishing,         // last response queued; no more requests are read
    kLingering,         // response sent, write side shut; draining input until EOF
  };

  http::RequestParser& parser() { return request().parser; }
  bool parserStarted() const { return request_ && request_->parser.started(); }
  void handleReadable();
  void handleWritable();
  // Feeds buffered input to the parser and acts on each event.
  void processInput();
  void onRequestHead();
  // `upstream_target`: the origin-form target to send (RequestPath).
  void startProxy(const config::Route& route, std::string_view upstream_target);
  void onRequestComplete();
  // Both the request and its response are done: next request or close.
  void finishRequest();
  void destroyExchangeLater();
  void respondError(int status, const std::string& reason);
  void queueResponse(const config::DirectResponse& response, bool head_only);
  void queueError(int status, bool head_only);
  void answerAdmin(const http::RequestHead& head, std::string_view path);
  // Writes the access log line for the request just answered.
  void logAccess(bool with_request = true);
  // Writes queued output; returns false if the connection was closed.
  bool flush();
  void afterFlush();
  void armReadTimer();
  void onReadTimeout();
  void onSendTimeout();
  void startLingering();
  void close(const char* why);
  std::string describePeer() const;

  ServerContext& server_;
  const ListenerContext& listener_;
  int fd_;
  net::Address peer_;
  // What exists only while a request is in progress: created by its first
  // byte, dropped when the connection goes idle, so that an idle keep-alive
  // connection costs a few hundred bytes.
  struct RequestState {
    explicit RequestState(const http::ParserLimits& limits) : parser(limits) {}
    http::RequestParser parser;
    // For the access log line.
    int response_status = 0;
    uint64_t response_body_bytes = 0;
    std::string upstream;
    std::chrono::system_clock::time_point wall_start;
    event::TimePoint start;
  };
  RequestState& request();
  // Back to the worker's small free list (parsers reused warm, without a
  // malloc per request on a keep-alive connection).
  void releaseRequestState();
  static std::vector<std::unique_ptr<RequestState>>& parkedRequestStates();
  std::unique_ptr<RequestState> request_;
  Buffer in_;
  Buffer out_;
  event::Timer read_timer_;
  std::unique_ptr<event::Timer> send_timer_;  // created the first time a write blocks
  Phase phase_ = Phase::kWaitingHead;
  uint32_t requests_ = 0;
  std::unique_ptr<ProxyExchange> exchange_;  // the request being proxied
  bool keep_alive_ = true;                   // of the request being answered
  bool request_done_ = false;                // the current request was read in full
  bool response_done_ = false;               // its response was queued in full
  bool header_timer_armed_ = false;          // the head deadline runs from its first byte
  bool peer_closed_ = false;                 // read side reached EOF
  bool read_paused_ = false;                 // stopped reading for backpressure; resume on drain
  bool write_blocked_ = false;               // last write hit EAGAIN
  bool draining_ = false;
};

}  // namespace sluice::proxy
