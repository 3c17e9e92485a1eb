#include "engine/engine.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "compile/compile.h"
#include "model/validate.h"
#include "rt/thread_role.h"
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
  // Ramps sit where the old and the new graph meet: on an edge into a
  // vertex both graphs have. A path of several new nodes is faded in once,
  // at its end, not once per edge (a gain of g^k along k ramped edges in
  // series: a dip mid-fade and a steep rise at its end); so is a path of
  // several nodes going away faded out once.
  const size_t new_count = new_b.graph.vertices.size();  // then the nodes going away
  std::vector<bool> in_old(new_count, false);
  for (size_t u : old_to_union) {
    if (u < new_count) in_old[u] = true;
  }
  for (size_t i = 0; i < g.edges.size(); ++i) {
    if (!old_keys.count(new_b.keys[i]) && in_old[g.edges[i].dst]) g.edges[i].ramp = rt::Ramp::kIn;
  }
  for (size_t i = 0; i < old_b.graph.edges.size(); ++i) {
    if (new_keys.count(old_b.keys[i])) continue;
    compile::Edge e = old_b.graph.edges[i];
    e.src = old_to_union[e.src];
    e.dst = old_to_union[e.dst];
    e.ramp = e.dst < new_count ? rt::Ramp::kOut : rt::Ramp::kNone;
    g.edges.push_back(e);
  }
  if (!compile::TopologicalOrder(g)) return std::nullopt;
  return g;
}

// The indexes of the nodes of `next` whose parameters differ from those of
// `current`, when nothing else differs (schema version, external ports,
// routes, and every node's name, kind, channels and preset): what a change
// of live parameters looks like. Nullopt for any other change.
std::optional<std::vector<size_t>> ParamsOnlyChange(const model::GraphSpec& current,
                                                    const model::GraphSpec& next) {
  if (next.version != current.version || next.nodes.size() != current.nodes.size() ||
      next.inputs != current.inputs || next.outputs != current.outputs ||
      next.routes != current.routes) {
    return std::nullopt;
  }
  std::vector<size_t> changed;
  for (size_t i = 0; i < next.nodes.size(); ++i) {
    const model::NodeSpec& a = current.nodes[i];
    const model::NodeSpec& b = next.nodes[i];
    if (a.name != b.name || a.kind != b.kind || a.channels != b.channels || a.preset != b.preset) {
      return std::nullopt;
    }
    if (!model::Identical(a, b)) changed.push_back(i);
  }
  return changed;
}

absl::Status RevisionConflict(uint64_t expected, uint64_t actual) {
  return absl::AbortedError(absl::StrCat("revision conflict: expected ", expected,
                                         " but the graph is at revision ", actual,
                                         "; re-read the graph and retry"));
}

}  // namespace

struct Engine::Impl {
  Impl(const model::KindRegistry& k, rt::Runner& r, EngineOptions o)
      : kinds(k),
        runner(r),
        settle_timeout(o.settle_timeout),
        options(std::move(o)),
        revision(options.initial_revision) {
    UpdateStallLimit();
    publisher = std::thread([this] { PublishLoop(); });
  }
  ~Impl() { StopPublisher(); }

