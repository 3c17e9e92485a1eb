#include "plugins.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_join.h"
#include "config/config.h"
#include "plugin/policy_from_config.h"
#include "spdlog/spdlog.h"

namespace aers::daemon {

absl::Status LoadConfiguredPlugins(const std::string& text, const std::string& config_path,
                                   model::KindRegistry& kinds, ConfiguredPlugins& out) {
  auto settings = config::ParsePluginSettings(text, config_path);
  if (!settings.ok()) return settings.status();
  if (settings->root.empty()) return absl::OkStatus();
  if (!settings->audit_log.empty()) {
    auto audit = plugin::JsonLinesAuditLog::Open(settings->audit_log);
    if (!audit.ok()) return audit.status();
    out.audit = std::move(*audit);
  }
  out.loader = std::make_unique<plugin::PluginLoader>(plugin::ToPolicy(*settings), out.audit.get());
  auto load_one = [&](const std::string& name) {
    auto loaded = out.loader->Load(name, kinds);
    if (loaded.ok()) {
      spdlog::info("plugin {} {} loaded: {}", name, loaded->plugin->manifest().version,
                   absl::StrJoin(loaded->kinds, ", "));
      out.loaded.push_back(std::move(*loaded));
    } else {
      spdlog::error("plugin {} refused: {}", name, std::string(loaded.status().message()));
    }
  };
  if (settings->load.empty()) {
    std::error_code ec;
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(settings->root, ec)) {
      if (e.is_directory(ec)) names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    for (const auto& name : names) load_one(name);
  } else {
    for (const auto& name : settings->load) load_one(name);
  }
  return absl::OkStatus();
}

}  // namespace aers::daemon
