// config::PluginSettings (the `plugins:` section of the config file) ->
// plugin::PluginPolicy (what the loader enforces). Lives in plugin/ so that
// config/ does not depend on the plugin gate.
//
// Start-up order in the daemon (plugin kinds must exist before the graph is
// validated, but both are in the same file):
//   auto settings = config::ParsePluginSettings(text, path);   // only `plugins:`
//   if (!settings->root.empty()) {
//     PluginLoader loader(plugin::ToPolicy(*settings), audit);
//     settings->load.empty() ? loader.LoadAll(registry)
//                            : (loader.Load(name, registry) for each name in load);
//   }
//   auto config = config::ParseConfig(text, path, registry);    // the whole file
//
// Thread: any.
#pragma once

#include "config/config.h"
#include "plugin/loader.h"

namespace aers::plugin {

/// Copies root, require_signature, trusted_keys_dir, state_dir and
/// allowed_system_dirs. trusted_key_files stays empty and max_module_bytes
/// keeps its default; `load` and `audit_log` are not policy (the caller
/// chooses which directories to Load and opens the audit log).
PluginPolicy ToPolicy(const config::PluginSettings& settings);

}  // namespace aers::plugin
