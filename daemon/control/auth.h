// Authentication and roles for TCP listeners, with lock-out of brute force.
// The Unix socket is gated by its file mode (0660) instead: callers there act
// as operators.
//
// Thread: any; internally locked.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"

namespace aers::control {

enum class Role { kViewer = 0, kOperator = 1 };

std::string_view RoleName(Role role);

class Authenticator {
 public:
  struct Options {
    int max_failures = 5;  ///< per peer address, within `window`
    std::chrono::seconds window{60};
    std::chrono::seconds lockout{60};
  };

  Authenticator() = default;
  explicit Authenticator(Options options) : options_(options) {}

  /// Reads a token file: one "ROLE TOKEN" per line (ROLE viewer|operator),
  /// '#' comments. Refuses files readable by group or others.
  absl::Status LoadTokenFile(const std::string& path);
  void AddToken(const std::string& token, Role role);
  bool has_tokens() const;

  /// Checks a bearer token presented by `peer_address` (no port).
  /// UNAUTHENTICATED on a missing/unknown token; RESOURCE_EXHAUSTED while
  /// that address is locked out (its token is not even looked at).
  absl::StatusOr<Role> Check(
      const std::string& peer_address, const std::string& token,
      std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  struct Failures {
    int count = 0;
    std::chrono::steady_clock::time_point first;
    std::chrono::steady_clock::time_point locked_until;
  };
  Options options_;
  mutable std::mutex mu_;
  std::map<std::string, Role> tokens_;
  std::map<std::string, Failures> failures_;
};

}  // namespace aers::control
