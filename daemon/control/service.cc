#include "control/service.h"

#include <algorithm>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/graph_yaml.h"
#include "model/validate.h"
#include "spdlog/spdlog.h"
#include "state/state_store.h"

namespace aers::control {

namespace {

std::string RouteText(const model::RouteSpec& r) {
  return r.from.ToString() + " -> " + r.to.ToString();
}

bool SameRoute(const model::RouteSpec& a, const model::RouteSpec& b) {
  return a.from == b.from && a.to == b.to;
}

// The payload of a status whose edit was applied (AppliedRevision).
constexpr char kAppliedRevisionUrl[] = "type.aers.dev/applied-revision";

}  // namespace

std::optional<uint64_t> AppliedRevision(const absl::Status& status) {
  const auto p = status.GetPayload(kAppliedRevisionUrl);  // absl::optional<absl::Cord>
  uint64_t revision = 0;
  if (!p || !absl::SimpleAtoi(std::string(*p), &revision)) return std::nullopt;
  return revision;
}

std::vector<std::string> DiffGraphs(const model::GraphSpec& before, const model::GraphSpec& after) {
  std::vector<std::string> out;
  auto ports = [&](const std::vector<model::ExternalPort>& a,
                   const std::vector<model::ExternalPort>& b, const char* what) {
    for (const auto& p : a) {
      auto it = std::find_if(b.begin(), b.end(), [&](const auto& q) { return q.name == p.name; });
      if (it == b.end()) {
        out.push_back(absl::StrCat("- ", what, " ", p.name, " (", p.channels, " ch)"));
      } else if (!(*it == p)) {
        out.push_back(absl::StrCat("~ ", what, " ", p.name, ": ", p.channels, " ch -> ",
                                   it->channels, " ch",
                                   it->connect != p.connect ? ", connections changed" : ""));
      }
    }
    for (const auto& q : b) {
      if (std::none_of(a.begin(), a.end(), [&](const auto& p) { return p.name == q.name; })) {
        out.push_back(absl::StrCat("+ ", what, " ", q.name, " (", q.channels, " ch)"));
      }
    }
  };
  ports(before.inputs, after.inputs, "input");
  ports(before.outputs, after.outputs, "output");
  for (size_t i = 0; i < before.nodes.size(); ++i) {
    const model::NodeSpec& n = before.nodes[i];
    // Most nodes of an edit are where they were, and unchanged.
    const model::NodeSpec* m = i < after.nodes.size() && after.nodes[i].name == n.name
                                   ? &after.nodes[i]
                                   : after.FindNode(n.name);
    if (m != nullptr && model::Identical(*m, n)) continue;
    if (m == nullptr) {
      out.push_back(absl::StrCat("- node ", n.name, " (", n.kind, ")"));
      continue;
    }
    if (m->kind != n.kind || m->channels != n.channels) {
      out.push_back(absl::StrCat("~ node ", n.name, ": ", n.kind, ", ", n.channels, " ch -> ",
                                 m->kind, ", ", m->channels, " ch"));
    }
    if (m->preset != n.preset) {
      out.push_back(absl::StrCat("~ node ", n.name, ": preset ",
                                 n.preset.empty() ? "(none)" : n.preset, " -> ",
                                 m->preset.empty() ? "(none)" : m->preset));
    }
    std::set<std::string> keys;
    for (const auto& [k, v] : n.params) keys.insert(k);
    for (const auto& [k, v] : m->params) keys.insert(k);
    for (const auto& k : keys) {
      auto a = n.params.find(k);
      auto b = m->params.find(k);
      const std::string av = a == n.params.end() ? "(default)" : model::FormatParamValue(a->second);
      const std::string bv =
          b == m->params.end() ? "(default)" : model::FormatParamValue(b->second);
      if (av != bv) out.push_back(absl::StrCat("~ node ", n.name, ": ", k, " ", av, " -> ", bv));
    }
  }
  for (const auto& m : after.nodes) {
    if (before.FindNode(m.name) == nullptr) {
      out.push_back(absl::StrCat("+ node ", m.name, " (", m.kind, ", ", m.channels, " ch",
                                 m.preset.empty() ? "" : ", preset " + m.preset, ")"));
    }
  }
  if (before.routes == after.routes) return out;
  for (const auto& r : before.routes) {
    if (std::none_of(after.routes.begin(), after.routes.end(),
                     [&](const auto& s) { return SameRoute(r, s); })) {
      out.push_back("- route " + RouteText(r));
    }
  }
  for (const auto& r : after.routes) {
    if (std::none_of(before.routes.begin(), before.routes.end(),
                     [&](const auto& s) { return SameRoute(r, s); })) {
      out.push_back("+ route " + RouteText(r));
    }
  }
  return out;
}

absl::Status ApplyOp(model::GraphSpec& spec, const EditOp& op, const model::KindRegistry& kinds,
                     size_t index) {
  const std::string where = absl::StrCat("ops[", index, "]");
  switch (op.type) {
    case EditOp::Type::kAddNode: {
      if (op.node.name.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ".add_node.name: must not be empty"));
      }
      if (spec.FindNode(op.node.name) || spec.FindInput(op.node.name) ||
          spec.FindOutput(op.node.name)) {
        return absl::AlreadyExistsError(
            absl::StrCat(where, ".add_node.name: '", op.node.name, "' already exists"));
      }
      spec.nodes.push_back(op.node);
      return absl::OkStatus();
    }
    case EditOp::Type::kRemoveNode: {
      const auto it = std::find_if(spec.nodes.begin(), spec.nodes.end(),
                                   [&](const auto& n) { return n.name == op.name; });
      if (it == spec.nodes.end()) {
        return absl::NotFoundError(
            absl::StrCat(where, ".remove_node: no node named '", op.name, "'"));
      }
      spec.nodes.erase(it);
      std::erase_if(spec.routes, [&](const model::RouteSpec& r) {
        return r.from.node == op.name || r.to.node == op.name;
      });
      return absl::OkStatus();
    }
    case EditOp::Type::kConnect: {
      if (std::any_of(spec.routes.begin(), spec.routes.end(),
                      [&](const auto& r) { return SameRoute(r, op.route); })) {
        return absl::AlreadyExistsError(
            absl::StrCat(where, ".connect: route ", RouteText(op.route), " already exists"));
      }
      spec.routes.push_back(op.route);
      return absl::OkStatus();
    }
    case EditOp::Type::kDisconnect: {
      const auto it = std::find_if(spec.routes.begin(), spec.routes.end(),
                                   [&](const auto& r) { return SameRoute(r, op.route); });
      if (it == spec.routes.end()) {
        return absl::NotFoundError(
            absl::StrCat(where, ".disconnect: no route ", RouteText(op.route)));
      }
      spec.routes.erase(it);
      return absl::OkStatus();
    }
    case EditOp::Type::kSetParameter: {
      model::NodeSpec* n = spec.FindNode(op.name);
      if (n == nullptr) {
        return absl::NotFoundError(
            absl::StrCat(where, ".set_parameter.node: no node named '", op.name, "'"));
      }
      const model::NodeKind* kind = kinds.Find(n->kind);
      if (kind == nullptr || kind->FindParam(op.param) == nullptr) {
        std::vector<std::string> names;
        if (kind) {
          for (const auto& p : kind->params()) names.push_back(p.name);
        }
        return absl::NotFoundError(absl::StrCat(where, ".set_parameter.param: node '", op.name,
                                                "' (", n->kind, ") has no parameter '", op.param,
                                                "'; it has: ", absl::StrJoin(names, ", ")));
      }
      n->params[op.param] = op.value;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(where, ": unknown operation"));
}

