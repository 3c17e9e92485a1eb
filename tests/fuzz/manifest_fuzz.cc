// libFuzzer target: the plugin manifest parser (daemon/plugin/manifest.h).
// Every input must come back as a Manifest or a Status; for accepted input
// the documented field rules are checked, and KindNameForLabel must give a
// valid kind name for any label.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "plugin/manifest.h"

namespace {

bool HasDotComponent(std::string_view path) {
  while (!path.empty()) {
    const size_t slash = path.find('/');
    const std::string_view c = path.substr(0, slash);
    if (c == "." || c == "..") return true;
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using aers::fuzz::Check;
  namespace plugin = aers::plugin;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // Any text is a possible LADSPA label.
  if (size <= 256) {
    Check(plugin::IsValidKindName(plugin::KindNameForLabel(text)),
          "KindNameForLabel gives an invalid kind name", plugin::KindNameForLabel(text));
  }

  const auto m = plugin::ParseManifest(text);
  if (!m.ok()) {
    Check(m.status().code() == absl::StatusCode::kInvalidArgument,
          "ParseManifest fails with a code other than INVALID_ARGUMENT", m.status().ToString());
    return 0;
  }
  Check(plugin::IsValidPluginName(m->name), "accepted an invalid plugin name", m->name);
  Check(m->hash_hex.size() == 64, "accepted a hash that is not 64 hex digits", m->hash_hex);
  for (char c : m->hash_hex) {
    Check((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'), "hash_hex is not lowercase hex",
          m->hash_hex);
  }
  Check(!m->module.empty(), "accepted an empty module path");
  Check(!HasDotComponent(m->module), "accepted a module path with a '.' or '..' component",
        m->module);
  Check(!m->allowed_node_kinds.empty(), "accepted no allowed_node_kinds");
  for (const auto& k : m->allowed_node_kinds) {
    Check(plugin::IsValidKindName(k), "accepted an invalid kind name", k);
  }
  if (m->format == plugin::ModuleFormat::kAers) {
    Check(m->abi_version >= 1, "aers manifest without abi_version");
    Check(m->labels.empty(), "aers manifest with labels");
    Check(m->module.front() != '/', "aers manifest with an absolute module path", m->module);
  } else {
    Check(!m->labels.empty(), "ladspa manifest without labels");
    for (const auto& l : m->labels) {
      Check(plugin::IsValidKindName(l.kind), "accepted an invalid label kind", l.kind);
    }
  }
  Check(m->hash_value_position.line >= 1 && m->hash_value_position.column >= 1,
        "no position for hash.value");
  return 0;
}
