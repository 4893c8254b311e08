// Transport: how a Connection moves bytes over its file descriptor — a plain
// socket (RawTransport), TLS (added by the TLS work), or an in-memory pair in
// tests (MemoryTransport). The Connection owns exactly one; single-threaded,
// on the loop of its Connection.
//
// Every call is non-blocking and returns kAgain with the readiness that
// resumes it. A TLS transport may answer a read with "wait for writable" (a
// record is half written) and a write with "wait for readable"; the
// Connection retries each blocked operation on the readiness it asked for.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "buffer/buffer.h"
#include "core/io_result.h"
#include "net/address.h"

namespace sluice::net {

// What the transport learnt while connecting (TLS: protocol, cipher, SNI;
// empty for plain sockets). Filled by the transport, read for logs/headers.
struct TransportInfo {
  bool secure = false;
  std::string protocol;      // "TLSv1.3"
  std::string cipher;        // "TLS_AES_128_GCM_SHA256"
  std::string server_name;   // SNI the client sent
  std::string peer_subject;  // verified client certificate subject (mTLS)
  bool resumed = false;      // the handshake resumed an earlier session
  // That certificate as PEM, URL-encoded (nginx's $ssl_client_escaped_cert),
  // for routes with client_cert_header.
  std::string peer_certificate;
  // From a PROXY protocol header: who the client really is, and the address
  // it connected to (the load balancer's). Unset without such a header, or
  // when it said LOCAL/UNKNOWN.
  std::optional<Address> proxied_source;
  std::optional<Address> proxied_destination;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // The descriptor the event loop watches for this transport's readiness.
  virtual int fd() const = 0;

  // Completes establishment: the non-blocking connect of an outgoing socket,
  // or a TLS handshake. kOk (bytes = 0) once done — "connected" means ready
  // for application bytes; kAgain with the readiness to wait for; kError
  // with an errno (and reason() for the log). Called until it says kOk.
  virtual IoResult handshake() = 0;

  // Reads at most `max` bytes into the tail of `into`.
  virtual IoResult read(Buffer& into, size_t max) = 0;
  // Writes from the front of `from`, consuming what was written.
  virtual IoResult write(Buffer& from) = 0;
  // Starts a graceful close of our sending side (FIN; TLS close_notify).
  // kOk when done, kAgain when it needs I/O first, kError otherwise.
  virtual IoResult shutdownWrite() = 0;

  // Human-readable cause of the last kError, when the errno alone does not
  // say it (a certificate that failed verification, say).
  virtual std::string reason() const { return {}; }
  virtual const TransportInfo& info() const {
    static const TransportInfo kPlain;
    return kPlain;
  }
  // Drops memory held for an idle connection (TLS record buffers). Called
  // when a connection goes idle between requests.
  virtual void releaseIdleMemory() {}
};

}  // namespace sluice::net