GraphService::GraphService(engine::Engine& engine, const state::StateStore* store, EventBus& events,
                           ConfigGraph config_graph)
    : engine_(engine), store_(store), events_(events), config_graph_(std::move(config_graph)) {}

void GraphService::SetStateDiverged(std::string error, bool edit_refused) {
  state_diverged_.store(true);
  if (edit_refused) {
    spdlog::error(
        "the edit was not applied, and the state file {} could not be put back: {}; a restart "
        "would bring the edit back (health: NOT_SERVING until the state file is written again; "
        "retried every second)",
        store_->path(), error);
  } else {
    spdlog::error(
        "what runs could not be saved to the state file {}: {}; a restart would bring back the "
        "last saved graph (health: NOT_SERVING until the state file is written again; retried "
        "every second)",
        store_->path(), error);
  }
  Event e;
  e.type = Event::Type::kStateDiverged;
  e.text = absl::StrCat(store_->path(), ": ", error);
  e.revision = engine_.revision();
  events_.Publish(std::move(e));
}

bool GraphService::ResaveIfDiverged() {
  if (!state_diverged_.load() || store_ == nullptr) return false;
  absl::StatusOr<uint64_t> ticket;
  {
    absl::MutexLock lock(&mu_);
    auto [spec, rev] = engine_.spec_and_revision();
    ticket = store_->Append(spec, rev);
    if (ticket.ok()) {
      saved_spec_ = std::move(spec);
      saved_revision_ = rev;
      saved_known_ = true;
    }
  }
  if (!ticket.ok() || !store_->Sync(*ticket).ok()) return false;
  state_diverged_.store(false);
  spdlog::info("the state file {} holds what runs again (revision {})", store_->path(),
               engine_.revision());
  return true;
}

