#include "control/grpc/gate.h"

#include "absl/strings/match.h"

namespace aers::control {

namespace {
constexpr size_t kMaxErrorBytes = 4096;
}  // namespace

grpc::Status Reply(grpc::ServerContext* ctx, const absl::Status& st, std::string_view reason) {
  if (st.ok()) return grpc::Status::OK;
  if (!reason.empty()) ctx->AddTrailingMetadata(kReasonKey, std::string(reason));
  // Errors travel in gRPC trailers (8 KiB by default on the client side).
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()),
                      SanitizeUtf8(Truncate(std::string(st.message()), kMaxErrorBytes)));
}

absl::StatusOr<Principal> CallGate::Authenticate(grpc::ServerContext* ctx,
                                                 const std::string& operation) {
  const std::string peer = ctx->peer();
  Principal p;
  if (absl::StartsWith(peer, "unix:")) {
    // The socket's mode (0660) is the gate.
    p.kind = Principal::Kind::kUnix;
    p.role = Role::kOperator;
    p.name = "unix";
    return p;
  }
  const std::string host = PeerHost(peer);
  p.address = AnonymizeAddress(host);
  std::string subject;
  if (const auto auth = ctx->auth_context(); auth && auth->IsPeerAuthenticated()) {
    for (const char* prop : {"x509_subject", "x509_common_name"}) {
      const auto v = auth->FindPropertyValues(prop);
      if (!v.empty()) {
        subject.assign(v.front().data(), v.front().size());
        break;
      }
    }
  }
  if (!auth_.has_tokens()) {
    // No tokens: Start() allowed this TCP listener only with client
    // certificates, which gRPC verified before the call reached us.
    if (!mtls_ || subject.empty()) {
      return absl::UnauthenticatedError("a client certificate is required");
    }
    p.kind = Principal::Kind::kCertificate;
    p.role = Role::kOperator;
    p.name = subject;
    return p;
  }
  std::string token;
  const auto& md = ctx->client_metadata();
  if (auto it = md.find("authorization"); it != md.end()) {
    const std::string_view v(it->second.data(), it->second.size());
    if (v.rfind("Bearer ", 0) == 0) token = std::string(v.substr(7));
  }
  // Behind mutual TLS the certificate identifies the guesser: its failures
  // are counted against it, not against an address others may share.
  auto id = auth_.Check(subject.empty() ? host : "certificate:" + subject, token);
  if (!id.ok()) {
    p.kind = Principal::Kind::kAnonymous;
    p.name = subject;  // a verified certificate's subject, if any
    if (audit_ != nullptr) audit_->RecordAuthFailure(p, operation, id.status());
    return id.status();
  }
  p.kind = Principal::Kind::kToken;
  p.role = id->role;
  p.name = subject.empty() ? id->name : absl::StrCat(id->name, " (", subject, ")");
  return p;
}

std::optional<Principal> CallGate::Admit(grpc::ServerContext* ctx, const char* operation,
                                         grpc::Status* reply) {
  if (stopping_) {
    *reply = Reply(ctx, absl::UnavailableError("aersd is shutting down"));
    return std::nullopt;
  }
  auto who = Authenticate(ctx, operation);
  if (!who.ok()) {
    *reply = Reply(ctx, who.status(),
                   absl::IsResourceExhausted(who.status()) ? "locked-out" : "unauthenticated");
    return std::nullopt;
  }
  return *who;
}

absl::Status CallGate::CheckRole(const Principal& who, Role needed, const char* operation) {
  if (static_cast<int>(who.role) >= static_cast<int>(needed)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("this token's role (", std::string(RoleName(who.role)), ") may not call ",
                   operation, "; an operator token is needed"));
}

bool CallGate::TakeSlot(grpc::ServerContext* ctx, StreamSlots& slots, grpc::Status* reply) {
  if (slots.open.fetch_add(1) < slots.max) return true;
  slots.open.fetch_sub(1);
  *reply = Reply(ctx,
                 absl::ResourceExhaustedError(absl::StrCat("too many open streams on the ",
                                                           slots.listener, " listener (at most ",
                                                           slots.max, "); close one and retry")),
                 "stream-limit");
  return false;
}

grpc::Status CallGate::AuthenticateOnly(grpc::ServerContext* ctx, const char* operation) {
  grpc::Status reply;
  return Admit(ctx, operation, &reply) ? grpc::Status::OK : reply;
}

}  // namespace aers::control
