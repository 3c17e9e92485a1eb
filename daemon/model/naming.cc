#include "model/naming.h"

#include <algorithm>

#include "model/strings.h"

namespace aers::model {

using strutil::Cat;

std::string BackendPortName(const ExternalPort& port, int index) {
  if (port.channels == 1) return port.name;
  return Cat(port.name, "_", index + 1);
}

std::optional<std::string> CheckIdentifier(std::string_view name, std::string_view what,
                                           size_t max_bytes) {
  if (name.empty()) return Cat(what, " is empty; use letters, digits, '_' and '-'");
  if (name.size() > max_bytes) {
    return Cat(what, " is ", name.size(), " bytes long; at most ", max_bytes, " are allowed");
  }
  if (!std::all_of(name.begin(), name.end(), IsNameChar)) {
    return Cat(
        what, " has a character other than letters, digits, '_' and '-'",
        name.find('.') != std::string_view::npos ? " ('.' separates node and port in routes)" : "");
  }
  return std::nullopt;
}

uint64_t IoLayoutId(const GraphSpec& spec) {
  // FNV-1a over "i:<port>" / "o:<port>" and a separator, every channel in order.
  uint64_t h = 1469598103934665603ull;
  const auto mix = [&](std::string_view text) {
    for (unsigned char c : text) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xffu;  // separator: no byte of a name
    h *= 1099511628211ull;
  };
  for (const auto& p : spec.inputs) {
    for (int ch = 0; ch < p.channels; ++ch) mix(Cat("i:", BackendPortName(p, ch)));
  }
  for (const auto& p : spec.outputs) {
    for (int ch = 0; ch < p.channels; ++ch) mix(Cat("o:", BackendPortName(p, ch)));
  }
  return h == 0 ? 1 : h;
}

}  // namespace aers::model