std::pair<model::GraphSpec, uint64_t> GraphService::Graph() const {
  return engine_.spec_and_revision();  // not behind mu_: reads never wait for an edit
}

void GraphService::PrepareLocked(Queued& q, const model::GraphSpec& working,
                                 uint64_t working_revision) {
  q.prepared = false;
  q.recorded = false;
  auto spec = q.build(working);
  if (!spec.ok()) {
    q.outcome = spec.status();
    return;
  }
  if (q.expected_revision && *q.expected_revision != working_revision) {
    q.outcome = absl::AbortedError(absl::StrCat(
        "revision conflict: expected ", *q.expected_revision, " but the graph is at revision ",
        working_revision, "; re-read the graph and retry"));
    return;
  }
  uint64_t validated_in = 0;  // the engine does not check it again in this format
  if (const auto issues = engine_.Validate(*spec, &validated_in); !issues.empty()) {
    // A cycle is a well-formed request the graph cannot take.
    q.outcome = absl::Status(model::HasIssue(issues, model::IssueCode::kCycle)
                                 ? absl::StatusCode::kFailedPrecondition
                                 : absl::StatusCode::kInvalidArgument,
                             model::IssuesText(issues));
    return;
  }
  EditOutcome out;
  out.changes = DiffGraphs(working, *spec);
  if (q.dry_run) {
    out.revision = working_revision;
    q.outcome = std::move(out);
    return;
  }
  if (q.call->before_commit) {
    if (auto st = q.call->before_commit(
            PendingCommit{working_revision, working_revision + 1, out.changes});
        !st.ok()) {
      q.outcome = st;
      return;
    }
    q.recorded = true;
  }
  q.spec = std::move(*spec);
  q.revision_before = working_revision;
  q.validated_in = validated_in;
  q.prepared_outcome = std::move(out);
  q.prepared = true;
}

