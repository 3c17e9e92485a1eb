#include "control/grpc/handlers.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/graph_yaml.h"
#include "control/grpc/convert.h"
#include "rt/hooks.h"

namespace aers::control {

namespace {

// Linear amplitude -> dB; 0 -> -inf (a reading, not an input).
float GainToDb(float gain) {
  return gain > 0.0f ? static_cast<float>(20.0 * std::log10(static_cast<double>(gain)))
                     : -std::numeric_limits<float>::infinity();
}

using Clock = std::chrono::steady_clock;

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
    case Event::Type::kStateDiverged:
      p.mutable_state_diverged()->set_error(e.text);
      p.mutable_state_diverged()->set_running_revision(e.revision);
      break;
  }
  return p;
}

absl::Status CheckRoute(const aers::v1::Route& r, const std::string& path) {
  if (auto st = CheckEndpointText(r.from(), path + ".from"); !st.ok()) return st;
  return CheckEndpointText(r.to(), path + ".to");
}

absl::StatusOr<EditOp> OpFromProto(const aers::v1::EditOp& p, size_t i) {
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
    case aers::v1::EditOp::kDisconnect: {
      const bool connect = p.op_case() == aers::v1::EditOp::kConnect;
      const aers::v1::Route& r = connect ? p.connect() : p.disconnect();
      if (auto st =
              CheckRoute(r, absl::StrCat("ops[", i, "].", connect ? "connect" : "disconnect"));
          !st.ok()) {
        return st;
      }
      op.type = connect ? EditOp::Type::kConnect : EditOp::Type::kDisconnect;
      op.route = {model::Endpoint::Parse(r.from()), model::Endpoint::Parse(r.to())};
      break;
    }
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

std::string OpTarget(const aers::v1::EditOp& op) {
  switch (op.op_case()) {
    case aers::v1::EditOp::kAddNode:
      return absl::StrCat("+ node ", op.add_node().name());
    case aers::v1::EditOp::kRemoveNode:
      return absl::StrCat("- node ", op.remove_node());
    case aers::v1::EditOp::kConnect:
      return absl::StrCat("+ route ", op.connect().from(), " -> ", op.connect().to());
    case aers::v1::EditOp::kDisconnect:
      return absl::StrCat("- route ", op.disconnect().from(), " -> ", op.disconnect().to());
    case aers::v1::EditOp::kSetParameter:
      return absl::StrCat("~ ", op.set_parameter().node(), ".", op.set_parameter().param());
    case aers::v1::EditOp::OP_NOT_SET:
      break;
  }
  return "(no operation)";
}

}  // namespace

std::string RequestTarget(const google::protobuf::Message& m) {
  constexpr size_t kMaxTarget = 512;
  std::string t;
  if (const auto* r = dynamic_cast<const aers::v1::ApplyGraphRequest*>(&m)) {
    t = r->has_yaml() ? absl::StrCat("graph (yaml from ",
                                     r->source_name().empty() ? "<request>" : r->source_name(), ")")
                      : "graph";
  } else if (const auto* e = dynamic_cast<const aers::v1::EditRequest*>(&m)) {
    std::vector<std::string> parts;
    for (const auto& op : e->ops()) {
      parts.push_back(OpTarget(op));
      if (parts.size() == 16) break;
    }
    t = absl::StrCat("ops: ", absl::StrJoin(parts, "; "),
                     e->ops_size() > 16 ? absl::StrCat("; ... (", e->ops_size(), " in all)") : "");
  } else if (const auto* a = dynamic_cast<const aers::v1::AddNodeRequest*>(&m)) {
    t = absl::StrCat("node ", a->node().name());
  } else if (const auto* rm = dynamic_cast<const aers::v1::RemoveNodeRequest*>(&m)) {
    t = absl::StrCat("node ", rm->name());
  } else if (const auto* c = dynamic_cast<const aers::v1::ConnectRequest*>(&m)) {
    t = absl::StrCat("route ", c->from(), " -> ", c->to());
  } else if (const auto* d = dynamic_cast<const aers::v1::DisconnectRequest*>(&m)) {
    t = absl::StrCat("route ", d->from(), " -> ", d->to());
  } else if (const auto* s = dynamic_cast<const aers::v1::SetParameterRequest*>(&m)) {
    t = absl::StrCat("parameter ", s->node(), ".", s->param());
  } else if (dynamic_cast<const aers::v1::ResetToConfigRequest*>(&m) != nullptr) {
    t = "graph (config file)";
  } else if (const auto* l = dynamic_cast<const aers::v1::ResetLoudnessRequest*>(&m)) {
    t = l->nodes().empty() ? "loudness of every meter"
                           : absl::StrCat("loudness of ", absl::StrJoin(l->nodes(), ", "));
  } else {
    t = m.GetDescriptor()->name();
  }
  if (t.size() > kMaxTarget) t = absl::StrCat(t.substr(0, kMaxTarget), "...");
  return t;
}

