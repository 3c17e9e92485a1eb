#include "state/initial_graph.h"

#include "absl/strings/str_cat.h"

namespace aers::state {

InitialGraph ChooseInitialGraph(const StateStore& store, const model::KindRegistry& kinds,
                                const model::GraphSpec& config_graph, const std::string& baseline,
                                bool reset_state, const GraphCheck& check,
                                const std::string& config_path) {
  InitialGraph out;
  out.graph = config_graph;
  if (reset_state) {
    out.reason = absl::StrCat("state reset: starting from the graph in ", config_path);
    if (auto st = store.Remove(); !st.ok()) {
      absl::StrAppend(&out.reason, " (", st.message(), ")");
      out.state_problem = true;
    }
    return out;
  }
  std::string source;
  auto saved = store.Load(kinds, &source);
  if (!saved.ok()) {
    out.reason = absl::StrCat("ignoring the saved state, starting from ", config_path, ":\n",
                              saved.status().message());
    out.state_problem = true;
    return out;
  }
  if (!saved->has_value()) {
    out.reason = absl::StrCat("no saved state in ", store.path(), ": starting from ", config_path);
    return out;
  }
  if (store.SavedBaseline() != baseline) {
    out.reason = absl::StrCat(config_path, " changed since the state in ", store.path(),
                              " was saved: starting from the config");
    return out;
  }
  if (check) {
    if (auto st = check(**saved); !st.ok()) {
      out.reason = absl::StrCat("the saved state in ", store.path(),
                                " no longer applies; using the config:\n", st.message());
      out.state_problem = true;
      return out;
    }
  }
  out.source = InitialGraph::Source::kState;
  out.graph = std::move(**saved);
  out.reason = absl::StrCat("restored the live graph from ", source, " (", out.graph.nodes.size(),
                            " nodes)");
  return out;
}

}  // namespace aers::state
