// Node kinds backed by a loaded plugin: the AERS C ABI and LADSPA adapters.
// Internal to daemon/plugin (the loader calls these after dlopen).
//
// Thread: non-real-time, except the Process()/SetParam() of the processors
// these kinds make (documented on the classes in the .cc files).
#pragma once

#include <memory>
#include <optional>
#include <string>
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

}  // namespace aers::plugin
