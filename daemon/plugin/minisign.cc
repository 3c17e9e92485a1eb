#include "plugin/minisign.h"

#include <sodium.h>

#include <cstring>
#include <ctime>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace aers::plugin::minisign {
namespace {

constexpr std::string_view kCommentPrefix = "untrusted comment: ";
constexpr std::string_view kTrustedPrefix = "trusted comment: ";
constexpr size_t kMaxComment = 8192;
// Algorithm tags (2 bytes, not strings).
constexpr uint8_t kAlgLegacy[2] = {'E', 'd'};
constexpr uint8_t kAlgPrehashed[2] = {'E', 'D'};
constexpr uint8_t kChkBlake2[2] = {'B', '2'};

// Splits into lines ("\n" or "\r\n"); at most `max` lines are kept.
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty() && out.size() < 16) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// Decodes standard base64 into exactly `n` bytes.
bool Base64Exact(std::string_view b64, uint8_t* out, size_t n) {
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out, n, b64.data(), b64.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return false;
  }
  return len == n && end == b64.data() + b64.size();
}

std::string Base64(const uint8_t* data, size_t n) {
  std::string out(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool HasNewline(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

}  // namespace

SecretKey::~SecretKey() {
  sodium_memzero(sk.data(), sk.size());
}

std::string KeyIdHex(const KeyId& id) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | id[static_cast<size_t>(i)];
  return absl::StrFormat("%016X", v);
}

absl::Status InitSodium() {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialize");
  return absl::OkStatus();
}

absl::StatusOr<PublicKey> ParsePublicKey(std::string_view text) {
  if (auto s = InitSodium(); !s.ok()) return s;
  auto lines = Lines(text);
  // Either the two-line file, or just the base64 line (minisign -P form).
  std::string_view b64;
  if (lines.size() >= 2 && lines[0].starts_with(kCommentPrefix)) {
    b64 = Trim(lines[1]);
  } else if (!lines.empty()) {
    b64 = Trim(lines[0]);
  }
  uint8_t raw[2 + 8 + 32];
  if (!Base64Exact(b64, raw, sizeof raw)) {
    return absl::InvalidArgumentError("not a minisign public key (bad base64 or length)");
  }
  if (std::memcmp(raw, "Ed", 2) != 0) {
    return absl::InvalidArgumentError("unsupported public key algorithm (want \"Ed\")");
  }
  PublicKey k;
  std::memcpy(k.key_id.data(), raw + 2, 8);
  std::memcpy(k.pk.data(), raw + 10, 32);
  return k;
}

absl::StatusOr<SecretKey> ParseSecretKey(std::string_view text) {
  if (auto s = InitSodium(); !s.ok()) return s;
  auto lines = Lines(text);
  if (lines.size() < 2 || !lines[0].starts_with(kCommentPrefix)) {
    return absl::InvalidArgumentError("not a minisign secret key file (no untrusted comment line)");
  }
  // sig_alg 2 | kdf_alg 2 | chk_alg 2 | salt 32 | ops 8 | mem 8 | keynum 8 | sk 64 | chk 32
  constexpr size_t kSize = 2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32;
  uint8_t raw[kSize];
  const bool ok = Base64Exact(Trim(lines[1]), raw, kSize);
  struct Wipe {
    uint8_t* p;
    ~Wipe() { sodium_memzero(p, kSize); }
  } wipe{raw};
  if (!ok) return absl::InvalidArgumentError("not a minisign secret key (bad base64 or length)");
  if (std::memcmp(raw, "Ed", 2) != 0)
    return absl::InvalidArgumentError("unsupported key algorithm");
  if (std::memcmp(raw + 4, "B2", 2) != 0) return absl::InvalidArgumentError("unsupported checksum");
  if (std::memcmp(raw + 2, "Sc", 2) == 0) {
    return absl::FailedPreconditionError(
        "the secret key is password-encrypted; aers-plugin reads only unencrypted keys "
        "(use `minisign -S` to sign, or `minisign -C -W` to remove the password)");
  }
  if (raw[2] != 0 || raw[3] != 0) return absl::InvalidArgumentError("unsupported key derivation");
  SecretKey k;
  std::memcpy(k.key_id.data(), raw + 54, 8);
  std::memcpy(k.sk.data(), raw + 62, 64);
  // minisign leaves the checksum zero in unencrypted keys; if one is there, check it.
  const uint8_t* chk = raw + 126;
  if (!sodium_is_zero(chk, 32)) {
    uint8_t want[32];
    crypto_generichash_state hs;
    crypto_generichash_init(&hs, nullptr, 0, sizeof want);
    crypto_generichash_update(&hs, raw, 2);
    crypto_generichash_update(&hs, k.key_id.data(), k.key_id.size());
    crypto_generichash_update(&hs, k.sk.data(), k.sk.size());
    crypto_generichash_final(&hs, want, sizeof want);
    if (sodium_memcmp(want, chk, 32) != 0) {
      return absl::InvalidArgumentError("secret key checksum mismatch (corrupt key file)");
    }
  }
  return k;
}

absl::StatusOr<Signature> ParseSignature(std::string_view text) {
  if (auto s = InitSodium(); !s.ok()) return s;
  auto lines = Lines(text);
  if (lines.size() < 4) return absl::InvalidArgumentError("signature file has fewer than 4 lines");
  if (!lines[0].starts_with(kCommentPrefix)) {
    return absl::InvalidArgumentError("signature file: first line is not an untrusted comment");
  }
  uint8_t raw[2 + 8 + 64];
  if (!Base64Exact(Trim(lines[1]), raw, sizeof raw)) {
    return absl::InvalidArgumentError("signature file: bad signature line (base64 or length)");
  }
  Signature sig;
  if (std::memcmp(raw, "ED", 2) == 0) {
    sig.prehashed = true;
  } else if (std::memcmp(raw, "Ed", 2) == 0) {
    sig.prehashed = false;
  } else {
    return absl::InvalidArgumentError("signature file: unsupported signature algorithm");
  }
  std::memcpy(sig.key_id.data(), raw + 2, 8);
  std::memcpy(sig.sig.data(), raw + 10, 64);
  if (!lines[2].starts_with(kTrustedPrefix)) {
    return absl::InvalidArgumentError("signature file: third line is not a trusted comment");
  }
  // minisign strips only the line ending from the trusted comment.
  sig.trusted_comment = std::string(lines[2].substr(kTrustedPrefix.size()));
  if (sig.trusted_comment.size() > kMaxComment) {
    return absl::InvalidArgumentError("signature file: trusted comment too long");
  }
  if (!Base64Exact(Trim(lines[3]), sig.global_sig.data(), sig.global_sig.size())) {
    return absl::InvalidArgumentError("signature file: bad trusted-comment signature line");
  }
  return sig;
}

absl::Status Verify(const Signature& sig, const PublicKey& key, std::string_view message) {
  if (auto s = InitSodium(); !s.ok()) return s;
  if (sodium_memcmp(sig.key_id.data(), key.key_id.data(), 8) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("signature key id ", KeyIdHex(sig.key_id),
                                                    " is not the key id ", KeyIdHex(key.key_id)));
  }
  const auto* msg = reinterpret_cast<const unsigned char*>(message.data());
  int rc;
  if (sig.prehashed) {
    unsigned char h[crypto_generichash_BYTES_MAX];
    crypto_generichash(h, sizeof h, msg, message.size(), nullptr, 0);
    rc = crypto_sign_verify_detached(sig.sig.data(), h, sizeof h, key.pk.data());
  } else {
    rc = crypto_sign_verify_detached(sig.sig.data(), msg, message.size(), key.pk.data());
  }
  if (rc != 0) return absl::PermissionDeniedError("signature verification failed");
  std::string global(sig.sig.begin(), sig.sig.end());
  global += sig.trusted_comment;
  if (crypto_sign_verify_detached(sig.global_sig.data(),
                                  reinterpret_cast<const unsigned char*>(global.data()),
                                  global.size(), key.pk.data()) != 0) {
    return absl::PermissionDeniedError("trusted comment signature verification failed");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Sign(const SecretKey& key, std::string_view message,
                                 std::string_view file_name, std::string trusted_comment,
                                 bool prehashed, std::string_view untrusted_comment) {
  if (auto s = InitSodium(); !s.ok()) return s;
  if (HasNewline(trusted_comment) || HasNewline(untrusted_comment) || HasNewline(file_name)) {
    return absl::InvalidArgumentError("comments must be one line");
  }
  if (trusted_comment.empty()) {
    trusted_comment = absl::StrCat("timestamp:", static_cast<uint64_t>(std::time(nullptr)),
                                   "\tfile:", std::string(file_name), prehashed ? "\thashed" : "");
  }
  if (trusted_comment.size() > kMaxComment)
    return absl::InvalidArgumentError("trusted comment too long");
  uint8_t raw[2 + 8 + 64];
  std::memcpy(raw, prehashed ? kAlgPrehashed : kAlgLegacy, 2);
  std::memcpy(raw + 2, key.key_id.data(), 8);
  const auto* msg = reinterpret_cast<const unsigned char*>(message.data());
  if (prehashed) {
    unsigned char h[crypto_generichash_BYTES_MAX];
    crypto_generichash(h, sizeof h, msg, message.size(), nullptr, 0);
    crypto_sign_detached(raw + 10, nullptr, h, sizeof h, key.sk.data());
  } else {
    crypto_sign_detached(raw + 10, nullptr, msg, message.size(), key.sk.data());
  }
  std::string global(reinterpret_cast<const char*>(raw + 10), 64);
  global += trusted_comment;
  uint8_t gsig[64];
  crypto_sign_detached(gsig, nullptr, reinterpret_cast<const unsigned char*>(global.data()),
                       global.size(), key.sk.data());
  return absl::StrCat(std::string(kCommentPrefix), std::string(untrusted_comment), "\n",
                      Base64(raw, sizeof raw), "\n", std::string(kTrustedPrefix), trusted_comment,
                      "\n", Base64(gsig, sizeof gsig), "\n");
}

absl::StatusOr<KeyPairFiles> GenerateKeyPair() {
  if (auto s = InitSodium(); !s.ok()) return s;
  KeyPairFiles out;
  uint8_t pk[32];
  uint8_t sk[64];
  randombytes_buf(out.key_id.data(), out.key_id.size());
  crypto_sign_keypair(pk, sk);

  uint8_t pub[2 + 8 + 32];
  std::memcpy(pub, kAlgLegacy, 2);
  std::memcpy(pub + 2, out.key_id.data(), 8);
  std::memcpy(pub + 10, pk, 32);
  out.public_key = absl::StrCat(std::string(kCommentPrefix), "minisign public key ",
                                KeyIdHex(out.key_id), "\n", Base64(pub, sizeof pub), "\n");

  constexpr size_t kSize = 2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32;
  uint8_t sec[kSize] = {};
  std::memcpy(sec, kAlgLegacy, 2);
  // kdf "\0\0" (unencrypted), then the checksum algorithm; salt/limits stay zero.
  std::memcpy(sec + 4, kChkBlake2, 2);
  std::memcpy(sec + 54, out.key_id.data(), 8);
  std::memcpy(sec + 62, sk, 64);
  crypto_generichash_state hs;
  crypto_generichash_init(&hs, nullptr, 0, 32);
  crypto_generichash_update(&hs, sec, 2);
  crypto_generichash_update(&hs, out.key_id.data(), 8);
  crypto_generichash_update(&hs, sk, 64);
  crypto_generichash_final(&hs, sec + 126, 32);
  out.secret_key = absl::StrCat(std::string(kCommentPrefix), "minisign secret key (unencrypted)\n",
                                Base64(sec, sizeof sec), "\n");
  sodium_memzero(sec, sizeof sec);
  sodium_memzero(sk, sizeof sk);
  return out;
}

}  // namespace aers::plugin::minisign
