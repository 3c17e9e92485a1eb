// A graph as YAML, for whoever reads or writes one without caring about the
// daemon's settings: the state file (state/), ApplyConfig and GetGraph
// (control/). yaml-cpp stays behind this wall like behind config.h.
//
// A graph document is a config document (docs/config.md): `version:`,
// optional `engine:`, `backend:` and `plugins:` sections, then `inputs:`,
// `outputs:`, `nodes:` and `routes:`. The settings sections are accepted and
// checked exactly as ParseConfig checks them, because the graph is validated
// in the context they describe (engine.sample_rate_hz for rate-dependent
// parameter ranges, engine.max_nodes / max_routes, backend.jack.client_name
// for backend port names); then they are dropped.
//
// Thread: non-real-time; any thread (no shared state).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "model/graph.h"
#include "model/kind.h"
#include "model/naming.h"

namespace aers::config {

/// Parses and validates a graph document: the graph of what
/// ParseConfig(yaml, filename, kinds, nullptr, names, issues) accepts, with
/// the same errors. On failure: INVALID_ARGUMENT, one "FILE:LINE:COLUMN:
/// PATH: MESSAGE" line per problem in file order (at most
/// model::kMaxReportedIssues, then "... and N more problems"); a YAML
/// syntax error or a refused construct (anchors, tags, several documents) is
/// one line "FILE:LINE:COLUMN: ...". With `issues`, every problem (none
/// left out) is also appended there with its model::IssueCode, in the same
/// order; a syntax problem is one kSyntax issue with an empty path.
///
/// `names`: the backend's name limits (model/naming.h); an empty
/// client_name is taken from the document's backend.jack.client_name.
/// Null: the default limits.
absl::StatusOr<model::GraphSpec> ParseGraphYaml(std::string_view yaml, std::string_view filename,
                                                const model::KindRegistry& kinds,
                                                const model::NamingLimits* names = nullptr,
                                                std::vector<model::Issue>* issues = nullptr);

/// `graph` as a graph document: `version:`, the default engine and backend
/// settings written out, then the graph's sections; ends with a newline.
/// Does not validate `graph`; a valid one reads back equal through
/// ParseGraphYaml (and ParseConfig). The state file and GetGraph's `yaml`
/// are this text, so its format only changes with the config schema.
std::string EmitGraphYaml(const model::GraphSpec& graph);

/// `graph` as a graph document in JSON, one line: the same keys as
/// EmitGraphYaml without the settings sections (ParseGraphYaml reads their
/// defaults, which EmitGraphYaml writes out). JSON is YAML 1.2 flow style,
/// so ParseGraphYaml reads it back equal. For the state journal, which
/// writes the graph on every edit: nlohmann/json's encoder takes about a
/// tenth of yaml-cpp's emitter's time (BENCHMARKS.md). nullopt when a
/// string is not well-formed UTF-8 or a number is not finite (JSON has no
/// NaN; a validated graph has neither): callers fall back to EmitGraphYaml.
///
/// `cache` (may be null) keeps the text of each node and of the route list
/// between calls on successive versions of one graph: an edit changes a
/// node or a route, and the unchanged ones are not encoded again. The text
/// is the same with or without it.
class GraphJsonCache;
std::optional<std::string> EmitGraphJson(const model::GraphSpec& graph,
                                         GraphJsonCache* cache = nullptr);

/// What EmitGraphJson keeps between calls: each node's spec and text (by
/// name), each route's text (by its ends). Not thread-safe: one per writer.
class GraphJsonCache {
 private:
  friend std::optional<std::string> EmitGraphJson(const model::GraphSpec&, GraphJsonCache*);
  std::map<std::string, std::pair<model::NodeSpec, std::string>, std::less<>> nodes_;
  // A route by its ends: (from node, from port, to node, to port).
  using RouteKey = std::tuple<std::string, std::string, std::string, std::string>;
  std::map<RouteKey, std::string> routes_;
  size_t size_ = 0;  // of the last document
};

}  // namespace aers::config
