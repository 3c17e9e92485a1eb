// The gate every control-plane call passes before its handler (the
// interceptor of the gRPC adapter): authenticate (Unix peer, bearer token,
// client certificate; lock-out), check the role, check the request's size
// and shape (request_check.h), then run the handler and sanitize its reply.
// Refusals are audited (auth failures aggregated) and carry a reason in
// the `aers-error-reason` trailer.
//
// Thread: gRPC server threads, any number at once. Configure() before the
// servers start; Stop() from the shutting-down thread.
#pragma once

#include <grpcpp/server_context.h>

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "control/audit.h"
#include "control/auth.h"
#include "control/grpc/handlers.h"
#include "control/request_check.h"
#include "control/utf8.h"

namespace aers::control {

/// The trailer naming why a call was refused ("locked-out", "unauthenticated",
/// "permission", "invalid-request", "stream-limit", "refused").
inline constexpr char kReasonKey[] = "aers-error-reason";

/// `st` as a gRPC status (message truncated to 4 KiB and made valid UTF-8),
/// with `reason` in the kReasonKey trailer when set.
grpc::Status Reply(grpc::ServerContext* ctx, const absl::Status& st, std::string_view reason = {});

/// Open streams of one listener, against its limit.
struct StreamSlots {
  std::string listener;  ///< "unix" or "tcp", for the refusal message
  int max = 16;
  std::atomic<int> open{0};
};

class CallGate {
 public:
  /// `handlers` (refusal records) and `audit` (may be null) must outlive the gate.
  CallGate(ControlHandlers& handlers, AuditLog* audit) : handlers_(handlers), audit_(audit) {}

  /// Tokens (Authenticator::LoadTokenFile), request limits, and whether TCP
  /// clients present verified certificates. Before any call.
  Authenticator& auth() { return auth_; }
  void Configure(const RequestLimits& limits, bool mtls) {
    limits_ = limits;
    mtls_ = mtls;
  }
  /// From now on every call is refused UNAVAILABLE.
  void Stop() { stopping_ = true; }

  /// Who is calling: the Unix peer (operator), a token's principal, or a
  /// verified client certificate; UNAUTHENTICATED or RESOURCE_EXHAUSTED
  /// (locked out) otherwise (audited as an auth failure).
  absl::StatusOr<Principal> Authenticate(grpc::ServerContext* ctx, const std::string& operation);

  /// A unary call: the gate, then `fn(principal)` filling `resp`.
  template <typename Req, typename Resp, typename Fn>
  grpc::Status Unary(grpc::ServerContext* ctx, Role needed, const char* operation, const Req& req,
                     Resp* resp, Fn&& fn);
  /// A server stream: the gate and a slot of `slots`, then `fn(principal)`.
  template <typename Req, typename Fn>
  grpc::Status Stream(grpc::ServerContext* ctx, StreamSlots& slots, const char* operation,
                      const Req& req, Fn&& fn);
  /// A client stream of mutations (operator role): the gate and a slot of
  /// `slots`, then `fn(principal, read)`; `read(msg)` reads the next message
  /// and checks it like a request (false: the client closed the stream).
  template <typename Msg, typename Resp, typename Fn>
  grpc::Status ClientStream(grpc::ServerContext* ctx, StreamSlots& slots, const char* operation,
                            grpc::ServerReader<Msg>* reader, Resp* resp, Fn&& fn);
  /// Authentication only (reflection): OK or the refusal to send.
  grpc::Status AuthenticateOnly(grpc::ServerContext* ctx, const char* operation);

 private:
  using ServerContext = grpc::ServerContext;
  // The first steps of every call: refused while stopping, then
  // authenticated. The principal, or nullopt with *reply what to send.
  std::optional<Principal> Admit(ServerContext* ctx, const char* operation, grpc::Status* reply);
  // PERMISSION_DENIED when `who` lacks the `needed` role (OK otherwise).
  static absl::Status CheckRole(const Principal& who, Role needed, const char* operation);
  // A slot of `slots` (true), or false with *reply what to send.
  static bool TakeSlot(ServerContext* ctx, StreamSlots& slots, grpc::Status* reply);
  ControlHandlers& handlers_;
  AuditLog* audit_;
  Authenticator auth_;
  RequestLimits limits_;
  bool mtls_ = false;
  std::atomic<bool> stopping_{false};
};

template <typename Req, typename Resp, typename Fn>
grpc::Status CallGate::Unary(ServerContext* ctx, Role needed, const char* operation, const Req& req,
                             Resp* resp, Fn&& fn) {
  grpc::Status reply;
  const std::optional<Principal> who = Admit(ctx, operation, &reply);
  if (!who) return reply;
  if (absl::Status st = CheckRole(*who, needed, operation); !st.ok()) {
    if (needed == Role::kOperator) handlers_.RecordRefused(*who, operation, req, st);
    return Reply(ctx, st, "permission");
  }
  if (auto st = CheckRequest(req, limits_); !st.ok()) {
    // Calls that need the operator role are the mutations: refused ones are
    // audited like applied ones.
    if (needed == Role::kOperator) handlers_.RecordRefused(*who, operation, req, st);
    return Reply(ctx, st, "invalid-request");
  }
  const absl::Status st = fn(*who);
  if (st.ok()) SanitizeUtf8Fields(*resp);
  // UNAVAILABLE from a running daemon (audit log or state file unwritable)
  // is a refusal, not an unreachable daemon.
  return Reply(ctx, st, absl::IsUnavailable(st) ? "refused" : "");
}

template <typename Req, typename Fn>
grpc::Status CallGate::Stream(ServerContext* ctx, StreamSlots& slots, const char* operation,
                              const Req& req, Fn&& fn) {
  grpc::Status reply;
  const std::optional<Principal> who = Admit(ctx, operation, &reply);
  if (!who) return reply;
  if (auto st = CheckRequest(req, limits_); !st.ok()) {
    return Reply(ctx, st, "invalid-request");
  }
  if (!TakeSlot(ctx, slots, &reply)) return reply;
  const absl::Status st = fn(*who);
  slots.open.fetch_sub(1);
  return Reply(ctx, st, absl::IsUnavailable(st) ? "refused" : "");
}

template <typename Msg, typename Resp, typename Fn>
grpc::Status CallGate::ClientStream(ServerContext* ctx, StreamSlots& slots, const char* operation,
                                    grpc::ServerReader<Msg>* reader, Resp* resp, Fn&& fn) {
  grpc::Status reply;
  const std::optional<Principal> who = Admit(ctx, operation, &reply);
  if (!who) return reply;
  if (absl::Status st = CheckRole(*who, Role::kOperator, operation); !st.ok()) {
    handlers_.RecordRefused(*who, operation, Msg(), st);
    return Reply(ctx, st, "permission");
  }
  if (!TakeSlot(ctx, slots, &reply)) return reply;
  const auto read = [&](Msg* m) -> absl::StatusOr<bool> {
    if (stopping_) return false;
    if (!reader->Read(m)) return false;
    if (auto st = CheckRequest(*m, limits_); !st.ok()) return st;
    return true;
  };
  const absl::Status st = fn(*who, read);
  slots.open.fetch_sub(1);
  if (st.ok()) SanitizeUtf8Fields(*resp);
  return Reply(ctx, st, absl::IsUnavailable(st) ? "refused" : "");
}

}  // namespace aers::control
