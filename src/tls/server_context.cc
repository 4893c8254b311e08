#include "tls/server_context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "tls/certificate.h"
#include "tls/ticket_keys.h"

namespace sluice::tls {
namespace {

// Where each SSL_CTX keeps a pointer back to its ServerContext.
int contextIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// The same for every context of every listener: sessions resume only where
// they were made, but all of a listener's contexts share the cache of the
// first (OpenSSL keeps the initial context's cache across SSL_set_SSL_CTX).
constexpr unsigned char kSessionIdContext[] = "sluice";
constexpr long kSessionLifetimeSeconds = 300;

int onServerName(SSL* ssl, int* alert, void* arg) {
  (void)alert;
  const auto* self = static_cast<const ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // the default context stays
  std::string lower(name);
  for (char& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  SSL_CTX* chosen = self->contextFor(lower);
  if (chosen != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, chosen);
  return SSL_TLSEXT_ERR_OK;
}

// The client asked for the certificate's status (status_request): staple
// the response for the certificate chosen for it (by SNI and key type).
int onStatusRequest(SSL* ssl, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  const std::string* der = self->ocspFor(SSL_get_certificate(ssl));
  if (der == nullptr) return SSL_TLSEXT_ERR_NOACK;
  auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(der->size()));  // OpenSSL frees it
  if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
  std::memcpy(copy, der->data(), der->size());
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(der->size()));
  return SSL_TLSEXT_ERR_OK;
}

int onAlpn(SSL* ssl, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
           unsigned int in_len, void* arg) {
  (void)ssl;
  const auto* wire = static_cast<const std::vector<unsigned char>*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_len, wire->data(),
                            static_cast<unsigned int>(wire->size()), in,
                            in_len) != OPENSSL_NPN_NEGOTIATED) {
    // RFC 7301 §3.2 (and nginx): no protocol in common is a fatal alert.
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

bool setMacKey(EVP_MAC_CTX* hmac, const unsigned char* key) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key), 32),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(hmac, params) == 1;
}

// Session tickets sealed with the shared ring's keys (RFC 5077 layout, as
// OpenSSL's own): 2 = ticket ok, issue a fresh one; 0 = unknown key (full
// handshake), -1 = error. Never 1 ("ok, no new ticket"): a TLS 1.3 client
// uses a ticket once (RFC 8446 C.4; OpenSSL's client does), so a resumed
// connection that brings no new ticket leaves the client nothing to resume
// with next time — every other reconnect would be a full handshake.
int onTicketKey(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                EVP_MAC_CTX* hmac, int encrypt) {
  const TicketKeyRing* ring = ticketKeyRing();
  // The callback is the initial context's (SNI may have switched the
  // SSL's since): every context of a listener points back to the same
  // ServerContext.
  const auto* self =
      static_cast<const ServerContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), contextIndex()));
  if (ring == nullptr || self == nullptr || self->ticketCipher() == nullptr) return -1;
  TicketKey current, previous;
  bool has_previous = false;
  ring->read(&current, &previous, &has_previous);
  if (encrypt) {
    if (RAND_bytes(iv, 16) != 1) return -1;
    std::memcpy(key_name, current.name, 16);
    if (EVP_EncryptInit_ex(cipher, self->ticketCipher(), nullptr, current.aes_key, iv) != 1)
      return -1;
    return setMacKey(hmac, current.hmac_key) ? 1 : -1;
  }
  const TicketKey* key = nullptr;
  if (std::memcmp(key_name, current.name, 16) == 0) {
    key = &current;
  } else if (has_previous && std::memcmp(key_name, previous.name, 16) == 0) {
    key = &previous;
  }
  if (key == nullptr) return 0;
  if (!setMacKey(hmac, key->hmac_key)) return -1;
  if (EVP_DecryptInit_ex(cipher, self->ticketCipher(), nullptr, key->aes_key, iv) != 1) return -1;
  return 2;
}

std::string sortedNamesKey(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  std::string key;
  for (const std::string& name : names)
    key += name + "\n";
  return key;
}

}  // namespace

std::unique_ptr<ServerContext> ServerContext::create(const ServerSettings& settings,
                                                     std::string* error) {
  std::unique_ptr<ServerContext> self(new ServerContext(settings));
  if (settings.session_tickets && ticketKeyRing() != nullptr) {
    self->ticket_cipher_ = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
    if (self->ticket_cipher_ == nullptr) {
      *error = "AES-256-CBC for session tickets: " + takeOpensslErrors();
      return nullptr;
    }
  }
  for (const std::string& protocol : settings.alpn) {
    self->alpn_wire_.push_back(static_cast<unsigned char>(protocol.size()));
    self->alpn_wire_.insert(self->alpn_wire_.end(), protocol.begin(), protocol.end());
  }
  // Group the certificates by their set of names, in first-seen order.
  std::vector<std::vector<const CertificateFiles*>> groups;
  std::vector<std::vector<std::string>> group_names;
  std::map<std::string, size_t> group_of;
  for (const CertificateFiles& files : settings.certificates) {
    CertificateFacts facts;
    if (!inspectCertificate(files, &facts, error)) return nullptr;
    const std::string key = sortedNamesKey(facts.names);
    auto [it, inserted] = group_of.emplace(key, groups.size());
    if (inserted) {
      groups.emplace_back();
      group_names.push_back(facts.names);
    }
    groups[it->second].push_back(&files);
  }
  if (groups.empty()) {
    *error = "no certificate";
    return nullptr;
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    SSL_CTX* ctx = self->build(groups[g], error);
    if (ctx == nullptr) return nullptr;
    self->contexts_.push_back(ctx);
    for (const std::string& name : group_names[g])
      self->names_.emplace_back(name, g);
  }
  return self;
}