bool GraphService::ApplyPreparedLocked(Queued& q) {
  q.prepared = false;
  q.ticket = 0;
  // Write-ahead: the journal holds the edit (and its revision) before the
  // audio does, so what runs is what a restart restores once the process
  // dies, and a revision handed out is never handed out again after a
  // restart. A state that cannot be written refuses the edit with nothing
  // changed. The flush (fdatasync) comes after the service's lock is
  // released (Durable): edits of concurrent clients share it, and the call
  // returns only once its edit is durable.
  const uint64_t next = q.revision_before + 1;
  if (auto live = SaveAllLiveLocked(); !live.ok()) {
    q.outcome = live.status();
    return true;
  } else if (*live != 0) {
    q.ticket = *live;
  }
  if (store_ != nullptr) {
    auto appended = store_->Append(q.spec, next);
    if (!appended.ok()) {
      q.outcome = absl::UnavailableError(absl::StrCat(
          "the state file cannot be written, so the change was refused (nothing changed): ",
          std::string(appended.status().message())));
      return true;
    }
    q.ticket = *appended;
  }
  model::GraphSpec written = q.spec;
  if (auto applied = engine_.Apply(std::move(q.spec), std::nullopt, q.validated_in);
      !applied.ok()) {
    if (store_ != nullptr) {
      // Not applied after all: the state goes back to what runs (Apply
      // changes nothing when it fails), at a revision no lower than the one
      // just written (durably: rare).
      if (auto undo = store_->Save(engine_.spec(), std::max(next, engine_.revision()));
          !undo.ok()) {
        SetStateDiverged(std::string(undo.message()), /*edit_refused=*/true);
      }
    }
    q.ticket = 0;
    q.outcome = applied.status();
    return false;
  }
  if (store_ != nullptr) state_diverged_.store(false);  // written and applied: in step again
  saved_spec_ = std::move(written);
  saved_revision_ = engine_.revision();
  saved_known_ = true;
  if (store_ != nullptr && engine_.revision() != next) {
    // The engine moved on meanwhile (a rate change clamped a parameter).
    auto appended = store_->Append(saved_spec_, engine_.revision());
    if (appended.ok()) {
      q.ticket = *appended;
    } else {
      spdlog::warn("state file {}: {}", store_->path(), std::string(appended.status().message()));
    }
  }
  EditOutcome out = std::move(q.prepared_outcome);
  out.applied = true;
  const engine::EditResult done = engine_.last_edit();
  out.revision = done.revision;
  out.replanned = done.replanned;
  Event e;
  e.type = Event::Type::kGraphChanged;
  e.revision = out.revision;
  e.changes = out.changes;
  e.origin = q.call->origin;
  events_.Publish(std::move(e));
  q.outcome = std::move(out);
  return false;
}

void GraphService::CommitBatchLocked(const std::vector<Queued*>& batch) {
  std::vector<Queued*> pending = batch;
  // Each pass settles at least one edit, unless the graph moved on under
  // it (a sample rate change, from the backend's thread): bounded anyway.
  for (int pass = 0; !pending.empty(); ++pass) {
    if (pass == 100) {
      for (Queued* q : pending) {
        q->outcome = absl::AbortedError(
            "the graph kept changing while this edit waited (sample rate changes); retry");
      }
      return;
    }
    // Check and record every edit against the graph the ones ahead of it
    // leave.
    auto [working, working_revision] = engine_.spec_and_revision();
    for (size_t i = 0; i < pending.size(); ++i) {
      Queued& q = *pending[i];
      PrepareLocked(q, working, working_revision);
      if (q.prepared) {
        if (i + 1 < pending.size()) working = q.spec;  // (a copy only for an edit behind it)
        ++working_revision;
      }
    }
    // Apply them in order, each once its record is durable (the first
    // make_durable flushes the records of the whole batch).
    std::vector<Queued*> again;          // to check (and record) again, in order
    absl::Status broken;                 // an edit of its own failed: the rest goes again
    std::optional<absl::Status> shared;  // a failure the rest would meet too
    for (Queued* qp : pending) {
      Queued& q = *qp;
      if (!broken.ok()) {
        again.push_back(&q);
        continue;
      }
      if (!q.prepared) {
        // Failed its checks, or a dry run: final, unless checked against
        // edits since refused.
        if (shared) again.push_back(&q);
        continue;
      }
      if (shared) {
        q.prepared = false;
        q.outcome = *shared;
        continue;
      }
      if (q.call->make_durable) {
        if (auto st = q.call->make_durable(); !st.ok()) {
          q.prepared = false;
          q.outcome = st;
          shared = st;
          continue;
        }
      }
      if (engine_.revision() != q.revision_before) {
        broken = absl::AbortedError(
            absl::StrCat("the graph moved on to revision ", engine_.revision(), " meanwhile"));
        again.push_back(&q);
        continue;
      }
      const bool refused_for_all = ApplyPreparedLocked(q);
      if (q.outcome.ok()) continue;
      if (refused_for_all) {
        shared = q.outcome.status();
      } else {
        broken = q.outcome.status();
      }
    }
    pending.clear();
    for (Queued* q : again) {
      if (q->recorded && q->call->before_retry) {
        absl::Status st = q->call->before_retry(absl::AbortedError(absl::StrCat(
            "an edit ahead of it was refused (", broken.message(), "); checked again")));
        if (!st.ok()) {
          q->prepared = q->recorded = false;
          q->outcome = st;
          continue;
        }
      }
      q->prepared = q->recorded = false;
      pending.push_back(q);
    }
  }
}

