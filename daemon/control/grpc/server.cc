#include "control/grpc/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "config/config.h"
#include "control.grpc.pb.h"
#include "control/grpc/convert.h"
#include "control/paths.h"
#include "rt/hooks.h"

namespace aers::control {

namespace {

using grpc::ServerContext;
using Clock = std::chrono::steady_clock;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// "ipv4:1.2.3.4:5678" -> "1.2.3.4"; "ipv6:[::1]:5678" -> "[::1]"; unix -> "".
std::string PeerAddress(const std::string& peer) {
  if (absl::StartsWith(peer, "unix:")) return "";
  const auto first = peer.find(':');
  const auto last = peer.rfind(':');
  if (first == std::string::npos || last <= first) return peer;
  return peer.substr(first + 1, last - first - 1);
}

std::optional<uint64_t> Expected(bool has, uint64_t value) {
  return has ? std::optional<uint64_t>(value) : std::nullopt;
}

void FillEdit(const EditOutcome& o, aers::v1::EditResponse* r) {
  r->set_revision(o.revision);
  r->set_applied(o.applied);
  r->set_replanned(o.replanned);
  for (const auto& c : o.changes) r->add_changes(c);
}

aers::v1::Event ToProto(const Event& e) {
  aers::v1::Event p;
  p.set_seq(e.seq);
  p.set_unix_time_ms(e.unix_time_ms);
  p.set_dropped_before(e.dropped_before);
  switch (e.type) {
    case Event::Type::kGraphChanged: {
      auto* g = p.mutable_graph_changed();
      g->set_revision(e.revision);
      for (const auto& c : e.changes) g->add_changes(c);
      g->set_origin(e.origin);
      break;
    }
    case Event::Type::kXrun:
      p.mutable_xrun()->set_total(e.xruns_total);
      break;
    case Event::Type::kBackendLost:
      p.mutable_backend_lost()->set_reason(e.text);
      break;
    case Event::Type::kBackendRestored:
      p.mutable_backend_restored()->set_backend(e.text);
      break;
    case Event::Type::kConfigReloaded:
      p.mutable_config_reloaded()->set_ok(e.ok);
      p.mutable_config_reloaded()->set_error(e.text);
      break;
  }
  return p;
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

}  // namespace

class ControlServer::Impl final : public aers::v1::Control::Service {
 public:
  Impl(GraphService& service, StatusFn status, std::string version, std::string state_file,
       PluginsFn plugins)
      : service_(service),
        status_(std::move(status)),
        version_(std::move(version)),
        state_file_(std::move(state_file)),
        plugins_(std::move(plugins)),
        started_(Clock::now()) {}

  GraphService& service_;
  StatusFn status_;
  std::string version_;
  std::string state_file_;
  PluginsFn plugins_;
  Clock::time_point started_;
  Authenticator auth_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<bool> stopping_{false};
  std::vector<std::string> unix_paths_;
  std::mutex audit_mu_;
  std::ofstream audit_;

