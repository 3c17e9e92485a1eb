#include "control/service.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/graph_yaml.h"
#include "model/validate.h"
#include "spdlog/spdlog.h"

namespace aers::control {

namespace {

std::string RouteText(const model::RouteSpec& r) {
  return r.from.ToString() + " -> " + r.to.ToString();
}

bool SameRoute(const model::RouteSpec& a, const model::RouteSpec& b) {
  return a.from == b.from && a.to == b.to;
}

}  // namespace

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
  for (const auto& n : before.nodes) {
    const model::NodeSpec* m = after.FindNode(n.name);
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

void GraphService::SetStateDiverged(std::string error) {
  state_diverged_.store(true);
  spdlog::error(
      "the edit was not applied, and the state file {} could not be put back: {}; a restart "
      "would bring the edit back (health: NOT_SERVING until the state file is written again)",
      store_->path(), error);
  Event e;
  e.type = Event::Type::kStateDiverged;
  e.text = absl::StrCat(store_->path(), ": ", error);
  e.revision = engine_.revision();
  events_.Publish(std::move(e));
}

std::pair<model::GraphSpec, uint64_t> GraphService::Graph() const {
  return engine_.spec_and_revision();  // not behind mu_: reads never wait for an edit
}

absl::StatusOr<EditOutcome> GraphService::CommitLocked(model::GraphSpec spec, bool dry_run,
                                                       std::optional<uint64_t> expected_revision,
                                                       const CallContext& call, uint64_t* ticket) {
  *ticket = 0;
  const uint64_t rev = engine_.revision();
  if (expected_revision && *expected_revision != rev) {
    return absl::AbortedError(absl::StrCat("revision conflict: expected ", *expected_revision,
                                           " but the graph is at revision ", rev,
                                           "; re-read the graph and retry"));
  }
  const model::GraphSpec before = engine_.spec();
  if (const auto issues = engine_.Validate(spec); !issues.empty()) {
    // A cycle is a well-formed request the graph cannot take.
    return absl::Status(model::HasIssue(issues, model::IssueCode::kCycle)
                            ? absl::StatusCode::kFailedPrecondition
                            : absl::StatusCode::kInvalidArgument,
                        model::IssuesText(issues));
  }
  EditOutcome out;
  out.changes = DiffGraphs(before, spec);
  if (dry_run) {
    out.revision = rev;
    return out;
  }
  if (call.before_commit) {
    if (auto st = call.before_commit(PendingCommit{rev, rev + 1, out.changes}); !st.ok()) return st;
  }
  // Write-ahead: the journal holds the edit (and its revision) before the
  // audio does, so what runs is what a restart restores once the process
  // dies, and a revision handed out is never handed out again after a
  // restart. A state that cannot be written refuses the edit with nothing
  // changed. The flush (fdatasync) comes after the service's lock is
  // released (Durable): edits of concurrent clients share it, and the call
  // returns only once its edit is durable.
  const uint64_t next = rev + 1;
  if (store_ != nullptr) {
    auto appended = store_->Append(spec, next);
    if (!appended.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "the state file cannot be written, so the change was refused (nothing changed): ",
          std::string(appended.status().message())));
    }
    *ticket = *appended;
  }
  if (auto applied = engine_.Apply(spec); !applied.ok()) {
    if (store_ != nullptr) {
      // Not applied after all: the state goes back to what runs, at a
      // revision no lower than the one just written (durably: rare).
      if (auto undo = store_->Save(before, std::max(next, engine_.revision())); !undo.ok()) {
        SetStateDiverged(std::string(undo.message()));
      }
    }
    *ticket = 0;
    return applied.status();
  }
  if (store_ != nullptr) state_diverged_.store(false);  // written and applied: in step again
  if (store_ != nullptr && engine_.revision() != next) {
    // The engine moved on meanwhile (a rate change clamped a parameter).
    auto appended = store_->Append(spec, engine_.revision());
    if (appended.ok()) {
      *ticket = *appended;
    } else {
      spdlog::warn("state file {}: {}", store_->path(), std::string(appended.status().message()));
    }
  }
  out.applied = true;
  const engine::EditResult done = engine_.last_edit();
  out.revision = done.revision;
  out.replanned = done.replanned;
  Event e;
  e.type = Event::Type::kGraphChanged;
  e.revision = out.revision;
  e.changes = out.changes;
  e.origin = call.origin;
  events_.Publish(std::move(e));
  return out;
}

