// Internal to daemon/config/ (not part of its API): reading the graph
// sections of a document (`inputs:`, `outputs:`, `nodes:`, `routes:`) into
// model types. Only their shape is checked here (types, required keys,
// UTF-8); model::ValidateGraph judges the graph as a whole afterwards.
//
// Thread: non-real-time; one GraphReader per document.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_read.h"
#include "model/graph.h"

namespace aers::config::internal {

class GraphReader {
 public:
  /// Problems go to `reader`, which outlives this.
  explicit GraphReader(Reader& reader) : r_(reader) {}

  /// The section at `path`; `fallback` is the position of its key.
  void ParsePorts(const YAML::Node& node, const std::string& path, Mark fallback, bool is_input,
                  std::vector<model::ExternalPort>& out);
  void ParseNodes(const YAML::Node& node, const std::string& path, Mark fallback,
                  std::vector<model::NodeSpec>& out);
  void ParseRoutes(const YAML::Node& node, const std::string& path, Mark fallback,
                   std::vector<model::RouteSpec>& out);

  /// Once every section is read: taints routes that touch a port or node
  /// whose shape was unsure (its channels or kind unreadable), so that a
  /// channel mismatch that only follows from it is not reported.
  void TaintRoutesTouching(const model::GraphSpec& graph);

 private:
  std::optional<model::ParamValue> ParseParam(const YAML::Node& node, const std::string& path,
                                              const std::string& name, Mark fallback);
  std::optional<model::Endpoint> ParseEndpoint(const YAML::Node& node, const std::string& path,
                                               std::string_view what, Mark fallback);

  Reader& r_;
  std::set<std::string> suspect_names_;  // elements whose shape is unsure
};

}  // namespace aers::config::internal
