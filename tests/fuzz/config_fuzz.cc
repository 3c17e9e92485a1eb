// libFuzzer target: the config parser (daemon/config/config.h) on arbitrary
// text. Every input must come back as a Config or a Status; crashes, leaks,
// UB and timeouts are bugs. For accepted input it also checks what config.h
// promises:
//   - ParseConfig(EmitConfig(c)) == c (the daemon persists its graph state
//     with EmitConfig and reads it back with ParseConfig);
//   - ParsePluginSettings agrees with ParseConfig's plugins section (the
//     daemon reads plugins first, then the whole file).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"
#include "dsp/builtins.h"
#include "fuzz_check.h"
#include "model/naming.h"

namespace {

const aers::model::KindRegistry& Kinds() {
  // Built once per process and kept (reachable, so no leak report).
  static const std::unique_ptr<aers::model::KindRegistry> registry =
      aers::dsp::MakeBuiltinRegistry();
  return *registry;
}

// JACK 2's limits (model/naming.h): the backend that checks the most.
aers::model::NamingLimits JackLimits() {
  aers::model::NamingLimits limits;
  limits.max_client_name_bytes = 64;
  limits.max_port_name_bytes = 320;
  return limits;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using aers::fuzz::Check;
  namespace config = aers::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const aers::model::NamingLimits limits = JackLimits();

  config::SourceMap where;
  const auto parsed = config::ParseConfig(text, "fuzz.yaml", Kinds(), &where, &limits);
  const auto plugins = config::ParsePluginSettings(text, "fuzz.yaml");
  if (!parsed.ok()) return 0;

  Check(plugins.ok(), "ParsePluginSettings refuses a config ParseConfig accepts",
        plugins.status().ToString());
  Check(*plugins == parsed->plugins, "ParsePluginSettings and ParseConfig disagree on plugins:");

  const std::string emitted = config::EmitConfig(*parsed);
  const auto again = config::ParseConfig(emitted, "emitted.yaml", Kinds(), nullptr, &limits);
  Check(again.ok(), "ParseConfig refuses EmitConfig's output",
        again.ok() ? emitted : again.status().ToString() + "\n--- emitted:\n" + emitted);
  Check(*again == *parsed, "ParseConfig(EmitConfig(c)) != c", emitted);
  return 0;
}
