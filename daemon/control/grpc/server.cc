#include "control/grpc/server.h"

#include <fcntl.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "control.grpc.pb.h"
#include "control/grpc/convert.h"
#include "control/grpc/reflection.h"
#include "control/grpc/tcp_gate.h"
#include "control/grpc/tls.h"
#include "control/paths.h"
#include "control/utf8.h"

namespace aers::control {

namespace {

using grpc::ServerContext;

// Trailing metadata telling clients why a call was refused, so they never
// have to guess from the code or the text ("locked-out" and "too-large"
// are both RESOURCE_EXHAUSTED).
constexpr char kReasonKey[] = "aers-error-reason";
constexpr size_t kMaxErrorBytes = 4096;

grpc::Status Reply(ServerContext* ctx, const absl::Status& st, std::string_view reason = {}) {
  if (st.ok()) return grpc::Status::OK;
  if (!reason.empty()) ctx->AddTrailingMetadata(kReasonKey, std::string(reason));
  // Errors travel in gRPC trailers (8 KiB by default on the client side).
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()),
                      SanitizeUtf8(Truncate(std::string(st.message()), kMaxErrorBytes)));
}

// The socket's directory: created 0750 if missing; if it exists it must be a
// real directory (not a symlink) owned by us or root and not writable by
// others, so nobody else can swap the socket for something of theirs.
absl::Status PrepareSocketDir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    const auto parent = std::filesystem::path(dir).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(
          absl::StrCat(dir, ": cannot create the socket directory: ", std::strerror(errno)));
    }
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::PermissionDeniedError(
        absl::StrCat(dir, ": the socket directory is not a directory (or is a symlink)"));
  }
  if ((st.st_uid != ::geteuid() && st.st_uid != 0) || (st.st_mode & S_IWOTH) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        dir,
        ": the socket directory must be owned by this user or root and not writable by "
        "others"));
  }
  return absl::OkStatus();
}

// One daemon per socket path, for as long as it runs: an flock on
// PATH.lock (kept; removing lock files races). A second daemon started at
// the same moment, or after the socket file was deleted, is refused instead
// of taking the path over (and later deleting the other's socket).
absl::StatusOr<int> LockSocketPath(const std::string& path) {
  const std::string lock = path + ".lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "socket ", path, ": cannot open its lock file ", lock, ": ", std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "socket ", path, ": ",
        err == EWOULDBLOCK ? "another aersd runs on this socket (it holds " + lock +
                                 "); refusing to take it over (use --socket to run a second "
                                 "daemon)"
                           : "cannot lock " + lock + ": " + std::strerror(err)));
  }
  return fd;
}

// The socket path must be free, or hold a socket nobody answers on (left by
// a crash). Anything else is never removed: a file of the operator's, or
// the socket of a daemon that is running.
absl::Status ClaimSocketPath(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("socket ", path, ": cannot inspect it: ", std::strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "socket ", path, ": the path exists and is not a socket; refusing to replace it"));
  }
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("socket ", path, ": path too long"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("socket ", path, ": ", std::strerror(errno)));
  }
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::close(fd);
  if (rc == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket ", path,
                     ": another process (a running aersd?) answers on it; refusing to "
                     "take it over (use --socket to run a second daemon)"));
  }
  if (err != ECONNREFUSED) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket ", path, ": cannot tell whether it is in use: ", std::strerror(err)));
  }
  // A stale socket from a crash: nobody listens.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket ", path, ": cannot remove the stale socket: ", std::strerror(errno)));
  }
  spdlog::info("control: removed the stale socket {}", path);
  return absl::OkStatus();
}

struct OwnedSocket {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
};

}  // namespace

// State shared by the per-server service objects.
class ControlServer::Impl {
 public:
  Impl(GraphService& service, StatusFn status, std::string version, std::string state_file,
       PluginsFn plugins, AuditLog* audit)
      : audit_(audit),
        handlers_(ControlHandlers::Deps{&service, audit, std::move(status), std::move(plugins),
                                        std::move(version), std::move(state_file)}),
        service_(service) {}

