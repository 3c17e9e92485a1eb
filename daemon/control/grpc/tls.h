// TLS material of the TCP listeners, checked at start-up: a clear error
// naming the file, never a listener that silently falls back to plaintext.
//
// Thread: any; no shared state.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace aers::control {

struct TlsMaterial {
  std::string cert_pem;
  std::string key_pem;
  std::string client_ca_pem;  ///< empty: no client certificates required
};

/// nullopt when none of the three paths is set. Otherwise: a certificate
/// and a key are both required; a client CA needs them; the key is read
/// as a secret (control/secret_file.h); each PEM must parse (OpenSSL) and
/// the key must belong to the certificate. Errors name the file.
absl::StatusOr<std::optional<TlsMaterial>> LoadTlsMaterial(const std::string& cert_path,
                                                           const std::string& key_path,
                                                           const std::string& client_ca_path);

}  // namespace aers::control
