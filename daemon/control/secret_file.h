// Reading the files the control plane trusts: secrets (token files, TLS
// private keys) and public material (certificates, CAs).
//
// Thread: any; no shared state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace aers::control {

/// Largest secret or certificate file read (1 MiB): a bundle of a few
/// hundred certificates fits; /dev/zero does not hang the daemon.
inline constexpr size_t kMaxCredentialFileBytes = size_t{1} << 20;

/// Reads a secret: a regular file (symlinks are followed only to a regular
/// file; FIFOs and devices are refused without blocking), owned by root or
/// by this process's effective user, with no permission bits for group or
/// others (chmod 600/400). `what` names it in errors ("token file",
/// "TLS private key"). Errors: NOT_FOUND, PERMISSION_DENIED (owner/mode),
/// FAILED_PRECONDITION (not a regular file, too large), each naming the
/// path.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path, std::string_view what);

/// Reads a public file (certificate, CA bundle): a regular file of at most
/// kMaxCredentialFileBytes. Same errors as ReadSecretFile, minus the mode
/// rule.
absl::StatusOr<std::string> ReadPublicFile(const std::string& path, std::string_view what);

}  // namespace aers::control
