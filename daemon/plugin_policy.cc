#include "plugin_policy.h"

namespace aers::daemon {

plugin::PluginPolicy ToPluginPolicy(const config::PluginSettings& settings) {
  plugin::PluginPolicy policy;
  policy.plugin_root = settings.root;
  policy.require_signature = settings.require_signature;
  policy.trusted_keys_dir = settings.trusted_keys_dir;
  policy.state_dir = settings.state_dir;
  policy.allowed_system_dirs = settings.allowed_system_dirs;
  return policy;
}

}  // namespace aers::daemon