  /// The whole edit: validation, the port host's change, compile, publish,
  /// commit, then the host hears of the new graph.
  absl::StatusOr<EditResult> Commit(model::GraphSpec spec, std::optional<uint64_t> expected,
                                    std::optional<uint64_t> validated_in = std::nullopt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(edit_mu) ABSL_LOCKS_EXCLUDED(mu);
  // An edit in three steps, so that readers never wait for one:
  // TakeSnapshot (state lock shared), Prepare (no state lock: validation,
  // building nodes, compiling plans, waiting out a running crossfade), then
  // CommitPrepared (state lock exclusive: publish and commit, nothing
  // slow). Edits are serialized by edit_mu; only a format change can move
  // the state meanwhile, and `generation` tells.
  struct Snapshot {
    rt::StreamFormat format;
    model::ValidationContext context;
    std::chrono::milliseconds settle_timeout{0};
    double crossfade_ms = 0.0;
    uint64_t revision = 0;
    uint64_t generation = 0;
    uint64_t seq = 0;
    uint64_t audio_epoch = 0;
    bool published = false;
    bool parked = false;           // a plan waits for the running crossfade to end
    bool crossfade_waits = false;  // a crossfade plan waits in the runner's slot
    model::GraphSpec current;
    InstanceMap instances;
    Built current_built;
    Built audio_built;  // the graph of the last plan handed to the runner
    CounterMap port_counters;
  };
  struct Prepared {
    model::GraphSpec spec;
    InstanceMap next;
    std::vector<std::pair<Instance, model::NodeSpec>> live_updates;  // (old, new)
    Built built;
    bool same_topology = false;
    bool park = false;        // hand the plan to the publisher, not to the runner
    bool crossfaded = false;  // the plan fades from the graph of `audio_epoch`
    bool immediate = false;   // new ports or a new format: replaces what waits
    uint64_t audio_epoch = 0;
    std::unique_ptr<rt::Plan> plan;
  };
  Snapshot TakeSnapshot() const ABSL_SHARED_LOCKS_REQUIRED(mu);
  /// Commits `next` at once when it differs from the live graph only in
  /// values every changed node takes live (NodeKind::UpdateLive: no node
  /// built, no plan compiled, the same edges), and was validated in this
  /// format (`validated_in`). Nullopt when it does not qualify (the caller
  /// takes the whole path); a revision conflict otherwise fails it.
  std::optional<absl::StatusOr<EditResult>> CommitLiveOnlyLocked(
      const model::GraphSpec& next, std::optional<uint64_t> expected,
      std::optional<uint64_t> validated_in) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  /// `park`: a crossfade is running (or a plan is already parked); the
  /// plan, a crossfade from the graph the audio is settling on, is parked
  /// for the publisher thread instead of waited for.
  /// `validated`: the spec was found valid in snap's format already.
  absl::StatusOr<Prepared> Prepare(model::GraphSpec spec, const Snapshot& snap,
                                   std::optional<uint64_t> expected_revision, bool park = false,
                                   bool validated = false) const;
  /// Waits (at most the settle timeout) for the audio thread to finish the
  /// crossfade of plan `seq`, so that fades never cut into each other.
  void WaitForSettle(uint64_t seq_to_settle, std::chrono::milliseconds timeout,
                     std::chrono::microseconds poll = kEditPoll);
  /// True while the audio thread runs the crossfade of plan `seq` (it took
  /// the plan and the fade has not ended).
  bool FadeRunning(uint64_t seq_to_settle) const;
  /// Waits (bounded like WaitForSettle) until the audio thread has taken
  /// the plan waiting in the runner's slot, if any: at most a period while
  /// audio runs.
  void WaitForTaken(std::chrono::milliseconds timeout);
  /// Polls `done` every `poll` until it holds, `timeout` passes, or the
  /// audio thread runs no period for three period lengths (20 ms at
  /// least); returns `done()`. Reclaims retired plans meanwhile. (The audio
  /// thread makes no system call, so it cannot wake a waiter: waits poll.)
  bool WaitForAudio(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                    std::chrono::microseconds poll = kEditPoll);
  /// Poll intervals: an edit a client waits for polls often; the publisher,
  /// whose hand-over nobody waits for (the edit was acknowledged), polls
  /// about once a period (at most 1 ms: each poll is a wake-up, which costs
  /// CPU time that edits on a small machine need).
  static constexpr std::chrono::microseconds kEditPoll{100};
  std::chrono::microseconds PublisherPoll() const {
    return std::clamp(std::chrono::microseconds(stall_limit_us.load(std::memory_order_relaxed) / 3),
                      kEditPoll, std::chrono::microseconds(1000));
  }
  /// Returns the plan the runner (or the publisher) had not taken yet, to
  /// delete after the state lock is released. A parked plan made from an
  /// older audio graph than the publisher has meanwhile handed over
  /// (`audio_epoch`) is not committed: returns false in `*committed`.
  using PlanGarbage = std::vector<std::unique_ptr<rt::Plan>>;
  PlanGarbage CommitPrepared(Prepared p, bool* committed = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  /// The publisher thread: hands a parked plan to the runner once the
  /// crossfade before it has ended, so that an edit arriving during a fade
  /// returns at once and the fades in a burst of edits neither cut into
  /// each other nor queue up (the last parked plan wins).
  void PublishLoop();
  /// What a spec is validated against: the current rate, names and limits.
  model::ValidationContext ContextLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return {options.format.sample_rate_hz, options.names, options.limits};
  }
  void UpdateStallLimit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const double period_us =
        1e6 * options.format.max_period_frames / std::max(1.0, options.format.sample_rate_hz);
    stall_limit_us.store(static_cast<int64_t>(3.0 * period_us), std::memory_order_relaxed);
  }
  void StopPublisher();
  /// Snapshot, Prepare and CommitPrepared under the state lock, without
  /// waiting for a crossfade (format changes, which publish fresh plans).
  absl::StatusOr<EditResult> ApplyLocked(model::GraphSpec spec,
                                         std::optional<uint64_t> expected_revision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  absl::StatusOr<std::unique_ptr<rt::Processor>> InstantiateGuarded(
      const model::NodeKind& kind, const model::NodeSpec& node,
      const rt::StreamFormat& format) const;
  static absl::StatusOr<std::unique_ptr<rt::Plan>> CompileGuarded(
      const compile::Graph& graph, const rt::StreamFormat& format,
      const compile::CompileOptions& opts);
  absl::Status SetFormatLocked(const rt::StreamFormat& format) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Reclaim() ABSL_LOCKS_EXCLUDED(reclaim_mu);

  const model::KindRegistry& kinds;
  rt::Runner& runner;
  const std::chrono::milliseconds settle_timeout;  // options.settle_timeout, for the publisher

  /// Serializes edits (Apply, Edit, SetParameter) and the port host's calls
  /// in them. Never taken by the audio thread.
  absl::Mutex edit_mu;
  PortHost* host ABSL_GUARDED_BY(edit_mu) = nullptr;

  /// The live graph and everything derived from it: taken briefly by readers,
  /// and by edits and format changes to compile, publish and commit. Never
  /// taken by the audio thread. Taken after edit_mu and after a backend's
  /// own lock.
  mutable absl::Mutex mu ABSL_ACQUIRED_AFTER(edit_mu);
  EngineOptions options ABSL_GUARDED_BY(mu);
  model::GraphSpec current ABSL_GUARDED_BY(mu);  // the live graph
  uint64_t revision ABSL_GUARDED_BY(mu) = 0;
  InstanceMap instances ABSL_GUARDED_BY(mu);
  Built current_built ABSL_GUARDED_BY(mu);     // compile graph of `current`
  bool published ABSL_GUARDED_BY(mu) = false;  // a plan has been handed to the runner
  // Meter nodes: the instance (kept alive) and its readings.
  std::map<std::string, std::shared_ptr<rt::Processor>, std::less<>> meters ABSL_GUARDED_BY(mu);
  CounterMap port_counters ABSL_GUARDED_BY(mu);  // "in:NAME" / "out:NAME" -> counters
  EditResult last_edit ABSL_GUARDED_BY(mu);
  uint64_t generation ABSL_GUARDED_BY(mu) = 0;  // bumped by every format change

  /// Between edits (under mu) and the publisher thread (without mu): the
  /// plans handed to the runner. A std::mutex, taken after mu, so that
  /// ThreadSanitizer sees the hand-off (it cannot see absl::Mutex in
  /// Debian's uninstrumented abseil, docs/threads.md).
  mutable std::mutex handoff_mu;
  std::condition_variable handoff_cv;
  uint64_t seq = 0;                  // handoff_mu: seq of the last plan handed to the runner
  Built audio_built;                 // handoff_mu: its graph
  uint64_t audio_epoch = 0;          // handoff_mu: bumped whenever audio_built changes
  std::unique_ptr<rt::Plan> parked;  // handoff_mu: waits for the fade of `seq` to end
  Built parked_built;                // handoff_mu: its graph
  /// handoff_mu: the last plan handed to the runner is a crossfade. While
  /// it waits in the runner's slot (a stalled audio thread), no plan may
  /// replace it: the replacement would fade from a graph the audio never
  /// reached. Such an edit parks instead.
  bool handed_crossfade = false;
  bool stop_publisher = false;  // handoff_mu
  std::thread publisher;
  /// Three period lengths at the current format, in microseconds (read by
  /// the waits without the state lock).
  std::atomic<int64_t> stall_limit_us{0};

  /// Node builds one at a time (an edit's, without the state lock, and a
  /// format change's, under it): plugin standards (LADSPA, LV2) forbid
  /// concurrent instantiation. Taken after mu; readers never take it.
  mutable absl::Mutex build_mu ABSL_ACQUIRED_AFTER(mu);

  /// One consumer of the runner's retire ring at a time.
  absl::Mutex reclaim_mu ABSL_ACQUIRED_AFTER(mu);
};

Engine::Engine(const model::KindRegistry& kinds, EngineOptions options)
    : kinds_(kinds),
      runner_(std::make_unique<rt::Runner>()),
      impl_(std::make_unique<Impl>(kinds, *runner_, std::move(options))) {}

Engine::~Engine() {
  impl_->StopPublisher();
  // The audio thread has stopped (the owner stops its backend first): take
  // every plan back from the runner and free it here.
  delete runner_->Publish(nullptr);
  delete runner_->DetachCurrent();
  Reclaim();
}

void Engine::SetPortHost(PortHost* host) {
  absl::MutexLock lock(&impl_->edit_mu);
  impl_->host = host;
}

void Engine::ClearPortHost(const PortHost* host) {
  absl::MutexLock lock(&impl_->edit_mu);
  if (impl_->host == host) impl_->host = nullptr;
}

model::GraphSpec Engine::spec() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return impl_->current;
}

