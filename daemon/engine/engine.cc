#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "compile/compile.h"
#include "model/validate.h"
#include "spdlog/spdlog.h"

namespace aers::engine {

namespace {

struct Instance {
  model::NodeSpec spec;
  const model::NodeKind* kind = nullptr;
  std::shared_ptr<rt::Processor> proc;
};

using InstanceMap = std::map<std::string, Instance, std::less<>>;

// Identity of an edge across plans: node ends by instance, external ends by
// name. Two plans that share an edge identity carry the same signal on it.
using EdgeKey = std::tuple<const void*, std::string, size_t, const void*, std::string, size_t>;

struct Built {
  compile::Graph graph;
  std::vector<EdgeKey> keys;  // parallel to graph.edges
};

const void* VertexId(const compile::Vertex& v) {
  return v.type == compile::Vertex::Type::kNode ? v.proc.get() : nullptr;
}

std::string VertexName(const compile::Vertex& v) {
  return v.type == compile::Vertex::Type::kNode    ? std::string()
         : v.type == compile::Vertex::Type::kInput ? "in:" + v.name
                                                   : "out:" + v.name;
}

// Builds the compile graph of a valid spec with its instances.
using CounterMap = std::map<std::string, std::shared_ptr<rt::SignalCounters>, std::less<>>;

// The counters of external port `key` ("in:NAME" / "out:NAME"), made on
// first use and kept while the port keeps its name.
std::shared_ptr<rt::SignalCounters> PortCounters(CounterMap& counters, const std::string& key) {
  auto& c = counters[key];
  if (!c) c = std::make_shared<rt::SignalCounters>();
  return c;
}

Built BuildGraph(const model::GraphSpec& spec, const InstanceMap& instances, CounterMap& counters) {
  Built b;
  std::map<std::string, size_t, std::less<>> index;
  uint32_t ch = 0;
  for (const auto& in : spec.inputs) {
    compile::Vertex v;
    v.type = compile::Vertex::Type::kInput;
    v.name = in.name;
    v.layout.outputs.push_back({"out", in.channels});
    v.first_channel = ch;
    v.counters = PortCounters(counters, "in:" + in.name);
    ch += static_cast<uint32_t>(in.channels);
    index[in.name] = b.graph.vertices.size();
    b.graph.vertices.push_back(std::move(v));
  }
  b.graph.input_channels = ch;
  for (const auto& node : spec.nodes) {
    const Instance& inst = instances.at(node.name);
    compile::Vertex v;
    v.type = compile::Vertex::Type::kNode;
    v.name = node.name;
    v.layout = inst.kind->Layout(node);
    v.proc = inst.proc;
    index[node.name] = b.graph.vertices.size();
    b.graph.vertices.push_back(std::move(v));
  }
  ch = 0;
  for (const auto& out : spec.outputs) {
    compile::Vertex v;
    v.type = compile::Vertex::Type::kOutput;
    v.name = out.name;
    v.layout.inputs.push_back({"in", out.channels});
    v.first_channel = ch;
    v.counters = PortCounters(counters, "out:" + out.name);
    ch += static_cast<uint32_t>(out.channels);
    index[out.name] = b.graph.vertices.size();
    b.graph.vertices.push_back(std::move(v));
  }
  b.graph.output_channels = ch;
  auto port_index = [](const std::vector<model::PortDesc>& ports, const std::string& name) {
    if (name.empty()) return size_t{0};
    for (size_t i = 0; i < ports.size(); ++i) {
      if (ports[i].name == name) return i;
    }
    return size_t{0};
  };
  for (const auto& r : spec.routes) {
    compile::Edge e;
    e.src = index.at(r.from.node);
    e.dst = index.at(r.to.node);
    e.src_port = port_index(b.graph.vertices[e.src].layout.outputs, r.from.port);
    e.dst_port = port_index(b.graph.vertices[e.dst].layout.inputs, r.to.port);
    const auto& s = b.graph.vertices[e.src];
    const auto& d = b.graph.vertices[e.dst];
    b.keys.emplace_back(VertexId(s), VertexName(s), e.src_port, VertexId(d), VertexName(d),
                        e.dst_port);
    b.graph.edges.push_back(e);
  }
  return b;
}

// The graph to run during a crossfade from `old_b` to `new_b`: every vertex
// of the new graph plus the old nodes that are going away, new edges fading
// in, vanished edges fading out. Nullopt if no crossfade is needed or
// possible (external ports changed, or the union would have a cycle).
std::optional<compile::Graph> CrossfadeGraph(const Built& old_b, const Built& new_b) {
  // External layout must match: the backend's channels are the same.
  if (old_b.graph.input_channels != new_b.graph.input_channels ||
      old_b.graph.output_channels != new_b.graph.output_channels) {
    return std::nullopt;
  }
  std::set<EdgeKey> old_keys(old_b.keys.begin(), old_b.keys.end());
  std::set<EdgeKey> new_keys(new_b.keys.begin(), new_b.keys.end());
  if (old_keys == new_keys) return std::nullopt;

  compile::Graph g = new_b.graph;
  // Map old vertices into the union.
  std::map<std::pair<const void*, std::string>, size_t> where;
  for (size_t i = 0; i < g.vertices.size(); ++i) {
    where[{VertexId(g.vertices[i]), VertexName(g.vertices[i])}] = i;
  }
  std::vector<size_t> old_to_union(old_b.graph.vertices.size());
  for (size_t i = 0; i < old_b.graph.vertices.size(); ++i) {
    const auto& v = old_b.graph.vertices[i];
    auto it = where.find({VertexId(v), VertexName(v)});
    if (it != where.end()) {
      old_to_union[i] = it->second;
    } else if (v.type == compile::Vertex::Type::kNode) {
      old_to_union[i] = g.vertices.size();
      g.vertices.push_back(v);  // a node going away: runs until faded out
    } else {
      return std::nullopt;  // external port renamed: no crossfade
    }
  }
  for (size_t i = 0; i < g.edges.size(); ++i) {
    if (!old_keys.count(new_b.keys[i])) g.edges[i].ramp = rt::Ramp::kIn;
  }
  for (size_t i = 0; i < old_b.graph.edges.size(); ++i) {
    if (new_keys.count(old_b.keys[i])) continue;
    compile::Edge e = old_b.graph.edges[i];
    e.src = old_to_union[e.src];
    e.dst = old_to_union[e.dst];
    e.ramp = rt::Ramp::kOut;
    g.edges.push_back(e);
  }
  if (!compile::TopologicalOrder(g)) return std::nullopt;
  return g;
}

std::string JoinIssues(const std::vector<model::Issue>& issues) {
  const size_t shown = std::min(issues.size(), model::kMaxReportedIssues);
  std::string out = absl::StrJoin(
      issues.begin(), issues.begin() + static_cast<ptrdiff_t>(shown), "\n",
      [](std::string* o, const model::Issue& i) { absl::StrAppend(o, i.path, ": ", i.message); });
  if (issues.size() > shown) {
    absl::StrAppend(&out, "\n... and ", issues.size() - shown, " more problems");
  }
  return out;
}

}  // namespace

struct Engine::Impl {
  EngineOptions options;
  model::GraphSpec spec;
  uint64_t revision = 0;
  InstanceMap instances;
  Built built;             // graph of the current spec
  bool published = false;  // a plan has been handed to the runner
  uint64_t seq = 0;
  // Meter nodes: the instance (kept alive) and its readings.
  std::map<std::string, std::shared_ptr<rt::Processor>, std::less<>> meters;
  CounterMap port_counters;  // "in:NAME" / "out:NAME" -> counters
  std::mutex reclaim_mutex;  // one consumer of the retire ring at a time
  EditResult last_edit;
};

Engine::Engine(const model::KindRegistry& kinds, EngineOptions options)
    : kinds_(kinds), runner_(std::make_unique<rt::Runner>()), impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->revision = impl_->options.initial_revision;
}

