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
#include "control/grpc/connection_gate.h"
#include "control/grpc/convert.h"
#include "control/grpc/gate.h"
#include "control/grpc/reflection.h"
#include "control/grpc/tls.h"
#include "control/grpc/unix_socket.h"
#include "control/paths.h"
#include "control/utf8.h"

namespace aers::control {

namespace {

using grpc::ServerContext;

}  // namespace

// State shared by the per-server service objects.
class ControlServer::Impl {
 public:
  Impl(GraphService& service, StatusFn status, std::string version, std::string state_file,
       PluginsFn plugins, AuditLog* audit)
      : audit_(audit),
        handlers_(ControlHandlers::Deps{&service, audit, std::move(status), std::move(plugins),
                                        std::move(version), std::move(state_file)}),
        gate_(handlers_, audit),
        service_(service) {}

  // One gRPC server: the Unix socket(s) or the TCP listeners.
  struct Listener {
    std::string name;  // "unix" or "tcp"
    std::unique_ptr<grpc::Server> server;
    std::unique_ptr<aers::v1::Control::Service> control;
    std::unique_ptr<ReflectionService> reflection;
    std::unique_ptr<ConnectionGate> gate;  // accepts for every listener of this server
    StreamSlots streams;
  };

  AuditLog* audit_;
  ControlHandlers handlers_;
  CallGate gate_;  // declared after handlers_: it refers to them
  GraphService& service_;
  ListenerOptions options_;
  bool mtls_ = false;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<OwnedSocket> sockets_;
  std::vector<int> locks_;  // flock'ed PATH.lock of each Unix socket
};

namespace {

// aers.v1.Control on one server: every method is the gate plus a handler.
class ControlService final : public aers::v1::Control::Service {
 public:
  using Impl = ControlServer::Impl;
  ControlService(Impl& impl, Impl::Listener& listener) : s_(impl), l_(listener) {}

#define AERS_UNARY(Method, Role_)                                                      \
  grpc::Status Method(ServerContext* ctx, const aers::v1::Method##Request* req,        \
                      Method##Response* resp) override {                               \
    return s_.gate_.Unary(ctx, Role_, #Method, *req, resp, [&](const Principal& who) { \
      return s_.handlers_.Method(who, *req, resp);                                     \
    });                                                                                \
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
  using ResetLoudnessResponse = aers::v1::ResetLoudnessResponse;
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
  AERS_UNARY(ResetLoudness, Role::kOperator)
#undef AERS_UNARY

  grpc::Status WatchEvents(ServerContext* ctx, const aers::v1::WatchEventsRequest* req,
                           grpc::ServerWriter<aers::v1::Event>* writer) override {
    return s_.gate_.Stream(ctx, l_.streams, "WatchEvents", *req, [&](const Principal& who) {
      return s_.handlers_.WatchEvents(
          who, *req, [&] { return ctx->IsCancelled(); },
          [&](const aers::v1::Event& e) {
            aers::v1::Event out = e;
            SanitizeUtf8Fields(out);
            return writer->Write(out);
          });
    });
  }

  grpc::Status StreamParameters(ServerContext* ctx,
                                grpc::ServerReader<aers::v1::StreamParametersRequest>* reader,
                                aers::v1::StreamParametersResponse* resp) override {
    return s_.gate_.ClientStream(
        ctx, l_.streams, "StreamParameters", reader, resp,
        [&](const Principal& who, const ControlHandlers::ReadParameterFn& read) {
          return s_.handlers_.StreamParameters(who, read, resp);
        });
  }