absl::Status ControlHandlers::StreamParameters(const Principal& who, const ReadParameterFn& read,
                                               aers::v1::StreamParametersResponse* resp) {
  aers::v1::StreamParametersRequest opening;
  AuditRecord base = BaseRecord(who, "StreamParameters", opening);
  base.target = "parameter stream";
  if (d_.audit != nullptr) {
    base.call_id = d_.audit->NextCallId();
    // Write-ahead for the whole stream: who may set values from now on.
    AuditRecord r = base;
    r.revision_before = r.revision_after = d_.service->revision();
    if (auto st = d_.audit->Write(std::move(r)); !st.ok()) return st;
  }
  CallContext ctx;
  ctx.origin = "stream";
  ctx.before_commit = [this, base](const PendingCommit& p) -> absl::Status {
    if (d_.audit == nullptr) return absl::OkStatus();
    AuditRecord r = base;
    r.revision_before = p.revision_before;
    r.revision_after = p.revision_after;
    r.changes = p.changes;
    return d_.audit->Write(std::move(r));
  };
  ctx.after_failure = [this, base](const absl::Status& st) {
    if (d_.audit == nullptr) return;
    AuditRecord r = base;
    r.result = absl::StatusCodeToString(st.code());
    r.message = absl::StrCat("not saved after all: ", st.message());
    r.revision_before = r.revision_after = d_.service->revision();
    (void)d_.audit->Write(std::move(r));  // the stream ends with the error anyway
  };
  std::unique_ptr<LiveStream> stream = d_.service->OpenLiveStream(std::move(ctx));
  absl::Status error;
  for (size_t i = 0; !stopping_; ++i) {
    aers::v1::StreamParametersRequest v;
    absl::StatusOr<bool> got = read(&v);
    if (!got.ok()) {
      error = absl::Status(got.status().code(),
                           absl::StrCat("values[", i, "]: ", got.status().message()));
      break;
    }
    if (!*got) break;
    if (!v.has_value()) {
      error = absl::InvalidArgumentError(absl::StrCat("values[", i, "].value: missing"));
      break;
    }
    auto set = d_.service->SetLive(*stream, v.node(), v.param(), FromProto(v.value()), i);
    if (!set.ok()) {
      error = set.status();
      break;
    }
  }
  // Saved whatever ended the stream: the values applied so far run.
  auto closed = d_.service->CloseLiveStream(std::move(stream));
  if (!error.ok()) {
    // A refused value is audited like a refused unary edit.
    if (d_.audit != nullptr) {
      AuditRecord r = base;
      r.result = absl::StatusCodeToString(error.code());
      r.message = std::string(error.message());
      r.revision_before = r.revision_after = d_.service->revision();
      (void)d_.audit->Write(std::move(r));  // refused anyway
    }
    return error;
  }
  if (!closed.ok()) return closed.status();
  resp->set_revision(closed->first);
  resp->set_values(closed->second);
  return absl::OkStatus();
}

ControlHandlers::ControlHandlers(Deps deps) : d_(std::move(deps)), started_(Clock::now()) {}

AuditRecord ControlHandlers::BaseRecord(const Principal& who, const std::string& operation,
                                        const google::protobuf::Message& request) const {
  AuditRecord r;
  r.operation = operation;
  r.target = RequestTarget(request);
  r.principal = who;
  return r;
}

void ControlHandlers::RecordRefused(const Principal& who, const std::string& operation,
                                    const google::protobuf::Message& request,
                                    const absl::Status& status) {
  if (d_.audit == nullptr) return;
  AuditRecord r = BaseRecord(who, operation, request);
  r.result = absl::StatusCodeToString(status.code());
  r.message = std::string(status.message());
  r.revision_before = d_.service->revision();
  r.revision_after = r.revision_before;
  (void)d_.audit->Write(std::move(r));  // refused anyway
}