uint64_t Engine::revision() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return impl_->revision;
}

std::pair<model::GraphSpec, uint64_t> Engine::spec_and_revision() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return {impl_->current, impl_->revision};
}

EditResult Engine::last_edit() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return impl_->last_edit;
}

rt::StreamFormat Engine::format() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return impl_->options.format;
}

model::ValidationContext Engine::validation_context() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return impl_->ContextLocked();
}

std::vector<model::Issue> Engine::Validate(const model::GraphSpec& spec,
                                           uint64_t* generation) const {
  AERS_DCHECK_NOT_AUDIO_THREAD();
  // What runs is valid in this format: only what an edit changed is checked
  // again, and the nodes whose kinds read files (which may have changed on
  // disk). Checked outside the state lock (a format change must not wait
  // for a check that reads files), on a copy: Apply knows from `generation`
  // whether the format moved meanwhile.
  model::ValidationContext context;
  std::optional<std::vector<size_t>> changed;
  std::vector<model::NodeSpec> before;  // a live change: the changed nodes as they run
  model::GraphSpec running;             // otherwise: the graph that runs
  {
    absl::ReaderMutexLock lock(&impl_->mu);
    context = impl_->ContextLocked();
    if (generation != nullptr) *generation = impl_->generation;
    changed = ParamsOnlyChange(impl_->current, spec);
    if (changed) {
      for (const size_t i : *changed) before.push_back(impl_->current.nodes[i]);
    } else {
      running = impl_->current;
    }
  }
  // A change of parameters only: if they are live (which never touch a
  // node's ports), only those values can have become invalid.
  if (changed) {
    std::vector<size_t> check = *changed;
    for (size_t i = 0; i < spec.nodes.size(); ++i) {
      const model::NodeKind* kind = kinds_.Find(spec.nodes[i].kind);
      if (kind != nullptr && kind->ReadsFiles()) check.push_back(i);
    }
    std::sort(check.begin(), check.end());
    check.erase(std::unique(check.begin(), check.end()), check.end());
    auto issues = model::ValidateNodeSettings(spec, check, kinds_, context);
    if (!issues.empty()) return issues;
    bool live = true;
    for (size_t k = 0; k < changed->size() && live; ++k) {
      const model::NodeSpec& after = spec.nodes[(*changed)[k]];
      const model::NodeKind* kind = kinds_.Find(after.kind);
      live = kind != nullptr && kind->UpdateLive(nullptr, before[k], after);
    }
    if (live) return {};
    return model::ValidateGraph(spec, kinds_, context);  // a node is rebuilt
  }
  return model::ValidateGraph(spec, kinds_, context, &running);
}

