// Engine: owns the live graph (spec + revision), turns edits into compiled
// plans, hands them to the audio thread and reclaims the ones it retires.
//
// Thread: every public method except runner().Process() is for non-real-time
// threads and is safe to call from several at once (edits are serialized:
// applied one at a time). The audio thread only calls runner().Process().
// Locks (docs/threads.md): an edit holds the edit lock throughout and the
// state lock only to compile, publish and commit; readers (spec, meters,
// latency) take the state lock alone. Order: edit lock, then a backend's own
// lock (PortHost), then the state lock. Neither is ever taken by the audio
// thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "model/graph.h"
#include "model/kind.h"
#include "model/validate.h"
#include "rt/processor.h"
#include "rt/runner.h"

namespace aers::engine {

struct EngineOptions {
  rt::StreamFormat format;  ///< sample rate and largest period
  /// Length of the crossfade when routes change (and of the fade-in of new
  /// nodes): long enough to hide the cut, short enough to feel immediate.
  double crossfade_ms = 5.0;
  /// How long an edit waits for the audio thread to finish the previous
  /// crossfade before publishing anyway (audio stalled or not running).
  std::chrono::milliseconds settle_timeout{200};
  /// Name limits of the backend (model/naming.h), checked on every edit.
  model::NamingLimits names;
  /// Largest graph accepted (config engine.max_nodes / max_routes).
  model::GraphLimits limits;
  /// The revision before the first edit (the persisted one after a
  /// restart), so revisions never repeat across restarts.
  uint64_t initial_revision = 0;
};

/// Non-finite/clipped counts of one signal point (rt/signal.h).
struct SignalReport {
  enum class Where { kInput, kNode, kOutput };
  Where where = Where::kNode;
  std::string name;           ///< external port or node name
  uint64_t nonfinite = 0;     ///< NaN/Inf samples replaced by 0
  uint64_t clipped = 0;       ///< finite samples with |x| > 1.0
  uint64_t state_resets = 0;  ///< channels whose filter state was non-finite and reset
};

/// Latest reading of one meter node channel.
struct MeterReading {
  float peak = 0.0f;       ///< linear, max |x| over the last window (finite samples)
  float rms = 0.0f;        ///< linear, over the last window (finite samples)
  float true_peak = 0.0f;  ///< linear, max true peak since start or reset (dBTP = 20 log10)
};

/// Latest EBU R128 reading of one meter node, all channels together (ITU-R
/// BS.1770-4 K-weighting and channel weights; EBU Tech 3341 and 3342).
/// Refreshed every 100 ms of audio. -inf LUFS means nothing to measure
/// (digital silence, or no block above the -70 LUFS gate yet).
struct LoudnessReading {
  float momentary_lufs = 0.0f;   ///< LUFS, last 400 ms
  float short_term_lufs = 0.0f;  ///< LUFS, last 3 s
  float integrated_lufs = 0.0f;  ///< LUFS, gated, since start or reset
  float range_lu = 0.0f;         ///< LU, loudness range since start or reset
};

/// What changed in an accepted edit (for events and logs).
struct EditResult {
  uint64_t revision = 0;
  bool replanned = false;  ///< false: only live parameters changed
};

/// What an audio backend does for the engine when an edit changes the
/// graph's external ports (names or channel counts) or the graph itself.
/// The engine calls it within the edit, so clients edit only the engine.
///
/// Thread: the editing (non-real-time) thread, with the engine's edit lock
/// held and its state lock not held: an implementation may read the engine
/// (spec(), LatencyFrames(), SetFormat()) but never edit it.
class PortHost {
 public:
  /// A port change in progress (holds whatever the backend locks for it).
  class Change {
   public:
    virtual ~Change() = default;
    /// The plan with the new ports was published (`published`), or the edit
    /// failed after ChangePorts (false: undo what ChangePorts did). Called
    /// exactly once, before the change is destroyed.
    virtual void Finish(bool published) = 0;
  };

  /// The external ports go from the running graph's to `next`'s. Called
  /// after `next` is validated, before its plan is compiled and published:
  /// make what `next` needs while the old graph keeps running. An error
  /// refuses the edit with nothing changed.
  virtual absl::StatusOr<std::unique_ptr<Change>> ChangePorts(const model::GraphSpec& next) = 0;

  /// After every accepted edit (not format changes), with the graph now
  /// running: connections and reported latency follow `current`.
  virtual void GraphChanged(const model::GraphSpec& current) = 0;

