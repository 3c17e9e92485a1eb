#include "control/auth.h"

#include <arpa/inet.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "control/secret_file.h"

namespace aers::control {

namespace {

using Clock = std::chrono::steady_clock;

std::string_view StripBrackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host.remove_prefix(1);
    host.remove_suffix(1);
  }
  return host;
}

bool PrintableToken(std::string_view token) {
  return std::all_of(token.begin(), token.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

std::string_view RoleName(Role role) {
  return role == Role::kOperator ? "operator" : "viewer";
}

std::string_view PrincipalKindName(Principal::Kind kind) {
  switch (kind) {
    case Principal::Kind::kUnix:
      return "unix";
    case Principal::Kind::kToken:
      return "token";
    case Principal::Kind::kCertificate:
      return "certificate";
    case Principal::Kind::kInternal:
      return "internal";
    case Principal::Kind::kAnonymous:
      return "anonymous";
  }
  return "internal";
}

std::string PeerHost(std::string_view peer) {
  if (peer.rfind("unix:", 0) == 0 || peer.rfind("unix-abstract:", 0) == 0) return "";
  // gRPC writes peers as URIs: "ipv6:%5B2001:db8::1%5D:5678" (brackets and
  // a zone's '%' percent-encoded).
  std::string decoded;
  for (size_t i = 0; i < peer.size(); ++i) {
    if (peer[i] == '%' && i + 2 < peer.size() &&
        std::isxdigit(static_cast<unsigned char>(peer[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(peer[i + 2]))) {
      decoded += static_cast<char>(std::stoi(std::string(peer.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      decoded += peer[i];
    }
  }
  const std::string_view p = decoded;
  const auto first = p.find(':');
  const auto last = p.rfind(':');
  if (first == std::string_view::npos || last <= first) return decoded;
  std::string_view host = StripBrackets(p.substr(first + 1, last - first - 1));
  if (const auto zone = host.find('%'); zone != std::string_view::npos) host = host.substr(0, zone);
  return std::string(host);
}

std::string AnonymizeAddress(std::string_view host) {
  host = StripBrackets(host);
  in_addr v4{};
  in6_addr v6{};
  const std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    const auto* b = reinterpret_cast<const unsigned char*>(&v4);
    return absl::StrCat(b[0], ".", b[1], ".xxx.xxx");
  }
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    const unsigned group = (unsigned{v6.s6_addr[0]} << 8) | v6.s6_addr[1];
    char buf[8];
    std::snprintf(buf, sizeof buf, "%x", group);
    return absl::StrCat(buf, ":xxxx");
  }
  return "unknown";
}

bool IsLoopbackHost(std::string_view host) {
  host = StripBrackets(host);
  if (absl::AsciiStrToLower(std::string(host)) == "localhost") return true;
  in_addr v4{};
  in6_addr v6{};
  const std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return reinterpret_cast<const unsigned char*>(&v4)[0] == 127;
  }
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6) != 0;
  return false;
}

Authenticator::Authenticator() : Authenticator(Options{}) {}

Authenticator::Authenticator(Options options) : options_(options) {
  // The key only keeps the failure table from holding token equivalents;
  // should libsodium not initialise, the fingerprints stay unkeyed hashes.
  std::memset(fingerprint_key_, 0, sizeof fingerprint_key_);
  if (sodium_init() >= 0) randombytes_buf(fingerprint_key_, sizeof fingerprint_key_);
}

absl::Status Authenticator::LoadTokenFile(const std::string& path) {
  auto text = ReadSecretFile(path, "token file");
  if (!text.ok()) return text.status();
  struct Parsed {
    std::string token, name;
    Role role;
    int line;
  };
  std::vector<Parsed> parsed;
  std::map<std::string, int> seen;  // token -> line
  int lineno = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (trimmed.empty() || trimmed.front() == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(trimmed, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", lineno, ": ", why, "; expected 'viewer|operator TOKEN [NAME]'"));
    };
    if (fields.size() < 2 || fields.size() > 3) return bad("wrong number of fields");
    if (fields[0] != "viewer" && fields[0] != "operator") return bad("unknown role");
    if (fields[1].size() < 16 || fields[1].size() > 4096 ||
        !PrintableToken(std::string_view(fields[1].data(), fields[1].size()))) {
      return bad("a token is 16 to 4096 printable ASCII characters");
    }
    const std::string token(fields[1]);
    if (auto it = seen.find(token); it != seen.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", lineno, ": the same token as line ",
                                                     it->second, "; every token is unique"));
    }
    seen[token] = lineno;
    const Role role = fields[0] == "operator" ? Role::kOperator : Role::kViewer;
    std::string name =
        fields.size() == 3 ? std::string(fields[2]) : absl::StrCat(fields[0], "-line", lineno);
    if (name.size() > 64 || !PrintableToken(name)) {
      return bad("a NAME is 1 to 64 printable ASCII characters");
    }
    parsed.push_back({token, std::move(name), role, lineno});
  }
  std::lock_guard lock(mu_);
  for (const auto& p : parsed) {
    if (tokens_.count(p.token) != 0) {
      return absl::AlreadyExistsError(
          absl::StrCat(path, ":", p.line, ": this token is already configured"));
    }
  }
  for (auto& p : parsed) tokens_[p.token] = Entry{p.role, std::move(p.name)};
  return absl::OkStatus();
}

absl::Status Authenticator::AddToken(const std::string& token, Role role, std::string name) {
  std::lock_guard lock(mu_);
  if (tokens_.count(token) != 0) return absl::AlreadyExistsError("this token is already known");
  tokens_[token] = Entry{role, std::move(name)};
  return absl::OkStatus();
}

bool Authenticator::has_tokens() const {
  std::lock_guard lock(mu_);
  return !tokens_.empty();
}

size_t Authenticator::tracked_sources() const {
  std::lock_guard lock(mu_);
  return sources_.size();
}

std::string SourceKey(std::string_view host) {
  host = StripBrackets(host);
  in6_addr v6{};
  const std::string h(host);
  if (h.find(':') != std::string::npos && inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    std::memset(&v6.s6_addr[8], 0, 8);  // the /64
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &v6, buf, sizeof buf);
    return absl::StrCat(buf, "/64");
  }
  return h;
}

