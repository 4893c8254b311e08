// TLS settings of one listener (`listeners[].tls`), as the config loader
// fills them: plain values, no OpenSSL objects, so the config module needs no
// OpenSSL. tls::ServerContext builds the SSL_CTX from them in each worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::tls {

struct CertificateFiles {
  std::string cert;  // PEM: the certificate, then its chain
  std::string key;   // PEM private key
  std::string ocsp;  // DER OCSP response to staple (empty = none)
};

enum class ClientAuth : uint8_t { kOff, kOptional, kRequired };

// Mozilla's "intermediate" configuration (v5.7) for TLS 1.2; TLS 1.3 suites
// are OpenSSL's defaults.
inline constexpr const char* kIntermediateCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

struct ServerSettings {
  std::vector<CertificateFiles> certificates;  // the first is the default (no SNI)
  // Protocol versions as OpenSSL numbers (TLS1_2_VERSION = 0x0303, 1.3 = 0x0304).
  uint16_t min_version = 0x0303;
  uint16_t max_version = 0x0304;
  std::string ciphers = kIntermediateCiphers;
  std::vector<std::string> alpn = {"http/1.1"};
  bool session_tickets = true;
  uint64_t session_cache_bytes = 10 * 1024 * 1024;  // per worker; 0 = no cache
  ClientAuth client_auth = ClientAuth::kOff;
  std::string client_ca;  // PEM bundle of CAs client certificates must chain to
  uint32_t verify_depth = 2;
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
};

// `upstreams.NAME.tls`: TLS to the servers, verified unless told not to.
struct ClientSettings {
  bool verify = true;
  std::string ca;                       // PEM bundle; empty = the system's trust store
  std::string server_name;              // SNI and the name to verify; empty = the server's IP
  CertificateFiles client_certificate;  // both empty = none (no mTLS to the server)
  uint16_t min_version = 0x0303;
};

}  // namespace sluice::tls
