// What the config loader checks about a certificate/key pair before any
// worker uses it: both files readable PEM, the key the certificate's, the
// names the certificate is valid for (SAN DNS names, else the subject CN)
// and whether it has expired. Stateless; OpenSSL only here and below.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tls/settings.h"

namespace sluice::tls {

struct CertificateFacts {
  std::vector<std::string> names;  // lower case; may hold wildcards ("*.example.com")
  bool expired = false;
  bool rsa = false;       // key type, for the docs' "RSA and ECDSA for one name"
  std::string not_after;  // "Dec  3 18:00:00 2027 GMT"
};

// False with *error ("cannot read …", "… does not match the certificate")
// when the pair cannot be used.
bool inspectCertificate(const CertificateFiles& files, CertificateFacts* facts, std::string* error);
// False with *error when `path` is not a readable PEM bundle of at least one
// CA certificate (for client_auth.ca).
bool inspectCaBundle(const std::string& path, std::string* error);

// OCSP stapling: reads the DER OCSP response `files.ocsp` into *der and
// checks it is a successful response; when the certificate file also holds
// its issuer, that the response is about this certificate and says "good".
// False with *error otherwise; *warning (maybe empty) when its nextUpdate
// has passed (clients may ignore a stale response).
bool loadOcspResponse(const CertificateFiles& files, std::string* der, std::string* error,
                      std::string* warning);

// True if certificate name `pattern` (maybe "*.example.com") covers `host`
// (lower case): a wildcard stands for exactly one leftmost label (RFC 6125).
bool nameMatches(std::string_view pattern, std::string_view host);

// The OpenSSL error queue as one line (and cleared).
std::string takeOpensslErrors();

}  // namespace sluice::tls
