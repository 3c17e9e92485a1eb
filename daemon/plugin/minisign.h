// minisign-compatible keys and signatures (https://jedisct1.github.io/minisign/),
// implemented with libsodium.
//
//   public key file   "untrusted comment: ...\n" + base64("Ed" | key_id[8] | pk[32])
//   secret key file   "untrusted comment: ...\n" + base64("Ed" | kdf "\0\0" | "B2" |
//                     salt[32] | opslimit[8] | memlimit[8] | key_id[8] | sk[64] | chk[32])
//                     (only unencrypted keys, as `minisign -G -W` writes them)
//   signature file    "untrusted comment: ...\n" + base64(alg[2] | key_id[8] | sig[64]) +
//                     "\ntrusted comment: TEXT\n" + base64(global_sig[64]) + "\n"
// alg "Ed": sig = Ed25519(message) (legacy); alg "ED": sig =
// Ed25519(BLAKE2b-512(message)) (prehashed, minisign's default). global_sig =
// Ed25519(sig | TEXT) authenticates the trusted comment. Verify() checks both
// signatures, as `minisign -V` does.
//
// Thread: any non-real-time thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace aers::plugin::minisign {

using KeyId = std::array<uint8_t, 8>;

struct PublicKey {
  KeyId key_id{};
  std::array<uint8_t, 32> pk{};
};

struct SecretKey {
  KeyId key_id{};
  std::array<uint8_t, 64> sk{};  ///< libsodium Ed25519 secret key (seed | pk)
  ~SecretKey();                  ///< wipes sk
};

struct Signature {
  bool prehashed = true;  ///< "ED" (BLAKE2b-512 prehash) vs "Ed" (legacy)
  KeyId key_id{};
  std::array<uint8_t, 64> sig{};
  std::string trusted_comment;  ///< without the "trusted comment: " prefix
  std::array<uint8_t, 64> global_sig{};
};

/// "B74066E353423518": the key id as minisign prints it (little-endian u64).
std::string KeyIdHex(const KeyId& id);

/// Initializes libsodium once (thread-safe); fails only if libsodium cannot.
absl::Status InitSodium();

absl::StatusOr<PublicKey> ParsePublicKey(std::string_view file_text);
/// Only unencrypted ("\0\0" KDF) secret keys are read; an encrypted one is
/// FAILED_PRECONDITION (decrypt it with `minisign -C -W` first).
absl::StatusOr<SecretKey> ParseSecretKey(std::string_view file_text);
absl::StatusOr<Signature> ParseSignature(std::string_view file_text);

/// Verifies `sig` over `message` with `key`: the key ids match, the
/// signature (prehashed or legacy) and the trusted-comment signature are
/// valid. PERMISSION_DENIED names which part failed.
absl::Status Verify(const Signature& sig, const PublicKey& key, std::string_view message);

/// Signs `message`; returns the text of a .minisig file. An empty
/// `trusted_comment` becomes "timestamp:<unix time>\tfile:<file_name>[\thashed]"
/// like minisign's default. Newlines are not allowed in either comment.
absl::StatusOr<std::string> Sign(
    const SecretKey& key, std::string_view message, std::string_view file_name,
    std::string trusted_comment = "", bool prehashed = true,
    std::string_view untrusted_comment = "signature from minisign secret key");

/// A fresh key pair as the texts of a .pub file and an unencrypted secret
/// key file (the format of `minisign -G -W`).
struct KeyPairFiles {
  std::string public_key;
  std::string secret_key;
  KeyId key_id{};
};
absl::StatusOr<KeyPairFiles> GenerateKeyPair();

}  // namespace aers::plugin::minisign