  // One gRPC server: the Unix socket(s) or the TCP listeners.
  struct Listener {
    std::string name;  // "unix" or "tcp"
    std::unique_ptr<grpc::Server> server;
    std::unique_ptr<aers::v1::Control::Service> control;
    std::unique_ptr<ReflectionService> reflection;
    std::unique_ptr<TcpGate> gate;  // TCP only
    std::atomic<int> streams{0};
  };

  absl::StatusOr<Principal> Authenticate(ServerContext* ctx, const std::string& operation);
  template <typename Req, typename Resp, typename Fn>
  grpc::Status Call(ServerContext* ctx, Role needed, const char* operation, const Req& req,
                    Resp* resp, Fn&& fn);
  template <typename Req, typename Fn>
  grpc::Status Stream(ServerContext* ctx, Listener& listener, const char* operation, const Req& req,
                      Fn&& fn);

  AuditLog* audit_;
  ControlHandlers handlers_;
  GraphService& service_;
  Authenticator auth_;
  ListenerOptions options_;
  bool mtls_ = false;
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<OwnedSocket> sockets_;
  std::vector<int> locks_;  // flock'ed PATH.lock of each Unix socket
};

absl::StatusOr<Principal> ControlServer::Impl::Authenticate(ServerContext* ctx,
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

template <typename Req, typename Resp, typename Fn>
grpc::Status ControlServer::Impl::Call(ServerContext* ctx, Role needed, const char* operation,
                                       const Req& req, Resp* resp, Fn&& fn) {
  if (stopping_) return Reply(ctx, absl::UnavailableError("aersd is shutting down"));
  auto who = Authenticate(ctx, operation);
  if (!who.ok()) {
    return Reply(ctx, who.status(),
                 absl::IsResourceExhausted(who.status()) ? "locked-out" : "unauthenticated");
  }
  if (static_cast<int>(who->role) < static_cast<int>(needed)) {
    const absl::Status st = absl::PermissionDeniedError(
        absl::StrCat("this token's role (", std::string(RoleName(who->role)), ") may not call ",
                     operation, "; an operator token is needed"));
    handlers_.RecordRefused(*who, operation, req, st);
    return Reply(ctx, st, "permission");
  }
  if (auto st = CheckRequest(req, options_.limits); !st.ok()) {
    handlers_.RecordRefused(*who, operation, req, st);
    return Reply(ctx, st, "invalid-request");
  }
  const absl::Status st = fn(*who);
  if (st.ok()) SanitizeUtf8Fields(*resp);
  // UNAVAILABLE from a running daemon (audit log or state file unwritable)
  // is a refusal, not an unreachable daemon.
  return Reply(ctx, st, absl::IsUnavailable(st) ? "refused" : "");
}

template <typename Req, typename Fn>
grpc::Status ControlServer::Impl::Stream(ServerContext* ctx, Listener& listener,
                                         const char* operation, const Req& req, Fn&& fn) {
  if (stopping_) return Reply(ctx, absl::UnavailableError("aersd is shutting down"));
  auto who = Authenticate(ctx, operation);
  if (!who.ok()) {
    return Reply(ctx, who.status(),
                 absl::IsResourceExhausted(who.status()) ? "locked-out" : "unauthenticated");
  }
  if (auto st = CheckRequest(req, options_.limits); !st.ok()) {
    return Reply(ctx, st, "invalid-request");
  }
  if (listener.streams.fetch_add(1) >= options_.max_streams) {
    listener.streams.fetch_sub(1);
    return Reply(ctx,
                 absl::ResourceExhaustedError(absl::StrCat(
                     "too many open streams on the ", listener.name, " listener (at most ",
                     options_.max_streams, "); close one and retry")),
                 "stream-limit");
  }
  const absl::Status st = fn(*who);
  listener.streams.fetch_sub(1);
  return Reply(ctx, st, absl::IsUnavailable(st) ? "refused" : "");
}

namespace {

// aers.v1.Control on one server: every method is the gate plus a handler.
class ControlService final : public aers::v1::Control::Service {
 public:
  using Impl = ControlServer::Impl;
  ControlService(Impl& impl, Impl::Listener& listener) : s_(impl), l_(listener) {}

#define AERS_UNARY(Method, Role_)                                                               \
  grpc::Status Method(ServerContext* ctx, const aers::v1::Method##Request* req,                 \
                      Method##Response* resp) override {                                        \
    return s_.Call(ctx, Role_, #Method, *req, resp,                                             \
                   [&](const Principal& who) { return s_.handlers_.Method(who, *req, resp); }); \
  }
  using GetGraphResponse = aers::v1::GetGraphResponse;
  using GetStatusResponse = aers::v1::Status;
  using ListKindsResponse = aers::v1::ListKindsResponse;
  using ListPluginsResponse = aers::v1::ListPluginsResponse;
  using ApplyGraphResponse = aers::v1::EditResponse;
  using EditResponse = aers::v1::EditResponse;
  using AddNodeResponse = aers::v1::EditResponse;
  using RemoveNodeResponse = aers::v1::EditResponse;
  using ConnectResponse = aers::v1::EditResponse;
  using DisconnectResponse = aers::v1::EditResponse;
  using SetParameterResponse = aers::v1::EditResponse;
  using ResetToConfigResponse = aers::v1::EditResponse;
  AERS_UNARY(GetGraph, Role::kViewer)
  AERS_UNARY(GetStatus, Role::kViewer)
  AERS_UNARY(ListKinds, Role::kViewer)
  AERS_UNARY(ListPlugins, Role::kViewer)
  AERS_UNARY(ApplyGraph, Role::kOperator)
  AERS_UNARY(Edit, Role::kOperator)
  AERS_UNARY(AddNode, Role::kOperator)
  AERS_UNARY(RemoveNode, Role::kOperator)
  AERS_UNARY(Connect, Role::kOperator)
  AERS_UNARY(Disconnect, Role::kOperator)
  AERS_UNARY(SetParameter, Role::kOperator)
  AERS_UNARY(ResetToConfig, Role::kOperator)
#undef AERS_UNARY

  grpc::Status WatchEvents(ServerContext* ctx, const aers::v1::WatchEventsRequest* req,
                           grpc::ServerWriter<aers::v1::Event>* writer) override {
    return s_.Stream(ctx, l_, "WatchEvents", *req, [&](const Principal& who) {
      return s_.handlers_.WatchEvents(
          who, *req, [&] { return ctx->IsCancelled(); },
          [&](const aers::v1::Event& e) {
            aers::v1::Event out = e;
            SanitizeUtf8Fields(out);
            return writer->Write(out);
          });
    });
  }

  grpc::Status StreamMeters(ServerContext* ctx, const aers::v1::StreamMetersRequest* req,
                            grpc::ServerWriter<aers::v1::MeterFrame>* writer) override {
    return s_.Stream(ctx, l_, "StreamMeters", *req, [&](const Principal& who) {
      return s_.handlers_.StreamMeters(
          who, *req, [&] { return ctx->IsCancelled(); },
          [&](const aers::v1::MeterFrame& f) {
            aers::v1::MeterFrame out = f;
            SanitizeUtf8Fields(out);
            return writer->Write(out);
          });
    });
  }

 private:
  Impl& s_;
  Impl::Listener& l_;
};

}  // namespace

ControlServer::ControlServer(GraphService& service, StatusFn status, std::string version,
                             std::string state_file, PluginsFn plugins, AuditLog* audit)
    : impl_(std::make_unique<Impl>(service, std::move(status), std::move(version),
                                   std::move(state_file), std::move(plugins), audit)) {}

ControlServer::~ControlServer() {
  Shutdown();
}

std::string ControlServer::DefaultSocketPath() {
  return control::DefaultSocketPath();
}

absl::Status ControlServer::Start(const ListenerOptions& options) {
  Impl& s = *impl_;
  s.options_ = options;
  if (!options.token_file.empty()) {
    if (auto st = s.auth_.LoadTokenFile(options.token_file); !st.ok()) return st;
  }
  std::vector<std::string> unix_addrs, tcp_addrs;
  if (!options.unix_socket.empty()) unix_addrs.push_back("unix:" + options.unix_socket);
  for (const auto& a : options.listen) {
    if (absl::StartsWith(a, "unix:") && a.size() > 5) {
      unix_addrs.push_back(a);
    } else if (absl::StartsWith(a, "tcp:") && a.size() > 4) {
      tcp_addrs.push_back(a);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("listener '", a, "': use unix:/path or tcp:HOST:PORT"));
    }
  }
  if (unix_addrs.empty() && tcp_addrs.empty()) {
    return absl::InvalidArgumentError("no control listener configured");
  }
  // TLS material is checked whenever it is given, TCP or not: a half-set
  // TLS configuration is an error, never a silent plaintext listener.
  auto tls = LoadTlsMaterial(options.tls_cert, options.tls_key, options.tls_client_ca);
  if (!tls.ok()) return tls.status();
  s.mtls_ = tls->has_value() && !(*tls)->client_ca_pem.empty();
  std::shared_ptr<grpc::ServerCredentials> tcp_creds;
  for (const auto& a : tcp_addrs) {
    const std::string hostport = a.substr(4);
    const auto colon = hostport.rfind(':');
    const std::string host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
    if (tls->has_value()) {
      if (!s.mtls_ && !s.auth_.has_tokens()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "listener ", a,
            ": TLS without client certificates (--tls_client_ca) needs a token file too"));
      }
    } else if (s.auth_.has_tokens()) {
      if (!IsLoopbackHost(host) && !options.allow_plaintext_tokens) {
        return absl::FailedPreconditionError(absl::StrCat(
            "listener ", a,
            ": bearer tokens would travel in clear text over a non-loopback address; configure "
            "TLS (--tls_cert/--tls_key) or pass --allow_plaintext_tokens"));
      }
      spdlog::warn("control: {} uses bearer tokens without TLS: tokens travel in clear text", a);
    } else {
      return absl::FailedPreconditionError(
          absl::StrCat("listener ", a,
                       ": a TCP listener needs TLS (--tls_cert/--tls_key) or a token file "
                       "(--token_file)"));
    }
  }
  if (!tcp_addrs.empty()) {
    if (tls->has_value()) {
      grpc::SslServerCredentialsOptions ssl(
          s.mtls_ ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                  : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      ssl.pem_key_cert_pairs.push_back({(*tls)->key_pem, (*tls)->cert_pem});
      ssl.pem_root_certs = (*tls)->client_ca_pem;
      tcp_creds = grpc::SslServerCredentials(ssl);
    } else {
      tcp_creds = grpc::InsecureServerCredentials();
    }
  }
  for (const auto& a : unix_addrs) {
    const std::string path = a.substr(5);
    if (auto st = PrepareSocketDir(std::filesystem::path(path).parent_path().string()); !st.ok()) {
      return st;
    }
    auto lock = LockSocketPath(path);
    if (!lock.ok()) {
      Shutdown();
      return lock.status();
    }
    s.locks_.push_back(*lock);
    if (auto st = ClaimSocketPath(path); !st.ok()) {
      Shutdown();
      return st;
    }
  }

  const std::vector<std::string> services = {"aers.v1.Control", "grpc.health.v1.Health",
                                             "grpc.reflection.v1alpha.ServerReflection"};
  grpc::EnableDefaultHealthCheckService(true);
  auto build = [&](const std::string& name, const std::vector<std::string>& addrs,
                   const std::shared_ptr<grpc::ServerCredentials>& creds) -> absl::Status {
    if (addrs.empty()) return absl::OkStatus();
    auto listener = std::make_unique<Impl::Listener>();
    listener->name = name;
    Impl::Listener& l = *listener;
    listener->control = std::make_unique<ControlService>(s, l);
    listener->reflection =
        std::make_unique<ReflectionService>(services, [&s](ServerContext* ctx) -> grpc::Status {
          if (s.stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down");
          auto who = s.Authenticate(ctx, "ServerReflectionInfo");
          if (!who.ok()) {
            return Reply(
                ctx, who.status(),
                absl::IsResourceExhausted(who.status()) ? "locked-out" : "unauthenticated");
          }
          return grpc::Status::OK;
        });
    grpc::ServerBuilder builder;
    std::vector<int> ports(addrs.size(), 0);
    std::vector<std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor>> acceptors;
    if (name == "tcp") {
      // aersd accepts TCP connections itself, to cap them (tcp_gate.h).
      TcpGate::Options go;
      go.max_connections = static_cast<size_t>(std::max(1, options.max_connections));
      go.max_per_source = static_cast<size_t>(std::max(1, options.max_connections_per_source));
      listener->gate = std::make_unique<TcpGate>(go);
      for (size_t i = 0; i < addrs.size(); ++i) {
        if (auto st = listener->gate->Listen(addrs[i].substr(4)); !st.ok()) return st;
        acceptors.push_back(builder.experimental().AddExternalConnectionAcceptor(
            grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD, creds));
        ports[i] = 1;
      }
    } else {
      for (size_t i = 0; i < addrs.size(); ++i) {
        builder.AddListeningPort(addrs[i], grpc::InsecureServerCredentials(), &ports[i]);
      }
    }
    builder.RegisterService(listener->control.get());
    builder.RegisterService(listener->reflection.get());
    builder.SetMaxReceiveMessageSize(static_cast<int>(options.limits.max_message_bytes));
    grpc::ResourceQuota quota(absl::StrCat("aersd-control-", name));
    quota.SetMaxThreads(std::max(4, options.max_threads));
    // gRPC's own buffers (requests being read, replies being written).
    quota.Resize(options.memory_quota_bytes);
    builder.SetResourceQuota(quota);
    if (name == "tcp") {
      // Half-open and idle connections do not hold descriptors for long.
      builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 10'000);
      builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 120'000);
      builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 8);
    }
    // Sockets are created 0660 from the start (no chmod window to race).
    const mode_t old_umask = ::umask(0117);
    listener->server = builder.BuildAndStart();
    ::umask(old_umask);
    if (!listener->server) {
      return absl::UnavailableError(
          absl::StrCat("control: cannot start the ", name, " listeners (", addrs.front(), ")"));
    }
    if (listener->gate) listener->gate->Start(std::move(acceptors));
    for (size_t i = 0; i < addrs.size(); ++i) {
      if (ports[i] == 0) {
        listener->server->Shutdown();
        return absl::UnavailableError(absl::StrCat("control: cannot listen on ", addrs[i]));
      }
      if (absl::StartsWith(addrs[i], "unix:")) {
        OwnedSocket o;
        o.path = addrs[i].substr(5);
        struct stat st {};
        if (::lstat(o.path.c_str(), &st) == 0) {
          o.dev = st.st_dev;
          o.ino = st.st_ino;
        }
        s.sockets_.push_back(std::move(o));
      }
      spdlog::info("control: listening on {}", addrs[i]);
    }
    s.listeners_.push_back(std::move(listener));
    return absl::OkStatus();
  };
  absl::Status st = build("unix", unix_addrs, nullptr);
  if (st.ok()) st = build("tcp", tcp_addrs, tcp_creds);
  if (!st.ok()) {
    Shutdown();
    return st;
  }
  SetServing(false);
  return absl::OkStatus();
}