  // Who may do what. Unix socket callers are operators (the socket's mode
  // gates access); TCP callers present a bearer token (or a client cert).
  grpc::Status Authorize(ServerContext* ctx, Role needed, std::string* who) {
    if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "aersd is shutting down");
    const std::string peer = ctx->peer();
    if (absl::StartsWith(peer, "unix:") || !auth_.has_tokens()) {
      // No tokens configured means TCP is protected by mTLS alone (Start()
      // refuses unprotected TCP).
      *who = absl::StartsWith(peer, "unix:") ? "unix" : peer;
      return grpc::Status::OK;
    }
    std::string token;
    const auto& md = ctx->client_metadata();
    auto it = md.find("authorization");
    if (it != md.end()) {
      const std::string v(it->second.data(), it->second.size());
      if (absl::StartsWith(v, "Bearer ")) token = v.substr(7);
    }
    auto role = auth_.Check(PeerAddress(peer), token);
    if (!role.ok()) {
      Audit(peer, "auth", role.status());
      return ToGrpcStatus(role.status());
    }
    if (static_cast<int>(*role) < static_cast<int>(needed)) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("this token's role (", std::string(RoleName(*role)),
                                       ") may not change the graph; an operator token is needed"));
    }
    *who = absl::StrCat(peer, " (", std::string(RoleName(*role)), ")");
    return grpc::Status::OK;
  }

  void Audit(const std::string& who, const std::string& method, const absl::Status& result,
             uint64_t revision = 0) {
    const std::string line =
        absl::StrCat(R"({"ts_ms":)",
                     std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count(),
                     R"(,"peer":")", who, R"(","method":")", method, R"(","code":")",
                     absl::StatusCodeToString(result.code()), R"(","revision":)", revision, "}");
    spdlog::info("audit: {}", line);
    std::lock_guard lock(audit_mu_);
    if (audit_.is_open()) audit_ << line << '\n' << std::flush;
  }

  template <typename Fn>
  grpc::Status Mutate(ServerContext* ctx, const char* method, aers::v1::EditResponse* resp,
                      Fn&& fn) {
    std::string who;
    if (auto st = Authorize(ctx, Role::kOperator, &who); !st.ok()) return st;
    absl::StatusOr<EditOutcome> r = fn();
    Audit(who, method, r.status(), r.ok() ? r->revision : 0);
    if (!r.ok()) return ToGrpcStatus(r.status());
    FillEdit(*r, resp);
    return grpc::Status::OK;
  }

  grpc::Status GetGraph(ServerContext* ctx, const aers::v1::GetGraphRequest*,
                        aers::v1::GetGraphResponse* resp) override {
    std::string who;
    if (auto st = Authorize(ctx, Role::kViewer, &who); !st.ok()) return st;
    auto [graph, rev] = service_.Graph();
    *resp->mutable_graph() = ToProto(graph);
    resp->set_revision(rev);
    config::Config c;
    c.graph = graph;
    resp->set_yaml(config::EmitConfig(c));
    return grpc::Status::OK;
  }

  grpc::Status GetStatus(ServerContext* ctx, const aers::v1::GetStatusRequest*,
                         aers::v1::Status* resp) override {
    std::string who;
    if (auto st = Authorize(ctx, Role::kViewer, &who); !st.ok()) return st;
    const backend::BackendStatus b = status_ ? status_() : backend::BackendStatus{};
    auto [graph, rev] = service_.Graph();
    resp->set_backend(b.name);
    resp->set_audio_running(b.running);
    resp->set_sample_rate_hz(b.sample_rate_hz);
    resp->set_period_frames(b.period_frames);
    resp->set_dsp_load(b.dsp_load_percent / 100.0);
    resp->set_xruns(b.xruns);
    resp->set_uptime_s(std::chrono::duration<double>(Clock::now() - started_).count());
    resp->set_version(version_);
    resp->set_revision(rev);
    resp->set_nodes(static_cast<uint32_t>(graph.nodes.size()));
    resp->mutable_dsp_time()->set_mean_us(b.dsp.mean_us);
    resp->mutable_dsp_time()->set_p99_us(b.dsp.p99_us);
    resp->mutable_dsp_time()->set_max_us(b.dsp.max_us);
    resp->set_events_dropped(service_.events().dropped());
    resp->set_state_file(state_file_);
    if (const auto n = rt::AudioThreadAllocations()) resp->set_rt_allocations(*n);
    for (const auto& r : service_.engine().SignalReports()) *resp->add_signals() = ToProto(r);
    return grpc::Status::OK;
  }

  grpc::Status ApplyGraph(ServerContext* ctx, const aers::v1::ApplyGraphRequest* req,
                          aers::v1::EditResponse* resp) override {
    return Mutate(ctx, "ApplyGraph", resp, [&]() -> absl::StatusOr<EditOutcome> {
      const auto expected = Expected(req->has_expected_revision(), req->expected_revision());
      if (req->has_graph()) {
        if (auto st = CheckEndpoints(req->graph()); !st.ok()) return st;
        return service_.ApplyGraph(FromProto(req->graph()), req->dry_run(), expected);
      }
      if (req->has_yaml()) {
        return service_.ApplyYaml(req->yaml(), req->source_name(), req->dry_run(), expected);
      }
      return absl::InvalidArgumentError("source: give either graph or yaml");
    });
  }

  static absl::Status CheckRoute(const aers::v1::Route& r, const std::string& path) {
    if (auto st = CheckEndpointText(r.from(), path + ".from"); !st.ok()) return st;
    return CheckEndpointText(r.to(), path + ".to");
  }

  static absl::StatusOr<EditOp> OpFromProto(const aers::v1::EditOp& p, size_t i) {
    EditOp op;
    switch (p.op_case()) {
      case aers::v1::EditOp::kAddNode:
        op.type = EditOp::Type::kAddNode;
        op.node = FromProto(p.add_node());
        break;
      case aers::v1::EditOp::kRemoveNode:
        op.type = EditOp::Type::kRemoveNode;
        op.name = p.remove_node();
        break;
      case aers::v1::EditOp::kConnect:
        if (auto st = CheckRoute(p.connect(), absl::StrCat("ops[", i, "].connect")); !st.ok()) {
          return st;
        }
        op.type = EditOp::Type::kConnect;
        op.route = {model::Endpoint::Parse(p.connect().from()),
                    model::Endpoint::Parse(p.connect().to())};
        break;
      case aers::v1::EditOp::kDisconnect:
        if (auto st = CheckRoute(p.disconnect(), absl::StrCat("ops[", i, "].disconnect"));
            !st.ok()) {
          return st;
        }
        op.type = EditOp::Type::kDisconnect;
        op.route = {model::Endpoint::Parse(p.disconnect().from()),
                    model::Endpoint::Parse(p.disconnect().to())};
        break;
      case aers::v1::EditOp::kSetParameter:
        op.type = EditOp::Type::kSetParameter;
        op.name = p.set_parameter().node();
        op.param = p.set_parameter().param();
        if (!p.set_parameter().has_value()) {
          return absl::InvalidArgumentError(
              absl::StrCat("ops[", i, "].set_parameter.value: missing"));
        }
        op.value = FromProto(p.set_parameter().value());
        break;
      case aers::v1::EditOp::OP_NOT_SET:
        return absl::InvalidArgumentError(absl::StrCat("ops[", i, "]: no operation set"));
    }
    return op;
  }

  grpc::Status Edit(ServerContext* ctx, const aers::v1::EditRequest* req,
                    aers::v1::EditResponse* resp) override {
    return Mutate(ctx, "Edit", resp, [&]() -> absl::StatusOr<EditOutcome> {
      std::vector<EditOp> ops;
      for (int i = 0; i < req->ops_size(); ++i) {
        auto op = OpFromProto(req->ops(i), static_cast<size_t>(i));
        if (!op.ok()) return op.status();
        ops.push_back(std::move(*op));
      }
      return service_.Edit(ops, req->dry_run(),
                           Expected(req->has_expected_revision(), req->expected_revision()));
    });
  }

  grpc::Status One(ServerContext* ctx, const char* method, EditOp op, bool has_expected,
                   uint64_t expected, aers::v1::EditResponse* resp) {
    return Mutate(ctx, method, resp,
                  [&] { return service_.Edit({op}, false, Expected(has_expected, expected)); });
  }

  grpc::Status AddNode(ServerContext* ctx, const aers::v1::AddNodeRequest* req,
                       aers::v1::EditResponse* resp) override {
    EditOp op;
    op.type = EditOp::Type::kAddNode;
    op.node = FromProto(req->node());
    return One(ctx, "AddNode", op, req->has_expected_revision(), req->expected_revision(), resp);
  }

  grpc::Status RemoveNode(ServerContext* ctx, const aers::v1::RemoveNodeRequest* req,
                          aers::v1::EditResponse* resp) override {
    EditOp op;
    op.type = EditOp::Type::kRemoveNode;
    op.name = req->name();
    return One(ctx, "RemoveNode", op, req->has_expected_revision(), req->expected_revision(), resp);
  }

  grpc::Status Connect(ServerContext* ctx, const aers::v1::ConnectRequest* req,
                       aers::v1::EditResponse* resp) override {
    if (auto st = CheckEndpointText(req->from(), "from"); !st.ok()) return ToGrpcStatus(st);
    if (auto st = CheckEndpointText(req->to(), "to"); !st.ok()) return ToGrpcStatus(st);
    EditOp op;
    op.type = EditOp::Type::kConnect;
    op.route = {model::Endpoint::Parse(req->from()), model::Endpoint::Parse(req->to())};
    return One(ctx, "Connect", op, req->has_expected_revision(), req->expected_revision(), resp);
  }

  grpc::Status Disconnect(ServerContext* ctx, const aers::v1::DisconnectRequest* req,
                          aers::v1::EditResponse* resp) override {
    if (auto st = CheckEndpointText(req->from(), "from"); !st.ok()) return ToGrpcStatus(st);
    if (auto st = CheckEndpointText(req->to(), "to"); !st.ok()) return ToGrpcStatus(st);
    EditOp op;
    op.type = EditOp::Type::kDisconnect;
    op.route = {model::Endpoint::Parse(req->from()), model::Endpoint::Parse(req->to())};
    return One(ctx, "Disconnect", op, req->has_expected_revision(), req->expected_revision(), resp);
  }

  grpc::Status SetParameter(ServerContext* ctx, const aers::v1::SetParameterRequest* req,
                            aers::v1::EditResponse* resp) override {
    if (!req->has_value()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "value: missing");
    }
    EditOp op;
    op.type = EditOp::Type::kSetParameter;
    op.name = req->node();
    op.param = req->param();
    op.value = FromProto(req->value());
    return One(ctx, "SetParameter", op, req->has_expected_revision(), req->expected_revision(),
               resp);
  }

  grpc::Status ResetToConfig(ServerContext* ctx, const aers::v1::ResetToConfigRequest* req,
                             aers::v1::EditResponse* resp) override {
    return Mutate(ctx, "ResetToConfig", resp, [&] {
      return service_.ResetToConfig(
          Expected(req->has_expected_revision(), req->expected_revision()));
    });
  }

  grpc::Status ListKinds(ServerContext* ctx, const aers::v1::ListKindsRequest*,
                         aers::v1::ListKindsResponse* resp) override {
    std::string who;
    if (auto st = Authorize(ctx, Role::kViewer, &who); !st.ok()) return st;
    const double rate = service_.engine().format().sample_rate_hz;
    for (const model::NodeKind* k : service_.engine().kinds().List()) {
      *resp->add_kinds() = control::ToProto(*k, rate);
    }
    return grpc::Status::OK;
  }

  grpc::Status ListPlugins(ServerContext* ctx, const aers::v1::ListPluginsRequest*,
                           aers::v1::ListPluginsResponse* resp) override {
    std::string who;
    if (auto st = Authorize(ctx, Role::kViewer, &who); !st.ok()) return st;
    if (!plugins_) return grpc::Status::OK;
    for (const PluginSummary& p : plugins_()) {
      auto* q = resp->add_plugins();
      q->set_name(p.name);
      q->set_version(p.version);
      q->set_format(p.format);
      q->set_hash_algorithm(p.hash_algorithm);
      q->set_hash(p.hash);
      q->set_signer_key_id(p.signer_key_id);
      q->set_serial(p.serial);
      q->set_module_path(p.module_path);
      for (const auto& k : p.kinds) q->add_kinds(k);
    }
    return grpc::Status::OK;
  }

  grpc::Status WatchEvents(ServerContext* ctx, const aers::v1::WatchEventsRequest*,
                           grpc::ServerWriter<aers::v1::Event>* writer) override {
    std::string who;
    if (auto st = Authorize(ctx, Role::kViewer, &who); !st.ok()) return st;
    auto sub = service_.events().Subscribe();
    while (!ctx->IsCancelled() && !stopping_) {
      auto e = sub->Next(std::chrono::milliseconds(200));
      if (!e) continue;
      if (!writer->Write(ToProto(*e))) break;  // client gone
    }
    service_.events().Unsubscribe(sub);
    return stopping_ ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "aersd is shutting down")
                     : grpc::Status::OK;
  }

  grpc::Status StreamMeters(ServerContext* ctx, const aers::v1::StreamMetersRequest* req,
                            grpc::ServerWriter<aers::v1::MeterFrame>* writer) override {
    std::string who;
    if (auto st = Authorize(ctx, Role::kViewer, &who); !st.ok()) return st;
    const double rate = req->rate_hz() == 0 ? 10.0 : std::clamp(req->rate_hz(), 0.5, 60.0);
    const auto interval =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
    std::vector<std::string> wanted(req->nodes().begin(), req->nodes().end());
    for (const auto& n : wanted) {
      if (!service_.engine().ReadMeter(n).ok()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND,
                            absl::StrCat("nodes: no meter node named '", n, "'"));
      }
    }
    auto next = Clock::now();
    while (!ctx->IsCancelled() && !stopping_) {
      aers::v1::MeterFrame frame;
      frame.set_unix_time_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
      const auto names = wanted.empty() ? service_.engine().MeterNodes() : wanted;
      const auto signals = service_.engine().SignalReports();
      for (const auto& n : names) {
        auto r = service_.engine().ReadMeter(n);
        if (!r.ok()) continue;  // removed meanwhile
        auto* m = frame.add_meters();
        m->set_node(n);
        for (const auto& c : *r) {
          m->add_peak(c.peak);
          m->add_rms(c.rms);
        }
        for (const auto& sig : signals) {
          if (sig.where != engine::SignalReport::Where::kNode || sig.name != n) continue;
          m->set_nonfinite(sig.nonfinite);
          m->set_clipped(sig.clipped);
        }
      }
      for (const auto& sig : signals) {
        if (sig.nonfinite || sig.clipped || sig.state_resets) *frame.add_signals() = ToProto(sig);
      }
      if (status_) {
        const auto b = status_();
        frame.set_dsp_load(b.dsp_load_percent / 100.0);
        frame.set_xruns(b.xruns);
      }
      if (!writer->Write(frame)) break;
      next += interval;
      // Sleep in short slices so cancel and shutdown are noticed quickly.
      while (Clock::now() < next && !ctx->IsCancelled() && !stopping_) {
        std::this_thread::sleep_for(
            std::min<Clock::duration>(next - Clock::now(), std::chrono::milliseconds(50)));
      }
    }
    return grpc::Status::OK;
  }
};

