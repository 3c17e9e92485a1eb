#include "control/auth.h"

#include <sodium.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace aers::control {

std::string_view RoleName(Role role) {
  return role == Role::kOperator ? "operator" : "viewer";
}

absl::Status Authenticator::LoadTokenFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot read token file"));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": token file must not be accessible by group or others (chmod 600)"));
  }
  std::ifstream in(path);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string role, token;
    ls >> role >> token;
    if (role.empty()) continue;
    if ((role != "viewer" && role != "operator") || token.size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", lineno, ": expected 'viewer|operator TOKEN' with a token of 16+ characters"));
    }
    AddToken(token, role == "operator" ? Role::kOperator : Role::kViewer);
  }
  return absl::OkStatus();
}

void Authenticator::AddToken(const std::string& token, Role role) {
  std::lock_guard lock(mu_);
  tokens_[token] = role;
}

bool Authenticator::has_tokens() const {
  std::lock_guard lock(mu_);
  return !tokens_.empty();
}

absl::StatusOr<Role> Authenticator::Check(const std::string& peer_address, const std::string& token,
                                          std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  Failures& f = failures_[peer_address];
  if (now < f.locked_until) {
    return absl::ResourceExhaustedError(
        "too many failed authentication attempts from this address; try again later");
  }
  // Compare against every token in constant time per comparison.
  const Role* found = nullptr;
  for (const auto& [t, role] : tokens_) {
    if (t.size() == token.size() && sodium_memcmp(t.data(), token.data(), token.size()) == 0) {
      found = &role;
    }
  }
  if (found != nullptr) {
    failures_.erase(peer_address);
    return *found;
  }
  if (f.count == 0 || now - f.first > options_.window) {
    f.count = 0;
    f.first = now;
  }
  if (++f.count >= options_.max_failures) {
    f.locked_until = now + options_.lockout;
    f.count = 0;
  }
  return absl::UnauthenticatedError(token.empty()
                                        ? "missing bearer token (authorization: Bearer TOKEN)"
                                        : "unknown bearer token");
}

}  // namespace aers::control