absl::Status Engine::Check(const model::GraphSpec& spec) const {
  AERS_DCHECK_NOT_AUDIO_THREAD();
  const auto issues = Validate(spec);
  if (!issues.empty()) return absl::InvalidArgumentError(model::IssuesText(issues));
  return absl::OkStatus();
}

absl::StatusOr<EditResult> Engine::Impl::Commit(model::GraphSpec next,
                                                std::optional<uint64_t> expected,
                                                std::optional<uint64_t> validated_in) {
  bool ports_change = false;
  if (host != nullptr) {
    // Same external ports (the usual edit): checked once, by Prepare.
    // Otherwise checked before the host touches a port (and before the
    // layout, whose cost follows the channel counts, is computed), outside
    // the state lock (a check may read files).
    std::optional<model::ValidationContext> check;
    bool ports_differ = false;
    {
      absl::ReaderMutexLock lock(&mu);
      if (next.inputs != current.inputs || next.outputs != current.outputs) {
        if (expected && *expected != revision) return RevisionConflict(*expected, revision);
        ports_differ = true;
        if (validated_in != generation) check = ContextLocked();
      }
    }
    if (check) {
      if (const auto issues = model::ValidateGraph(next, kinds, *check); !issues.empty()) {
        return absl::InvalidArgumentError(model::IssuesText(issues));
      }
    }
    if (ports_differ) {
      absl::ReaderMutexLock lock(&mu);
      ports_change = model::IoLayoutId(next) != model::IoLayoutId(current);
    }
  }
  // Live parameters only (a fader, automation): nothing to build or
  // compile; the nodes glide to their new values at once.
  if (!ports_change) {
    std::optional<absl::StatusOr<EditResult>> live;
    model::GraphSpec now_live;
    {
      absl::MutexLock lock(&mu);
      live = CommitLiveOnlyLocked(next, expected, validated_in);
      if (live && live->ok() && host != nullptr) now_live = current;
    }
    if (live) {
      if (live->ok() && host != nullptr) host->GraphChanged(now_live);
      return *std::move(live);
    }
  }
  // Ports are made outside the state lock: a backend's server may need the
  // engine (a period-size change) before it answers.
  std::unique_ptr<PortHost::Change> change;
  if (ports_change) {
    auto made = host->ChangePorts(next);
    if (!made.ok()) return made.status();
    change = std::move(*made);
  }
  absl::StatusOr<EditResult> result;
  model::GraphSpec now;
  PlanGarbage garbage;
  // Built without the state lock (readers go on); committed under it. A
  // format change meanwhile (the backend's thread) makes the work stale:
  // done again for the new format. So does a hand-over by the publisher
  // (the fade would start from a graph the audio left).
  int format_changes = 0;
  for (int attempt = 0;; ++attempt) {
    Snapshot snap;
    {
      absl::ReaderMutexLock lock(&mu);
      snap = TakeSnapshot();
    }
    // During a crossfade (or with a plan already parked behind one), the
    // plan is parked for the publisher and the edit returns at once. A plan
    // the audio thread is about to take (the next period) is waited for
    // first; with no audio thread running, the edit goes over directly, as
    // a caller that runs the periods itself expects. New external ports go
    // over now: their port table follows the plan.
    if (snap.published && !snap.parked && runner.has_pending()) {
      WaitForTaken(snap.settle_timeout);
    }
    const bool park =
        !change && snap.published && (snap.parked || snap.crossfade_waits || FadeRunning(snap.seq));
    auto prepared = Prepare(next, snap, expected, park, validated_in == snap.generation);
    if (!prepared.ok()) {
      result = prepared.status();
      break;
    }
    prepared->immediate = change != nullptr;
    if (prepared->plan && !prepared->park && snap.published) {
      WaitForSettle(snap.seq, snap.settle_timeout);
    }
    absl::MutexLock lock(&mu);
    if (generation != snap.generation || revision != snap.revision) {
      if (++format_changes < 4) continue;
      result = absl::UnavailableError(
          "the stream format changed during the edit, four times over; nothing changed, try "
          "again");
    } else {
      bool committed = false;
      for (auto& g : CommitPrepared(std::move(*prepared), &committed)) {
        garbage.push_back(std::move(g));
      }
      if (!committed) {
        if (attempt < 64) continue;
        result = absl::UnavailableError(
            "the audio thread kept taking new plans during the edit; nothing changed, try again");
      } else {
        result = last_edit;
      }
    }
    if (result.ok() && host != nullptr) now = current;
    break;
  }
  garbage.clear();
  Reclaim();
  if (change) {
    change->Finish(result.ok());
    change.reset();
  }
  if (result.ok() && host != nullptr) host->GraphChanged(now);
  return result;
}