absl::StatusOr<EditOutcome> GraphService::Submit(Queued& q) {
  {
    std::unique_lock queue_lock(queue_mu_);
    queue_.push_back(&q);
    while (!q.done) {
      if (combining_) {
        queue_cv_.wait(queue_lock);
        continue;
      }
      // No batch running: commit everything queued, this edit among it.
      combining_ = true;
      std::vector<Queued*> batch;
      batch.swap(queue_);
      queue_lock.unlock();
      {
        absl::MutexLock lock(&mu_);
        CommitBatchLocked(batch);
      }
      queue_lock.lock();
      for (Queued* b : batch) b->done = true;
      combining_ = false;
      queue_cv_.notify_all();
    }
  }
  return Durable(std::move(q.outcome), q.ticket);
}

absl::StatusOr<EditOutcome> GraphService::Durable(absl::StatusOr<EditOutcome> outcome,
                                                  uint64_t ticket) {
  if (!outcome.ok() || ticket == 0 || store_ == nullptr) return outcome;
  if (auto st = store_->Sync(ticket); !st.ok()) {
    absl::MutexLock lock(&mu_);
    SetStateDiverged(std::string(st.message()));
    absl::Status error = absl::UnavailableError(
        absl::StrCat("the change was applied (revision ", outcome->revision,
                     ") but could not be made durable, so a restart may lose it: ", st.message()));
    error.SetPayload(kAppliedRevisionUrl, absl::Cord(absl::StrCat(outcome->revision)));
    return error;
  }
  return outcome;
}

absl::StatusOr<EditOutcome> GraphService::ApplyGraph(model::GraphSpec spec, bool dry_run,
                                                     std::optional<uint64_t> expected_revision,
                                                     const CallContext& call) {
  Queued q;
  q.build = [&spec](const model::GraphSpec&) -> absl::StatusOr<model::GraphSpec> { return spec; };
  q.dry_run = dry_run;
  q.expected_revision = expected_revision;
  q.call = &call;
  return Submit(q);
}

uint64_t GraphService::revision() const {
  return engine_.revision();
}

size_t GraphService::queued_edits() const {
  std::lock_guard queue_lock(queue_mu_);
  return queue_.size();
}

absl::StatusOr<EditOutcome> GraphService::ApplyYaml(const std::string& yaml,
                                                    const std::string& source_name, bool dry_run,
                                                    std::optional<uint64_t> expected_revision,
                                                    const CallContext& call) {
  auto graph = config::ParseGraphYaml(yaml, source_name.empty() ? "<request>" : source_name,
                                      engine_.kinds());
  if (!graph.ok()) return graph.status();
  return ApplyGraph(std::move(*graph), dry_run, expected_revision, call);
}

absl::StatusOr<EditOutcome> GraphService::Edit(const std::vector<EditOp>& ops, bool dry_run,
                                               std::optional<uint64_t> expected_revision,
                                               const CallContext& call) {
  if (ops.empty()) return absl::InvalidArgumentError("ops: an edit needs at least one operation");
  Queued q;
  q.build = [&](const model::GraphSpec& working) -> absl::StatusOr<model::GraphSpec> {
    model::GraphSpec spec = working;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (auto st = ApplyOp(spec, ops[i], engine_.kinds(), i); !st.ok()) return st;
    }
    return spec;
  };
  q.dry_run = dry_run;
  q.expected_revision = expected_revision;
  q.call = &call;
  return Submit(q);
}