  grpc::Status StreamMeters(ServerContext* ctx, const aers::v1::StreamMetersRequest* req,
                            grpc::ServerWriter<aers::v1::MeterFrame>* writer) override {
    return s_.gate_.Stream(ctx, l_.streams, "StreamMeters", *req, [&](const Principal& who) {
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
    if (auto st = s.gate_.auth().LoadTokenFile(options.token_file); !st.ok()) return st;
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
    return absl::InvalidArgumentError(
        "no control listener: --socket none needs a --listen address (or AERS_HOST and "
        "AERS_PORT); the daemon cannot run without a control plane");
  }
  // TLS material is checked whenever it is given, TCP or not: a half-set
  // TLS configuration is an error, never a silent plaintext listener.
  auto tls = LoadTlsMaterial(options.tls_cert, options.tls_key, options.tls_client_ca);
  if (!tls.ok()) return tls.status();
  s.mtls_ = tls->has_value() && !(*tls)->client_ca_pem.empty();
  s.gate_.Configure(options.limits, s.mtls_);
  std::shared_ptr<grpc::ServerCredentials> tcp_creds;
  for (const auto& a : tcp_addrs) {
    const std::string hostport = a.substr(4);
    const auto colon = hostport.rfind(':');
    const std::string host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
    if (tls->has_value()) {
      if (!s.mtls_ && !s.gate_.auth().has_tokens()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "listener ", a,
            ": TLS without client certificates (--tls_client_ca) needs a token file too"));
      }
    } else if (s.gate_.auth().has_tokens()) {
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
    // gRPC clients read "unix:A,B" as two addresses: no client could reach
    // a socket whose path has a comma.
    if (path.find(',') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("socket ", path,
                       ": a comma in a socket path cannot be reached by gRPC "
                       "clients (they read it as a list of addresses)"));
    }
    // Checked before anything is created for it.
    if (path.size() > 107) {
      return absl::InvalidArgumentError(
          absl::StrCat("socket ", path, ": ", path.size(),
                       " bytes, longer than a Unix socket path can be (107)"));
    }
    // A bare file name ("aersd.sock") is in the working directory.
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (auto st = PrepareSocketDir(dir.empty() ? "." : dir.string()); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("socket ", path, ": ", st.message()));
    }
    // What is refused anyway is refused before PATH.lock is created beside
    // it (ClaimSocketPath checks again under the lock).
    if (struct stat st{}; ::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "socket ", path, ": the path exists and is not a socket; refusing to replace it"));
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
  // The sockets this process created, to remove them (and only them) at
  // shutdown.
  const auto remember_socket = [&s](const std::string& path) {
    OwnedSocket o;
    o.path = path;
    struct stat st {};
    if (::lstat(o.path.c_str(), &st) == 0) {
      o.dev = st.st_dev;
      o.ino = st.st_ino;
    }
    s.sockets_.push_back(std::move(o));
  };
  auto build = [&](const std::string& name, const std::vector<std::string>& addrs,
                   const std::shared_ptr<grpc::ServerCredentials>& creds) -> absl::Status {
    if (addrs.empty()) return absl::OkStatus();
    auto listener = std::make_unique<Impl::Listener>();
    listener->name = name;
    listener->streams.listener = name;
    listener->streams.max = options.max_streams;
    Impl::Listener& l = *listener;
    listener->control = std::make_unique<ControlService>(s, l);
    listener->reflection = std::make_unique<ReflectionService>(services, [&s](ServerContext* ctx) {
      return s.gate_.AuthenticateOnly(ctx, "ServerReflectionInfo");
    });
    grpc::ServerBuilder builder;
    std::vector<std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor>> acceptors;
    // aersd accepts connections itself, to cap them and to survive a failed
    // accept() (connection_gate.h). The Unix socket keeps fewer descriptors
    // in reserve than TCP, so that it still gets in when TCP is refused.
    ConnectionGate::Options go;
    go.max_connections = static_cast<size_t>(
        std::max(1, name == "tcp" ? options.max_connections : options.max_unix_connections));
    go.max_per_source = name == "tcp"
                            ? static_cast<size_t>(std::max(1, options.max_connections_per_source))
                            : go.max_connections;  // local peers mostly share one uid
    go.reserve_fds = name == "tcp" ? 128 : 32;
    listener->gate = std::make_unique<ConnectionGate>(go);
    for (size_t i = 0; i < addrs.size(); ++i) {
      // Unix sockets are created 0660 from the start (no chmod window).
      auto st = name == "tcp" ? listener->gate->ListenTcp(addrs[i].substr(4))
                              : listener->gate->ListenUnix(addrs[i].substr(5), 0660);
      if (!st.ok()) return st;
      if (name != "tcp") remember_socket(addrs[i].substr(5));
      acceptors.push_back(builder.experimental().AddExternalConnectionAcceptor(
          grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
          name == "tcp" ? creds : grpc::InsecureServerCredentials()));
    }
    builder.RegisterService(listener->control.get());
    builder.RegisterService(listener->reflection.get());
    builder.SetMaxReceiveMessageSize(static_cast<int>(options.limits.max_message_bytes));
    grpc::ResourceQuota quota(absl::StrCat("aersd-control-", name));
    quota.SetMaxThreads(std::max(4, options.max_threads));
    // gRPC's own buffers (requests being read, replies being written).
    quota.Resize(options.memory_quota_bytes);
    builder.SetResourceQuota(quota);
    // Keep idle threads polling instead of exiting: gRPC's sync server
    // otherwise keeps at most two and starts (then ends) a thread for each
    // call that finds none free; 20 clients at once made that hundreds of
    // thread starts a second, each on the edit's path. Bounded by the
    // quota's thread cap above.
    builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
    builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                                std::max(2, options.max_threads / 2));
    if (name == "tcp") {
      // Half-open and idle connections do not hold descriptors for long.
      builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 10'000);
      builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 120'000);
      builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 8);
    }
    listener->server = builder.BuildAndStart();
    if (!listener->server) {
      return absl::UnavailableError(
          absl::StrCat("control: cannot start the ", name, " listeners (", addrs.front(), ")"));
    }
    listener->gate->Start(std::move(acceptors));
    for (const auto& a : addrs) spdlog::info("control: listening on {}", a);
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
  s.gate_.Stop();
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