absl::StatusOr<EditResult> Engine::Apply(model::GraphSpec spec,
                                         std::optional<uint64_t> expected_revision,
                                         std::optional<uint64_t> validated_in) {
  AERS_DCHECK_NOT_AUDIO_THREAD();
  absl::MutexLock lock(&impl_->edit_mu);
  return impl_->Commit(std::move(spec), expected_revision, validated_in);
}

absl::StatusOr<EditResult> Engine::Edit(const std::function<absl::Status(model::GraphSpec&)>& edit,
                                        std::optional<uint64_t> expected_revision) {
  AERS_DCHECK_NOT_AUDIO_THREAD();
  absl::MutexLock lock(&impl_->edit_mu);
  model::GraphSpec spec;
  uint64_t base = 0;
  {
    absl::ReaderMutexLock state(&impl_->mu);
    spec = impl_->current;
    base = impl_->revision;
  }
  if (expected_revision && *expected_revision != base) {
    return RevisionConflict(*expected_revision, base);
  }
  if (auto st = edit(spec); !st.ok()) return st;
  // Edits are serialized by edit_mu; only a format change (which may clamp
  // a parameter) can move the revision meanwhile: the edit is then made on
  // a stale copy, and refused like any stale edit.
  return impl_->Commit(std::move(spec), base);
}

absl::StatusOr<EditResult> Engine::SetParameter(std::string_view node, std::string_view param,
                                                const model::ParamValue& value,
                                                std::optional<uint64_t> expected_revision) {
  AERS_DCHECK_NOT_AUDIO_THREAD();
  absl::MutexLock edit(&impl_->edit_mu);
  model::GraphSpec spec;
  {
    absl::ReaderMutexLock lock(&impl_->mu);
    spec = impl_->current;
    if (expected_revision && *expected_revision != impl_->revision) {
      return RevisionConflict(*expected_revision, impl_->revision);
    }
    expected_revision = impl_->revision;
  }
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
  return impl_->Commit(std::move(spec), expected_revision);
}

