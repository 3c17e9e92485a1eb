// Plugin maintenance for operators and authors: the functions behind
// `aersctl plugin hash|keygen|sign|verify` and the standalone `aers-plugin`.
//
// Thread: any non-real-time thread. Every function reads and writes files.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "plugin/manifest.h"

namespace aers::plugin::tool {

struct HashResult {
  HashAlgorithm algorithm = HashAlgorithm::kSha256;
  std::string hex;           ///< the module's hash now
  std::string manifest_hex;  ///< what manifest.yaml says
  bool matches = false;
  std::string module_path;
};

/// Hashes the module that DIR/manifest.yaml names, with the manifest's
/// algorithm (or `algorithm`). With `write`, rewrites hash.value (and
/// hash.algorithm if it changed) in manifest.yaml in place, keeping the rest
/// of the file byte for byte. An existing signature no longer matches after
/// a write: sign again.
absl::StatusOr<HashResult> Hash(const std::string& dir,
                                std::optional<HashAlgorithm> algorithm = std::nullopt,
                                bool write = false);

/// Writes a new minisign key pair: `public_path` (0644) and an unencrypted
/// `secret_path` (0600, `minisign -G -W` format). Refuses to overwrite
/// unless `force`. Returns the key id.
absl::StatusOr<std::string> KeyGen(const std::string& public_path, const std::string& secret_path,
                                   bool force = false);

/// Signs DIR/manifest.yaml with the secret key at `secret_path`, writing
/// DIR/manifest.yaml.minisig. Prehashed ("ED") unless `legacy`. Returns the
/// signature file's path.
absl::StatusOr<std::string> Sign(const std::string& dir, const std::string& secret_path,
                                 const std::string& trusted_comment = "", bool legacy = false);

/// Runs every check of the loader short of loading (directory, manifest,
/// owner/mode, hash, signature against `public_path`, ELF) on DIR. Returns
/// a one-paragraph report.
absl::StatusOr<std::string> Verify(const std::string& dir, const std::string& public_path);

}  // namespace aers::plugin::tool