absl::StatusOr<EditOutcome> GraphService::Durable(absl::StatusOr<EditOutcome> outcome,
                                                  uint64_t ticket) {
  if (!outcome.ok() || ticket == 0 || store_ == nullptr) return outcome;
  if (auto st = store_->Sync(ticket); !st.ok()) {
    absl::MutexLock lock(&mu_);
    SetStateDiverged(std::string(st.message()));
    return absl::UnavailableError(
        absl::StrCat("the change was applied (revision ", outcome->revision,
                     ") but could not be made durable, so a restart may lose it: ", st.message()));
  }
  return outcome;
}

absl::StatusOr<EditOutcome> GraphService::ApplyGraph(model::GraphSpec spec, bool dry_run,
                                                     std::optional<uint64_t> expected_revision,
                                                     const CallContext& call) {
  uint64_t ticket = 0;
  absl::StatusOr<EditOutcome> out;
  {
    absl::MutexLock lock(&mu_);
    out = CommitLocked(std::move(spec), dry_run, expected_revision, call, &ticket);
  }
  return Durable(std::move(out), ticket);
}

uint64_t GraphService::revision() const {
  return engine_.revision();
}

absl::StatusOr<EditOutcome> GraphService::ApplyYaml(const std::string& yaml,
                                                    const std::string& source_name, bool dry_run,
                                                    std::optional<uint64_t> expected_revision,
                                                    const CallContext& call) {
  auto graph = config::ParseGraphYaml(yaml, source_name.empty() ? "<request>" : source_name,
                                      engine_.kinds());
  if (!graph.ok()) return graph.status();
  uint64_t ticket = 0;
  absl::StatusOr<EditOutcome> out;
  {
    absl::MutexLock lock(&mu_);
    out = CommitLocked(std::move(*graph), dry_run, expected_revision, call, &ticket);
  }
  return Durable(std::move(out), ticket);
}

absl::StatusOr<EditOutcome> GraphService::Edit(const std::vector<EditOp>& ops, bool dry_run,
                                               std::optional<uint64_t> expected_revision,
                                               const CallContext& call) {
  if (ops.empty()) return absl::InvalidArgumentError("ops: an edit needs at least one operation");
  uint64_t ticket = 0;
  absl::StatusOr<EditOutcome> out;
  {
    absl::MutexLock lock(&mu_);
    model::GraphSpec spec = engine_.spec();
    for (size_t i = 0; i < ops.size(); ++i) {
      if (auto st = ApplyOp(spec, ops[i], engine_.kinds(), i); !st.ok()) return st;
    }
    out = CommitLocked(std::move(spec), dry_run, expected_revision, call, &ticket);
  }
  return Durable(std::move(out), ticket);
}

absl::StatusOr<EditOutcome> GraphService::ResetToConfig(std::optional<uint64_t> expected_revision,
                                                        const CallContext& call) {
  if (!config_graph_) return absl::FailedPreconditionError("no config file to reset to");
  auto graph = config_graph_();
  if (!graph.ok()) return graph.status();
  // Back to the config as at a start: start-up limits apply (a volume's
  // startup_max_db); the change list of the commit shows what they did.
  (void)model::ApplyStartupLimits(*graph, engine_.kinds());
  uint64_t ticket = 0;
  absl::StatusOr<EditOutcome> out;
  {
    absl::MutexLock lock(&mu_);
    out = CommitLocked(std::move(*graph), false, expected_revision, call, &ticket);
  }
  return Durable(std::move(out), ticket);
}

}  // namespace aers::control
