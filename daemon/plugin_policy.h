// config::PluginSettings (the `plugins:` section of the config file) ->
// plugin::PluginPolicy (what the gate enforces). Part of the daemon's
// wiring, so that neither config/ nor plugin/ depends on the other.
//
// Start-up order in the daemon (plugin kinds must exist before the graph is
// validated, but both are in the same file; daemon/plugins.cc):
//   auto settings = config::ParsePluginSettings(text, path);   // only `plugins:`
//   if (!settings->root.empty()) {
//     plugin::PluginLoader loader(daemon::ToPluginPolicy(*settings), audit);
//     settings->load.empty() ? loader.LoadAll(registry)
//                            : (loader.Load(name, registry) for each name in load);
//   }
//   auto config = config::ParseConfig(text, path, registry);    // the whole file
//
// Thread: any.
#pragma once

#include "config/config.h"
#include "plugin/check.h"

namespace aers::daemon {

/// Copies root, require_signature, trusted_keys_dir, state_dir and
/// allowed_system_dirs. trusted_key_files stays empty and max_module_bytes
/// keeps its default; `load` and `audit_log` are not policy (the caller
/// chooses which directories to Load and opens the audit log).
plugin::PluginPolicy ToPluginPolicy(const config::PluginSettings& settings);

}  // namespace aers::daemon
