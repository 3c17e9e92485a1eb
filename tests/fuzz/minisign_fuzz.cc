// libFuzzer target: minisign key and signature parsing
// (daemon/plugin/minisign.h).
//
// Input: KEY_TEXT [NUL SIGNATURE_TEXT [NUL MESSAGE]]. Without a NUL the whole
// input is tried as every kind of file. KEY_TEXT is parsed as a public key
// and as a secret key, SIGNATURE_TEXT as a .minisig file; a key and a
// signature that both parse are verified over MESSAGE (a forged signature
// must be refused, never crash). A secret key that parses signs MESSAGE and
// the result must parse back with the same trusted comment and verify with
// the key's own public half.
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "plugin/minisign.h"

namespace {

// The first part before a NUL, and the rest after it (empty if none).
std::string_view Cut(std::string_view& rest) {
  const size_t nul = rest.find('\0');
  const std::string_view part = rest.substr(0, nul);
  rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  return part;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using aers::fuzz::Check;
  namespace ms = aers::plugin::minisign;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const bool split = rest.find('\0') != std::string_view::npos;
  const std::string_view key_text = Cut(rest);
  const std::string_view sig_text = split ? Cut(rest) : key_text;
  const std::string_view message = rest;

  const auto pub = ms::ParsePublicKey(key_text);
  const auto sig = ms::ParseSignature(sig_text);
  if (pub.ok()) (void)ms::KeyIdHex(pub->key_id);
  if (pub.ok() && sig.ok()) {
    const auto verified = ms::Verify(*sig, *pub, message);
    Check(verified.ok() || verified.code() == absl::StatusCode::kPermissionDenied,
          "Verify fails with a code other than PERMISSION_DENIED", verified.ToString());
  }

  const auto sec = ms::ParseSecretKey(key_text);
  if (!sec.ok()) return 0;
  // A libsodium secret key is seed | public key; a consistent one signs what
  // its public half verifies.
  ms::PublicKey own;
  own.key_id = sec->key_id;
  std::memcpy(own.pk.data(), sec->sk.data() + 32, 32);
  uint8_t derived_pk[32];
  uint8_t derived_sk[64];
  crypto_sign_seed_keypair(derived_pk, derived_sk, sec->sk.data());
  sodium_memzero(derived_sk, sizeof derived_sk);
  const bool consistent = std::memcmp(derived_pk, own.pk.data(), 32) == 0;
  for (const bool prehashed : {true, false}) {
    const auto signed_text = ms::Sign(*sec, message, "fuzz.bin", "fuzz comment", prehashed);
    Check(signed_text.ok(), "Sign fails with a parsed key", signed_text.status().ToString());
    const auto back = ms::ParseSignature(*signed_text);
    Check(back.ok(), "ParseSignature refuses Sign's output", *signed_text);
    Check(back->trusted_comment == "fuzz comment" && back->prehashed == prehashed &&
              back->key_id == sec->key_id,
          "ParseSignature(Sign(...)) changed a field", *signed_text);
    if (consistent) {
      const auto ok = ms::Verify(*back, own, message);
      Check(ok.ok(), "a signature made with a parsed key does not verify", ok.ToString());
    }
  }
  return 0;
}