// Building a node or a plan allocates (a long impulse response, an LV2
// plugin's own state): running out of memory, or a kind's code throwing,
// refuses the edit like any other failure, before anything is committed.
absl::StatusOr<std::unique_ptr<rt::Processor>> Engine::Impl::InstantiateGuarded(
    const model::NodeKind& kind, const model::NodeSpec& node,
    const rt::StreamFormat& format) const {
  absl::MutexLock lock(&build_mu);
  try {
    return kind.Instantiate(node, kind.ResolveParams(node, format.sample_rate_hz), format);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory while building the node");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("building the node failed: ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<rt::Plan>> Engine::Impl::CompileGuarded(
    const compile::Graph& graph, const rt::StreamFormat& format,
    const compile::CompileOptions& opts) {
  try {
    return compile::CompilePlan(graph, format, opts);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory while compiling the graph");
  }
}

std::optional<absl::StatusOr<EditResult>> Engine::Impl::CommitLiveOnlyLocked(
    const model::GraphSpec& next, std::optional<uint64_t> expected,
    std::optional<uint64_t> validated_in) {
  // Not before the first plan (it is compiled from the instances), nor
  // with a check owed (a format change since the caller's validation).
  if (!published || validated_in != generation) return std::nullopt;
  const auto changed = ParamsOnlyChange(current, next);
  if (!changed) return std::nullopt;
  for (const size_t i : *changed) {
    auto inst = instances.find(next.nodes[i].name);
    if (inst == instances.end() || inst->second.kind == nullptr ||
        !inst->second.kind->UpdateLive(nullptr, inst->second.spec, next.nodes[i])) {
      return std::nullopt;
    }
  }
  if (expected && *expected != revision) return RevisionConflict(*expected, revision);
  for (const size_t i : *changed) {
    Instance& inst = instances.find(next.nodes[i].name)->second;
    inst.kind->UpdateLive(inst.proc.get(), inst.spec, next.nodes[i]);
    inst.spec = next.nodes[i];
    current.nodes[i] = next.nodes[i];
  }
  ++revision;
  last_edit = EditResult{revision, false};
  return last_edit;
}

Engine::Impl::Snapshot Engine::Impl::TakeSnapshot() const {
  Snapshot snap;
  snap.format = options.format;
  snap.context = ContextLocked();
  snap.settle_timeout = options.settle_timeout;
  snap.crossfade_ms = options.crossfade_ms;
  snap.revision = revision;
  snap.generation = generation;
  snap.published = published;
  snap.current = current;
  snap.instances = instances;
  snap.current_built = current_built;
  snap.port_counters = port_counters;
  std::lock_guard handoff(handoff_mu);
  snap.seq = seq;
  snap.audio_epoch = audio_epoch;
  snap.parked = parked != nullptr;
  snap.crossfade_waits = handed_crossfade && runner.has_pending();
  snap.audio_built = audio_built;
  return snap;
}

absl::StatusOr<Engine::Impl::Prepared> Engine::Impl::Prepare(
    model::GraphSpec spec, const Snapshot& snap, std::optional<uint64_t> expected_revision,
    bool park, bool validated) const {
  if (expected_revision && *expected_revision != snap.revision) {
    return RevisionConflict(*expected_revision, snap.revision);
  }
  if (!validated) {
    if (auto issues = model::ValidateGraph(spec, kinds, snap.context); !issues.empty()) {
      return absl::InvalidArgumentError(model::IssuesText(issues));
    }
  }

  // Decide, node by node, what carries over. Nothing is touched yet.
  Prepared p;
  bool all_reused = true;
  for (const auto& node : spec.nodes) {
    const model::NodeKind* kind = kinds.Find(node.kind);
    auto old = snap.instances.find(node.name);
    // An unchanged node (most of them, in an edit) is carried over without
    // asking its kind (which resolves every parameter twice to compare).
    if (old != snap.instances.end() && old->second.kind == kind &&
        (old->second.spec == node || kind->UpdateLive(nullptr, old->second.spec, node))) {
      p.next[node.name] = Instance{node, kind, old->second.proc};
      if (!(old->second.spec == node)) p.live_updates.emplace_back(old->second, node);
      continue;
    }
    all_reused = false;
    absl::StatusOr<std::unique_ptr<rt::Processor>> proc =
        InstantiateGuarded(*kind, node, snap.format);
    if (!proc.ok()) {
      return absl::Status(proc.status().code(),
                          absl::StrCat("node '", node.name, "': ", proc.status().message()));
    }
    p.next[node.name] = Instance{node, kind, std::shared_ptr<rt::Processor>(std::move(*proc))};
  }

  CounterMap counters = snap.port_counters;
  p.built = BuildGraph(spec, p.next, counters);
  p.same_topology =
      snap.published && all_reused && spec.nodes.size() == snap.current.nodes.size() &&
      spec.inputs == snap.current.inputs && spec.outputs == snap.current.outputs &&
      std::set<EdgeKey>(p.built.keys.begin(), p.built.keys.end()) ==
          std::set<EdgeKey>(snap.current_built.keys.begin(), snap.current_built.keys.end());

  p.audio_epoch = snap.audio_epoch;
  p.park = park && !p.same_topology;
  if (!p.same_topology) {
    const auto ramp_frames =
        static_cast<uint32_t>(std::lround(snap.crossfade_ms * snap.format.sample_rate_hz / 1000.0));
    auto clean = CompileGuarded(p.built.graph, snap.format, {});
    if (!clean.ok()) return clean.status();
    p.plan = std::move(*clean);
    if (snap.published) {
      // From the graph the audio runs once its current fade (if any) ends:
      // the one of the last plan handed over, whatever edits were
      // committed (parked) since.
      if (auto xgraph = CrossfadeGraph(snap.audio_built, p.built)) {
        p.crossfaded = true;
        auto xplan = CompileGuarded(*xgraph, snap.format, {ramp_frames, true});
        if (!xplan.ok()) return xplan.status();
        (*xplan)->successor = std::move(p.plan);
        p.plan = std::move(*xplan);
      }
    }
  }
  p.spec = std::move(spec);
  return p;
}

bool Engine::Impl::FadeRunning(uint64_t seq_to_settle) const {
  return !runner.has_pending() && runner.settled_seq() != seq_to_settle;
}

bool Engine::Impl::WaitForAudio(const std::function<bool()>& done,
                                std::chrono::milliseconds timeout, std::chrono::microseconds poll) {
  // A period of the audio thread is at most max_period_frames long: no
  // period for three of them (20 ms at least) means it is not running (a
  // server gone, a stopped backend).
  const auto stall = std::max<std::chrono::microseconds>(
      std::chrono::milliseconds(20),
      std::chrono::microseconds(stall_limit_us.load(std::memory_order_relaxed)));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  uint64_t cycles = runner.cycles();
  auto last_progress = std::chrono::steady_clock::now();
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(poll);
    Reclaim();
    const uint64_t c = runner.cycles();
    if (c != cycles) {
      cycles = c;
      last_progress = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_progress > stall) {
      break;
    }
  }
  return done();
}

void Engine::Impl::WaitForTaken(std::chrono::milliseconds timeout) {
  WaitForAudio([this] { return !runner.has_pending(); }, timeout);
}

void Engine::Impl::PublishLoop() {
  pthread_setname_np(pthread_self(), "aers-publish");
  std::unique_lock lock(handoff_mu);
  for (;;) {
    handoff_cv.wait(lock, [this] { return stop_publisher || parked != nullptr; });
    if (stop_publisher) return;
    const uint64_t wait_seq = seq;
    lock.unlock();
    WaitForSettle(wait_seq, settle_timeout, PublisherPoll());
    lock.lock();
    if (stop_publisher) return;
    // Superseded meanwhile (a fresh plan went over and dropped it), or
    // replaced by a later edit's plan: that one, made from the same audio
    // graph, goes instead.
    if (parked == nullptr || seq != wait_seq) continue;
    // The plan before it still waits in the runner's slot (the audio thread
    // stalled): replacing it would fade from a graph the audio never
    // reached. Wait on, however long the stall.
    if (runner.has_pending()) {
      lock.unlock();
      std::this_thread::sleep_for(PublisherPoll());
      lock.lock();
      continue;
    }
    parked->seq = ++seq;
    if (parked->successor) parked->successor->seq = parked->seq;
    handed_crossfade = parked->successor != nullptr;  // a crossfade hands over to a successor
    std::unique_ptr<rt::Plan> untaken(runner.Publish(parked.release(), /*after_fade=*/true));
    audio_built = std::move(parked_built);
    parked_built = Built{};
    ++audio_epoch;
    lock.unlock();
    untaken.reset();
    Reclaim();
    lock.lock();
  }
}

void Engine::Impl::StopPublisher() {
  {
    std::lock_guard lock(handoff_mu);
    stop_publisher = true;
  }
  handoff_cv.notify_all();
  if (publisher.joinable()) publisher.join();
}

void Engine::Impl::WaitForSettle(uint64_t seq_to_settle, std::chrono::milliseconds timeout,
                                 std::chrono::microseconds poll) {
  // A fade is never cut: the next plan is handed over once it has ended,
  // and its fade starts from the settled mix. Bounded: a stalled audio
  // thread is not waited for (and the runner still keeps a plan published
  // after a fade until that fade has ended).
  WaitForAudio([this, seq_to_settle] { return runner.settled_seq() == seq_to_settle; }, timeout,
               poll);
}

Engine::Impl::PlanGarbage Engine::Impl::CommitPrepared(Prepared p, bool* committed) {
  // From here on nothing fails, and nothing slow runs: readers wait for
  // this section only.
  PlanGarbage garbage;
  {
    std::lock_guard handoff(handoff_mu);
    if (p.plan && !p.immediate && p.audio_epoch != audio_epoch) {
      // The publisher handed a plan over since this one was made: its fade
      // starts from (or, with no fade, its edges are those of) a graph the
      // audio no longer settles on. Made again.
      if (committed != nullptr) *committed = false;
      garbage.push_back(std::move(p.plan));
      return garbage;
    }
    if (p.plan && !p.park && !p.immediate && handed_crossfade && runner.has_pending()) {
      // A crossfade still waits in the runner's slot (the audio thread
      // stalled): parked instead, on the next try.
      if (committed != nullptr) *committed = false;
      garbage.push_back(std::move(p.plan));
      return garbage;
    }
    if (p.plan) {
      p.plan->io_layout = model::IoLayoutId(p.spec);
      if (p.plan->successor) p.plan->successor->io_layout = p.plan->io_layout;
    }
    if (p.park) {
      // Replaces a plan parked before it: the last committed graph wins.
      garbage.push_back(std::move(parked));
      parked = std::move(p.plan);
      parked_built = p.built;
      handoff_cv.notify_one();
    } else if (p.plan) {
      p.plan->seq = ++seq;
      if (p.plan->successor) p.plan->successor->seq = p.plan->seq;
      // A plan made from audio_built waits on the audio thread for the
      // running fade; new ports and a new format go over at once (the
      // backend's port table follows the plan; the old plan cannot run).
      garbage.emplace_back(runner.Publish(p.plan.release(), /*after_fade=*/!p.immediate));
      handed_crossfade = p.crossfaded;
      // A fresh plan (a format change, new ports) supersedes a parked one.
      garbage.push_back(std::move(parked));
      audio_built = p.built;
      ++audio_epoch;
      this->published = true;
    }
  }
  if (committed != nullptr) *committed = true;
  for (auto& [old, after] : p.live_updates) old.kind->UpdateLive(old.proc.get(), old.spec, after);
  this->instances = std::move(p.next);
  this->current_built = std::move(p.built);
  // Keep the counters of ports that still exist (a port keeps its counts
  // across edits while it keeps its name).
  this->port_counters.clear();
  for (const auto& v : this->current_built.graph.vertices) {
    if (v.counters) this->port_counters[VertexName(v)] = v.counters;
  }
  this->current = std::move(p.spec);
  this->meters.clear();
  for (const auto& [name, inst] : this->instances) {
    if (inst.proc->AsMeter() != nullptr) this->meters[name] = inst.proc;
  }
  ++this->revision;
  this->last_edit = EditResult{this->revision, !p.same_topology};
  return garbage;
}

absl::StatusOr<EditResult> Engine::Impl::ApplyLocked(model::GraphSpec spec,
                                                     std::optional<uint64_t> expected_revision) {
  const Snapshot snap = TakeSnapshot();
  auto prepared = Prepare(std::move(spec), snap, expected_revision);
  if (!prepared.ok()) return prepared.status();
  prepared->immediate = true;
  // No crossfade to wait for: format changes publish fresh plans.
  PlanGarbage garbage = CommitPrepared(std::move(*prepared));
  return this->last_edit;
}

absl::Status Engine::Impl::SetFormatLocked(const rt::StreamFormat& format) {
  if (format == this->options.format) return absl::OkStatus();
  ++this->generation;  // edits being prepared for the old format start over
  if (format.sample_rate_hz < 1000.0 || format.max_period_frames == 0 ||
      format.max_period_frames > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported stream format: ", format.sample_rate_hz, " Hz, ",
                     format.max_period_frames, " frames"));
  }
  const rt::StreamFormat old = this->options.format;
  // Parameter ranges that follow the sample rate are checked again at the
  // new rate; values now out of range are clamped and reported.
  model::GraphSpec spec = this->current;
  bool clamped = false;
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    model::NodeSpec& n = spec.nodes[i];
    const model::NodeKind* kind = kinds.Find(n.kind);
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
  this->options.format = format;
  UpdateStallLimit();
  // Fresh instances for the new rate; no crossfade across a format change.
  InstanceMap saved = std::move(this->instances);
  this->instances.clear();
  const bool was_published = this->published;
  this->published = false;
  const uint64_t rev = this->revision;
  auto result = ApplyLocked(std::move(spec), std::nullopt);
  if (!result.ok()) {
    this->options.format = old;
    UpdateStallLimit();
    this->instances = std::move(saved);
    this->published = was_published;
    return result.status();
  }
  if (!clamped) this->revision = rev;  // same graph: not an edit
  return absl::OkStatus();
}