Engine::~Engine() {
  // The audio thread has stopped (the owner stops its backend first): take
  // every plan back from the runner and free it here.
  delete runner_->Publish(nullptr);
  delete runner_->DetachCurrent();
  Reclaim();
}

model::GraphSpec Engine::spec() const {
  std::lock_guard lock(mutex_);
  return impl_->spec;
}

uint64_t Engine::revision() const {
  std::lock_guard lock(mutex_);
  return impl_->revision;
}

EditResult Engine::last_edit() const {
  std::lock_guard lock(mutex_);
  return impl_->last_edit;
}

rt::StreamFormat Engine::format() const {
  std::lock_guard lock(mutex_);
  return impl_->options.format;
}

model::ValidationContext Engine::validation_context() const {
  std::lock_guard lock(mutex_);
  return {impl_->options.format.sample_rate_hz, impl_->options.names, impl_->options.limits};
}

absl::Status Engine::Check(const model::GraphSpec& spec) const {
  const auto issues = model::ValidateGraph(spec, kinds_, validation_context());
  if (!issues.empty()) return absl::InvalidArgumentError(JoinIssues(issues));
  return absl::OkStatus();
}

absl::StatusOr<EditResult> Engine::Apply(model::GraphSpec spec,
                                         std::optional<uint64_t> expected_revision) {
  std::lock_guard lock(mutex_);
  return ApplyLocked(std::move(spec), expected_revision);
}

