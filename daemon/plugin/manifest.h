// manifest.yaml: what a plugin directory claims about its module. Parsed
// strictly: unknown keys, wrong types, out-of-range values and path escapes
// are errors "manifest.yaml:LINE:COL: field.path: message" (1-based).
//
// Thread: any non-real-time thread. yaml-cpp exceptions stop here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace aers::plugin {

enum class ModuleFormat { kAers, kLadspa, kLv2 };
/// kBlake2b is BLAKE2b with a 32-byte digest (libsodium crypto_generichash).
enum class HashAlgorithm { kSha256, kBlake2b };

const char* ModuleFormatName(ModuleFormat f);
const char* HashAlgorithmName(HashAlgorithm a);

/// One LADSPA plugin of the module to expose as a node kind.
struct LadspaLabel {
  std::string label;  ///< the LADSPA label, e.g. "amp_mono"
  std::string kind;   ///< AERS kind name (default: the label, lowercased, [^a-z0-9_] -> '_')
};

/// One LV2 plugin of the bundle to expose as a node kind.
struct Lv2Entry {
  std::string uri;   ///< the plugin's URI, e.g. "http://plugin.org.uk/swh-plugins/amp"
  std::string kind;  ///< AERS kind name (default: KindNameForUri(uri))
};

/// Where a value sits in the manifest text (1-based; 0 = unknown).
struct TextPosition {
  int line = 0;
  int column = 0;
};

struct Manifest {
  std::string name;     ///< [a-z][a-z0-9_-]{0,63}; equals the plugin directory's name
  std::string version;  ///< free-form, informational
  std::string description;
  /// aers/ladspa: the module file (key `module`); lv2: the bundle directory
  /// (key `bundle`). Relative beneath the plugin directory; ladspa and lv2
  /// may name an absolute path beneath an allow-listed system directory.
  std::string module;
  ModuleFormat format = ModuleFormat::kAers;
  HashAlgorithm hash_algorithm = HashAlgorithm::kSha256;
  std::string hash_hex;  ///< lowercase, 64 hex digits
  std::vector<std::string> allowed_node_kinds;
  uint32_t abi_version = 0;               ///< aers only (required there)
  uint64_t serial = 0;                    ///< monotonic; lower than the highest accepted = rollback
  std::vector<std::string> dependencies;  ///< extra DT_NEEDED sonames allowed
  std::vector<LadspaLabel> labels;        ///< ladspa only (required there)
  std::vector<Lv2Entry> lv2_plugins;      ///< lv2 only (key `plugins`, required there)

  TextPosition hash_value_position;  ///< of hash.value's scalar (tools rewrite it)
};

/// Largest manifest accepted (bytes).
inline constexpr size_t kMaxManifestBytes = size_t{64} * 1024;

/// Parses and validates. INVALID_ARGUMENT lists every problem found, one per
/// line, each "FILE:LINE:COL: field.path: message".
absl::StatusOr<Manifest> ParseManifest(std::string_view text,
                                       std::string_view file_name = "manifest.yaml");

/// The default kind name for a LADSPA label.
std::string KindNameForLabel(std::string_view label);

/// The default kind name for an LV2 URI: its last path or fragment segment,
/// as KindNameForLabel ("http://x/y#Amp_Mono" -> "amp_mono").
std::string KindNameForUri(std::string_view uri);

/// Valid AERS kind name (also used for plugin-declared kinds).
bool IsValidKindName(std::string_view name);
/// Valid plugin name (also the directory name).
bool IsValidPluginName(std::string_view name);

}  // namespace aers::plugin
