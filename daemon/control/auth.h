// Authentication and roles for TCP listeners, with lock-out of brute force.
//
// The Unix socket is gated by its file mode (0660): callers there act as
// operators and are never locked out (the local way in stays open whatever
// happens on the network). TCP callers present a bearer token, or a client
// certificate when the listener requires mutual TLS.
//
// Lock-out counts *distinct wrong tokens* per source (an IPv4 address, or
// the /64 prefix of an IPv6 address, since one host usually holds a whole
// /64). A success never clears a source's failures: a viewer token cannot
// be used to reset the count while guessing operator tokens. A call with
// no token, or the same wrong token repeated (a stale token in a script),
// guesses nothing new and does not count, so a careless client behind the
// same NAT does not lock the operator out; a guesser must try distinct
// tokens and is locked out after `max_failures` of them within `window`.
// While a source is locked out, every token from it is refused (otherwise
// the lock-out would still answer guesses). See docs/operations.md.
//
// Thread: any; internally locked.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace aers::control {

enum class Role { kViewer = 0, kOperator = 1 };

std::string_view RoleName(Role role);

/// Who made a call, as role checks and the audit log see it.
struct Principal {
  /// kAnonymous: a caller that failed authentication (audit records only).
  enum class Kind { kUnix, kToken, kCertificate, kInternal, kAnonymous };
  Kind kind = Kind::kInternal;
  Role role = Role::kViewer;
  /// Token name, certificate subject, "unix", or what acted internally
  /// ("SIGHUP", "start-up").
  std::string name;
  /// Peer address with its host part masked (AnonymizeAddress); "" for
  /// Unix sockets and internal actors.
  std::string address;
  /// Unix peer uid, where the transport tells it.
  std::optional<uint32_t> uid;
};

std::string_view PrincipalKindName(Principal::Kind kind);

/// The peer address of a gRPC peer string, without the port:
/// "ipv4:1.2.3.4:5678" -> "1.2.3.4", "ipv6:[2001:db8::1]:5678" ->
/// "2001:db8::1"; "" for unix peers.
std::string PeerHost(std::string_view grpc_peer);

/// What records and logs show of an address: IPv4 keeps the first two
/// octets ("192.168.xxx.xxx"), IPv6 only the first group ("2001:xxxx"); never
/// a port. Anything else is "unknown".
std::string AnonymizeAddress(std::string_view host);

/// The unit lock-out and connection limits count by: the IPv4 address,
/// or the /64 of an IPv6 address ("2001:db8:1:2::/64"); other text as is.
std::string SourceKey(std::string_view host);

/// True for loopback hosts: "localhost", 127.0.0.0/8, ::1 (brackets
/// allowed).
bool IsLoopbackHost(std::string_view host);

class Authenticator {
 public:
  struct Options {
    int max_failures = 5;  ///< distinct wrong tokens per source within `window`
    std::chrono::seconds window{600};
    std::chrono::seconds lockout{300};
    size_t max_sources = 4096;  ///< sources tracked at once (memory bound)
  };

  Authenticator();
  explicit Authenticator(Options options);

  /// Reads a token file (ReadSecretFile rules): one "ROLE TOKEN [NAME]" per
  /// line (ROLE viewer|operator, TOKEN 16+ printable characters, NAME for
  /// the audit log, default "ROLE-LINE"); '#' comments. A token given twice
  /// is an error naming both lines. Nothing is added unless the whole file
  /// is valid.
  absl::Status LoadTokenFile(const std::string& path);
  /// ALREADY_EXISTS if the token is known already.
  absl::Status AddToken(const std::string& token, Role role, std::string name);
  bool has_tokens() const;

  struct Identity {
    Role role;
    std::string name;
  };

  /// Checks a bearer token presented from `host` (PeerHost; "" for
  /// transports without an address; any other text, such as a client
  /// certificate's subject, is a source of its own). UNAUTHENTICATED on a missing or
  /// unknown token; RESOURCE_EXHAUSTED while the source is locked out (the
  /// token is not even looked at).
  absl::StatusOr<Identity> Check(
      std::string_view host, const std::string& token,
      std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

  /// Sources currently tracked (tests, memory bound).
  size_t tracked_sources() const;

 private:
  struct Source {
    std::chrono::steady_clock::time_point first;         // of the current window
    std::chrono::steady_clock::time_point last;          // last failure
    std::chrono::steady_clock::time_point locked_until;  // epoch: not locked
    std::set<std::string> tried;                         // fingerprints of wrong tokens
  };
  struct Entry {
    Role role;
    std::string name;
  };
  std::string Fingerprint(const std::string& token) const;
  void MakeRoomLocked(std::chrono::steady_clock::time_point now);

  Options options_;
  unsigned char fingerprint_key_[32];
  mutable std::mutex mu_;
  std::map<std::string, Entry> tokens_;
  std::map<std::string, Source> sources_;
};

}  // namespace aers::control
