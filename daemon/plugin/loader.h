// The plugin gate: checks a plugin directory and, only if every check passes,
// loads the very bytes it checked and registers the plugin's node kinds as
// "<plugin>/<kind>".
//
// Order (each step refuses with a Status carrying a RefusalCode,
// plugin/refusal.h, and an audit record; nothing of the plugin runs before
// step 11; steps 1-9 are CheckPlugin in plugin/check.h):
//   1. resolve the plugin directory strictly beneath the plugin root
//      (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
//      or a component-wise O_NOFOLLOW walk where openat2 is missing);
//      owner root/euid, not group/world-writable
//   2. read manifest.yaml through that directory fd; parse it strictly;
//      its name must equal the directory name
//   3. open the module once (O_NOFOLLOW | O_CLOEXEC, beneath the plugin
//      directory, or for LADSPA beneath an allow-listed system directory)
//   4. fstat: regular file, owner root or the daemon's euid, not group- or
//      world-writable
//   5. copy it into a memfd and seal it (no write, shrink, grow, or new seals)
//   6. hash the sealed bytes (SHA-256 or BLAKE2b-256, libsodium) and compare
//      with the manifest in constant time
//   7. verify manifest.yaml.minisig against the trusted keys (required by
//      policy, or whenever the file exists)
//   8. refuse a serial lower than the highest accepted one (rollback)
//   9. read the ELF: no DT_RPATH/DT_RUNPATH, no TEXTREL, a non-executable
//      PT_GNU_STACK, DT_NEEDED only libc/libm/ld-linux + the manifest's list
//  10. refuse if a library of the same soname or file name is already loaded
//  11. dlopen("/proc/self/fd/N", RTLD_NOW | RTLD_LOCAL) on the sealed memfd
//      (LV2: the bundle's verified bytes are written into aersd's store,
//      <store>/<algorithm>-<tree hash>, read back and hashed again; lilv
//      reads that copy only and dlopen()s its library from there)
//  12. look up the one entry symbol (it must belong to that library), check
//      the ABI version, that every declared kind is in allowed_node_kinds and
//      that no kind name is taken; else dlclose and refuse
//  13. persist the serial, then register the kinds
//
// Lifetime: every kind and every node instance holds a shared_ptr to the
// LoadedPlugin; the last one to go dlclose()s the library. Node instances
// are only ever destroyed off the audio thread (Engine::Reclaim), so the
// library is never unmapped under the audio thread.
//
// Thread: non-real-time only. Loads are serialized process-wide (one at a
// time); the registry passed to Load() must not be used concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/kind.h"
#include "plugin/audit.h"
#include "plugin/check.h"
#include "plugin/manifest.h"
#include "plugin/refusal.h"
#include "plugin/secure_open.h"

namespace aers::plugin {

/// A library the gate admitted, loaded from its sealed memfd. Destroying the
/// last reference dlclose()s it (never do that on the audio thread: the
/// engine's reclaim path guarantees it).
class LoadedPlugin {
 public:
  ~LoadedPlugin();
  LoadedPlugin(const LoadedPlugin&) = delete;
  LoadedPlugin& operator=(const LoadedPlugin&) = delete;

  const Manifest& manifest() const { return manifest_; }
  const std::string& name() const { return manifest_.name; }
  /// The file the module was read from ("<root>/<dir>/<module>").
  const std::string& module_path() const { return module_path_; }
  /// Key id of the signer ("" if the plugin was not signed).
  const std::string& signer_key_id() const { return signer_; }
  /// "/proc/self/fd/N" the library was loaded from; LV2: the bundle's
  /// verified copy in the store (a directory).
  const std::string& load_path() const { return load_path_; }
  /// A symbol defined by this library itself (not by its dependencies), or
  /// nullptr.
  void* OwnSymbol(const char* name) const;

  /// Plugin names currently loaded in this process.
  static std::vector<std::string> LoadedNames();

 private:
  friend class PluginLoader;
  LoadedPlugin() = default;
  Manifest manifest_;
  std::string module_path_;
  std::string signer_;
  std::string load_path_;
  std::string soname_;
  void* handle_ = nullptr;
  UniqueFd memfd_;
};

struct LoadedKinds {
  std::shared_ptr<LoadedPlugin> plugin;
  std::vector<std::string> kinds;  ///< registered names, "<plugin>/<kind>"
};

/// What LoadAll did with one directory beneath the root.
struct LoadOutcome {
  std::string dir;  ///< the directory's name; "" if the root itself could not be listed
  /// The plugin, or the refusal: RefusalCodeOf(loaded.status()) says why.
  absl::StatusOr<LoadedKinds> loaded;
};

class PluginLoader {
 public:
  /// `audit` (may be null) must outlive the loader.
  PluginLoader(PluginPolicy policy, PluginAuditLog* audit = nullptr);

  /// Checks, loads and registers the plugin in `dir_name` (one directory
  /// name beneath the root). All or nothing: on any error `registry` is
  /// unchanged and nothing stays loaded. Every refusal carries its
  /// RefusalCode (RefusalCodeOf); status codes: INVALID_ARGUMENT (malformed
  /// manifest), NOT_FOUND, ALREADY_EXISTS (already loaded, kind name taken),
  /// PERMISSION_DENIED (every security refusal), INTERNAL.
  absl::StatusOr<LoadedKinds> Load(std::string_view dir_name, model::KindRegistry& registry);

  /// Steps 1-9 and the manifest ABI check, without loading anything or
  /// recording a serial. Refusals are audited like Load's.
  absl::StatusOr<VerifiedPlugin> Verify(std::string_view dir_name);

  /// Load() for every directory beneath the root (and every symlink to
  /// one, which the gate then refuses), in name order. The root is opened
  /// and listed once; each plugin is opened beneath that open root. One
  /// plugin's refusal does not stop the others. `each` (optional) sees every
  /// outcome as soon as it is known, before the next plugin is loaded.
  std::vector<LoadOutcome> LoadAll(model::KindRegistry& registry,
                                   const std::function<void(const LoadOutcome&)>& each = nullptr);

  const PluginPolicy& policy() const { return policy_; }

  /// Tests only: runs `hook(dir_name)` between the checks (steps 1-9) and
  /// loading, where a racing writer would change files.
  void SetAfterCheckHookForTesting(std::function<void(const std::string&)> hook) {
    after_check_hook_ = std::move(hook);
  }

 private:
  /// Load() beneath an open root (-1: open policy_.plugin_root).
  absl::StatusOr<LoadedKinds> LoadBeneath(int root_fd, std::string_view dir_name,
                                          model::KindRegistry& registry);
  /// Step 11: dlopen()s the sealed memfd of `checked` (taking it over).
  static absl::StatusOr<std::shared_ptr<LoadedPlugin>> OpenSealed(CheckedPlugin& checked,
                                                                  GateReporter& gate);
  /// Step 11 for LV2: the verified bundle bytes into the store, re-hashed.
  absl::StatusOr<std::shared_ptr<LoadedPlugin>> StoreBundle(CheckedPlugin& checked,
                                                            GateReporter& gate);
  /// policy_.lv2_store_dir, else "<state_dir>/lv2-store", else "".
  std::string StoreDir() const;
  PluginPolicy policy_;
  PluginAuditLog* audit_;
  std::function<void(const std::string&)> after_check_hook_;
};

}  // namespace aers::plugin