 protected:
  ~PortHost() = default;
};

class Engine {
 public:
  /// `kinds` must outlive the engine.
  Engine(const model::KindRegistry& kinds, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Replaces the whole graph. Validates it as a whole first: an invalid spec
  /// returns INVALID_ARGUMENT listing every issue as "path: message" lines and
  /// nothing changes. A stale `expected_revision` returns ABORTED and nothing
  /// changes. Node instances whose spec did not change (or changed only in
  /// live parameters) keep their state. Glitch-free: route changes are
  /// crossfaded, parameter changes smoothed.
  ///
  /// `validated_in`: the stream-format generation in which Validate found
  /// this very spec valid (its `generation` output). Apply then does not
  /// check it again, unless the format changed since (a sample-rate change
  /// moves rate-dependent ranges). For callers that validate first to
  /// report issues (the control service): one validation per edit. A
  /// validated spec that differs from the live graph only in live
  /// parameters is committed at once: those nodes glide to the new values,
  /// no node is built, no plan compiled (`replanned` false).
  absl::StatusOr<EditResult> Apply(model::GraphSpec spec,
                                   std::optional<uint64_t> expected_revision = std::nullopt,
                                   std::optional<uint64_t> validated_in = std::nullopt);

  /// Validates `spec` exactly as Apply would, without applying it.
  absl::Status Check(const model::GraphSpec& spec) const;
  /// The same check, as typed issues (empty: valid). `generation` (if
  /// given) receives the stream-format generation checked in (see Apply).
  /// A spec that differs from the live graph only in live parameters
  /// costs a check of the changed nodes alone (model::ValidateNodeSettings:
  /// the same issues a whole check would find).
  std::vector<model::Issue> Validate(const model::GraphSpec& spec,
                                     uint64_t* generation = nullptr) const;

  /// Runs `edit` on a copy of the current spec and applies the result as
  /// Apply does (all or nothing). The edit function's own error is returned
  /// as is.
  absl::StatusOr<EditResult> Edit(const std::function<absl::Status(model::GraphSpec&)>& edit,
                                  std::optional<uint64_t> expected_revision = std::nullopt);

  /// Sets one parameter of one node (NOT_FOUND: unknown node or parameter;
  /// INVALID_ARGUMENT: wrong type or out of range). Live parameters reach the
  /// audio thread without a new plan.
  absl::StatusOr<EditResult> SetParameter(std::string_view node, std::string_view param,
                                          const model::ParamValue& value,
                                          std::optional<uint64_t> expected_revision = std::nullopt);

  /// Recompiles the graph for a new sample rate or period size (fresh
  /// instances: filter state depends on the rate). Call while the audio
  /// thread is running or stopped; it swaps at the next period.
  absl::Status SetFormat(const rt::StreamFormat& format);

  model::GraphSpec spec() const;
  uint64_t revision() const;
  /// The live graph and its revision, read together. Never waits for an
  /// edit being built (only for one being committed, which is brief).
  std::pair<model::GraphSpec, uint64_t> spec_and_revision() const;
  /// What the last accepted edit did (revision 0 and no replan before any).
  EditResult last_edit() const;
  rt::StreamFormat format() const;
  const model::KindRegistry& kinds() const { return kinds_; }

  /// Meter channels of a meter node (NOT_FOUND if there is no such meter).
  absl::StatusOr<std::vector<MeterReading>> ReadMeter(std::string_view node) const;
  /// Loudness of a meter node (NOT_FOUND if there is no such meter).
  absl::StatusOr<LoudnessReading> ReadLoudness(std::string_view node) const;
  /// Restarts a meter node's integrated loudness, loudness range and true
  /// peak at the next period (NOT_FOUND if there is no such meter,
  /// RESOURCE_EXHAUSTED if its fresh state cannot be allocated). Not a graph
  /// edit: the revision does not change. Thread: non-real-time.
  absl::Status ResetLoudness(std::string_view node);
  /// Names of every meter node in the current graph.
  std::vector<std::string> MeterNodes() const;

  /// Counts of every external port and node of the current graph, in graph
  /// order (inputs, nodes, outputs). Counters follow a port or node across
  /// edits as long as it keeps its name (nodes: its instance).
  std::vector<SignalReport> SignalReports() const;

  /// The context edits are validated in: the current sample rate and the
  /// backend's name limits.
  model::ValidationContext validation_context() const;

  /// Latency in frames from external input `input` to external output
  /// `output` through the graph (the longest path), nullopt if unconnected.
  std::optional<uint32_t> LatencyFrames(std::string_view input, std::string_view output) const;
  /// Largest latency from any external input to `output` (0 if none).
  uint32_t OutputLatencyFrames(std::string_view output) const;

  /// Who to tell about port and graph changes (the running backend);
  /// nullptr: nobody. Waits for an edit in progress to finish.
  void SetPortHost(PortHost* host);
  /// Forgets `host` if it is the port host (a backend that stops).
  void ClearPortHost(const PortHost* host);

  /// The audio side. Its Process() is the only thing the audio thread calls.
  rt::Runner& runner() { return *runner_; }

  /// Frees plans the audio thread retired. Called by every edit and by a
  /// housekeeping thread of the owner (the daemon calls it periodically).
  void Reclaim();

 private:
  struct Impl;  // the live state and its locks (engine.cc)

  const model::KindRegistry& kinds_;
  std::unique_ptr<rt::Runner> runner_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aers::engine
