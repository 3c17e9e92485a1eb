#include "control/grpc/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "control/secret_file.h"

namespace aers::control {

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioFree> Bio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no PEM block found";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

absl::StatusOr<std::optional<TlsMaterial>> LoadTlsMaterial(const std::string& cert_path,
                                                           const std::string& key_path,
                                                           const std::string& ca_path) {
  if (cert_path.empty() && key_path.empty() && ca_path.empty()) {
    return std::optional<TlsMaterial>();
  }
  if (cert_path.empty() || key_path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS: --tls_cert and --tls_key go together (given: ",
        cert_path.empty() ? "" : absl::StrCat("--tls_cert ", cert_path),
        key_path.empty() ? "" : absl::StrCat("--tls_key ", key_path),
        ca_path.empty() ? ""
                        : absl::StrCat(cert_path.empty() && key_path.empty() ? "" : ", ",
                                       "--tls_client_ca ", ca_path),
        ")"));
  }
  TlsMaterial m;
  auto cert = ReadPublicFile(cert_path, "TLS certificate");
  if (!cert.ok()) return cert.status();
  m.cert_pem = std::move(*cert);
  auto key = ReadSecretFile(key_path, "TLS private key");
  if (!key.ok()) return key.status();
  m.key_pem = std::move(*key);
  ERR_clear_error();
  auto cb = Bio(m.cert_pem);
  std::unique_ptr<X509, X509Free> x509(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!x509) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS certificate ", cert_path, ": not a PEM certificate (", OpenSslError(), ")"));
  }
  auto kb = Bio(m.key_pem);
  // No passphrase callback: an encrypted key is an error, not a prompt.
  std::unique_ptr<EVP_PKEY, KeyFree> pkey(PEM_read_bio_PrivateKey(
      kb.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  if (!pkey) {
    return absl::InvalidArgumentError(absl::StrCat("TLS private key ", key_path,
                                                   ": not an unencrypted PEM private key (",
                                                   OpenSslError(), ")"));
  }
  if (X509_check_private_key(x509.get(), pkey.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS private key ", key_path, " does not belong to the certificate ", cert_path));
  }
  if (!ca_path.empty()) {
    auto ca = ReadPublicFile(ca_path, "TLS client CA");
    if (!ca.ok()) return ca.status();
    auto ab = Bio(*ca);
    std::unique_ptr<X509, X509Free> first(PEM_read_bio_X509(ab.get(), nullptr, nullptr, nullptr));
    if (!first) {
      return absl::InvalidArgumentError(absl::StrCat(
          "TLS client CA ", ca_path, ": no PEM certificate in it (", OpenSslError(), ")"));
    }
    m.client_ca_pem = std::move(*ca);
  }
  return std::optional<TlsMaterial>(std::move(m));
}

}  // namespace aers::control
