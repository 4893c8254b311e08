#include "tls/certificate.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace sluice::tls {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void collectNames(X509* cert, std::vector<std::string>* names) {
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type != GEN_DNS) continue;
      const ASN1_IA5STRING* dns = name->d.dNSName;
      names->push_back(lower({reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                              static_cast<size_t>(ASN1_STRING_length(dns))}));
    }
    GENERAL_NAMES_free(sans);
  }
  if (!names->empty()) return;
  // No DNS SAN: the subject's common name (what old certificates carry).
  char cn[256];
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) {
    names->push_back(lower(cn));
  }
}

}  // namespace

std::string takeOpensslErrors() {
  std::string out;
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out;
}

bool inspectCertificate(const CertificateFiles& files, CertificateFacts* facts,
                        std::string* error) {
  File cert_file(std::fopen(files.cert.c_str(), "r"));
  if (!cert_file) {
    *error = "cannot read certificate " + files.cert + ": " + std::strerror(errno);
    return false;
  }
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_X509(cert_file.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) {
    takeOpensslErrors();
    *error = files.cert + " holds no PEM certificate";
    return false;
  }
  File key_file(std::fopen(files.key.c_str(), "r"));
  if (!key_file) {
    *error = "cannot read key " + files.key + ": " + std::strerror(errno);
    return false;
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_PrivateKey(key_file.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!key) {
    takeOpensslErrors();
    *error = files.key + " holds no PEM private key (an encrypted key is not supported)";
    return false;
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    takeOpensslErrors();
    *error = "key " + files.key + " does not match certificate " + files.cert;
    return false;
  }
  facts->names.clear();
  collectNames(cert.get(), &facts->names);
  facts->rsa = EVP_PKEY_base_id(key.get()) == EVP_PKEY_RSA;
  const ASN1_TIME* not_after = X509_get0_notAfter(cert.get());
  facts->expired = X509_cmp_current_time(not_after) < 0;
  std::unique_ptr<BIO, decltype(&BIO_free)> text(BIO_new(BIO_s_mem()), BIO_free);
  if (text && ASN1_TIME_print(text.get(), not_after) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(text.get(), &data);
    facts->not_after.assign(data, static_cast<size_t>(n));
  }
  return true;
}

bool inspectCaBundle(const std::string& path, std::string* error) {
  File file(std::fopen(path.c_str(), "r"));
  if (!file) {
    *error = "cannot read CA bundle " + path + ": " + std::strerror(errno);
    return false;
  }
  int count = 0;
  while (X509* cert = PEM_read_X509(file.get(), nullptr, nullptr, nullptr)) {
    ++count;
    X509_free(cert);
  }
  takeOpensslErrors();  // the end of the file reads as an error
  if (count == 0) {
    *error = path + " holds no PEM certificate";
    return false;
  }
  return true;
}

bool loadOcspResponse(const CertificateFiles& files, std::string* der, std::string* error,
                      std::string* warning) {
  warning->clear();
  File file(std::fopen(files.ocsp.c_str(), "rb"));
  if (!file) {
    *error = "cannot read OCSP response " + files.ocsp + ": " + std::strerror(errno);
    return false;
  }
  der->clear();
  char chunk[4096];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, file.get())) > 0 && der->size() < (1u << 20))
    der->append(chunk, n);
  const auto* bytes = reinterpret_cast<const unsigned char*>(der->data());
  std::unique_ptr<OCSP_RESPONSE, decltype(&OCSP_RESPONSE_free)> response(
      d2i_OCSP_RESPONSE(nullptr, &bytes, static_cast<long>(der->size())), OCSP_RESPONSE_free);
  if (!response) {
    takeOpensslErrors();
    *error = files.ocsp + " is not a DER OCSP response (openssl ocsp -respout writes one)";
    return false;
  }
  const int status = OCSP_response_status(response.get());
  if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    *error = "OCSP response " + files.ocsp + " is not successful (" +
             OCSP_response_status_str(status) + ")";
    return false;
  }
  std::unique_ptr<OCSP_BASICRESP, decltype(&OCSP_BASICRESP_free)> basic(
      OCSP_response_get1_basic(response.get()), OCSP_BASICRESP_free);
  if (!basic) {
    takeOpensslErrors();
    *error = "OCSP response " + files.ocsp + " has no basic response";
    return false;
  }
  // The certificate and, after it in the same file, its issuer.
  File cert_file(std::fopen(files.cert.c_str(), "r"));
  if (!cert_file) return true;  // inspectCertificate reports it
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_X509(cert_file.get(), nullptr, nullptr, nullptr), X509_free);
  std::unique_ptr<X509, decltype(&X509_free)> issuer(
      PEM_read_X509(cert_file.get(), nullptr, nullptr, nullptr), X509_free);
  takeOpensslErrors();
  if (!cert || !issuer) return true;  // no chain in the file: nothing to match against
  std::unique_ptr<OCSP_CERTID, decltype(&OCSP_CERTID_free)> id(
      OCSP_cert_to_id(nullptr, cert.get(), issuer.get()), OCSP_CERTID_free);
  int cert_status = 0, reason = 0;
  ASN1_GENERALIZEDTIME *this_update = nullptr, *next_update = nullptr;
  if (!id || OCSP_resp_find_status(basic.get(), id.get(), &cert_status, &reason, nullptr,
                                   &this_update, &next_update) != 1) {
    takeOpensslErrors();
    *error = "OCSP response " + files.ocsp + " is not about certificate " + files.cert;
    return false;
  }
  if (cert_status != V_OCSP_CERTSTATUS_GOOD) {
    *error = "OCSP response " + files.ocsp + " says certificate " + files.cert + " is " +
             OCSP_cert_status_str(cert_status);
    return false;
  }
  if (OCSP_check_validity(this_update, next_update, 300, -1) != 1) {
    takeOpensslErrors();
    *warning = "OCSP response " + files.ocsp +
               " is out of date (nextUpdate passed); clients may ignore it: fetch a new one";
  }
  return true;
}

bool nameMatches(std::string_view pattern, std::string_view host) {
  if (pattern == host) return true;
  if (pattern.size() < 3 || pattern.substr(0, 2) != "*.") return false;
  const size_t dot = host.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  return host.substr(dot) == pattern.substr(1);
}

}  // namespace sluice::tls