void ControlServer::SetServing(bool serving) {
  for (const auto& l : impl_->listeners_) {
    if (l->server && l->server->GetHealthCheckService()) {
      // The server as a whole ("") and the control service by name.
      l->server->GetHealthCheckService()->SetServingStatus(serving);
      l->server->GetHealthCheckService()->SetServingStatus("aers.v1.Control", serving);
    }
  }
}

void ControlServer::Shutdown() {
  Impl& s = *impl_;
  if (s.listeners_.empty() && s.sockets_.empty() && s.locks_.empty()) return;
  s.stopping_ = true;
  s.handlers_.Stop();
  s.service_.events().CloseAll();
  SetServing(false);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(2);
  for (auto& l : s.listeners_) {
    if (l->gate) l->gate->Stop();
  }
  for (auto& l : s.listeners_) l->server->Shutdown(deadline);
  for (auto& l : s.listeners_) l->server->Wait();
  s.listeners_.clear();
  // Remove only the sockets this process created and that are still there.
  for (const auto& o : s.sockets_) {
    struct stat st {};
    if (::lstat(o.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == o.dev &&
        st.st_ino == o.ino) {
      ::unlink(o.path.c_str());
    }
  }
  s.sockets_.clear();
  // Released last: until now no other daemon could have made a socket here.
  for (const int fd : s.locks_) ::close(fd);
  s.locks_.clear();
}

}  // namespace aers::control