std::string Authenticator::Fingerprint(const std::string& token) const {
  unsigned char out[16];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), fingerprint_key_, sizeof fingerprint_key_);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

void Authenticator::MakeRoomLocked(Clock::time_point now) {
  if (sources_.size() < options_.max_sources) return;
  std::erase_if(sources_, [&](const auto& kv) {
    return now >= kv.second.locked_until && now - kv.second.last > options_.window;
  });
  if (sources_.size() < options_.max_sources) return;
  // Still full of live sources: forget the one idle longest that is not
  // locked out (a flood from many addresses cannot unlock anyone).
  auto victim = sources_.end();
  for (auto it = sources_.begin(); it != sources_.end(); ++it) {
    if (now < it->second.locked_until) continue;
    if (victim == sources_.end() || it->second.last < victim->second.last) victim = it;
  }
  if (victim != sources_.end()) sources_.erase(victim);
}

absl::StatusOr<Authenticator::Identity> Authenticator::Check(std::string_view host,
                                                             const std::string& token,
                                                             Clock::time_point now) {
  std::lock_guard lock(mu_);
  const std::string key = SourceKey(host);
  auto src = sources_.find(key);
  if (src != sources_.end() && now < src->second.locked_until) {
    const auto left =
        std::chrono::duration_cast<std::chrono::seconds>(src->second.locked_until - now).count();
    return absl::ResourceExhaustedError(
        absl::StrCat("too many failed authentication attempts from this address; "
                     "try again in ",
                     left + 1, " s"));
  }
  // Compare against every token, each in constant time.
  const Entry* found = nullptr;
  for (const auto& [t, entry] : tokens_) {
    if (t.size() == token.size() && sodium_memcmp(t.data(), token.data(), token.size()) == 0) {
      found = &entry;
    }
  }
  if (found != nullptr) return Identity{found->role, found->name};
  if (token.empty()) {
    return absl::UnauthenticatedError(
        "missing bearer token (metadata authorization: Bearer TOKEN)");
  }
  if (src == sources_.end()) {
    MakeRoomLocked(now);
    if (sources_.size() >= options_.max_sources) {
      // Every tracked source is locked out: refuse rather than forget one.
      return absl::ResourceExhaustedError(
          "too many failed authentication attempts; try again later");
    }
    src = sources_.emplace(key, Source{now, now, {}, {}}).first;
  }
  Source& s = src->second;
  if (now - s.first > options_.window) {
    s.first = now;
    s.tried.clear();
  }
  s.last = now;
  s.tried.insert(Fingerprint(token));
  if (static_cast<int>(s.tried.size()) >= options_.max_failures) {
    s.locked_until = now + options_.lockout;
    s.tried.clear();
    s.first = now;
  }
  return absl::UnauthenticatedError("unknown bearer token");
}

}  // namespace aers::control
