#include "tls/client_context.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/certificate.h"

namespace sluice::tls {

std::unique_ptr<ClientContext> ClientContext::create(const ClientSettings& settings,
                                                     std::string* error) {
  std::unique_ptr<ClientContext> self(new ClientContext(settings));
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    *error = "SSL_CTX_new: " + takeOpensslErrors();
    return nullptr;
  }
  self->ctx_ = ctx;
  SSL_CTX_set_min_proto_version(ctx, settings.min_version);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Sessions kept by us per server, not in OpenSSL's cache (keyed by its
  // session ids, which a client cannot look up by server).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &ClientContext::onNewSession);
  if (settings.verify) {
    const int loaded = settings.ca.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx)
                           : SSL_CTX_load_verify_locations(ctx, settings.ca.c_str(), nullptr);
    if (loaded != 1) {
      *error = "cannot load CA certificates " +
               (settings.ca.empty() ? std::string("(system store)") : settings.ca) + ": " +
               takeOpensslErrors();
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  const CertificateFiles& client = settings.client_certificate;
  if (!client.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, client.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, client.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      *error = "client certificate " + client.cert + ": " + takeOpensslErrors();
      return nullptr;
    }
  }
  return self;
}

ClientContext::~ClientContext() {
  for (auto& [key, session] : sessions_) {
    if (session != nullptr) SSL_SESSION_free(session);
  }
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

namespace {

// Where each client SSL keeps its entry of ClientContext::sessions_.
int sessionSlotIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

int ClientContext::onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<SSL_SESSION**>(SSL_get_ex_data(ssl, sessionSlotIndex()));
  if (slot == nullptr) return 0;
  // A copy: OpenSSL marks a connection's own session not resumable when the
  // connection ends without close_notify (a pooled connection the server
  // closed, one closed after its response), which would spoil ours.
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (copy == nullptr) return 0;
  if (*slot != nullptr) SSL_SESSION_free(*slot);
  *slot = copy;
  return 0;  // OpenSSL keeps (and frees) the original
}

SSL* ClientContext::newSsl(const std::string& ip, const std::string& dns_name) const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return nullptr;
  SSL_set_connect_state(ssl);
  const std::string& name = !settings_.server_name.empty() ? settings_.server_name : dns_name;
  // The last session with this server, verified against this name.
  const std::string key = ip + "|" + name;
  auto it = sessions_.find(key);
  if (it == sessions_.end() && sessions_.size() < kMaxSessions) {
    it = sessions_.emplace(key, nullptr).first;  // nodes stay put: SSL ex_data points here
  }
  if (it != sessions_.end()) {
    SSL_set_ex_data(ssl, sessionSlotIndex(), &it->second);
    if (it->second != nullptr) SSL_set_session(ssl, it->second);
  }
  if (!name.empty()) {
    SSL_set_tlsext_host_name(ssl, name.c_str());
    if (settings_.verify) SSL_set1_host(ssl, name.c_str());
  } else if (settings_.verify) {
    // No name to check: the certificate must name the address (IP SAN).
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip.c_str());
  }
  return ssl;
}

}  // namespace sluice::tls
