#include "plugins.h"

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "config/config.h"
#include "control/audit.h"
#include "plugin_policy.h"
#include "spdlog/spdlog.h"

namespace aers::daemon {

namespace {

// Plugin gate decisions into the control-plane audit log too (beside the
// config's own plugins.audit_log, if any).
class PluginAuditTee final : public plugin::PluginAuditLog {
 public:
  PluginAuditTee(control::AuditLog* audit, plugin::PluginAuditLog* also)
      : audit_(audit), also_(also) {}
  absl::Status Record(const plugin::AuditRecord& r) override {
    absl::Status st = also_ != nullptr ? also_->Record(r) : absl::OkStatus();
    if (audit_ == nullptr) return st;
    control::AuditRecord a;
    a.operation = "plugin";
    a.target = r.directory.empty() ? r.plugin : r.directory;
    a.principal.kind = control::Principal::Kind::kInternal;
    a.principal.name = "plugin gate";
    a.result = r.event == "refused" && r.code
                   ? absl::StatusCodeToString(plugin::StatusCodeFor(*r.code))
                   : "OK";
    a.message = r.message;
    a.details["event"] = r.event;
    if (!r.plugin.empty()) a.details["plugin"] = r.plugin;
    if (r.code) a.details["reason"] = std::string(plugin::RefusalCodeName(*r.code));
    if (!r.file.empty()) a.details["file"] = r.file;
    if (!r.seen.empty()) a.details["seen"] = r.seen;
    if (!r.expected.empty()) a.details["expected"] = r.expected;
    if (r.serial != 0) a.details["serial"] = std::to_string(r.serial);
    // Both logs: a load missing from either is refused (the gate).
    absl::Status control = audit_->Write(std::move(a));
    return st.ok() ? control : st;
  }

 private:
  control::AuditLog* audit_;
  plugin::PluginAuditLog* also_;
};

}  // namespace

absl::Status LoadConfiguredPlugins(const std::string& text, const std::string& config_path,
                                   model::KindRegistry& kinds, ConfiguredPlugins& out,
                                   const PluginOverrides& overrides) {
  auto settings = config::ParsePluginSettings(text, config_path);
  if (!settings.ok()) return settings.status();
  if (!overrides.root.empty()) settings->root = overrides.root;
  if (settings->root.empty()) return absl::OkStatus();
  if (!settings->audit_log.empty()) {
    std::vector<PathUse> files = overrides.other_files;
    files.push_back({absl::StrCat(config_path, ": plugins.audit_log"), settings->audit_log});
    if (const std::string clash = PathCollision(files); !clash.empty()) {
      return absl::InvalidArgumentError(clash);
    }
    auto audit = plugin::JsonLinesAuditLog::Open(settings->audit_log);
    if (!audit.ok()) return audit.status();
    out.audit = std::move(*audit);
  }
  plugin::PluginAuditLog* sink = out.audit.get();
  if (overrides.audit != nullptr) {
    out.tee = std::make_unique<PluginAuditTee>(overrides.audit, out.audit.get());
    sink = out.tee.get();
  }
  out.loader = std::make_unique<plugin::PluginLoader>(ToPluginPolicy(*settings), sink);
  auto report = [&](const std::string& name, const absl::StatusOr<plugin::LoadedKinds>& loaded) {
    if (loaded.ok()) {
      spdlog::info("plugin {} {} loaded: {}", name, loaded->plugin->manifest().version,
                   absl::StrJoin(loaded->kinds, ", "));
      out.loaded.push_back(*loaded);
    } else {
      spdlog::error("plugin {} refused: {}", name, std::string(loaded.status().message()));
      // A graph that names one of its kinds is told why they are absent.
      kinds.NoteRefusedPlugin(name, std::string(loaded.status().message()));
    }
  };
  if (settings->load.empty()) {
    // The root is listed once, by the loader, which opens every plugin
    // beneath that same open root. A root that cannot be listed loads
    // nothing (no plugin kinds; a graph that names one is invalid).
    out.loader->LoadAll(kinds, [&](const plugin::LoadOutcome& outcome) {
      if (!outcome.dir.empty()) report(outcome.dir, outcome.loaded);
    });
  } else {
    for (const auto& name : settings->load) report(name, out.loader->Load(name, kinds));
  }
  return absl::OkStatus();
}

}  // namespace aers::daemon