absl::Status ControlHandlers::Mutate(const Principal& who, const std::string& operation,
                                     const google::protobuf::Message& request, bool dry_run,
                                     const DomainCall& call, aers::v1::EditResponse* resp) {
  AuditRecord base = BaseRecord(who, operation, request);
  base.dry_run = dry_run;
  if (d_.audit != nullptr) base.call_id = d_.audit->NextCallId();
  bool committed_record = false;
  bool audit_refused = false;
  CallContext ctx;
  ctx.origin = operation == "ResetToConfig" ? "reset" : "rpc";
  // Written under the service's lock before anything changes, and flushed
  // before this edit is applied (make_durable): a record that cannot be
  // written or made durable refuses the change. The edits of a batch
  // (concurrent clients) share that flush.
  uint64_t record_number = 0;
  ctx.before_commit = [&](const PendingCommit& p) -> absl::Status {
    if (d_.audit == nullptr) return absl::OkStatus();
    AuditRecord r = base;
    r.revision_before = p.revision_before;
    r.revision_after = p.revision_after;
    r.changes = p.changes;
    absl::StatusOr<uint64_t> written = d_.audit->WriteDeferred(std::move(r));
    committed_record = written.ok();
    audit_refused = !written.ok();
    record_number = written.ok() ? *written : 0;
    return written.status();
  };
  // A record that could not be made durable may still be in the file:
  // the edit is refused, and the record after the call says so (when the
  // log can be written again).
  ctx.make_durable = [&]() -> absl::Status {
    if (d_.audit == nullptr || record_number == 0) return absl::OkStatus();
    return d_.audit->MakeDurable(record_number);
  };
  // The first attempt's record gets its follow-up before the next one is
  // written; if that cannot be written, the edit is refused instead.
  ctx.before_retry = [&](const absl::Status& why) -> absl::Status {
    if (d_.audit == nullptr || !committed_record) return absl::OkStatus();
    const uint64_t now = d_.service->revision();
    absl::Status st =
        d_.audit->Write(FollowUpRecord(base, why, /*recorded=*/true, std::nullopt, now, now));
    if (!st.ok()) return st;  // refused; the record after the call says so, once it can
    committed_record = false;
    record_number = 0;
    return st;
  };
  const uint64_t before = d_.service->revision();
  absl::StatusOr<EditOutcome> out = call(ctx);
  if (out.ok() && out->applied) {
    FillEdit(*out, resp);
    return absl::OkStatus();
  }
  if (d_.audit != nullptr && !audit_refused) {
    AuditRecord r = base;
    if (out.ok()) {  // dry run
      r.revision_before = before;
      r.revision_after = out->revision;
      r.changes = out->changes;
    } else {
      // (Applied but not durable: it runs, and the record says so.)
      r = FollowUpRecord(std::move(r), out.status(), committed_record,
                         AppliedRevision(out.status()), before, d_.service->revision());
    }
    // A dry run nobody can audit is refused like any mutation; how a
    // failed call ended is written when it can be.
    absl::Status st =
        out.ok() ? d_.audit->Write(std::move(r)) : d_.audit->WriteFollowUp(std::move(r));
    if (!st.ok() && out.ok()) return st;
  }
  if (!out.ok()) return out.status();
  FillEdit(*out, resp);
  return absl::OkStatus();
}

absl::Status ControlHandlers::GetGraph(const Principal&, const aers::v1::GetGraphRequest&,
                                       aers::v1::GetGraphResponse* resp) {
  auto [graph, rev] = d_.service->Graph();
  *resp->mutable_graph() = ToProto(graph);
  resp->set_revision(rev);
  resp->set_yaml(config::EmitGraphYaml(graph));
  return absl::OkStatus();
}