absl::Status Engine::SetFormat(const rt::StreamFormat& format) {
  AERS_DCHECK_NOT_AUDIO_THREAD();
  absl::MutexLock lock(&impl_->mu);
  return impl_->SetFormatLocked(format);
}

absl::StatusOr<std::vector<MeterReading>> Engine::ReadMeter(std::string_view node) const {
  absl::ReaderMutexLock lock(&impl_->mu);
  auto it = impl_->meters.find(node);
  if (it == impl_->meters.end()) {
    return absl::NotFoundError(absl::StrCat("no meter node named '", std::string(node), "'"));
  }
  const rt::MeterTap& tap = *std::as_const(*it->second).AsMeter();
  std::vector<MeterReading> out;
  for (int ch = 0; ch < tap.channels(); ++ch) {
    out.push_back({tap.peak(ch), tap.rms(ch), tap.true_peak(ch)});
  }
  return out;
}

absl::StatusOr<LoudnessReading> Engine::ReadLoudness(std::string_view node) const {
  absl::ReaderMutexLock lock(&impl_->mu);
  auto it = impl_->meters.find(node);
  if (it == impl_->meters.end()) {
    return absl::NotFoundError(absl::StrCat("no meter node named '", std::string(node), "'"));
  }
  const rt::MeterTap& tap = *std::as_const(*it->second).AsMeter();
  if (!tap.measures_loudness()) {
    return absl::FailedPreconditionError(
        absl::StrCat("meter '", std::string(node),
                     "' does not measure loudness; set its params.loudness to true"));
  }
  return LoudnessReading{tap.momentary_lufs(), tap.short_term_lufs(), tap.integrated_lufs(),
                         tap.loudness_range_lu()};
}