absl::StatusOr<EditOutcome> GraphService::ResetToConfig(std::optional<uint64_t> expected_revision,
                                                        const CallContext& call) {
  if (!config_graph_) return absl::FailedPreconditionError("no config file to reset to");
  auto graph = config_graph_();
  if (!graph.ok()) return graph.status();
  // Back to the config as at a start: start-up limits apply (a volume's
  // startup_max_db); the change list of the commit shows what they did.
  (void)model::ApplyStartupLimits(*graph, engine_.kinds());
  return ApplyGraph(std::move(*graph), false, expected_revision, call);
}

}  // namespace aers::control

namespace aers::control {

GraphService::~GraphService() {
  StopLive();
}

void GraphService::StopLive() {
  {
    absl::MutexLock lock(&mu_);
    stop_committer_ = true;
  }
  if (committer_.joinable()) committer_.join();
}

std::unique_ptr<LiveStream> GraphService::OpenLiveStream(CallContext call) {
  auto s = std::make_unique<LiveStream>(std::move(call));
  absl::MutexLock lock(&mu_);
  if (!saved_known_) {
    // Every edit is saved before it returns: what runs is what is saved.
    std::tie(saved_spec_, saved_revision_) = engine_.spec_and_revision();
    saved_known_ = true;
  }
  streams_.push_back(s.get());
  if (!committer_.joinable() && !stop_committer_) {
    committer_ = std::thread([this] { CommitterLoop(); });
  }
  return s;
}

absl::StatusOr<uint64_t> GraphService::SetLive(LiveStream& stream, const std::string& node,
                                               const std::string& param,
                                               const model::ParamValue& value, size_t index) {
  const std::string where = absl::StrCat("values[", index, "]");
  uint64_t ticket = 0;
  absl::StatusOr<uint64_t> out;
  {
    absl::MutexLock lock(&mu_);
    if (!stream.error.ok()) return stream.error;
    model::GraphSpec spec = engine_.spec();
    const model::NodeSpec* found = spec.FindNode(node);
    const model::NodeSpec before = found != nullptr ? *found : model::NodeSpec{};
    EditOp op;
    op.type = EditOp::Type::kSetParameter;
    op.name = node;
    op.param = param;
    op.value = value;
    if (auto st = ApplyOp(spec, op, engine_.kinds(), index); !st.ok()) {
      // "ops[i].set_parameter.node: ..." in a stream's words.
      std::string msg(st.message());
      const std::string prefix = absl::StrCat("ops[", index, "].set_parameter");
      if (msg.rfind(prefix, 0) == 0) msg = where + msg.substr(prefix.size());
      return absl::Status(st.code(), msg);
    }
    // Only a value that can change without rebuilding the node. What is
    // wrong with the value (type, range, a list's length) is said before
    // that it is not live; Apply does not check it again.
    uint64_t validated_in = 0;
    if (const auto issues = engine_.Validate(spec, &validated_in); !issues.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", model::IssuesText(issues)));
    }
    const model::NodeKind* kind = engine_.kinds().Find(before.kind);
    if (kind == nullptr || !kind->UpdateLive(nullptr, before, *spec.FindNode(node))) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".param: '", param, "' of node '", node, "' (", before.kind,
          ") is not a live parameter (changing it rebuilds the node); use SetParameter"));
    }
    if (auto applied = engine_.Apply(std::move(spec), std::nullopt, validated_in); !applied.ok()) {
      return absl::Status(applied.status().code(),
                          absl::StrCat(where, ": ", applied.status().message()));
    }
    ++stream.values;
    if (!stream.dirty) {
      stream.dirty = true;
      stream.first_unsaved = std::chrono::steady_clock::now();
    }
    out = engine_.revision();
    // Never more unsaved revisions than a journal record's lease covers
    // (state_store.h): save now, in the rare case a stream got that far.
    if (saved_known_ &&
        engine_.revision() - saved_revision_ >= state::StateStore::kRevisionLease / 2) {
      auto saved = SaveLiveLocked(stream);
      if (!saved.ok()) return saved.status();
      ticket = *saved;
    }
  }
  if (ticket != 0 && store_ != nullptr) {
    if (auto st = store_->Sync(ticket); !st.ok()) return st;
  }
  return out;
}

