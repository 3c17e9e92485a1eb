// Internal to daemon/config/ (not part of its API): the settings sections
// of a config file (`engine:`, `backend:`, `plugins:`), read and checked.
// Their ranges are documented in docs/config.md.
//
// Thread: non-real-time.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "config/yaml_read.h"
#include "model/graph.h"
#include "model/naming.h"

namespace aers::config::internal {

/// Reads the section at `path` into `out` (defaults stay where it says
/// nothing; an empty section is all defaults). Problems go to `reader`;
/// `fallback` is the position of the section's key.
void ParseEngine(Reader& reader, const YAML::Node& node, const std::string& path, Mark fallback,
                 EngineSettings& out);
void ParseBackend(Reader& reader, const YAML::Node& node, const std::string& path, Mark fallback,
                  BackendSettings& out);
void ParsePlugins(Reader& reader, const YAML::Node& node, const std::string& path, Mark fallback,
                  PluginSettings& out);

/// The `plugins:` section's rules between fields (absolute paths, plugin
/// names, a root whenever anything else is set). An empty root means "no
/// plugins"; the parser reports a section without one.
std::vector<model::Issue> ValidatePlugins(const PluginSettings& plugins);

/// Every settings section of `config`: ValidatePlugins plus the engine's
/// ranges, the backend type and the JACK client name against `names`'
/// length limit.
std::vector<model::Issue> ValidateSettings(const Config& config, const model::NamingLimits& names);

}  // namespace aers::config::internal