absl::Status Engine::ResetLoudness(std::string_view node) {
  AERS_DCHECK_NOT_AUDIO_THREAD();
  absl::ReaderMutexLock lock(&impl_->mu);  // the meter map is only read
  auto it = impl_->meters.find(node);
  if (it == impl_->meters.end()) {
    return absl::NotFoundError(absl::StrCat("no meter node named '", std::string(node), "'"));
  }
  if (!it->second->AsMeter()->measures_loudness()) {
    return absl::FailedPreconditionError(
        absl::StrCat("meter '", std::string(node),
                     "' does not measure loudness; set its params.loudness to true"));
  }
  if (!it->second->AsMeter()->ResetLoudness()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("meter '", std::string(node), "': cannot allocate a fresh loudness state"));
  }
  return absl::OkStatus();
}

std::vector<std::string> Engine::MeterNodes() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  std::vector<std::string> out;
  for (const auto& [name, m] : impl_->meters) out.push_back(name);
  return out;
}

std::vector<SignalReport> Engine::SignalReports() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  std::vector<SignalReport> out;
  const auto report = [&](SignalReport::Where where, const std::string& name,
                          const rt::SignalCounters& c) {
    out.push_back({where, name, c.nonfinite.load(std::memory_order_relaxed),
                   c.clipped.load(std::memory_order_relaxed),
                   c.state_resets.load(std::memory_order_relaxed)});
  };
  for (const auto& v : impl_->current_built.graph.vertices) {
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
  absl::ReaderMutexLock lock(&impl_->mu);
  const compile::Graph& g = impl_->current_built.graph;
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
  impl_->Reclaim();
}

void Engine::Impl::Reclaim() {
  absl::MutexLock lock(&reclaim_mu);
  while (rt::Plan* p = runner.PopRetired()) delete p;
}

}  // namespace aers::engine