absl::Status ControlHandlers::GetStatus(const Principal&, const aers::v1::GetStatusRequest&,
                                        aers::v1::Status* resp) {
  const backend::BackendStatus b = d_.status ? d_.status() : backend::BackendStatus{};
  auto [graph, rev] = d_.service->Graph();
  resp->set_backend(b.name);
  resp->set_audio_running(b.running);
  resp->set_sample_rate_hz(b.sample_rate_hz);
  resp->set_period_frames(b.period_frames);
  resp->set_dsp_load(b.dsp_load_percent / 100.0);
  resp->set_xruns(b.xruns);
  resp->set_uptime_s(std::chrono::duration<double>(Clock::now() - started_).count());
  resp->set_version(d_.version);
  resp->set_revision(rev);
  resp->set_nodes(static_cast<uint32_t>(graph.nodes.size()));
  resp->mutable_dsp_time()->set_mean_us(b.dsp.mean_us);
  resp->mutable_dsp_time()->set_p99_us(b.dsp.p99_us);
  resp->mutable_dsp_time()->set_max_us(b.dsp.max_us);
  resp->mutable_dsp_time()->set_periods(b.dsp.periods);
  resp->mutable_dsp_time()->set_over_budget(b.dsp.over_budget);
  resp->set_events_dropped(d_.service->events().dropped());
  resp->set_state_file(d_.state_file);
  if (const auto n = rt::AudioThreadAllocations()) resp->set_rt_allocations(*n);
  const rt::Runner& runner = d_.service->engine().runner();
  resp->set_cycles(runner.cycles());
  resp->set_silent_cycles(runner.silent_cycles());
  resp->set_deferred_swaps(runner.deferred_swaps());
  resp->set_state_diverged(d_.service->state_diverged());
  for (const auto& r : d_.service->engine().SignalReports()) *resp->add_signals() = ToProto(r);
  resp->set_backend_detail(b.detail);
  resp->set_backend_restarts(b.restarts);
  if (b.name == "alsa") {
    auto* a = resp->mutable_alsa();
    a->set_playback(b.playback_device);
    a->set_capture(b.capture_device);
    a->set_format(b.format);
    a->set_periods(b.periods);
    a->set_buffer_frames(b.buffer_frames);
    a->set_delay_frames(b.delay_frames);
    a->set_clipped_samples(b.clipped_samples);
  }
  for (const auto& out : graph.outputs) {
    auto* l = resp->add_latency();
    l->set_output(out.name);
    l->set_frames(d_.service->engine().OutputLatencyFrames(out.name));
  }
  if (b.wake_jitter.periods > 0) {
    resp->mutable_wake_jitter()->set_mean_us(b.wake_jitter.mean_us);
    resp->mutable_wake_jitter()->set_p99_us(b.wake_jitter.p99_us);
    resp->mutable_wake_jitter()->set_max_us(b.wake_jitter.max_us);
  }
  return absl::OkStatus();
}

absl::Status ControlHandlers::ListKinds(const Principal&, const aers::v1::ListKindsRequest&,
                                        aers::v1::ListKindsResponse* resp) {
  const double rate = d_.service->engine().format().sample_rate_hz;
  for (const model::NodeKind* k : d_.service->engine().kinds().List()) {
    *resp->add_kinds() = control::ToProto(*k, rate);
  }
  return absl::OkStatus();
}

