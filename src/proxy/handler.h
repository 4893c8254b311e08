// The seam between a client connection and what answers its requests. The
// ServerConnection parses a request and hands it to one RequestHandler chosen
// by the router (proxy to an upstream, a direct response, the admin
// endpoints); the handler answers through the Downstream interface, which
// owns framing, keep-alive and the "request finished" record. A handler lives
// for one request, owned by its ServerConnection, and is destroyed at the end
// of a loop pass (EventLoop::deferDelete) once the request has finished.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "buffer/buffer.h"
#include "event/event_loop.h"
#include "http/framing.h"
#include "http/message.h"
#include "net/address.h"
#include "net/transport.h"
#include "observe/request_record.h"

namespace sluice::proxy {

// What a handler can learn about and do to the client side of its request.
class Downstream {
 public:
  virtual const http::RequestHead& request() const = 0;
  // The client: the socket's peer, or the source a PROXY header gave.
  virtual const net::Address& peer() const = 0;
  // The address the client connected to (a PROXY header's destination).
  virtual const net::Address& localAddress() = 0;
  virtual const net::TransportInfo& transportInfo() const = 0;
  virtual event::EventLoop& loop() const = 0;
  // The client has sent the whole request.
  virtual bool requestComplete() const = 0;
  // Its trailer fields, once complete (chunked requests).
  virtual const std::vector<http::Header>& requestTrailers() const = 0;

  // --- the response (in this order) ---
  // Writes the status line and returns the buffer to append end-to-end
  // header lines to ("Name: value\r\n"; never framing or Connection).
  virtual Buffer& beginResponse(int status, std::string_view reason) = 0;
  // Ends the head: framing and Connection headers as the request and the
  // connection's state allow.
  virtual void endResponseHead(http::BodySize body) = 0;
  virtual void sendBody(std::string_view data) = 0;
  // The response is complete, with the upstream's trailer fields if any
  // (passed on when the client accepts trailers). The handler must not use
  // the Downstream after.
  virtual void endResponse(const std::vector<http::Header>* trailers = nullptr) = 0;
  // A whole response of sluice's own (respond routes, admin). Final.
  virtual void sendLocalResponse(int status, std::string_view body,
                                 const std::vector<std::pair<std::string, std::string>>& headers,
                                 observe::RequestOutcome outcome) = 0;
  // No response could be obtained: sluice answers `status` itself. Final.
  virtual void sendError(int status, observe::RequestOutcome outcome, std::string_view reason) = 0;
  // The response started but cannot be completed: the only honest signal
  // left is to close the connection without ending the body. Final.
  virtual void abortResponse(observe::RequestOutcome outcome, std::string_view reason) = 0;
  // Interim `100 Continue` (sluice answers Expect itself).
  virtual void sendContinue() = 0;

  // --- a switch of protocols (Upgrade, WebSocket) ---
  // After beginResponse(101, …) and its header lines (Upgrade, Connection:
  // upgrade included): ends the head and turns the connection into a tunnel;
  // the client's bytes then arrive through RequestHandler::onDownstreamData.
  virtual void switchProtocols() = 0;
  virtual void sendTunnelData(std::string_view bytes) = 0;
  // The upstream finished sending: our FIN to the client once its bytes are out.
  virtual void closeTunnelWrite() = 0;
  // The tunnel is over (both sides done, an error, the idle timeout). Final.
  virtual void endTunnel(observe::RequestOutcome outcome, std::string_view reason) = 0;
  // The client output is above its high watermark (slow reader).
  virtual bool blocked() const = 0;

  // --- request body flow ---
  // Stop / resume delivering request body (the upstream is slow to take it).
  virtual void pauseRequestBody() = 0;
  virtual void resumeRequestBody() = 0;

  // --- the record of this request, filled as it goes ---
  virtual observe::RequestRecord& record() = 0;
  // Kept by the connection for the record's lifetime.
  virtual void setRequestId(std::string_view id) = 0;
  // The request's host as routed: lower-cased, without port (${host}).
  virtual std::string_view requestHost() const = 0;

 protected:
  ~Downstream() = default;
};

class RequestHandler : public event::DeferredDeletable {
 public:
  // The request head is complete (downstream.request()).
  virtual void start() = 0;
  virtual void onRequestBody(std::string_view piece) { (void)piece; }
  virtual void onRequestComplete() {}
  // The client's output crossed its high / fell below its low watermark.
  virtual void onDownstreamBlocked() {}
  virtual void onDownstreamUnblocked() {}
  // After switchProtocols(): bytes from the client, and its FIN.
  virtual void onDownstreamData(std::string_view bytes) { (void)bytes; }
  virtual void onDownstreamEof() {}
  // The client side ends the exchange before the handler finished (the
  // client went away, timed out, or sent an invalid body): stop now and
  // release everything; never touch the Downstream again.
  virtual void cancel(observe::RequestOutcome why) = 0;
};

}  // namespace sluice::proxy
