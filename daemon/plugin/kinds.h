// Node kinds backed by a loaded plugin: the AERS C ABI and LADSPA adapters.
// Internal to daemon/plugin (the loader calls these after dlopen).
//
// Thread: non-real-time, except the Process()/SetParam() of the processors
// these kinds make (documented on the classes in the .cc files).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/kind.h"
#include "plugin/loader.h"
#include "plugin/refusal.h"

namespace aers::plugin {

/// Why building a plugin's kinds failed (becomes an audited refusal).
struct Refusal {
  RefusalCode code = RefusalCode::kInternal;
  std::string message;
  std::string seen;
  std::string expected;
};

using KindList = std::vector<std::shared_ptr<const model::NodeKind>>;

/// Calls the AERS entry point, checks the ABI and the descriptor table, and
/// that every declared kind is in the manifest's allowed_node_kinds.
std::optional<KindList> MakeAersKinds(const std::shared_ptr<const LoadedPlugin>& plugin,
                                      Refusal& refusal);

/// Finds the manifest's labels through ladspa_descriptor() and wraps them.
std::optional<KindList> MakeLadspaKinds(const std::shared_ptr<const LoadedPlugin>& plugin,
                                        Refusal& refusal);

/// LV2: the kinds of the manifest's plugin URIs, described by lilv from the
/// verified store copy of the bundle at `bundle_dir` (absolute, no trailing
/// '/') and nothing else. `state_dir` is where node state is saved
/// ("<state_dir>/lv2-state/<node>/<instance>.ttl"; "" = not saved). Refuses
/// (lv2_uri_missing, lv2_unsupported, module_outside_allowed_dirs) what it
/// cannot host.
std::optional<KindList> MakeLv2Kinds(const std::shared_ptr<const LoadedPlugin>& plugin,
                                     const std::string& bundle_dir, const std::string& state_dir,
                                     Refusal& refusal);

/// Whether this build hosts LV2 (it was built with lilv).
bool Lv2Supported();

/// A parameter name for a plugin port name or symbol: lowercase,
/// [^a-z0-9] runs -> '_', "p_" before a leading digit, at most 60 characters.
std::string PortParamName(std::string_view port);

}  // namespace aers::plugin