absl::StatusOr<uint64_t> GraphService::SaveLiveLocked(LiveStream& s) {
  if (!s.dirty) return uint64_t{0};
  s.dirty = false;
  auto [spec, rev] = engine_.spec_and_revision();
  const std::vector<std::string> changes =
      saved_known_ ? DiffGraphs(saved_spec_, spec) : std::vector<std::string>{};
  if (s.call.before_commit) {
    if (auto st = s.call.before_commit({saved_known_ ? saved_revision_ : rev, rev, changes});
        !st.ok()) {
      s.error = st;
      return st;
    }
  }
  uint64_t ticket = 0;
  if (store_ != nullptr) {
    auto appended = store_->Append(spec, rev);
    if (!appended.ok()) {
      s.error = absl::UnavailableError(absl::StrCat(
          "the state file cannot be written: the streamed values run but are not saved: ",
          appended.status().message()));
      SetStateDiverged(std::string(appended.status().message()));
      if (s.call.after_failure) s.call.after_failure(s.error);
      return s.error;
    }
    ticket = *appended;
  }
  saved_spec_ = spec;
  saved_revision_ = rev;
  saved_known_ = true;
  if (!changes.empty()) {
    Event e;
    e.type = Event::Type::kGraphChanged;
    e.revision = rev;
    e.changes = changes;
    e.origin = s.call.origin;
    events_.Publish(std::move(e));
  }
  return ticket;
}

absl::StatusOr<uint64_t> GraphService::SaveAllLiveLocked() {
  uint64_t ticket = 0;
  for (LiveStream* s : streams_) {
    auto t = SaveLiveLocked(*s);
    if (!t.ok()) return t.status();
    ticket = std::max(ticket, *t);
  }
  return ticket;
}

absl::StatusOr<std::pair<uint64_t, uint64_t>> GraphService::CloseLiveStream(
    std::unique_ptr<LiveStream> stream) {
  absl::StatusOr<uint64_t> ticket;
  uint64_t rev = 0;
  {
    absl::MutexLock lock(&mu_);
    ticket = stream->error.ok() ? SaveLiveLocked(*stream) : stream->error;
    std::erase(streams_, stream.get());
    rev = engine_.revision();
  }
  if (!ticket.ok()) return ticket.status();
  if (*ticket != 0 && store_ != nullptr) {
    if (auto st = store_->Sync(*ticket); !st.ok()) {
      absl::MutexLock lock(&mu_);
      SetStateDiverged(std::string(st.message()));
      return absl::UnavailableError(
          absl::StrCat("the streamed values run but could not be made durable: ", st.message()));
    }
  }
  return std::make_pair(rev, stream->values);
}

void GraphService::CommitterLoop() {
  while (true) {
    uint64_t ticket = 0;
    std::chrono::steady_clock::time_point due = std::chrono::steady_clock::time_point::max();
    {
      absl::MutexLock lock(&mu_);
      // Idle without streams.
      mu_.Await(absl::Condition(
          +[](GraphService* g) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g->mu_) {
            return g->stop_committer_ || !g->streams_.empty();
          },
          this));
      if (stop_committer_) return;
      const auto now = std::chrono::steady_clock::now();
      for (LiveStream* s : streams_) {
        if (!s->dirty) continue;
        if (now - s->first_unsaved >= kLiveSaveWindow) {
          if (auto t = SaveLiveLocked(*s); t.ok()) ticket = std::max(ticket, *t);
        } else {
          due = std::min(due, s->first_unsaved + kLiveSaveWindow);
        }
      }
    }
    if (ticket != 0 && store_ != nullptr) {
      if (auto st = store_->Sync(ticket); !st.ok()) {
        absl::MutexLock lock(&mu_);
        SetStateDiverged(std::string(st.message()));
      }
    }
    // Wake at the next due save, or after 10 ms to look for new values
    // (while streams are open).
    const auto wake =
        std::min(due, std::chrono::steady_clock::now() + std::chrono::milliseconds(10));
    std::this_thread::sleep_until(wake);
  }
}

}  // namespace aers::control
