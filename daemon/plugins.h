// The plugins a config file admits, loaded through the gate (daemon/plugin/)
// into a kind registry. Shared by the daemon and `aersd render`, so a graph
// renders offline with exactly the plugins the daemon would run it with.
//
// Thread: non-real-time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/kind.h"
#include "path_collision.h"
#include "plugin/audit.h"
#include "plugin/loader.h"

namespace aers::control {
class AuditLog;
}

namespace aers::daemon {

/// What a config's `plugins:` section loaded. Keeps the loader and audit log
/// alive for as long as the kinds are registered.
struct ConfiguredPlugins {
  std::unique_ptr<plugin::JsonLinesAuditLog> audit;
  std::unique_ptr<plugin::PluginAuditLog> tee;  ///< audit + the control-plane log
  std::unique_ptr<plugin::PluginLoader> loader;
  std::vector<plugin::LoadedKinds> loaded;
};

/// Reads the `plugins:` section of `text` (the config file `config_path`),
/// loads every plugin it admits (`load:` or every directory under `root`,
/// sorted) into `kinds`. A refused plugin is logged and audited and the rest
/// go on; an invalid section or an audit log that cannot be opened is an
/// error (INVALID_ARGUMENT with FILE:LINE:COLUMN, or the open error).
struct PluginOverrides {
  /// Replaces plugins.root (AERS_PLUGIN_ROOT); absolute; empty: the config's.
  std::string root;
  /// Every decision is also recorded here (the daemon's audit log).
  control::AuditLog* audit = nullptr;
  /// The run's other files: plugins.audit_log must be none of them
  /// (INVALID_ARGUMENT naming both).
  std::vector<PathUse> other_files;
};

absl::Status LoadConfiguredPlugins(const std::string& text, const std::string& config_path,
                                   model::KindRegistry& kinds, ConfiguredPlugins& out,
                                   const PluginOverrides& overrides = {});

}  // namespace aers::daemon