absl::StatusOr<EditResult> Engine::Edit(const std::function<absl::Status(model::GraphSpec&)>& edit,
                                        std::optional<uint64_t> expected_revision) {
  std::lock_guard lock(mutex_);
  model::GraphSpec spec = impl_->spec;
  if (auto st = edit(spec); !st.ok()) return st;
  return ApplyLocked(std::move(spec), expected_revision);
}

absl::StatusOr<EditResult> Engine::SetParameter(std::string_view node, std::string_view param,
                                                const model::ParamValue& value,
                                                std::optional<uint64_t> expected_revision) {
  std::lock_guard lock(mutex_);
  model::GraphSpec spec = impl_->spec;
  model::NodeSpec* n = spec.FindNode(node);
  if (n == nullptr)
    return absl::NotFoundError(absl::StrCat("no node named '", std::string(node), "'"));
  const model::NodeKind* kind = kinds_.Find(n->kind);
  if (kind == nullptr || kind->FindParam(param) == nullptr) {
    std::vector<std::string> names;
    if (kind) {
      for (const auto& p : kind->params()) names.push_back(p.name);
    }
    return absl::NotFoundError(absl::StrCat("node '", std::string(node), "' (", n->kind,
                                            ") has no parameter '", std::string(param),
                                            "'; it has: ", absl::StrJoin(names, ", ")));
  }
  n->params[std::string(param)] = value;
  return ApplyLocked(std::move(spec), expected_revision);
}

