// Steps 1-9 of the plugin gate (daemon/plugin/loader.h has the whole list):
// everything the gate checks about a plugin directory before anything of the
// plugin is loaded. Nothing here dlopen()s or registers anything, so the
// offline tools (plugin/tool.h: aersctl plugin, aers-plugin) link this
// without the engine or the loader.
//
// Thread: non-real-time only (blocking file I/O).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "plugin/audit.h"
#include "plugin/bundle_tree.h"
#include "plugin/elf_check.h"
#include "plugin/manifest.h"
#include "plugin/refusal.h"
#include "plugin/secure_open.h"

namespace aers::plugin {

/// What the daemon's configuration says about plugins (the daemon's wiring
/// fills it in, daemon/plugin_policy.h; tests build it directly).
struct PluginPolicy {
  std::string plugin_root;        ///< absolute; one directory per plugin beneath it
  bool require_signature = true;  ///< refuse plugins without a trusted signature
  std::string trusted_keys_dir;   ///< minisign *.pub files
  /// Individual .pub files trusted in addition (aers-plugin verify -p).
  std::vector<std::string> trusted_key_files;
  std::string state_dir;  ///< highest accepted serial per plugin
  /// Absolute directories a LADSPA manifest may point its module into
  /// (e.g. /usr/lib/ladspa), or an LV2 manifest its bundle (/usr/lib/lv2).
  /// Empty: modules and bundles must be in the plugin dir.
  std::vector<std::string> allowed_system_dirs;
  /// Largest module, or the largest sum of an LV2 bundle's files (bytes).
  size_t max_module_bytes = size_t{64} << 20;
  /// Where verified LV2 bundles are copied before lilv reads them (0700,
  /// aersd's own; content-addressed). Empty: `<state_dir>/lv2-store`.
  std::string lv2_store_dir;
};

/// Everything the gate established before loading (aers-plugin verify).
struct VerifiedPlugin {
  Manifest manifest;
  ElfInfo elf;
  std::string module_path;  ///< the module file, or the LV2 bundle directory
  std::string hash_hex;     ///< what the module (LV2: the bundle tree) hashed to
  /// LV2: the bundle's ELF files (relative paths), each passed the ELF checks.
  std::vector<std::string> libraries;
  std::string signer_key_id;  ///< "" if not signed
};

/// What CheckPlugin hands the loader: the verified facts and the sealed
/// bytes they are about (the loader dlopen()s exactly these).
struct CheckedPlugin {
  VerifiedPlugin verified;
  SealedImage image;  ///< aers/ladspa
  BundleTree tree;    ///< lv2: every file of the bundle, as hashed
  /// Highest serial accepted before (nullopt: none yet, or no state_dir).
  std::optional<uint64_t> stored_serial;
};

/// Reports the gate's decisions about one plugin directory: a refusal becomes
/// a Status carrying its RefusalCode, an audit record and a warning; a load
/// an audit record and an info line.
class GateReporter {
 public:
  /// `audit` may be null (no audit records, only log lines).
  GateReporter(PluginAuditLog* audit, std::string dir);

  /// The plugin's name once the manifest is read (before: the directory's).
  void set_plugin(std::string name) { plugin_ = std::move(name); }
  void set_serial(uint64_t serial) { serial_ = serial; }
  const std::string& plugin() const { return plugin_; }

  /// Records the refusal; returns RefusalStatus(code, "plugin 'NAME' refused
  /// (CODE_NAME): MESSAGE [file FILE] (seen SEEN, expected EXPECTED)"). A
  /// record that cannot be written is logged; the refusal stands.
  absl::Status Refuse(RefusalCode code, const std::string& file, const std::string& message,
                      const std::string& seen = "", const std::string& expected = "");
  /// Records that the plugin's code is about to run (event "loading":
  /// every check has passed; the module is opened next, and its
  /// constructors and entry point run). OK, or the refusal (audit_error)
  /// to return when the record cannot be written: no plugin code runs
  /// unaudited.
  absl::Status Loading(const std::string& file, const std::string& message,
                       const std::string& signer);
  /// Records a load about to be completed (before its kinds are registered
  /// and its serial recorded). OK, or the refusal (audit_error) to return
  /// when the record cannot be written: nothing loads without its record.
  absl::Status Loaded(const std::string& file, const std::string& message,
                      const std::string& signer);

 private:
  // A record of `event` ("loading", "loaded"); the refusal when it cannot
  // be written.
  absl::Status Admit(const char* event, const std::string& file, const std::string& message,
                     const std::string& signer);

  PluginAuditLog* audit_;
  std::string dir_;
  std::string plugin_;
  uint64_t serial_ = 0;
};

/// Steps 1-9 of the gate on the directory `dir_name` (one name) beneath
/// `policy.plugin_root`. `root_fd` is an open descriptor of the plugin root
/// (one listing of the root serves every plugin in it), or -1 to open
/// `policy.plugin_root` here. Every refusal goes through `gate`.
absl::StatusOr<CheckedPlugin> CheckPlugin(const PluginPolicy& policy, std::string_view dir_name,
                                          int root_fd, GateReporter& gate);

/// Hash of `bytes` as lowercase hex (SHA-256 or BLAKE2b-256, libsodium).
std::string HashHex(HashAlgorithm algorithm, std::span<const uint8_t> bytes);

}  // namespace aers::plugin