ControlServer::ControlServer(GraphService& service, StatusFn status, std::string version,
                             std::string state_file, PluginsFn plugins)
    : impl_(std::make_unique<Impl>(service, std::move(status), std::move(version),
                                   std::move(state_file), std::move(plugins))) {}

ControlServer::~ControlServer() {
  Shutdown();
}

std::string ControlServer::DefaultSocketPath() {
  return control::DefaultSocketPath();
}

absl::Status ControlServer::Start(const ListenerOptions& options) {
  Impl& s = *impl_;
  if (!options.token_file.empty()) {
    if (auto st = s.auth_.LoadTokenFile(options.token_file); !st.ok()) return st;
  }
  if (!options.audit_log.empty()) {
    s.audit_.open(options.audit_log, std::ios::app);
    if (!s.audit_) {
      return absl::PermissionDeniedError(
          absl::StrCat(options.audit_log, ": cannot open the audit log for appending"));
    }
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::vector<std::string> addrs;
  if (!options.unix_socket.empty()) addrs.push_back("unix:" + options.unix_socket);
  addrs.insert(addrs.end(), options.listen.begin(), options.listen.end());
  if (addrs.empty()) return absl::InvalidArgumentError("no control listener configured");
  std::vector<int> ports(addrs.size(), 0);
  for (size_t i = 0; i < addrs.size(); ++i) {
    const std::string& a = addrs[i];
    if (absl::StartsWith(a, "unix:")) {
      const std::string path = a.substr(5);
      if (auto st = PrepareSocketDir(std::filesystem::path(path).parent_path().string());
          !st.ok()) {
        return st;
      }
      ::unlink(path.c_str());  // a stale socket from a crash
      builder.AddListeningPort(a, grpc::InsecureServerCredentials(), &ports[i]);
      s.unix_paths_.push_back(path);
    } else if (absl::StartsWith(a, "tcp:")) {
      const std::string hostport = a.substr(4);
      std::shared_ptr<grpc::ServerCredentials> creds;
      if (!options.tls_cert.empty()) {
        grpc::SslServerCredentialsOptions ssl(
            options.tls_client_ca.empty()
                ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
        ssl.pem_key_cert_pairs.push_back({ReadFile(options.tls_key), ReadFile(options.tls_cert)});
        if (!options.tls_client_ca.empty()) ssl.pem_root_certs = ReadFile(options.tls_client_ca);
        creds = grpc::SslServerCredentials(ssl);
      } else if (s.auth_.has_tokens()) {
        spdlog::warn(
            "control: {} uses bearer tokens without TLS: tokens travel in clear text; "
            "use TLS outside a trusted network",
            a);
        creds = grpc::InsecureServerCredentials();
      } else {
        return absl::FailedPreconditionError(
            absl::StrCat("listener ", a,
                         ": a TCP listener needs TLS (--tls_cert/--tls_key) or a token file "
                         "(--token_file)"));
      }
      if (options.tls_client_ca.empty() && !s.auth_.has_tokens()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "listener ", a, ": TLS without client certificates needs a token file too"));
      }
      builder.AddListeningPort(hostport, creds, &ports[i]);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("listener '", a, "': use unix:/path or tcp:HOST:PORT"));
    }
  }
  builder.RegisterService(&s);
  // Sockets are created 0660 from the start (no chmod window to race).
  const mode_t old_umask = ::umask(0117);
  s.server_ = builder.BuildAndStart();
  ::umask(old_umask);
  if (!s.server_) return absl::UnavailableError("control: the gRPC server did not start");
  for (size_t i = 0; i < addrs.size(); ++i) {
    if (ports[i] == 0) {
      s.server_->Shutdown();
      s.server_.reset();
      return absl::UnavailableError(absl::StrCat("control: cannot listen on ", addrs[i]));
    }
  }
  for (const auto& a : addrs) spdlog::info("control: listening on {}", a);
  SetServing(false);
  return absl::OkStatus();
}

void ControlServer::SetServing(bool serving) {
  if (impl_->server_ && impl_->server_->GetHealthCheckService()) {
    impl_->server_->GetHealthCheckService()->SetServingStatus(serving);
  }
}

void ControlServer::Shutdown() {
  Impl& s = *impl_;
  if (!s.server_) return;
  s.stopping_ = true;
  s.service_.events().CloseAll();
  SetServing(false);
  s.server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  s.server_->Wait();
  s.server_.reset();
  for (const auto& p : s.unix_paths_) ::unlink(p.c_str());
}

}  // namespace aers::control