absl::StatusOr<EditResult> Engine::ApplyLocked(model::GraphSpec spec,
                                               std::optional<uint64_t> expected_revision) {
  Impl& s = *impl_;
  if (expected_revision && *expected_revision != s.revision) {
    return absl::AbortedError(absl::StrCat("revision conflict: expected ", *expected_revision,
                                           " but the graph is at revision ", s.revision,
                                           "; re-read the graph and retry"));
  }
  const model::ValidationContext context{s.options.format.sample_rate_hz, s.options.names,
                                         s.options.limits};
  if (auto issues = model::ValidateGraph(spec, kinds_, context); !issues.empty()) {
    return absl::InvalidArgumentError(JoinIssues(issues));
  }

  // Decide, node by node, what carries over. Nothing is touched yet.
  InstanceMap next;
  std::vector<std::pair<Instance*, const model::NodeSpec*>> live_updates;
  bool all_reused = true;
  for (const auto& node : spec.nodes) {
    const model::NodeKind* kind = kinds_.Find(node.kind);
    auto old = s.instances.find(node.name);
    if (old != s.instances.end() && old->second.kind == kind &&
        kind->UpdateLive(nullptr, old->second.spec, node)) {
      next[node.name] = Instance{node, kind, old->second.proc};
      if (!(old->second.spec == node)) live_updates.emplace_back(&old->second, &node);
      continue;
    }
    all_reused = false;
    auto proc = kind->Instantiate(node, kind->ResolveParams(node, s.options.format.sample_rate_hz),
                                  s.options.format);
    if (!proc.ok()) {
      return absl::Status(proc.status().code(),
                          absl::StrCat("node '", node.name, "': ", proc.status().message()));
    }
    next[node.name] = Instance{node, kind, std::shared_ptr<rt::Processor>(std::move(*proc))};
  }

  CounterMap counters = s.port_counters;
  Built built = BuildGraph(spec, next, counters);
  const bool same_topology = s.published && all_reused &&
                             spec.nodes.size() == s.spec.nodes.size() &&
                             spec.inputs == s.spec.inputs && spec.outputs == s.spec.outputs &&
                             std::set<EdgeKey>(built.keys.begin(), built.keys.end()) ==
                                 std::set<EdgeKey>(s.built.keys.begin(), s.built.keys.end());

  std::unique_ptr<rt::Plan> plan;
  if (!same_topology) {
    const auto ramp_frames = static_cast<uint32_t>(
        std::lround(s.options.crossfade_ms * s.options.format.sample_rate_hz / 1000.0));
    auto clean = compile::CompilePlan(built.graph, s.options.format, {});
    if (!clean.ok()) return clean.status();
    plan = std::move(*clean);
    if (s.published) {
      if (auto xgraph = CrossfadeGraph(s.built, built)) {
        auto xplan = compile::CompilePlan(*xgraph, s.options.format, {ramp_frames, true});
        if (!xplan.ok()) return xplan.status();
        (*xplan)->successor = std::move(plan);
        plan = std::move(*xplan);
      }
    }
  }

  // Commit. From here on nothing fails.
  for (auto& [inst, after] : live_updates)
    inst->kind->UpdateLive(inst->proc.get(), inst->spec, *after);
  if (plan) {
    // Let the previous crossfade finish so fades never cut into each other.
    const auto deadline = std::chrono::steady_clock::now() + s.options.settle_timeout;
    uint64_t cycles = runner_->cycles();
    auto last_progress = std::chrono::steady_clock::now();
    while (s.published && runner_->settled_seq() != s.seq &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      Reclaim();
      const uint64_t c = runner_->cycles();
      if (c != cycles) {
        cycles = c;
        last_progress = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last_progress > std::chrono::milliseconds(20)) {
        break;  // the audio thread is not running: nothing to wait for
      }
    }
    plan->seq = ++s.seq;
    plan->io_layout = model::IoLayoutId(spec);
    if (plan->successor) {
      plan->successor->seq = plan->seq;
      plan->successor->io_layout = plan->io_layout;
    }
    delete runner_->Publish(plan.release());
    s.published = true;
  }
  s.instances = std::move(next);
  s.built = std::move(built);
  // Keep the counters of ports that still exist (a port keeps its counts
  // across edits while it keeps its name).
  s.port_counters.clear();
  for (const auto& v : s.built.graph.vertices) {
    if (v.counters) s.port_counters[VertexName(v)] = v.counters;
  }
  s.spec = std::move(spec);
  s.meters.clear();
  for (const auto& [name, inst] : s.instances) {
    if (inst.proc->AsMeter() != nullptr) s.meters[name] = inst.proc;
  }
  ++s.revision;
  Reclaim();
  s.last_edit = EditResult{s.revision, !same_topology};
  return s.last_edit;
}

absl::Status Engine::SetFormat(const rt::StreamFormat& format) {
  std::lock_guard lock(mutex_);
  Impl& s = *impl_;
  if (format == s.options.format) return absl::OkStatus();
  if (format.sample_rate_hz < 1000.0 || format.max_period_frames == 0 ||
      format.max_period_frames > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported stream format: ", format.sample_rate_hz, " Hz, ",
                     format.max_period_frames, " frames"));
  }
  const rt::StreamFormat old = s.options.format;
  // Parameter ranges that follow the sample rate are checked again at the
  // new rate; values now out of range are clamped and reported.
  model::GraphSpec spec = s.spec;
  bool clamped = false;
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    model::NodeSpec& n = spec.nodes[i];
    const model::NodeKind* kind = kinds_.Find(n.kind);
    if (kind == nullptr) continue;
    for (auto& [pname, value] : n.params) {
      const model::ParamDesc* d = kind->FindParam(pname);
      auto* v = std::get_if<double>(&value);
      if (d == nullptr || !d->per_sample_rate || v == nullptr) continue;
      const model::ParamDesc at = d->At(format.sample_rate_hz);
      const double c = std::clamp(*v, at.min, at.max);
      if (c == *v) continue;
      spdlog::warn(
          "nodes[{}].params.{}: {} {} is out of range at {} Hz (allowed {} to {}); clamped to {}",
          i, pname, *v, d->unit, format.sample_rate_hz, at.min, at.max, c);
      *v = c;
      clamped = true;
    }
  }
  s.options.format = format;
  // Fresh instances for the new rate; no crossfade across a format change.
  InstanceMap saved = std::move(s.instances);
  s.instances.clear();
  const bool was_published = s.published;
  s.published = false;
  const uint64_t rev = s.revision;
  auto result = ApplyLocked(std::move(spec), std::nullopt);
  if (!result.ok()) {
    s.options.format = old;
    s.instances = std::move(saved);
    s.published = was_published;
    return result.status();
  }
  if (!clamped) s.revision = rev;  // same graph: not an edit
  return absl::OkStatus();
}

