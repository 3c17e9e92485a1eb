// GraphService: the control plane's domain API. Every way the live graph
// changes (RPCs, SIGHUP reloads, resets) goes through here, one edit after
// another: check the expected revision, build the new spec, record it,
// apply it (all or nothing), persist it, tell the watchers. Edits of
// concurrent callers are committed in batches that share the flushes of
// their records (see GraphService). It knows nothing of gRPC.
//
// Thread: any non-real-time thread; calls are serialized by an internal lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "control/events.h"
#include "engine/engine.h"
#include "model/graph.h"
#include "state/state_store.h"

namespace aers::control {

/// One operation of a multi-operation edit.
struct EditOp {
  enum class Type { kAddNode, kRemoveNode, kConnect, kDisconnect, kSetParameter };
  Type type = Type::kAddNode;
  model::NodeSpec node;    ///< kAddNode
  std::string name;        ///< kRemoveNode; kSetParameter: node
  model::RouteSpec route;  ///< kConnect, kDisconnect
  std::string param;       ///< kSetParameter
  model::ParamValue value;
};

struct EditOutcome {
  uint64_t revision = 0;
  bool applied = false;
  bool replanned = false;  ///< a new plan was built (false: live parameters only, or dry run)
  std::vector<std::string> changes;  ///< human-readable diff
};

/// An edit that passed validation and is about to be applied.
struct PendingCommit {
  uint64_t revision_before = 0;
  uint64_t revision_after = 0;  ///< what the graph will be at once applied
  const std::vector<std::string>& changes;
};

/// How one call reaches the service: who it is for (events name the origin)
/// and what must succeed before anything changes.
struct CallContext {
  std::string origin = "rpc";  ///< "rpc", "reload", "reset"
  /// Called with the service's lock held, after validation and before the
  /// graph changes (never for dry runs). A non-OK status refuses the edit
  /// and changes nothing: the audit log's write-ahead record.
  std::function<absl::Status(const PendingCommit&)> before_commit;
  /// Set when before_commit writes its record without waiting for the disk
  /// (AuditLog::WriteDeferred): called with the lock held after the
  /// records of every edit of a batch are written and before this edit is
  /// applied, so that concurrent edits share one flush. A non-OK status
  /// refuses the edit and changes nothing. Null: before_commit's record is
  /// durable when it returns.
  std::function<absl::Status()> make_durable;
  /// Called with the lock held when an edit whose before_commit record was
  /// written is not applied and is checked and recorded again (an edit
  /// ahead of it in the same batch could not be built, or the graph moved
  /// on meanwhile): the record's follow-up. The next before_commit writes
  /// the record of the new attempt. A non-OK status (the follow-up could
  /// not be written) refuses the edit instead, with that status.
  std::function<absl::Status(const absl::Status&)> before_retry;
  /// Called with the service's lock held when a change whose
  /// before_commit record was written then could not be saved (a stream's
  /// values: they run, but the state file does not hold them): the audit
  /// log's follow-up record.
  std::function<void(const absl::Status&)> after_failure;
};

/// An edit's status can be an error although the edit runs: applied, then
/// its journal record could not be made durable (UNAVAILABLE). Such a
/// status carries the revision it runs at; this returns it (nullopt for
/// any other status).
std::optional<uint64_t> AppliedRevision(const absl::Status& status);

/// What changed between two graphs, one line each ("+ node eq (biquad)",
/// "- route a -> b", "~ node g: gain_db -6 -> -3").
std::vector<std::string> DiffGraphs(const model::GraphSpec& before, const model::GraphSpec& after);

/// A stream of live parameter values from one client (StreamParameters),
/// owned by the caller between OpenLiveStream and CloseLiveStream. Its
/// fields belong to the GraphService (its lock).
class LiveStream {
 public:
  explicit LiveStream(CallContext context) : call(std::move(context)) {}
  CallContext call;
  uint64_t values = 0;  ///< applied so far
  bool dirty = false;   ///< values applied and not yet saved
  std::chrono::steady_clock::time_point first_unsaved;
  absl::Status error;  ///< a save failed: the stream must end
};

/// Concurrent edits are committed in batches (a combining lock): each call
/// queues its edit, and the first caller to find no batch running commits
/// the queue in arrival order under the service's lock: it checks and
/// records every edit against the graph the ones ahead of it leave, makes
/// their records durable with one flush (CallContext::make_durable), then
/// applies them one by one, each with its own revision, journal record and
/// event. An edit refused at that last step for a reason of its own (a node
/// that cannot be built) sends the edits behind it back to be checked and
/// recorded again against what runs; one refused for a reason every edit
/// behind it shares (records that could not be made durable, the state
/// file unwritable) refuses them too, with the same error, and sends back
/// only those that had failed their checks (against a graph that did not
/// come to run).
class GraphService {
 public:
  /// How long a streamed value may stay unsaved: the committer writes the
  /// values of a stream to the journal at most this long after the first
  /// unsaved one, plus one flush.
  static constexpr std::chrono::milliseconds kLiveSaveWindow{50};

