// Whole-graph validation: everything that can be checked before a graph runs.
//
// Thread: non-real-time.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/graph.h"
#include "model/kind.h"
#include "model/naming.h"

namespace aers::model {

/// Problems listed in one error message; the rest are counted ("... and N
/// more problems"), so an error cannot grow larger than its input many
/// times over (in replies, logs and the audit log).
inline constexpr size_t kMaxReportedIssues = 50;

/// How large a graph may be: a bound on the memory and planning time an
/// edit can cost. Config `engine.max_nodes` / `engine.max_routes`.
struct GraphLimits {
  size_t max_nodes = 1024;
  size_t max_routes = 8192;
  friend bool operator==(const GraphLimits&, const GraphLimits&) = default;
};

/// What validation needs to know about where the graph will run.
struct ValidationContext {
  /// Parameter ranges that follow the rate (ParamDesc::per_sample_rate) are
  /// checked at this rate, Hz.
  double sample_rate_hz = 48000.0;
  /// Backend name limits; the default checks names and the uniqueness of
  /// derived backend port names but no backend lengths.
  NamingLimits names;
  GraphLimits limits;
};

/// Checks a whole graph against the registry and returns every problem found
/// (empty when the graph is valid), each with its IssueCode. Checks: schema
/// version; graph size against the limits; names (syntax, length, duplicates
/// across inputs/outputs/nodes, the naming policy of model/naming.h for
/// derived backend port names); channel counts; unknown kinds; unknown
/// parameters, wrong types, out-of-range values, the kind's own constraints;
/// routes naming unknown nodes or ports, routes into a source or out of a
/// sink, channel mismatches between the two ends, duplicate routes; cycles
/// (kCycle; the message names the nodes of the cycle in order).
///
/// `valid` (may be null): a graph that passed ValidateGraph in this same
/// context, the one `spec` was edited from. A node of `spec` equal to the
/// node at the same index there keeps its verdict: its settings (preset,
/// parameters, the kind's constraints) are not checked again, unless its
/// kind reads files (NodeKind::ReadsFiles: a file may have changed on
/// disk). Names, channels, routes and cycles are always checked whole.
std::vector<Issue> ValidateGraph(const GraphSpec& spec, const KindRegistry& kinds,
                                 const ValidationContext& context = {},
                                 const GraphSpec* valid = nullptr);

/// Checks only the settings of the nodes at indexes `nodes` of `spec` (its
/// preset, its parameters' types and ranges, its kind's own constraints),
/// with the same messages and paths as ValidateGraph (for nodes of known
/// kinds; an unknown kind or index is reported briefly). Enough for a graph
/// that passed ValidateGraph and then changed only live parameters of those
/// nodes (NodeKind::UpdateLive), given with the nodes whose kinds read
/// files: a live parameter never changes a node's name, kind, channels or
/// ports, so nothing else can have become invalid.
std::vector<Issue> ValidateNodeSettings(const GraphSpec& spec, const std::vector<size_t>& nodes,
                                        const KindRegistry& kinds,
                                        const ValidationContext& context = {});

/// The layout of a node or external port, by name, in a graph that passed
/// ValidateGraph. External inputs have one output port "out"; external
/// outputs one input port "in". Returns nullopt for unknown names.
std::optional<NodeLayout> LayoutOf(const GraphSpec& spec, const KindRegistry& kinds,
                                   std::string_view name);

/// True when any of `issues` has `code` (e.g. kCycle: a well-formed edit the
/// graph cannot take).
bool HasIssue(const std::vector<Issue>& issues, IssueCode code);

/// A stable snake_case name for `code` ("cycle", "unknown_node"), for logs,
/// audit records and replies; never null ("invalid" for a value outside
/// the enum).
const char* IssueCodeName(IssueCode code);

/// "PATH: MESSAGE" lines, one per issue, in order; after kMaxReportedIssues
/// of them "... and N more problems".
std::string IssuesText(const std::vector<Issue>& issues);

}  // namespace aers::model