absl::StatusOr<std::vector<MeterReading>> Engine::ReadMeter(std::string_view node) const {
  std::lock_guard lock(mutex_);
  auto it = impl_->meters.find(node);
  if (it == impl_->meters.end()) {
    return absl::NotFoundError(absl::StrCat("no meter node named '", std::string(node), "'"));
  }
  const rt::MeterTap& tap = *it->second->AsMeter();
  std::vector<MeterReading> out;
  for (int ch = 0; ch < tap.channels(); ++ch) out.push_back({tap.peak(ch), tap.rms(ch)});
  return out;
}

std::vector<std::string> Engine::MeterNodes() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, m] : impl_->meters) out.push_back(name);
  return out;
}

std::vector<SignalReport> Engine::SignalReports() const {
  std::lock_guard lock(mutex_);
  std::vector<SignalReport> out;
  const auto report = [&](SignalReport::Where where, const std::string& name,
                          const rt::SignalCounters& c) {
    out.push_back({where, name, c.nonfinite.load(std::memory_order_relaxed),
                   c.clipped.load(std::memory_order_relaxed),
                   c.state_resets.load(std::memory_order_relaxed)});
  };
  for (const auto& v : impl_->built.graph.vertices) {
    switch (v.type) {
      case compile::Vertex::Type::kInput:
        report(SignalReport::Where::kInput, v.name, *v.counters);
        break;
      case compile::Vertex::Type::kNode:
        report(SignalReport::Where::kNode, v.name, v.proc->signal);
        break;
      case compile::Vertex::Type::kOutput:
        report(SignalReport::Where::kOutput, v.name, *v.counters);
        break;
    }
  }
  return out;
}

std::optional<uint32_t> Engine::LatencyFrames(std::string_view input,
                                              std::string_view output) const {
  std::lock_guard lock(mutex_);
  const compile::Graph& g = impl_->built.graph;
  const auto order = compile::TopologicalOrder(g);
  if (!order) return std::nullopt;
  std::vector<std::optional<uint32_t>> best(g.vertices.size());
  for (size_t v = 0; v < g.vertices.size(); ++v) {
    if (g.vertices[v].type == compile::Vertex::Type::kInput && g.vertices[v].name == input) {
      best[v] = 0;
    }
  }
  std::vector<std::vector<size_t>> succ(g.vertices.size());
  for (const auto& e : g.edges) succ[e.src].push_back(e.dst);
  for (size_t v : *order) {
    if (!best[v]) continue;
    const uint32_t through =
        *best[v] + (g.vertices[v].proc ? g.vertices[v].proc->LatencyFrames() : 0);
    for (size_t w : succ[v]) best[w] = std::max(best[w].value_or(0), through);
  }
  for (size_t v = 0; v < g.vertices.size(); ++v) {
    if (g.vertices[v].type == compile::Vertex::Type::kOutput && g.vertices[v].name == output) {
      return best[v];
    }
  }
  return std::nullopt;
}

uint32_t Engine::OutputLatencyFrames(std::string_view output) const {
  uint32_t worst = 0;
  for (const auto& in : spec().inputs) {
    worst = std::max(worst, LatencyFrames(in.name, output).value_or(0));
  }
  return worst;
}

void Engine::Reclaim() {
  std::lock_guard lock(impl_->reclaim_mutex);
  while (rt::Plan* p = runner_->PopRetired()) delete p;
}

}  // namespace aers::engine
