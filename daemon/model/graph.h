// Graph model: plain value types describing a routing graph (schema version 1).
//
// Thread: any non-real-time thread. These types allocate freely; the audio
// thread never sees them (it runs the compiled rt::Plan instead).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace aers::model {

/// The one schema version this build reads and writes.
inline constexpr int kSchemaVersion = 1;
/// Upper bound on the channels of one port (external or node).
inline constexpr int kMaxChannels = 64;

/// A parameter value as written in a config: a number, a flag, a word (enum
/// choice) or a list of numbers (per-input gains).
using ParamValue = std::variant<bool, double, std::string, std::vector<double>>;

/// An external input or output of the graph (a JACK port group, file channels).
struct ExternalPort {
  std::string name;                  ///< unique among inputs, outputs and nodes
  int channels = 1;                  ///< 1..kMaxChannels
  std::vector<std::string> connect;  ///< backend ports to auto-connect, one per channel at most
  friend bool operator==(const ExternalPort&, const ExternalPort&) = default;
};

/// One DSP node.
struct NodeSpec {
  std::string name;  ///< unique; [A-Za-z0-9_-]+ (a '/' only in plugin kinds)
  std::string kind;  ///< registered kind, e.g. "gain" or "<plugin>/<kind>"
  int channels = 1;  ///< width of every port of the node
  std::map<std::string, ParamValue> params;  ///< only what the config sets
  /// A preset of the kind to start from (LV2: the preset's URI); "" = none.
  /// The node's own params win over the preset's values.
  std::string preset;
  friend bool operator==(const NodeSpec&, const NodeSpec&) = default;
};

/// True when `a` and `b` are equal and every number in their parameters
/// has the same bits: 0 and -0 differ (they are written differently), a
/// NaN matches a NaN of the same bits. For caches of what a node was.
bool Identical(const NodeSpec& a, const NodeSpec& b);

/// "node" (its default port) or "node.port". External inputs and outputs are
/// endpoints too (by their name, no port).
struct Endpoint {
  std::string node;
  std::string port;  ///< empty: the node's first input or output port

  /// "trim" -> {trim, ""}; "mix.in2" -> {mix, in2}.
  static Endpoint Parse(std::string_view text);
  std::string ToString() const;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
};

/// A directed connection. Several routes into one input port are summed
/// (fan-in); several routes out of one port copy the signal (fan-out).
struct RouteSpec {
  Endpoint from;
  Endpoint to;
  friend bool operator==(const RouteSpec&, const RouteSpec&) = default;
  friend auto operator<=>(const RouteSpec&, const RouteSpec&) = default;
};

/// A whole graph. Order of nodes and routes is preserved for round-trips but
/// carries no meaning.
struct GraphSpec {
  int version = kSchemaVersion;
  std::vector<ExternalPort> inputs;
  std::vector<ExternalPort> outputs;
  std::vector<NodeSpec> nodes;
  std::vector<RouteSpec> routes;

  const NodeSpec* FindNode(std::string_view name) const;
  NodeSpec* FindNode(std::string_view name);
  const ExternalPort* FindInput(std::string_view name) const;
  const ExternalPort* FindOutput(std::string_view name) const;
  int TotalInputChannels() const;
  int TotalOutputChannels() const;
  friend bool operator==(const GraphSpec&, const GraphSpec&) = default;
};

/// The kind of a problem found in a spec or a config: what a program looks
/// at (model::HasIssue, model::IssueCodeName in model/validate.h); the
/// message is for people. Never classify a problem by its message text.
enum class IssueCode {
  kUnspecified,         ///< a producer set none (NodeKind::CheckSpec's are made kConstraint)
  kSyntax,              ///< not readable YAML, or a YAML construct a config may not use
  kNotUtf8,             ///< a value that is not well-formed UTF-8
  kWrongType,           ///< a value of the wrong type or shape (a list for a number...)
  kMissingField,        ///< a required key, value or setting is absent
  kUnknownField,        ///< a key the section does not have
  kDuplicateKey,        ///< a key (or parameter) written twice in one map
  kOutOfRange,          ///< a number outside its allowed range, or not finite
  kBadValue,            ///< right type, value not accepted (unknown choice, relative path...)
  kUnsupportedVersion,  ///< a schema version this build does not read
  kTooLarge,            ///< more nodes, routes or ports than the limits allow
  kBadName,             ///< a name breaking the naming policy (model/naming.h)
  kDuplicateName,       ///< a name used twice (nodes, ports, backend ports, plugins)
  kUnknownKind,         ///< a node kind the registry does not know
  kUnknownParam,        ///< a parameter the node's kind does not have
  kConstraint,          ///< a kind's own rule between parameters (NodeKind::CheckSpec)
  kUnknownNode,         ///< a route naming no input, node or output
  kUnknownPort,         ///< a route naming a port its node does not have
  kWrongDirection,      ///< a route out of a sink or into a source
  kChannelMismatch,     ///< channel counts that do not fit together
  kDuplicateRoute,      ///< the same route twice
  kCycle,               ///< routes forming a loop
};

/// One problem found in a spec. `path` is a field path from the root of the
/// graph ("nodes[2].params.gain_db", "routes[0].to"); the config layer turns
/// it into file:line:column.
struct Issue {
  std::string path;
  std::string message;
  IssueCode code = IssueCode::kUnspecified;
  friend bool operator==(const Issue&, const Issue&) = default;
};

/// Human-readable rendering of a parameter value ("-6", "true", "lowpass", "[0, -3]").
std::string FormatParamValue(const ParamValue& value);

}  // namespace aers::model