  /// The graph of the config file (for ResetToConfig).
  using ConfigGraph = std::function<absl::StatusOr<model::GraphSpec>()>;

  /// Edits go to `engine` (which tells the running backend about port
  /// changes); `store` (may be null) persists each one before it applies.
  GraphService(engine::Engine& engine, const state::StateStore* store, EventBus& events,
               ConfigGraph config_graph);

  /// The current graph and revision, read together: what runs. Never waits
  /// for an edit in progress (validation, the state file, building nodes).
  std::pair<model::GraphSpec, uint64_t> Graph() const;

  absl::StatusOr<EditOutcome> ApplyGraph(model::GraphSpec spec, bool dry_run,
                                         std::optional<uint64_t> expected_revision,
                                         const CallContext& call = {});
  /// YAML config text (errors cite source_name:LINE:COLUMN).
  absl::StatusOr<EditOutcome> ApplyYaml(const std::string& yaml, const std::string& source_name,
                                        bool dry_run, std::optional<uint64_t> expected_revision,
                                        const CallContext& call = {});
  absl::StatusOr<EditOutcome> Edit(const std::vector<EditOp>& ops, bool dry_run,
                                   std::optional<uint64_t> expected_revision,
                                   const CallContext& call = {});
  /// Back to the config file's graph; removes nothing else.
  absl::StatusOr<EditOutcome> ResetToConfig(std::optional<uint64_t> expected_revision,
                                            const CallContext& call = {.origin = "reset"});
  /// Opens a stream of live parameter values. `call.before_commit` is
  /// called (with the service's lock held) for every save of the stream's
  /// values: the audit record of what they changed. Values go to the audio
  /// at once; saves are coalesced (kLiveSaveWindow).
  std::unique_ptr<LiveStream> OpenLiveStream(CallContext call);
  /// Sets one live parameter (one that glides without a new plan) of the
  /// running graph: INVALID_ARGUMENT or NOT_FOUND naming `values[index]`
  /// otherwise, and nothing changes. The revision goes up by one; watchers
  /// hear of the stream's changes when they are saved. Returns the
  /// revision. Also fails with the error of an earlier save of the stream
  /// (audit log or state unwritable): the stream must end.
  absl::StatusOr<uint64_t> SetLive(LiveStream& stream, const std::string& node,
                                   const std::string& param, const model::ParamValue& value,
                                   size_t index);
  /// Saves what the stream set (durable when this returns) and closes it.
  /// Returns the revision and the number of values applied.
  absl::StatusOr<std::pair<uint64_t, uint64_t>> CloseLiveStream(std::unique_ptr<LiveStream> stream);
  /// While the state file does not hold what runs (state_diverged()): tries
  /// to write what runs again; true when it did (and state_diverged() is
  /// false again). The daemon calls it every second.
  bool ResaveIfDiverged() ABSL_LOCKS_EXCLUDED(mu_);
  /// Stops the committer (before destruction; streams are closed first).
  void StopLive();
  ~GraphService();

  /// The live revision (never waits for an edit in progress).
  uint64_t revision() const;
  /// Edits queued behind the batch being committed (for tests).
  size_t queued_edits() const;
  /// True after an edit that failed to apply could not be taken back out of
  /// the state file (a restart would bring it back); false again once an
  /// edit is written and applied. Logged and published (kStateDiverged)
  /// when it happens; the daemon reports NOT_SERVING while it holds.
  bool state_diverged() const { return state_diverged_.load(); }

