// TlsTransport: a net::Transport that speaks TLS (server side) over an inner
// transport's socket — the connection layer's OpenSSL implementation. Its
// handshake() drives SSL_do_handshake non-blocking (a want-read during a
// write and the reverse become kAgain with the readiness OpenSSL wants);
// before it, a first byte that cannot start a TLS record but starts an HTTP
// method is answered with a plain-text 400 (nginx answers 497) and the
// connection refused. shutdownWrite() sends close_notify, then the FIN.
// Owned by its Connection; single-threaded.
#pragma once

#include <openssl/bio.h>

#include <memory>
#include <string>

#include "net/transport.h"
#include "tls/client_context.h"
#include "tls/server_context.h"

namespace sluice::tls {

class TlsTransport final : public net::Transport {
 public:
  // Server side; `context` outlives the transport (the worker's listener
  // holds it).
  TlsTransport(std::unique_ptr<net::Transport> inner, const ServerContext& context);
  // Client side (to an upstream): `ssl` is in connect state with its SNI
  // and verification set (ClientContext::newSsl); the transport owns it.
  TlsTransport(std::unique_ptr<net::Transport> inner, SSL* client_ssl);
  ~TlsTransport() override;

  int fd() const override { return inner_->fd(); }
  IoResult handshake() override;
  IoResult read(Buffer& into, size_t max) override;
  IoResult write(Buffer& from) override;
  IoResult shutdownWrite() override;
  std::string reason() const override { return reason_.empty() ? inner_->reason() : reason_; }
  const net::TransportInfo& info() const override { return info_; }

 private:
  // Maps an SSL_* failure to an IoResult; `eof_ok`: a clean close_notify
  // or EOF reads as kEof.
  IoResult fromSslError(int ret, const char* what);
  // True (and the 400 written) if the first byte says plain HTTP.
  bool refusedPlainHttp();
  // Gives the SSL its socket BIO (sluice's own, see the .cc) and turns on
  // read-ahead, so that read() can say "drained" when the BIO's last read
  // came back short and the Connection need not read again only to get
  // EAGAIN. False if the BIO cannot be made.
  bool attachSocket();
  friend struct SocketBio;

  std::unique_ptr<net::Transport> inner_;
  SSL* ssl_ = nullptr;
  bool server_ = true;
  bool inner_done_ = false;
  bool checked_first_byte_ = false;
  bool close_notify_sent_ = false;
  // The socket BIO's most recent read returned less than OpenSSL asked for
  // (with read-ahead it asks for a whole buffer): the socket was empty then.
  // Set by SocketBio::read.
  bool socket_read_short_ = false;
  std::string reason_;
  net::TransportInfo info_;
};

}  // namespace sluice::tls