absl::Status ControlHandlers::ListPlugins(const Principal&, const aers::v1::ListPluginsRequest&,
                                          aers::v1::ListPluginsResponse* resp) {
  if (!d_.plugins) return absl::OkStatus();
  for (const PluginSummary& p : d_.plugins()) {
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
  return absl::OkStatus();
}

absl::Status ControlHandlers::ApplyGraph(const Principal& who,
                                         const aers::v1::ApplyGraphRequest& req,
                                         aers::v1::EditResponse* resp) {
  const auto expected = Expected(req.has_expected_revision(), req.expected_revision());
  return Mutate(
      who, "ApplyGraph", req, req.dry_run(),
      [&](const CallContext& ctx) -> absl::StatusOr<EditOutcome> {
        if (req.has_graph()) {
          if (auto st = CheckEndpoints(req.graph()); !st.ok()) return st;
          return d_.service->ApplyGraph(FromProto(req.graph()), req.dry_run(), expected, ctx);
        }
        if (req.has_yaml()) {
          return d_.service->ApplyYaml(req.yaml(), req.source_name(), req.dry_run(), expected, ctx);
        }
        return absl::InvalidArgumentError("source: give either graph or yaml");
      },
      resp);
}

absl::Status ControlHandlers::Edit(const Principal& who, const aers::v1::EditRequest& req,
                                   aers::v1::EditResponse* resp) {
  return Mutate(
      who, "Edit", req, req.dry_run(),
      [&](const CallContext& ctx) -> absl::StatusOr<EditOutcome> {
        std::vector<EditOp> ops;
        for (int i = 0; i < req.ops_size(); ++i) {
          auto op = OpFromProto(req.ops(i), static_cast<size_t>(i));
          if (!op.ok()) return op.status();
          ops.push_back(std::move(*op));
        }
        return d_.service->Edit(ops, req.dry_run(),
                                Expected(req.has_expected_revision(), req.expected_revision()),
                                ctx);
      },
      resp);
}

absl::Status ControlHandlers::EditOne(const Principal& who, const std::string& operation,
                                      const google::protobuf::Message& request, EditOp op,
                                      bool has_expected, uint64_t expected,
                                      aers::v1::EditResponse* resp) {
  return Mutate(
      who, operation, request, false,
      [&](const CallContext& ctx) {
        return d_.service->Edit({op}, false, Expected(has_expected, expected), ctx);
      },
      resp);
}

absl::Status ControlHandlers::AddNode(const Principal& who, const aers::v1::AddNodeRequest& req,
                                      aers::v1::EditResponse* resp) {
  EditOp op;
  op.type = EditOp::Type::kAddNode;
  op.node = FromProto(req.node());
  return EditOne(who, "AddNode", req, std::move(op), req.has_expected_revision(),
                 req.expected_revision(), resp);
}

absl::Status ControlHandlers::RemoveNode(const Principal& who,
                                         const aers::v1::RemoveNodeRequest& req,
                                         aers::v1::EditResponse* resp) {
  EditOp op;
  op.type = EditOp::Type::kRemoveNode;
  op.name = req.name();
  return EditOne(who, "RemoveNode", req, std::move(op), req.has_expected_revision(),
                 req.expected_revision(), resp);
}

absl::Status ControlHandlers::Connect(const Principal& who, const aers::v1::ConnectRequest& req,
                                      aers::v1::EditResponse* resp) {
  for (const auto& [text, field] : {std::pair{req.from(), "from"}, {req.to(), "to"}}) {
    if (auto st = CheckEndpointText(text, field); !st.ok()) {
      RecordRefused(who, "Connect", req, st);
      return st;
    }
  }
  EditOp op;
  op.type = EditOp::Type::kConnect;
  op.route = {model::Endpoint::Parse(req.from()), model::Endpoint::Parse(req.to())};
  return EditOne(who, "Connect", req, std::move(op), req.has_expected_revision(),
                 req.expected_revision(), resp);
}

absl::Status ControlHandlers::Disconnect(const Principal& who,
                                         const aers::v1::DisconnectRequest& req,
                                         aers::v1::EditResponse* resp) {
  for (const auto& [text, field] : {std::pair{req.from(), "from"}, {req.to(), "to"}}) {
    if (auto st = CheckEndpointText(text, field); !st.ok()) {
      RecordRefused(who, "Disconnect", req, st);
      return st;
    }
  }
  EditOp op;
  op.type = EditOp::Type::kDisconnect;
  op.route = {model::Endpoint::Parse(req.from()), model::Endpoint::Parse(req.to())};
  return EditOne(who, "Disconnect", req, std::move(op), req.has_expected_revision(),
                 req.expected_revision(), resp);
}

absl::Status ControlHandlers::SetParameter(const Principal& who,
                                           const aers::v1::SetParameterRequest& req,
                                           aers::v1::EditResponse* resp) {
  if (!req.has_value()) {
    const absl::Status st = absl::InvalidArgumentError("value: missing");
    RecordRefused(who, "SetParameter", req, st);
    return st;
  }
  EditOp op;
  op.type = EditOp::Type::kSetParameter;
  op.name = req.node();
  op.param = req.param();
  op.value = FromProto(req.value());
  return EditOne(who, "SetParameter", req, std::move(op), req.has_expected_revision(),
                 req.expected_revision(), resp);
}

absl::Status ControlHandlers::ResetToConfig(const Principal& who,
                                            const aers::v1::ResetToConfigRequest& req,
                                            aers::v1::EditResponse* resp) {
  return Mutate(
      who, "ResetToConfig", req, false,
      [&](const CallContext& ctx) {
        return d_.service->ResetToConfig(
            Expected(req.has_expected_revision(), req.expected_revision()), ctx);
      },
      resp);
}

absl::Status ControlHandlers::WatchEvents(
    const Principal&, const aers::v1::WatchEventsRequest&, const CancelledFn& cancelled,
    const std::function<bool(const aers::v1::Event&)>& write) {
  auto sub = d_.service->events().Subscribe();
  while (!cancelled() && !stopping_) {
    auto e = sub->Next(std::chrono::milliseconds(200));
    if (!e) continue;
    if (!write(ToProto(*e))) break;  // client gone
  }
  d_.service->events().Unsubscribe(sub);
  return stopping_ ? absl::UnavailableError("aersd is shutting down") : absl::OkStatus();
}

absl::Status ControlHandlers::ResetLoudness(const Principal& who,
                                            const aers::v1::ResetLoudnessRequest& req,
                                            aers::v1::ResetLoudnessResponse* resp) {
  engine::Engine& engine = d_.service->engine();
  std::vector<std::string> names(req.nodes().begin(), req.nodes().end());
  for (size_t i = 0; i < names.size(); ++i) {
    if (auto l = engine.ReadLoudness(names[i]); !l.ok()) {
      const absl::Status st =
          absl::Status(l.status().code(), absl::StrCat("nodes[", i, "]: ", l.status().message()));
      RecordRefused(who, "ResetLoudness", req, st);
      return st;
    }
  }
  if (names.empty()) {
    for (auto& n : engine.MeterNodes()) {
      if (engine.ReadLoudness(n).ok()) names.push_back(std::move(n));
    }
  }
  // Audited before it happens, like every mutation: no record, no reset.
  if (d_.audit != nullptr) {
    AuditRecord r = BaseRecord(who, "ResetLoudness", req);
    r.call_id = d_.audit->NextCallId();
    r.revision_before = d_.service->revision();
    r.revision_after = r.revision_before;
    if (absl::Status st = d_.audit->Write(std::move(r)); !st.ok()) return st;
  }
  for (const auto& n : names) {
    const absl::Status st = engine.ResetLoudness(n);
    if (absl::IsNotFound(st)) continue;  // removed meanwhile
    if (!st.ok()) return st;
    resp->add_nodes(n);
  }
  return absl::OkStatus();
}

absl::Status ControlHandlers::StreamMeters(
    const Principal&, const aers::v1::StreamMetersRequest& req, const CancelledFn& cancelled,
    const std::function<bool(const aers::v1::MeterFrame&)>& write) {
  // NaN and infinities never get here (request_check.h).
  const double rate = req.rate_hz() == 0 ? 10.0 : std::clamp(req.rate_hz(), 0.5, 60.0);
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
  engine::Engine& engine = d_.service->engine();
  std::vector<std::string> wanted(req.nodes().begin(), req.nodes().end());
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (!engine.ReadMeter(wanted[i]).ok()) {
      return absl::NotFoundError(
          absl::StrCat("nodes[", i, "]: no meter node named '", wanted[i], "'"));
    }
  }
  auto next = Clock::now();
  while (!cancelled() && !stopping_) {
    aers::v1::MeterFrame frame;
    frame.set_unix_time_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
    const auto names = wanted.empty() ? engine.MeterNodes() : wanted;
    const auto signals = engine.SignalReports();
    for (const auto& n : names) {
      auto r = engine.ReadMeter(n);
      if (!r.ok()) continue;  // removed meanwhile
      auto* m = frame.add_meters();
      m->set_node(n);
      for (const auto& c : *r) {
        m->add_peak(c.peak);
        m->add_rms(c.rms);
        m->add_true_peak_dbtp(GainToDb(c.true_peak));
      }
      if (auto l = engine.ReadLoudness(n); l.ok()) {
        m->set_loudness(true);
        m->set_momentary_lufs(l->momentary_lufs);
        m->set_short_term_lufs(l->short_term_lufs);
        m->set_integrated_lufs(l->integrated_lufs);
        m->set_loudness_range_lu(l->range_lu);
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
    if (d_.status) {
      const auto b = d_.status();
      frame.set_dsp_load(b.dsp_load_percent / 100.0);
      frame.set_xruns(b.xruns);
    }
    if (!write(frame)) break;
    next += interval;
    const auto now = Clock::now();
    if (next < now) next = now;  // a slow client does not make the next frames burst
    // Sleep in short slices so cancel and shutdown are noticed quickly.
    while (Clock::now() < next && !cancelled() && !stopping_) {
      std::this_thread::sleep_for(
          std::min<Clock::duration>(next - Clock::now(), std::chrono::milliseconds(50)));
    }
  }
  return absl::OkStatus();
}

}  // namespace aers::control
