#include "plugin/policy_from_config.h"

namespace aers::plugin {

PluginPolicy ToPolicy(const config::PluginSettings& settings) {
  PluginPolicy policy;
  policy.plugin_root = settings.root;
  policy.require_signature = settings.require_signature;
  policy.trusted_keys_dir = settings.trusted_keys_dir;
  policy.state_dir = settings.state_dir;
  policy.allowed_system_dirs = settings.allowed_system_dirs;
  return policy;
}

}  // namespace aers::plugin