SSL_CTX* ServerContext::build(const std::vector<const CertificateFiles*>& certificates,
                              std::string* error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    *error = "SSL_CTX_new: " + takeOpensslErrors();
    return nullptr;
  }
  const auto fail = [&](const std::string& what) {
    *error = what + ": " + takeOpensslErrors();
    SSL_CTX_free(ctx);
    return nullptr;
  };
  SSL_CTX_set_ex_data(ctx, contextIndex(), this);
  SSL_CTX_set_min_proto_version(ctx, settings_.min_version);
  SSL_CTX_set_max_proto_version(ctx, settings_.max_version);
  // No renegotiation (a DoS lever, and HTTP/1.1 proxies have no use for
  // it), no compression (CRIME); a client that closes without close_notify
  // is an ordinary EOF, as nginx treats it.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_IGNORE_UNEXPECTED_EOF |
                               (settings_.session_tickets ? 0 : SSL_OP_NO_TICKET));
  // Idle connections hold no record buffers; writes may be partial and
  // retried from a moved buffer (our Buffer compacts).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_set_cipher_list(ctx, settings_.ciphers.c_str()) != 1) return fail("ciphers");
  for (const CertificateFiles* files : certificates) {
    if (SSL_CTX_use_certificate_chain_file(ctx, files->cert.c_str()) != 1) {
      return fail("certificate " + files->cert);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, files->key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail("key " + files->key);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) return fail("key " + files->key);
    if (!files->ocsp.empty()) {
      std::string der, ocsp_error, warning;
      // Checked by the config loader already; read again here, so a
      // reload staples the file as it is now.
      if (!loadOcspResponse(*files, &der, &ocsp_error, &warning)) {
        *error = ocsp_error;
        SSL_CTX_free(ctx);
        return nullptr;
      }
      ocsp_.emplace_back(SSL_CTX_get0_certificate(ctx), std::move(der));
      SSL_CTX_set_tlsext_status_cb(ctx, onStatusRequest);
      SSL_CTX_set_tlsext_status_arg(ctx, this);
    }
  }
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
  // Sessions (and the lifetime hint of tickets) last 5 minutes, nginx's
  // ssl_session_timeout and HAProxy's tune.ssl.lifetime; OpenSSL's own
  // default is 2 hours.
  SSL_CTX_set_timeout(ctx, kSessionLifetimeSeconds);
  if (settings_.session_cache_bytes == 0) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    // About 256 bytes a session, nginx's rule of thumb (1 MB ≈ 4000).
    SSL_CTX_sess_set_cache_size(ctx, static_cast<long>(settings_.session_cache_bytes / 256));
  }
  if (settings_.session_tickets && ticketKeyRing() != nullptr) {
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, onTicketKey);
  }
  SSL_CTX_set_tlsext_servername_callback(ctx, onServerName);
  SSL_CTX_set_tlsext_servername_arg(ctx, this);
  if (!alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(ctx, onAlpn, &alpn_wire_);
  if (settings_.client_auth != ClientAuth::kOff) {
    if (SSL_CTX_load_verify_locations(ctx, settings_.client_ca.c_str(), nullptr) != 1) {
      return fail("client_auth.ca " + settings_.client_ca);
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings_.client_ca.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (settings_.client_auth == ClientAuth::kRequired) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
    SSL_CTX_set_verify_depth(ctx, static_cast<int>(settings_.verify_depth));
  }
  return ctx;
}

ServerContext::~ServerContext() {
  for (SSL_CTX* ctx : contexts_)
    SSL_CTX_free(ctx);
  EVP_CIPHER_free(ticket_cipher_);
}

SSL* ServerContext::newSsl() const {
  SSL* ssl = SSL_new(contexts_.front());
  if (ssl != nullptr) SSL_set_accept_state(ssl);
  return ssl;
}

const std::string* ServerContext::ocspFor(const X509* cert) const {
  for (const auto& [owner, der] : ocsp_) {
    if (owner == cert) return &der;
  }
  return nullptr;
}

SSL_CTX* ServerContext::contextFor(std::string_view server_name) const {
  if (!server_name.empty()) {
    for (const auto& [name, index] : names_) {
      if (name == server_name) return contexts_[index];
    }
    for (const auto& [name, index] : names_) {
      if (nameMatches(name, server_name)) return contexts_[index];
    }
  }
  return contexts_.front();
}

}  // namespace sluice::tls
