// Which graph aersd starts with: the persisted live graph or the config
// file's.
//
// Thread: non-real-time (start-up).
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "model/graph.h"
#include "model/kind.h"
#include "state/state_store.h"

namespace aers::state {

/// The graph to start with, and why (one line for the log).
struct InitialGraph {
  enum class Source {
    kConfig,  ///< the config file's graph
    kState,   ///< the persisted live graph (every accepted edit)
  };
  Source source = Source::kConfig;
  model::GraphSpec graph;
  /// Why this graph, for the log ("restored the live graph from ...",
  /// "... changed since the state was saved: starting from the config").
  std::string reason;
  /// The choice fell back to the config because something was wrong with
  /// the state (log `reason` as an error, not as information).
  bool state_problem = false;
};

/// What the persisted state must pass to be used (the engine's whole-graph
/// check at the running sample rate and the backend's name limits).
using GraphCheck = std::function<absl::Status(const model::GraphSpec&)>;

/// Start-up precedence, in order:
///   1. `reset_state` (--reset_state): the config; the state file is removed.
///   2. The state file cannot be read or parsed: the config (state_problem).
///   3. No state file: the config.
///   4. The state was saved against another config (its baseline, a hash of
///      the config text, differs from `baseline`): the operator edited the
///      config since, so the config wins.
///   5. The state no longer passes `check` (e.g. a plugin kind it uses is
///      gone): the config (state_problem).
///   6. Otherwise the state: every edit accepted before the restart.
/// `config_path` only names the config in `reason`.
InitialGraph ChooseInitialGraph(const StateStore& store, const model::KindRegistry& kinds,
                                const model::GraphSpec& config_graph, const std::string& baseline,
                                bool reset_state, const GraphCheck& check,
                                const std::string& config_path);

}  // namespace aers::state
