// ClientContext: the OpenSSL client side for one upstream's `tls:` — an
// SSL_CTX that verifies the server by default (the system's CA store, or
// `ca`), and the settings each new connection needs (the name to send as
// SNI and to check the certificate against, or the server's IP address).
// Built by the worker when it starts; shared by the upstream's
// connections; single-threaded.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "tls/settings.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

namespace sluice::tls {

class ClientContext {
 public:
  static std::unique_ptr<ClientContext> create(const ClientSettings& settings, std::string* error);
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  // A client SSL for a connection to `ip` (the server's address text).
  // The certificate is checked against server_name if set, else against
  // `dns_name` (the name the address was resolved from) if not empty, else
  // against the IP (IP SANs); the same name goes in SNI.
  SSL* newSsl(const std::string& ip, const std::string& dns_name = {}) const;
  const ClientSettings& settings() const { return settings_; }

 private:
  explicit ClientContext(ClientSettings settings) : settings_(std::move(settings)) {}
  static int onNewSession(SSL* ssl, SSL_SESSION* session);
  ClientSettings settings_;
  SSL_CTX* ctx_ = nullptr;
  // Session resumption to upstreams: the last session per server (address
  // and the name verified), offered on the next connection to it, so a new
  // connection costs an abbreviated handshake (nginx's
  // proxy_ssl_session_reuse). One worker's; bounded by kMaxSessions.
  static constexpr size_t kMaxSessions = 4096;
  mutable std::unordered_map<std::string, SSL_SESSION*> sessions_;
};

}  // namespace sluice::tls