  engine::Engine& engine() { return engine_; }
  EventBus& events() { return events_; }
  const state::StateStore* store() const { return store_; }

 private:
  // One edit waiting in the queue, and what the batch made of it.
  struct Queued {
    // The graph the edit asks for, made from `working` (the graph as the
    // edits ahead of it leave it).
    std::function<absl::StatusOr<model::GraphSpec>(const model::GraphSpec& working)> build;
    bool dry_run = false;
    std::optional<uint64_t> expected_revision;
    const CallContext* call = nullptr;
    // Set by the thread committing the batch (read by the caller once
    // `done`):
    absl::StatusOr<EditOutcome> outcome;
    uint64_t ticket = 0;  // journal record to Sync (0: none)
    bool done = false;    // queue_mu_
    // Between the steps of a batch:
    bool prepared = false;  // checked and recorded: to apply
    bool recorded = false;  // before_commit wrote its record
    model::GraphSpec spec;
    uint64_t revision_before = 0;
    uint64_t validated_in = 0;
    EditOutcome prepared_outcome;
  };
  // Queues `q`, commits batches until it is done, then waits for its
  // journal record's flush (Durable).
  absl::StatusOr<EditOutcome> Submit(Queued& q) ABSL_LOCKS_EXCLUDED(mu_);
  void CommitBatchLocked(const std::vector<Queued*>& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds, checks and records `q` against `working` at `working_revision`:
  // q.prepared, or q.outcome (an error, or a dry run's outcome).
  void PrepareLocked(Queued& q, const model::GraphSpec& working, uint64_t working_revision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the journal record of a prepared edit, applies it, publishes the
  // event; the outcome (or why it was refused) goes to q.outcome. Returns
  // true when it was refused for a reason every edit would meet (the state
  // file or a stream's save), false otherwise.
  bool ApplyPreparedLocked(Queued& q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Without the lock: waits until the edit's record is flushed (shared with
  // the edits of other clients: group commit).
  absl::StatusOr<EditOutcome> Durable(absl::StatusOr<EditOutcome> outcome, uint64_t ticket)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Logged and published; `edit_refused`: an edit failed to apply and its
  // record could not be taken back (otherwise: what runs is not saved).
  void SetStateDiverged(std::string error, bool edit_refused = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the unsaved values of `s` (if any) to the journal with their
  // audit record and event; returns the ticket to Sync (0: nothing written).
  absl::StatusOr<uint64_t> SaveLiveLocked(LiveStream& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Saves every stream with unsaved values (before any other edit, so that
  // its diff and audit record are its own).
  absl::StatusOr<uint64_t> SaveAllLiveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CommitterLoop();

  engine::Engine& engine_;
  const state::StateStore* store_;
  EventBus& events_;
  ConfigGraph config_graph_;
  // One edit at a time, from validation to the event (taken before the
  // engine's locks).
  mutable absl::Mutex mu_;
  std::atomic<bool> state_diverged_{false};
  // What the journal holds: every save diffs against it.
  model::GraphSpec saved_spec_ ABSL_GUARDED_BY(mu_);
  uint64_t saved_revision_ ABSL_GUARDED_BY(mu_) = 0;
  bool saved_known_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<LiveStream*> streams_ ABSL_GUARDED_BY(mu_);
  bool stop_committer_ ABSL_GUARDED_BY(mu_) = false;
  std::thread committer_;  // started with the first stream
  // The queue of edits (Submit). A std::mutex, not absl's: ThreadSanitizer
  // sees its ordering (Debian's abseil is not instrumented), and it is the
  // one place where a caller's edit meets the thread that commits it.
  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<Queued*> queue_;  // queue_mu_
  bool combining_ = false;      // queue_mu_: a batch is being committed
};

/// Applies one op to a spec (NOT_FOUND for unknown nodes/routes/params,
/// ALREADY_EXISTS for a duplicate node or route). `index` names the op in
/// messages ("ops[2]").
absl::Status ApplyOp(model::GraphSpec& spec, const EditOp& op, const model::KindRegistry& kinds,
                     size_t index);

}  // namespace aers::control
