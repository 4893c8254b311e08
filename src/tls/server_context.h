// ServerContext: the OpenSSL server side of one TLS listener in one worker —
// one SSL_CTX per group of certificates that share the same names (so an
// RSA and an ECDSA certificate for one name sit in one SSL_CTX and OpenSSL
// picks by what the client supports), chosen per connection by SNI; the
// first certificate's group serves clients without SNI or with an unknown
// name. Built from tls::ServerSettings when a worker starts (so a reload
// re-reads every file). Shared by the listener's connections; single-threaded.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tls/settings.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct x509_st X509;
typedef struct evp_cipher_st EVP_CIPHER;

namespace sluice::tls {

class ServerContext {
 public:
  // Null with *error when a file cannot be loaded or a setting is refused.
  static std::unique_ptr<ServerContext> create(const ServerSettings& settings, std::string* error);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // A new server-side SSL for one accepted connection (null on failure).
  SSL* newSsl() const;
  const ServerSettings& settings() const { return settings_; }

  // The context serving `server_name` (lower case; empty = no SNI).
  SSL_CTX* contextFor(std::string_view server_name) const;
  // The OCSP response to staple for certificate `cert` (ocsp:), or null.
  const std::string* ocspFor(const X509* cert) const;
  // AES-256-CBC, fetched once: the session-ticket callback seals and opens
  // every ticket with it (EVP_aes_256_cbc() would be fetched by name on
  // each call).
  const EVP_CIPHER* ticketCipher() const { return ticket_cipher_; }

 private:
  explicit ServerContext(ServerSettings settings) : settings_(std::move(settings)) {}
  SSL_CTX* build(const std::vector<const CertificateFiles*>& certificates, std::string* error);

  ServerSettings settings_;
  std::vector<SSL_CTX*> contexts_;                     // [0] is the default
  std::vector<std::pair<std::string, size_t>> names_;  // certificate name → contexts_ index
  std::vector<unsigned char> alpn_wire_;               // ALPN list in wire format
  // OCSP responses to staple, by the certificate they are about (owned by
  // its SSL_CTX): RSA and ECDSA certificates of one context each have theirs.
  std::vector<std::pair<const X509*, std::string>> ocsp_;
  EVP_CIPHER* ticket_cipher_ = nullptr;
};

}  // namespace sluice::tls
