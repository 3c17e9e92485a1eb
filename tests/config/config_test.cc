// Config parsing, validation and emission: every invalid config must be
// reported at the right line:column with the field path and a message that
// says what is wrong; every shipped config must parse, validate and survive
// a parse -> emit -> parse round trip unchanged.
#include "config/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "config/graph_yaml.h"
#include "dsp/builtins.h"
#include "model/validate.h"

namespace aers::config {
namespace {

constexpr char kFile[] = "test.yaml";

const model::KindRegistry& Kinds() {
  static const auto* const registry = dsp::MakeBuiltinRegistry().release();
  return *registry;
}

// Raw strings in this file start with a newline for readability; line 1 is
// the line after R"(.
std::string Text(std::string_view yaml) {
  if (!yaml.empty() && yaml.front() == '\n') yaml.remove_prefix(1);
  return std::string(yaml);
}

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      if (start < text.size()) out.emplace_back(text.substr(start));
      break;
    }
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Invalid configs: exactly one problem each, at a known place.

struct BadCase {
  const char* name;
  const char* yaml;
  int line;
  int column;
  const char* path;    // "" when the problem has no field path
  const char* phrase;  // must appear in the message
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.name;
}

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, ReportsLineColumnPathAndMessage) {
  const BadCase& c = GetParam();
  const auto result = ParseConfig(Text(c.yaml), kFile, Kinds());
  ASSERT_FALSE(result.ok()) << "config unexpectedly valid";
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(result.status().message());
  const auto lines = Lines(message);
  ASSERT_EQ(lines.size(), 1u) << "expected exactly one problem, got:\n" << message;
  std::string prefix =
      std::string(kFile) + ":" + std::to_string(c.line) + ":" + std::to_string(c.column) + ": ";
  if (*c.path != '\0') prefix += std::string(c.path) + ": ";
  EXPECT_EQ(lines[0].rfind(prefix, 0), 0u) << "want prefix: " << prefix << "\ngot: " << lines[0];
  EXPECT_NE(lines[0].find(c.phrase), std::string::npos)
      << "want phrase: " << c.phrase << "\ngot: " << lines[0];
}

// clang-format off
const BadCase kBadCases[] = {
    // --- top level ---------------------------------------------------------
    {"UnknownTopLevelKey", R"(
version: 1
nodez: []
)", 2, 1, "nodez", "unknown key 'nodez' in the config; allowed keys: version, engine, backend"},

    {"BadVersion", R"(
version: 2
)", 1, 10, "version", "unsupported schema version 2; this build reads version 1"},

    {"VersionNotANumber", R"(
version: one
)", 1, 10, "version", "version must be a whole number, got the string 'one'"},

    {"MissingVersion", R"(
nodes: []
)", 1, 1, "version", "has no 'version'; it is required"},

    {"EmptyFile", "", 1, 1, "", "the config is empty"},

    {"TopLevelIsAList", R"(
- version: 1
)", 1, 1, "", "expected the config (a map with keys version, engine"},

    {"YamlSyntaxError", R"(
version: 1
nodes: [
  {name: a, kind: gain
)", 4, 1, "", "yaml: end of map flow not found"},

    {"YamlIllegalMapValue", R"(
version: 1
nodes:
  - name: trim: x
)", 3, 15, "", "yaml: illegal map value"},

    {"YamlBadIndentation", R"(
version: 1
engine:
    sample_rate_hz: 48000
  period_frames: 256
)", 4, 3, "", "yaml: "},

    {"DuplicateKey", R"(
version: 1
nodes: []
nodes: []
)", 3, 1, "nodes", "duplicate key 'nodes' (first at line 2)"},

    // --- engine and backend ------------------------------------------------
    {"SampleRateOutOfRange", R"(
version: 1
engine:
  sample_rate_hz: 4000
)", 3, 19, "engine.sample_rate_hz", "sample_rate_hz = 4000 Hz is out of range; allowed 8000 to 384000 Hz"},

    {"PeriodFramesFraction", R"(
version: 1
engine: {period_frames: 256.5}
)", 2, 25, "engine.period_frames", "period_frames must be a whole number, got the number 256.5"},

    {"PeriodFramesTooLarge", R"(
version: 1
engine:
  period_frames: 16384
)", 3, 18, "engine.period_frames", "allowed 16 to 8192 frames"},

    {"CrossfadeNegative", R"(
version: 1
engine:
  crossfade_ms: -1
)", 3, 17, "engine.crossfade_ms", "crossfade_ms = -1 ms is out of range; allowed 0 to 1000 ms"},

    {"UnknownEngineKey", R"(
version: 1
engine:
  sample_rate: 48000
)", 3, 3, "engine.sample_rate", "unknown key 'sample_rate' in the engine section; allowed keys: sample_rate_hz, period_frames, crossfade_ms"},

    {"EngineIsAList", R"(
version: 1
engine: [48000, 256]
)", 2, 9, "engine", "expected the engine section (a map with keys sample_rate_hz"},

    {"UnknownBackendType", R"(
version: 1
backend:
  type: pulseaudio
)", 3, 9, "backend.type", "unknown backend type 'pulseaudio'; expected one of: auto, jack, alsa, null"},

    {"UnknownJackKey", R"(
version: 1
backend:
  type: jack
  jack:
    server: foo
)", 5, 5, "backend.jack.server", "unknown key 'server' in the jack section; allowed keys: client_name, server_name"},

    {"EmptyJackClientName", R"(
version: 1
backend: {jack: {client_name: ""}}
)", 2, 31, "backend.jack.client_name", "client_name is empty"},

    // --- inputs and outputs ------------------------------------------------
    {"ChannelsZero", R"(
version: 1
inputs:
  - name: main
    channels: 0
)", 4, 15, "inputs[0].channels", "channels = 0 is out of range; allowed 1 to 64"},

    {"ChannelsTooLarge", R"(
version: 1
outputs:
  - {name: out, channels: 65}
)", 3, 27, "outputs[0].channels", "channels = 65 is out of range; allowed 1 to 64"},

    {"ChannelsString", R"(
version: 1
inputs:
  - name: main
    channels: two
)", 4, 15, "inputs[0].channels", "channels must be a whole number, got the string 'two'"},

    {"ConnectNotAList", R"(
version: 1
inputs:
  - name: main
    connect: system:capture_1
)", 4, 14, "inputs[0].connect", "connect must be a list"},

    {"ConnectTooManyPorts", R"(
version: 1
inputs:
  - name: main
    channels: 1
    connect: [system:capture_1, system:capture_2]
)", 5, 14, "inputs[0].connect", "2 backend ports listed for 1 channel"},

    {"InputMissingName", R"(
version: 1
inputs:
  - channels: 2
)", 3, 5, "inputs[0].name", "an input has no 'name'; it is required"},

    {"UnknownInputKey", R"(
version: 1
inputs:
  - name: main
    chanels: 2
)", 4, 5, "inputs[0].chanels", "unknown key 'chanels' in an input; allowed keys: name, channels, connect"},

    {"InputsIsAMap", R"(
version: 1
inputs:
  main: {channels: 2}
)", 3, 3, "inputs", "inputs must be a list"},

    // --- nodes ---------------------------------------------------------------
    {"NodesIsAMap", R"(
version: 1
nodes:
  trim: {kind: gain}
)", 3, 3, "nodes", "nodes must be a list"},

    {"UnknownNodeKey", R"(
version: 1
nodes:
  - name: trim
    kind: gain
    gain_db: -6
)", 5, 5, "nodes[0].gain_db", "unknown key 'gain_db' in a node; allowed keys: name, kind, channels, params"},

    {"NodeMissingKind", R"(
version: 1
nodes:
  - name: trim
)", 3, 5, "nodes[0].kind", "a node has no 'kind'; it is required"},

    {"UnknownKind", R"(
version: 1
nodes:
  - name: trim
    kind: gian
)", 4, 11, "nodes[0].kind", "unknown kind 'gian' (did you mean 'gain'?); known kinds: biquad, compressor, convolver, crossover, delay, dither, gain, gate, limiter, meter, mixer, peq, tone, volume"},

    {"InvalidNodeName", R"(
version: 1
nodes:
  - {name: my trim, kind: gain}
)", 3, 12, "nodes[0].name", "invalid name 'my trim': use only letters, digits, '_' and '-'"},

    {"NodeNameWithDot", R"(
version: 1
nodes:
  - {name: a.b, kind: gain}
)", 3, 12, "nodes[0].name", "'.' separates node and port"},

    {"EmptyNodeName", R"(
version: 1
nodes:
  - {name: "", kind: gain}
)", 3, 12, "nodes[0].name", "name is empty"},

    {"DuplicateNodeNames", R"(
version: 1
nodes:
  - {name: a, kind: gain}
  - {name: a, kind: meter}
)", 4, 12, "nodes[1].name", "duplicate name 'a': already used by nodes[0].name"},

    {"NodeNameClashesWithInput", R"(
version: 1
inputs:
  - {name: main, channels: 2}
nodes:
  - {name: main, kind: gain, channels: 2}
)", 5, 12, "nodes[0].name", "duplicate name 'main': already used by inputs[0].name"},

    {"NodeChannelsZero", R"(
version: 1
nodes:
  - {name: g, kind: gain, channels: 0}
)", 3, 37, "nodes[0].channels", "channels = 0 is out of range"},

    // --- parameters ----------------------------------------------------------
    {"UnknownParam", R"(
version: 1
nodes:
  - name: trim
    kind: gain
    params:
      gain: -6
)", 6, 13, "nodes[0].params.gain", "unknown parameter 'gain' for kind 'gain' (did you mean 'gain_db'?); its parameters are: gain_db, mute"},

    {"NumberForBool", R"(
version: 1
nodes:
  - name: trim
    kind: gain
    params:
      mute: 1
)", 6, 13, "nodes[0].params.mute", "mute expects true or false, got the number 1"},

    {"QuotedTrueIsAString", R"(
version: 1
nodes:
  - name: trim
    kind: gain
    params: {mute: "true"}
)", 5, 20, "nodes[0].params.mute", "mute expects true or false, got the word 'true'"},

    {"WordForNumber", R"(
version: 1
nodes:
  - name: f
    kind: biquad
    params:
      q: high
)", 6, 10, "nodes[0].params.q", "q expects a number (0.025 to 40), got the word 'high'"},

    {"ListForNumber", R"(
version: 1
nodes:
  - name: trim
    kind: gain
    params:
      gain_db: [-6, -6]
)", 6, 16, "nodes[0].params.gain_db", "gain_db expects a number (-120 to 24 dB), got the list [-6, -6]"},

    {"ParamOutOfRange", R"(
version: 1
nodes:
  - name: trim
    kind: gain
    params:
      gain_db: 30
)", 6, 16, "nodes[0].params.gain_db", "gain_db = 30 dB is out of range; allowed -120 to 24 dB"},

    {"ParamNaN", R"(
version: 1
nodes:
  - name: trim
    kind: gain
    params:
      gain_db: .nan
)", 6, 16, "nodes[0].params.gain_db", "gain_db is not a finite number"},

    {"ParamInfinite", R"(
version: 1
nodes:
  - name: f
    kind: biquad
    params:
      freq_hz: -.inf
)", 6, 16, "nodes[0].params.freq_hz", "freq_hz is not a finite number"},

    {"IntegerParamWithFraction", R"(
version: 1
nodes:
  - name: mix
    kind: mixer
    params:
      inputs: 2.5
)", 6, 15, "nodes[0].params.inputs", "inputs must be a whole number, got 2.5 (allowed 1 to 32)"},

    {"IntegerParamOutOfRange", R"(
version: 1
nodes:
  - name: mix
    kind: mixer
    params: {inputs: 33}
)", 5, 22, "nodes[0].params.inputs", "inputs = 33 is out of range; allowed 1 to 32"},

    {"BadEnum", R"(
version: 1
nodes:
  - name: f
    kind: biquad
    params:
      type: lowpas
)", 6, 13, "nodes[0].params.type", "unknown type 'lowpas' (did you mean 'lowpass'?); expected one of: lowpass, highpass, bandpass"},

    {"NumberForEnum", R"(
version: 1
nodes:
  - name: f
    kind: biquad
    params:
      type: 2
)", 6, 13, "nodes[0].params.type", "type expects one of: lowpass, highpass"},

    {"ScalarForNumberList", R"(
version: 1
nodes:
  - name: mix
    kind: mixer
    params:
      gains_db: -3
)", 6, 17, "nodes[0].params.gains_db", "gains_db expects a list of numbers"},

    {"NumberListElementOutOfRange", R"(
version: 1
nodes:
  - name: mix
    kind: mixer
    params:
      gains_db: [0, 30]
)", 6, 21, "nodes[0].params.gains_db[1]", "gains_db[1] = 30 dB is out of range"},

    {"NumberListElementNotANumber", R"(
version: 1
nodes:
  - name: mix
    kind: mixer
    params:
      gains_db: [0, loud]
)", 6, 21, "nodes[0].params.gains_db[1]", "'gains_db' is a list of numbers; element 1 is the string 'loud'"},

    {"MixerGainsLength", R"(
version: 1
nodes:
  - name: mix
    kind: mixer
    params:
      inputs: 3
      gains_db: [0, -6]
)", 7, 17, "nodes[0].params.gains_db", "has 2 entries but the mixer has 3 inputs"},

    {"DelayBeyondMax", R"(
version: 1
nodes:
  - name: d
    kind: delay
    params:
      max_delay_ms: 10
      delay_ms: 20
)", 7, 17, "nodes[0].params.delay_ms", "delay_ms 20 exceeds max_delay_ms 10"},

    {"ParamIsAMap", R"(
version: 1
nodes:
  - name: trim
    kind: gain
    params:
      gain_db: {value: -6}
)", 6, 16, "nodes[0].params.gain_db", "must be a number, true/false, a word or a list of numbers, got a map"},

    {"ParamWithoutValue", R"(
version: 1
nodes:
  - name: trim
    kind: gain
    params:
      gain_db:
      mute: true
)", 6, 7, "nodes[0].params.gain_db", "parameter 'gain_db' has no value"},

    {"ParamsNotAMap", R"(
version: 1
nodes:
  - name: trim
    kind: gain
    params: [gain_db, -6]
)", 5, 13, "nodes[0].params", "params must be a map of parameter names to values"},

    // --- routes --------------------------------------------------------------
    {"RoutesNotAList", R"(
version: 1
routes:
  from: a
  to: b
)", 3, 3, "routes", "routes must be a list"},

    {"RouteUnknownKey", R"(
version: 1
inputs: [{name: in}]
outputs: [{name: out}]
routes:
  - {from: in, to: out, gain: 3}
)", 5, 25, "routes[0].gain", "unknown key 'gain' in a route; allowed keys: from, to"},

    {"RouteMissingTo", R"(
version: 1
inputs: [{name: in}]
routes:
  - from: in
)", 4, 5, "routes[0].to", "a route has no 'to'; it is required"},

    {"RouteMalformedEndpoint", R"(
version: 1
inputs: [{name: in}]
outputs: [{name: out}]
routes:
  - {from: in., to: out}
)", 5, 12, "routes[0].from", "malformed endpoint 'in.'; write 'node' or 'node.port'"},

    {"DanglingRouteFrom", R"(
version: 1
outputs: [{name: out}]
nodes:
  - {name: trim, kind: gain}
routes:
  - {from: trm, to: out}
)", 6, 12, "routes[0].from", "unknown node 'trm' (did you mean 'trim'?); routes can start at: trim"},

    {"DanglingRouteTo", R"(
version: 1
inputs: [{name: in}]
outputs: [{name: out}]
routes:
  - from: in
    to: speakers
)", 6, 9, "routes[0].to", "unknown node 'speakers'; routes can end at: out"},

    {"UnknownInputPort", R"(
version: 1
inputs: [{name: a}, {name: b}, {name: c}]
nodes:
  - {name: mix, kind: mixer}
routes:
  - {from: a, to: mix.in1}
  - {from: b, to: mix.in2}
  - {from: c, to: mix.in3}
)", 8, 19, "routes[2].to", "'mix' has no input port 'in3'; its input ports are: in1, in2"},

    {"OutputPortUsedAsInput", R"(
version: 1
inputs: [{name: a}]
nodes:
  - {name: g, kind: gain}
routes:
  - {from: a, to: g.out}
)", 6, 19, "routes[0].to", "'g' has no input port 'out' ('out' is an output port); its input ports are: in"},

    {"UnknownPortOnExternalInput", R"(
version: 1
inputs: [{name: main, channels: 2}]
nodes:
  - {name: g, kind: gain, channels: 2}
routes:
  - {from: main.left, to: g}
)", 6, 12, "routes[0].from", "'main' has no output port 'left'; its output ports are: out"},

    {"RouteIntoTone", R"(
version: 1
inputs: [{name: in}]
nodes:
  - {name: osc, kind: tone}
routes:
  - {from: in, to: osc}
)", 6, 20, "routes[0].to", "node 'osc' (kind 'tone') has no input ports"},

    {"RouteFromExternalOutput", R"(
version: 1
outputs: [{name: out}]
nodes:
  - {name: g, kind: gain}
routes:
  - {from: out, to: g}
)", 6, 12, "routes[0].from", "'out' is an external output: routes go into it, not out of it"},

    {"RouteIntoExternalInput", R"(
version: 1
inputs: [{name: in}]
nodes:
  - {name: g, kind: gain}
routes:
  - {from: in, to: g}
  - {from: g, to: in}
)", 7, 19, "routes[1].to", "'in' is an external input: routes come out of it, not into it"},

    {"ChannelMismatch", R"(
version: 1
inputs:
  - {name: main, channels: 2}
nodes:
  - {name: g, kind: gain, channels: 1}
routes:
  - from: main
    to: g
)", 7, 5, "routes[0]", "channel mismatch: main.out has 2 channels but g.in has 1"},

    {"DuplicateRoute", R"(
version: 1
inputs: [{name: in}]
nodes:
  - {name: g, kind: gain}
routes:
  - {from: in, to: g}
  - {from: in.out, to: g.in}
)", 7, 5, "routes[1]", "duplicate route in.out -> g.in (same as routes[0])"},

    {"TwoNodeCycle", R"(
version: 1
nodes:
  - {name: a, kind: gain}
  - {name: b, kind: gain}
routes:
  - {from: a, to: b}
  - {from: b, to: a}
)", 7, 5, "routes[1]", "cycle: a -> b -> a"},

    {"ThreeNodeCycle", R"(
version: 1
nodes:
  - {name: first, kind: gain}
  - {name: second, kind: meter}
  - {name: third, kind: biquad}
routes:
  - {from: first, to: second}
  - {from: second, to: third}
  - {from: third, to: first}
)", 9, 5, "routes[2]", "cycle: first -> second -> third -> first"},

    {"CycleThroughMixer", R"(
version: 1
inputs: [{name: in}]
outputs: [{name: out}]
nodes:
  - {name: mix, kind: mixer}
  - {name: fb, kind: delay, params: {delay_ms: 10}}
routes:
  - {from: in, to: mix.in1}
  - {from: mix, to: out}
  - {from: mix, to: fb}
  - {from: fb, to: mix.in2}
)", 11, 5, "routes[3]", "cycle: mix -> fb -> mix"},

    {"SelfLoop", R"(
version: 1
nodes:
  - {name: loop, kind: gain}
routes:
  - {from: loop, to: loop}
)", 5, 5, "routes[0]", "cycle: loop -> loop"},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Invalid, BadConfigTest, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& case_info) {
                           return std::string(case_info.param.name);
                         });

TEST(BadConfigTableTest, HasEnoughCases) {
  EXPECT_GE(std::size(kBadCases), 35u);
}

// --- plugins: ParseConfig and ParsePluginSettings report these the same way.
// clang-format off
const BadCase kBadPluginCases[] = {
    {"PluginsIsAList", R"(
version: 1
plugins: [/usr/lib/aers/plugins]
)", 2, 10, "plugins", "expected the plugins section (a map with keys root, require_signature, trusted_keys_dir"},

    {"PluginsUnknownKey", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  trusted_keys_dir: /etc/aers/trusted-keys
  signature: required
)", 5, 3, "plugins.signature", "unknown key 'signature' in the plugins section; allowed keys: root, require_signature"},

    {"PluginsMissingRoot", R"(
version: 1
plugins:
  require_signature: false
  load: [example_gain]
)", 3, 3, "plugins.root", "the plugins section has no 'root'; it is required (e.g. root: /usr/lib/aers/plugins)"},

    {"PluginsRootRelative", R"(
version: 1
plugins:
  root: lib/aers/plugins
  require_signature: false
)", 3, 9, "plugins.root", "root 'lib/aers/plugins' is not an absolute path"},

    {"PluginsRootEmpty", R"(
version: 1
plugins: {root: "", require_signature: false}
)", 2, 17, "plugins.root", "root is empty; write an absolute path (e.g. /usr/lib/aers/plugins)"},

    {"PluginsRootIsAList", R"(
version: 1
plugins:
  root: [/usr/lib/aers/plugins]
  require_signature: false
)", 3, 9, "plugins.root", "root must be a string, got a list"},

    {"PluginsRequireSignatureNotBool", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: yes
)", 4, 22, "plugins.require_signature", "require_signature must be true or false, got the string 'yes'"},

    {"PluginsRequireSignatureQuoted", R"(
version: 1
plugins: {root: /p, require_signature: "false"}
)", 2, 40, "plugins.require_signature", "require_signature must be true or false, got the string 'false'"},

    {"PluginsSignatureWithoutKeys", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  state_dir: /var/lib/aers/plugins
)", 3, 3, "plugins.trusted_keys_dir", "require_signature is true but no trusted_keys_dir is given, so every plugin would be refused"},

    {"PluginsTrustedKeysRelative", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  trusted_keys_dir: ./keys
)", 4, 21, "plugins.trusted_keys_dir", "trusted_keys_dir './keys' is not an absolute path"},

    {"PluginsStateDirRelative", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: false
  state_dir: var/lib/aers
)", 5, 14, "plugins.state_dir", "state_dir 'var/lib/aers' is not an absolute path"},

    {"PluginsAuditLogRelative", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: false
  audit_log: audit.jsonl
)", 5, 14, "plugins.audit_log", "audit_log 'audit.jsonl' is not an absolute path"},

    {"PluginsSystemDirRelative", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: false
  allowed_system_dirs: [/usr/lib/ladspa, lib/ladspa]
)", 5, 42, "plugins.allowed_system_dirs[1]", "allowed system directory 'lib/ladspa' is not an absolute path"},

    {"PluginsSystemDirsNotAList", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: false
  allowed_system_dirs: /usr/lib/ladspa
)", 5, 24, "plugins.allowed_system_dirs", "allowed_system_dirs must be a list (e.g. [/usr/lib/ladspa]), got the string '/usr/lib/ladspa'"},

    {"PluginsLoadNotAList", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: false
  load: example_gain
)", 5, 9, "plugins.load", "load must be a list (plugin directory names, e.g. [example_gain]), got the string 'example_gain'"},

    {"PluginsLoadEscapesRoot", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: false
  load: [example_gain, ../evil]
)", 5, 24, "plugins.load[1]", "'../evil' is not a plugin directory name"},

    {"PluginsLoadDuplicate", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: false
  load:
    - example_gain
    - reverb
    - example_gain
)", 8, 7, "plugins.load[2]", "plugin 'example_gain' is listed twice (first as load[0]); list it once"},

    {"PluginsLoadEntryIsAMap", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: false
  load: [{name: example_gain}]
)", 5, 10, "plugins.load[0]", "an entry of load must be a string, got a map"},

    {"PluginsDuplicateKey", R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: false
  root: /opt/aers/plugins
)", 5, 3, "plugins.root", "duplicate key 'root' (first at line 3); write each key once"},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(InvalidPlugins, BadConfigTest, ::testing::ValuesIn(kBadPluginCases),
                         [](const ::testing::TestParamInfo<BadCase>& case_info) {
                           return std::string(case_info.param.name);
                         });

// ParsePluginSettings (which the daemon runs before the plugin kinds exist)
// reports exactly what ParseConfig reports about the section.
class BadPluginSettingsTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadPluginSettingsTest, SameMessageAsParseConfig) {
  const BadCase& c = GetParam();
  const auto settings = ParsePluginSettings(Text(c.yaml), kFile);
  ASSERT_FALSE(settings.ok()) << "plugin settings unexpectedly valid";
  EXPECT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument);
  const auto config = ParseConfig(Text(c.yaml), kFile, Kinds());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(settings.status().message(), config.status().message());
}

INSTANTIATE_TEST_SUITE_P(InvalidPlugins, BadPluginSettingsTest,
                         ::testing::ValuesIn(kBadPluginCases),
                         [](const ::testing::TestParamInfo<BadCase>& case_info) {
                           return std::string(case_info.param.name);
                         });

TEST(BadConfigTableTest, HasEnoughPluginCases) {
  EXPECT_GE(std::size(kBadPluginCases), 8u);
}

// ---------------------------------------------------------------------------
// Several problems at once, in file order.

TEST(ConfigTest, ReportsEveryProblemInFileOrder) {
  const std::string yaml = Text(R"(
version: 1
routes:
  - {from: in, to: nowhere}
nodes:
  - name: g
    kind: gain
    params: {gain_db: 99}
  - {name: f, kind: filter}
engine: {sample_rate_hz: 1}
inputs: [{name: in}]
bogus: true
)");
  const auto result = ParseConfig(yaml, kFile, Kinds());
  ASSERT_FALSE(result.ok());
  const auto lines = Lines(std::string(result.status().message()));
  ASSERT_EQ(lines.size(), 5u) << result.status().message();
  EXPECT_EQ(lines[0].rfind("test.yaml:3:20: routes[0].to: unknown node 'nowhere'", 0), 0u)
      << lines[0];
  EXPECT_EQ(lines[1].rfind("test.yaml:7:23: nodes[0].params.gain_db: gain_db = 99 dB", 0), 0u)
      << lines[1];
  EXPECT_EQ(lines[2].rfind("test.yaml:8:21: nodes[1].kind: unknown kind 'filter'", 0), 0u)
      << lines[2];
  EXPECT_EQ(lines[3].rfind("test.yaml:9:26: engine.sample_rate_hz: sample_rate_hz = 1 Hz", 0), 0u)
      << lines[3];
  EXPECT_EQ(lines[4].rfind("test.yaml:11:1: bogus: unknown key 'bogus'", 0), 0u) << lines[4];
}

TEST(ConfigTest, StructuralErrorsDoNotCascade) {
  // channels is not a number: one error, and no channel mismatch for the
  // routes through that node (its width is unknown).
  const std::string yaml = Text(R"(
version: 1
inputs: [{name: in, channels: 2}]
outputs: [{name: out, channels: 2}]
nodes:
  - {name: g, kind: gain, channels: "2"}
routes:
  - {from: in, to: g}
  - {from: g, to: out}
)");
  const auto result = ParseConfig(yaml, kFile, Kinds());
  ASSERT_FALSE(result.ok());
  const auto lines = Lines(std::string(result.status().message()));
  ASSERT_EQ(lines.size(), 1u) << result.status().message();
  EXPECT_EQ(lines[0].rfind("test.yaml:5:37: nodes[0].channels: channels must be a whole number", 0),
            0u)
      << lines[0];
}

TEST(ConfigTest, BadParamValueKeepsOtherParamChecks) {
  // inputs is malformed: the gain range error is still reported, and the
  // mixer's gains_db-length rule (which would need inputs) stays quiet.
  const std::string yaml = Text(R"(
version: 1
nodes:
  - name: mix
    kind: mixer
    params:
      inputs: {count: 3}
      gains_db: [0, 99, 0]
)");
  const auto result = ParseConfig(yaml, kFile, Kinds());
  ASSERT_FALSE(result.ok());
  const auto lines = Lines(std::string(result.status().message()));
  ASSERT_EQ(lines.size(), 2u) << result.status().message();
  EXPECT_EQ(lines[0].rfind(
                "test.yaml:6:15: nodes[0].params.inputs: parameter 'inputs' must be a number", 0),
            0u)
      << lines[0];
  EXPECT_EQ(lines[1].rfind("test.yaml:7:21: nodes[0].params.gains_db[1]: gains_db[1] = 99 dB", 0),
            0u)
      << lines[1];
}

TEST(ConfigTest, YamlErrorNamesFileAndPosition) {
  const auto result = ParseConfig("version: 1\nnodes: [\n", "my.yaml", Kinds());
  ASSERT_FALSE(result.ok());
  const std::string message(result.status().message());
  EXPECT_EQ(message.rfind("my.yaml:", 0), 0u) << message;
  EXPECT_NE(message.find(": yaml: "), std::string::npos) << message;
  EXPECT_EQ(message.find("yaml-cpp:"), std::string::npos) << "raw exception text: " << message;
}

// Constructs that could make a file mean more or less than it shows are
// refused with their position; the plain equivalent is accepted.
TEST(ConfigTest, YamlConstructsThatHideContentAreRefused) {
  const std::string base =
      "version: 1\noutputs: [{name: out, channels: 1}]\n"
      "nodes:\n  - {name: g, kind: gain, params: {gain_db: -6}}\n"
      "routes: [{from: g, to: out}]\n";
  ASSERT_TRUE(ParseConfig(base, "ok.yaml", Kinds()).ok());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {base + "---\nversion: 1\n", "h.yaml:6:1: a second YAML document"},
      {"version: 1\nx: &a {gain_db: 1}\nnodes:\n  - {name: g, kind: gain, params: *a}\n",
       "h.yaml:2:"},  // the anchor is refused first
      {"version: 1\nnodes: &x []\n", "an anchor (&NAME)"},
      {"version: 1\nnodes:\n  - {name: g, kind: gain, <<: {channels: 2}}\n",
       "h.yaml:3:27: a merge key"},
      {"version: !!int 1\n", "h.yaml:1:10: the tag 'tag:yaml.org,2002:int'"},
      {"version: 1\nnodes: !custom []\n", "h.yaml:2:8: the tag '!custom'"},
  };
  for (const auto& [text, want] : cases) {
    const auto r = ParseConfig(text, "h.yaml", Kinds());
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find(want), absl::string_view::npos)
        << "want '" << want << "' in: " << r.status().message();
    // The plugins-only pass refuses the same.
    EXPECT_FALSE(ParsePluginSettings(text, "h.yaml").ok()) << text;
  }
  // Explicit core tags of the node's own type change nothing.
  EXPECT_TRUE(
      ParseConfig("version: 1\nnodes: !!seq []\nengine: !!map {}\n", "t.yaml", Kinds()).ok());
}

TEST(ConfigTest, GraphLimitsAreConfigurableAndEnforced) {
  std::string yaml = "version: 1\nengine: {max_nodes: 2}\nnodes:\n";
  for (int i = 0; i < 3; ++i) yaml += "  - {name: g" + std::to_string(i) + ", kind: gain}\n";
  const auto r = ParseConfig(yaml, "big.yaml", Kinds());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("3 nodes; this daemon allows at most 2 (engine.max_nodes)"),
            absl::string_view::npos)
      << r.status().message();
  EXPECT_FALSE(ParseConfig("version: 1\nengine: {max_routes: 0}\n", "z.yaml", Kinds()).ok());
}

// ---------------------------------------------------------------------------
// Valid configs.

TEST(ConfigTest, FanInAndFanOutValidate) {
  const std::string yaml = Text(R"(
version: 1
inputs:
  - {name: left, channels: 2}
  - {name: right, channels: 2}
outputs:
  - {name: main, channels: 2}
  - {name: monitor, channels: 2}
nodes:
  - {name: sum, kind: gain, channels: 2}
  - {name: osc, kind: tone, channels: 2}
  - {name: mix, kind: mixer, channels: 2, params: {inputs: 3, gains_db: [0, -3, -60]}}
routes:
  - {from: left, to: sum}          # fan-in: both inputs are summed into sum.in
  - {from: right.out, to: sum.in}
  - {from: sum, to: mix.in1}
  - {from: osc, to: mix.in3}
  - {from: left, to: mix.in2}      # fan-out of left
  - {from: mix, to: main}          # fan-out of mix
  - {from: mix.out, to: monitor.in}
)");
  SourceMap where;
  const auto result = ParseConfig(yaml, kFile, Kinds(), &where);
  ASSERT_TRUE(result.ok()) << result.status();
  const model::GraphSpec& g = result->graph;
  EXPECT_TRUE(model::ValidateGraph(g, Kinds()).empty());
  ASSERT_EQ(g.routes.size(), 7u);
  EXPECT_EQ(g.routes[1].from, (model::Endpoint{"right", "out"}));
  EXPECT_EQ(g.routes[1].to, (model::Endpoint{"sum", "in"}));

  const auto mix = model::LayoutOf(g, Kinds(), "mix");
  ASSERT_TRUE(mix.has_value());
  ASSERT_EQ(mix->inputs.size(), 3u);
  EXPECT_EQ(mix->inputs[2].name, "in3");
  EXPECT_EQ(mix->inputs[2].channels, 2);
  const auto left = model::LayoutOf(g, Kinds(), "left");
  ASSERT_TRUE(left.has_value());
  EXPECT_TRUE(left->inputs.empty());
  ASSERT_EQ(left->outputs.size(), 1u);
  EXPECT_EQ(left->outputs[0].name, "out");
  const auto monitor = model::LayoutOf(g, Kinds(), "monitor");
  ASSERT_TRUE(monitor.has_value());
  ASSERT_EQ(monitor->inputs.size(), 1u);
  EXPECT_EQ(monitor->inputs[0].name, "in");
  EXPECT_TRUE(monitor->outputs.empty());
  EXPECT_FALSE(model::LayoutOf(g, Kinds(), "nope").has_value());

  // The source map gives 1-based positions of fields.
  ASSERT_TRUE(where.count("nodes[2].params.gains_db[1]"));
  EXPECT_EQ(where.at("nodes[2].params.gains_db[1]").line, 11);
  EXPECT_EQ(where.at("nodes[2].params.gains_db[1]").column, 77);
  ASSERT_TRUE(where.count("routes[6].to"));
  EXPECT_EQ(where.at("routes[6].to").line, 19);
  EXPECT_EQ(where.at("routes[6].to").column, 25);
}

TEST(ConfigTest, DefaultsForOmittedSections) {
  const auto result = ParseConfig("version: 1\n", kFile, Kinds());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, Config{});
}

TEST(ConfigTest, ParamValueTypes) {
  const std::string yaml = Text(R"(
version: 1
nodes:
  - {name: g, kind: gain, params: {gain_db: -6, mute: true}}
  - {name: f, kind: biquad, params: {type: notch, freq_hz: 1e3, q: .5}}
  - {name: m, kind: mixer, params: {inputs: 0x2, gains_db: [-1.5, +2]}}
)");
  const auto result = ParseConfig(yaml, kFile, Kinds());
  ASSERT_TRUE(result.ok()) << result.status();
  const auto& n = result->graph.nodes;
  ASSERT_EQ(n.size(), 3u);
  EXPECT_EQ(n[0].params.at("gain_db"), model::ParamValue(-6.0));
  EXPECT_EQ(n[0].params.at("mute"), model::ParamValue(true));
  EXPECT_EQ(n[1].params.at("type"), model::ParamValue(std::string("notch")));
  EXPECT_EQ(n[1].params.at("freq_hz"), model::ParamValue(1000.0));
  EXPECT_EQ(n[1].params.at("q"), model::ParamValue(0.5));
  EXPECT_EQ(n[2].params.at("inputs"), model::ParamValue(2.0));
  EXPECT_EQ(n[2].params.at("gains_db"), model::ParamValue(std::vector<double>{-1.5, 2.0}));
}

TEST(ConfigTest, BackendTypeNullIsAWord) {
  // YAML reads a bare `null` as "no value"; here it is the backend's name.
  const auto result = ParseConfig(
      "version: 1\nbackend:\n  type: null\n  jack: {server_name: test}\n", kFile, Kinds());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->backend.type, "null");
  EXPECT_EQ(result->backend.jack_server_name, "test");
  EXPECT_EQ(result->backend.jack_client_name, "aersd");
}

TEST(ConfigTest, AlsaSection) {
  const auto result = ParseConfig(R"(version: 1
backend:
  type: alsa
  alsa:
    playback: hw:CARD=Speakers,DEV=0
    capture: "hw:1"
    period_frames: 64
    periods: 2
    sample_rate_hz: 96000
    format: s24_3
    priority: 80
    dither: false
    playback_channels: 4
    playback_map: [2, 3]
    capture_map: [0, 0]
)",
                                  kFile, Kinds());
  ASSERT_TRUE(result.ok()) << result.status();
  const AlsaSettings& a = result->backend.alsa;
  EXPECT_EQ(result->backend.type, "alsa");
  EXPECT_EQ(a.playback, "hw:CARD=Speakers,DEV=0");
  EXPECT_EQ(a.capture, "hw:1");
  EXPECT_EQ(a.period_frames, 64);
  EXPECT_EQ(a.periods, 2);
  EXPECT_EQ(a.sample_rate_hz, 96000.0);
  EXPECT_EQ(ParseAlsaFormat(a.format), AlsaFormat::kS24_3);
  EXPECT_EQ(a.priority, 80);
  EXPECT_FALSE(a.dither);
  EXPECT_EQ(a.playback_channels, 4);
  EXPECT_EQ(a.playback_map, (std::vector<int>{2, 3}));
  EXPECT_EQ(a.capture_map, (std::vector<int>{0, 0}));  // one device channel feeds two inputs
  // Defaults: the engine's period and rate, 3 periods, auto format, dither on.
  const auto plain =
      ParseConfig("version: 1\nbackend: {type: alsa, alsa: {playback: hw:0}}\n", kFile, Kinds());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->backend.alsa.period_frames, 0);
  EXPECT_EQ(plain->backend.alsa.sample_rate_hz, 0.0);
  EXPECT_EQ(plain->backend.alsa.periods, 3);
  EXPECT_EQ(plain->backend.alsa.format, "auto");
  EXPECT_TRUE(plain->backend.alsa.dither);
}

// ---------------------------------------------------------------------------
// Shipped configs and round trips.

std::vector<std::filesystem::path> ShippedConfigs() {
  const std::filesystem::path root = std::filesystem::path(AERS_SOURCE_ROOT) / "configs";
  std::vector<std::filesystem::path> files;
  for (const auto& dir : {root, root / "examples"}) {
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      const auto& p = entry.path();
      // Plugin manifests are YAML too, but not graph configs.
      if (p.extension() != ".yaml" || p.filename().string().find("manifest") != std::string::npos) {
        continue;
      }
      files.push_back(p);
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(ConfigTest, ShippedConfigsAreListed) {
  const auto files = ShippedConfigs();
  const auto has = [&](std::string_view name) {
    return std::any_of(files.begin(), files.end(),
                       [&](const auto& p) { return p.filename() == name; });
  };
  EXPECT_TRUE(has("default.yaml"));
  EXPECT_TRUE(has("reference-chain.yaml"));
  EXPECT_TRUE(has("tone-meter.yaml"));
  EXPECT_TRUE(has("mixer.yaml"));
}

TEST(ConfigTest, EveryShippedConfigParsesValidatesAndRoundTrips) {
  for (const auto& path : ShippedConfigs()) {
    SCOPED_TRACE(path.string());
    // Data files (convolver, peq) are found beside the config, as aersd does.
    const auto dir = path.parent_path();
    const auto kinds = dsp::MakeBuiltinRegistry(dsp::DataDirs{dir, {dir}});
    const auto config = LoadConfigFile(path.string(), *kinds);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_TRUE(model::ValidateGraph(config->graph, *kinds).empty());
    const std::string emitted = EmitConfig(*config);
    const auto again = ParseConfig(emitted, "emitted.yaml", *kinds);
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << emitted;
    EXPECT_EQ(*again, *config) << emitted;
  }
}

TEST(ConfigTest, DefaultConfigIsTheDocumentedChain) {
  const auto config =
      LoadConfigFile(std::string(AERS_SOURCE_ROOT) + "/configs/default.yaml", Kinds());
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& g = config->graph;
  std::vector<std::string> kinds;
  for (const auto& n : g.nodes) kinds.push_back(n.name + ":" + n.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{"trim:gain", "hp:biquad", "warmth:biquad",
                                             "out_meter:meter"}));
  ASSERT_NE(g.FindInput("main"), nullptr);
  EXPECT_EQ(g.FindInput("main")->channels, 2);
  ASSERT_NE(g.FindOutput("main_out"), nullptr);
  EXPECT_EQ(g.FindOutput("main_out")->channels, 2);
  EXPECT_EQ(g.FindNode("hp")->params.at("type"), model::ParamValue(std::string("highpass")));
  EXPECT_EQ(g.FindNode("hp")->params.at("freq_hz"), model::ParamValue(80.0));
  EXPECT_EQ(g.FindNode("warmth")->params.at("type"), model::ParamValue(std::string("lowshelf")));
  EXPECT_EQ(config->backend.type, "auto");
  EXPECT_EQ(config->engine.sample_rate_hz, 48000.0);
  EXPECT_EQ(config->engine.period_frames, 256);
}

TEST(ConfigTest, ReferenceChainIsChainR) {
  const auto config = LoadConfigFile(
      std::string(AERS_SOURCE_ROOT) + "/configs/examples/reference-chain.yaml", Kinds());
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& nodes = config->graph.nodes;
  ASSERT_EQ(nodes.size(), 9u);
  EXPECT_EQ(nodes[0].kind, "gain");
  EXPECT_EQ(nodes[0].params.at("gain_db"), model::ParamValue(-6.0));
  const double freqs[] = {40, 18000, 60, 16000, 80, 14000, 100, 12000};
  for (size_t i = 0; i < 8; ++i) {
    const auto& n = nodes[i + 1];
    EXPECT_EQ(n.kind, "biquad");
    EXPECT_EQ(n.channels, 2);
    EXPECT_EQ(n.params.at("type"), model::ParamValue(std::string(i % 2 ? "lowpass" : "highpass")));
    EXPECT_EQ(n.params.at("freq_hz"), model::ParamValue(freqs[i]));
    EXPECT_EQ(n.params.at("q"), model::ParamValue(0.7071));
  }
  ASSERT_NE(config->graph.FindInput("in"), nullptr);
  ASSERT_NE(config->graph.FindOutput("out"), nullptr);
}

// A config that uses every parameter type and values whose text is tricky.
Config EveryTypeConfig() {
  Config c;
  c.engine.sample_rate_hz = 44100.0;
  c.engine.period_frames = 64;
  c.engine.crossfade_ms = 0.1 + 0.2;  // 0.30000000000000004
  c.backend.type = "jack";
  c.backend.jack_client_name = "1e3";  // reads as a number unless quoted
  c.backend.jack_server_name = "null";
  c.backend.alsa.playback = "plughw:CARD=PCH,DEV=0";
  c.backend.alsa.capture = "true";  // a PCM of an asoundrc may have any name
  c.backend.alsa.period_frames = 128;
  c.backend.alsa.periods = 4;
  c.backend.alsa.sample_rate_hz = 44100.0;
  c.backend.alsa.format = "s24_3";
  c.backend.alsa.priority = 0;
  c.backend.alsa.dither = false;
  c.backend.alsa.playback_channels = 8;
  c.backend.alsa.playback_map = {7, 6};
  c.backend.alsa.capture_map = {1, 1, 0};
  c.graph.inputs = {{"in", 2, {"system:capture_1", "true"}}, {"123", 1, {"~"}}};
  c.graph.outputs = {{"out", 2, {"system:playback 1", "- x"}}};
  model::NodeSpec gain{"g", "gain", 2, {}};
  gain.params["gain_db"] = 20.0 * std::log10(0.5);  // -6.0205999132796242
  gain.params["mute"] = false;
  model::NodeSpec filter{"f", "biquad", 2, {}};
  filter.params["type"] = std::string("peaking");
  filter.params["freq_hz"] = 1000.0 / 3.0;
  filter.params["q"] = 0.025;
  filter.params["gain_db"] = -1e-300;
  model::NodeSpec mix{"m", "mixer", 2, {}};
  mix.params["inputs"] = 3.0;
  mix.params["gains_db"] = std::vector<double>{0.0, -119.99999999999999, 1.0 / 7.0};
  model::NodeSpec delay{"d", "delay", 2, {}};
  delay.params["max_delay_ms"] = 10000.0;
  delay.params["delay_ms"] = 5e-324;  // smallest subnormal
  model::NodeSpec tone{"t", "tone", 1, {}};
  tone.params["freq_hz"] = 0.1;
  tone.params["level_db"] = 0.0;
  model::NodeSpec meter{"meter-1", "meter", 1, {}};
  c.graph.nodes = {gain, filter, mix, delay, tone, meter};
  c.graph.routes = {
      {{"in", ""}, {"g", ""}},       {{"g", "out"}, {"f", "in"}},      {{"f", ""}, {"m", "in1"}},
      {{"in", "out"}, {"m", "in3"}}, {{"m", ""}, {"d", ""}},           {{"d", ""}, {"out", ""}},
      {{"t", ""}, {"meter-1", ""}},  {{"123", ""}, {"meter-1", "in"}},
  };
  return c;
}

TEST(ConfigTest, EveryTypeRoundTripsExactly) {
  const Config c = EveryTypeConfig();
  ASSERT_TRUE(model::ValidateGraph(c.graph, Kinds()).empty());
  const std::string emitted = EmitConfig(c);
  const auto parsed = ParseConfig(emitted, "emitted.yaml", Kinds());
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << emitted;
  EXPECT_EQ(*parsed, c) << emitted;
  // And the emitted text is stable.
  EXPECT_EQ(EmitConfig(*parsed), emitted);
  // Shortest exact digits, not 17 significant digits for everything.
  EXPECT_NE(emitted.find("q: 0.025\n"), std::string::npos) << emitted;
  EXPECT_NE(emitted.find("crossfade_ms: 0.30000000000000004\n"), std::string::npos) << emitted;
}

TEST(ConfigTest, TheGraphAsJsonReadsBackExactly) {
  // The state journal's records (state_store.h): JSON through the YAML
  // parser, every value type and the tricky texts of EveryTypeConfig.
  model::GraphSpec g = EveryTypeConfig().graph;
  g.outputs[0].connect[1] = "syst\u00e8me:sortie \"1\"";
  const auto json = EmitGraphJson(g);
  ASSERT_TRUE(json.has_value());
  EXPECT_EQ(json->find('\n'), std::string::npos) << "one line";
  const auto parsed = ParseGraphYaml(*json, "journal", Kinds());
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << *json;
  EXPECT_EQ(*parsed, g) << *json;
  EXPECT_EQ(*parsed, *ParseGraphYaml(EmitGraphYaml(g), "state", Kinds()));
  // What JSON cannot hold is refused, for the caller to write YAML.
  model::GraphSpec nan = g;
  nan.nodes[0].params["gain_db"] = std::nan("");
  EXPECT_FALSE(EmitGraphJson(nan).has_value());
  model::GraphSpec inf = g;
  inf.nodes[2].params["gains_db"] = std::vector<double>{0.0, -HUGE_VAL};
  EXPECT_FALSE(EmitGraphJson(inf).has_value());
  model::GraphSpec bytes = g;
  bytes.outputs[0].connect[0] = "\xff\xfe";
  EXPECT_FALSE(EmitGraphJson(bytes).has_value());
}

TEST(ConfigTest, TheGraphAsJsonIsTheSameTextWithTheCache) {
  // The journal keeps the text of unchanged nodes and routes between
  // records (GraphJsonCache): every edit gives the text a fresh encoding
  // gives, which is what nlohmann/json writes for the whole document.
  GraphJsonCache cache;
  model::GraphSpec g = EveryTypeConfig().graph;
  const auto same = [&](const model::GraphSpec& graph) {
    const auto cached = EmitGraphJson(graph, &cache);
    const auto fresh = EmitGraphJson(graph);
    ASSERT_EQ(cached.has_value(), fresh.has_value());
    if (!fresh) return;
    EXPECT_EQ(*cached, *fresh);
    EXPECT_EQ(nlohmann::ordered_json::parse(*fresh).dump(), *fresh);
    const auto parsed = ParseGraphYaml(*cached, "journal", Kinds());
    ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << *cached;
    EXPECT_EQ(*parsed, graph) << *cached;
  };
  ASSERT_GE(g.nodes.size(), 3u);
  ASSERT_FALSE(g.routes.empty());
  same(g);
  same(g);                              // all from the cache
  g.nodes[1].params["gain_db"] = -7.5;  // a fader
  same(g);
  g.nodes[1].params["gain_db"] = 0.0;
  same(g);
  g.nodes[1].params["gain_db"] = -0.0;  // equal to 0, but written "-0.0"
  same(g);
  std::swap(g.nodes[0], g.nodes[2]);  // the order is the graph's, not the cache's
  same(g);
  const std::string old_name = g.nodes[0].name;  // renamed with its routes
  g.nodes[0].name = "renamed";
  for (auto& r : g.routes) {
    for (model::Endpoint* e : {&r.from, &r.to}) {
      if (e->node == old_name) e->node = "renamed";
    }
  }
  same(g);
  g.nodes.push_back({"late", "gain", 2, {{"gain_db", 1.0}}});
  same(g);
  g.routes.pop_back();
  same(g);
  const model::RouteSpec middle = g.routes[1];  // a route out of the middle, then back at the end
  g.routes.erase(g.routes.begin() + 1);
  same(g);
  g.routes.push_back(middle);
  same(g);
  g.routes.clear();
  same(g);
  model::GraphSpec nan = g;
  nan.nodes[1].params["gain_db"] = std::nan("");
  EXPECT_FALSE(EmitGraphJson(nan, &cache).has_value()) << "never the cached text of the node";
  same(g);
  g.nodes.erase(g.nodes.begin());
  same(g);
  g.nodes.clear();
  same(g);
}

TEST(ConfigTest, EmittedConfigReadsWell) {
  const auto config =
      LoadConfigFile(std::string(AERS_SOURCE_ROOT) + "/configs/examples/mixer.yaml", Kinds());
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string emitted = EmitConfig(*config);
  EXPECT_EQ(emitted.rfind("version: 1\n", 0), 0u) << emitted;
  EXPECT_NE(emitted.find("gains_db: [0, -6]"), std::string::npos) << emitted;
  EXPECT_NE(emitted.find("- {from: mic, to: mix.in1}"), std::string::npos) << emitted;
}

// ---------------------------------------------------------------------------
// The plugins section.

// A kind registered under a plugin's name ("<plugin>/<kind>") that behaves
// like a built-in one, as if a plugin had been loaded.
class RenamedKind final : public model::NodeKind {
 public:
  RenamedKind(std::string name, const model::NodeKind& base)
      : name_(std::move(name)), base_(base) {}
  const std::string& name() const override { return name_; }
  std::string_view description() const override { return base_.description(); }
  const std::vector<model::ParamDesc>& params() const override { return base_.params(); }
  model::NodeLayout Layout(const model::NodeSpec& spec) const override {
    return base_.Layout(spec);
  }
  absl::StatusOr<std::unique_ptr<rt::Processor>> Instantiate(
      const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& params,
      const rt::StreamFormat& format) const override {
    return base_.Instantiate(spec, params, format);
  }

 private:
  std::string name_;
  const model::NodeKind& base_;
};

constexpr char kPluginConfig[] = R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: true
  trusted_keys_dir: /etc/aers/trusted-keys
  state_dir: /var/lib/aers/plugins
  allowed_system_dirs: [/usr/lib/ladspa]
  load: [example_gain]
  audit_log: /var/log/aers/plugin-audit.jsonl
inputs: [{name: in, channels: 2}]
outputs: [{name: out, channels: 2}]
nodes:
  - {name: g, kind: example_gain/gain, channels: 2, params: {gain_db: -6}}
routes:
  - {from: in, to: g}
  - {from: g, to: out}
)";

PluginSettings DocumentedPluginSettings() {
  PluginSettings p;
  p.root = "/usr/lib/aers/plugins";
  p.require_signature = true;
  p.trusted_keys_dir = "/etc/aers/trusted-keys";
  p.state_dir = "/var/lib/aers/plugins";
  p.allowed_system_dirs = {"/usr/lib/ladspa"};
  p.load = {"example_gain"};
  p.audit_log = "/var/log/aers/plugin-audit.jsonl";
  return p;
}

TEST(PluginSettingsTest, PluginKindsFirstThenTheGraph) {
  // What the daemon does at start: only the plugins section first ...
  const std::string yaml = Text(kPluginConfig);
  const auto settings = ParsePluginSettings(yaml, kFile);
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(*settings, DocumentedPluginSettings());

  // ... the whole file cannot be validated before the plugin kinds exist ...
  const auto without = ParseConfig(yaml, kFile, Kinds());
  ASSERT_FALSE(without.ok());
  EXPECT_NE(without.status().message().find(
                "test.yaml:13:21: nodes[0].kind: unknown kind 'example_gain/gain'"),
            std::string::npos)
      << without.status();

  // ... but can once they are registered ("loading the plugins").
  auto registry = dsp::MakeBuiltinRegistry();
  ASSERT_TRUE(
      registry->Add(std::make_shared<RenamedKind>("example_gain/gain", *registry->Find("gain")))
          .ok());
  const auto config = ParseConfig(yaml, kFile, *registry);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->plugins, *settings);
  EXPECT_EQ(config->graph.nodes.at(0).kind, "example_gain/gain");
}

TEST(PluginSettingsTest, AKindOfARefusedPluginSaysWhyItIsAbsent) {
  // The gate refused the plugin: the graph's error says why, not only that
  // the kind is unknown (the refusal itself is in an earlier log line).
  const std::string yaml = Text(kPluginConfig);
  auto registry = dsp::MakeBuiltinRegistry();
  registry->NoteRefusedPlugin("example_gain",
                              "plugin 'example_gain' refused (hash_mismatch): the module's hash "
                              "differs from the manifest");
  const auto config = ParseConfig(yaml, kFile, *registry);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(
                "test.yaml:13:21: nodes[0].kind: unknown kind 'example_gain/gain': its plugin was "
                "not loaded: plugin 'example_gain' refused (hash_mismatch): the module's hash "
                "differs from the manifest"),
            std::string::npos)
      << config.status();
  // Kinds of other plugins, and built-in names, are unknown as before.
  EXPECT_EQ(registry->RefusalOf("other/gain"), nullptr);
  EXPECT_EQ(registry->RefusalOf("example_gain"), nullptr);
  ASSERT_NE(registry->RefusalOf("example_gain/anything"), nullptr);
}

TEST(PluginSettingsTest, OnlyThePluginsSectionIsChecked) {
  // Problems elsewhere are ParseConfig's to report.
  const std::string yaml = Text(R"(
version: 7
engine: {sample_rate_hz: 1}
bogus: true
plugins: {root: /opt/aers/plugins, require_signature: false}
nodes: [{name: x, kind: nope}]
)");
  const auto settings = ParsePluginSettings(yaml, kFile);
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->root, "/opt/aers/plugins");
  EXPECT_FALSE(settings->require_signature);
  EXPECT_TRUE(settings->trusted_keys_dir.empty());
  EXPECT_TRUE(settings->load.empty());
  EXPECT_FALSE(ParseConfig(yaml, kFile, Kinds()).ok());
}

TEST(PluginSettingsTest, AbsentOrEmptySectionMeansNoPlugins) {
  for (const char* yaml : {"version: 1\n", "version: 1\nplugins:\n", "version: 1\nplugins: ~\n",
                           "- not a map\n", ""}) {
    SCOPED_TRACE(yaml);
    const auto settings = ParsePluginSettings(yaml, kFile);
    ASSERT_TRUE(settings.ok()) << settings.status();
    EXPECT_EQ(*settings, PluginSettings{});
    EXPECT_TRUE(settings->root.empty());
  }
  const auto config = ParseConfig("version: 1\nplugins:\n", kFile, Kinds());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->plugins, PluginSettings{});
  // And nothing about plugins is emitted for it.
  EXPECT_EQ(EmitConfig(*config).find("plugins"), std::string::npos) << EmitConfig(*config);
}

TEST(PluginSettingsTest, YamlErrorsAreReportedLikeParseConfig) {
  const std::string yaml = "version: 1\nplugins: {root: /p\n";
  const auto settings = ParsePluginSettings(yaml, "my.yaml");
  ASSERT_FALSE(settings.ok());
  const auto config = ParseConfig(yaml, "my.yaml", Kinds());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(settings.status().message(), config.status().message());
  EXPECT_EQ(std::string(settings.status().message()).rfind("my.yaml:", 0), 0u) << settings.status();
}

TEST(PluginSettingsTest, BadListEntryKeepsLaterIndices) {
  const std::string yaml = Text(R"(
version: 1
plugins:
  root: /usr/lib/aers/plugins
  require_signature: false
  load: [[nested], example_gain, example_gain]
)");
  const auto settings = ParsePluginSettings(yaml, kFile);
  ASSERT_FALSE(settings.ok());
  const auto lines = Lines(std::string(settings.status().message()));
  ASSERT_EQ(lines.size(), 2u) << settings.status();
  EXPECT_EQ(lines[0].rfind("test.yaml:5:10: plugins.load[0]: an entry of load must be a string", 0),
            0u)
      << lines[0];
  EXPECT_EQ(lines[1].rfind("test.yaml:5:34: plugins.load[2]: plugin 'example_gain' is listed "
                           "twice (first as load[1])",
                           0),
            0u)
      << lines[1];
}

TEST(PluginSettingsTest, SignaturesOffNeedNoKeys) {
  const auto settings = ParsePluginSettings(
      "version: 1\nplugins: {root: /srv/plugins, require_signature: false, load: []}\n", kFile);
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_FALSE(settings->require_signature);
  EXPECT_TRUE(settings->load.empty());  // empty: every directory under root
}

TEST(PluginSettingsTest, EveryFieldRoundTrips) {
  Config c = EveryTypeConfig();
  c.plugins = DocumentedPluginSettings();
  c.plugins.require_signature = false;
  // Text YAML would read as something else, and names that need quoting.
  c.plugins.root = "/srv/aers plugins/#1";
  c.plugins.trusted_keys_dir = "/etc/aers/keys: trusted";
  c.plugins.allowed_system_dirs = {"/usr/lib/ladspa", "/usr/local/lib/ladspa", "/opt/[x]"};
  c.plugins.load = {"true", "null", "example_gain", "false"};
  const std::string emitted = EmitConfig(c);
  const auto parsed = ParseConfig(emitted, "emitted.yaml", Kinds());
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << emitted;
  EXPECT_EQ(*parsed, c) << emitted;
  EXPECT_EQ(EmitConfig(*parsed), emitted);
  const auto settings = ParsePluginSettings(emitted, "emitted.yaml");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(*settings, c.plugins);
}

TEST(PluginSettingsTest, DocumentedExampleRoundTripsAndReadsWell) {
  auto registry = dsp::MakeBuiltinRegistry();
  ASSERT_TRUE(
      registry->Add(std::make_shared<RenamedKind>("example_gain/gain", *registry->Find("gain")))
          .ok());
  const auto config = ParseConfig(Text(kPluginConfig), kFile, *registry);
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string emitted = EmitConfig(*config);
  EXPECT_NE(emitted.find("plugins:\n  root: /usr/lib/aers/plugins\n  require_signature: true\n"),
            std::string::npos)
      << emitted;
  EXPECT_NE(emitted.find("  load: [example_gain]\n"), std::string::npos) << emitted;
  const auto again = ParseConfig(emitted, "emitted.yaml", *registry);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << emitted;
  EXPECT_EQ(*again, *config);
}

TEST(PluginSettingsTest, ProgrammaticSettingsAreValidatedToo) {
  // EmitConfig of settings built in code with no root: ParseConfig refuses.
  Config c;
  c.plugins.load = {"example_gain"};
  const auto parsed = ParseConfig(EmitConfig(c), "emitted.yaml", Kinds());
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("plugins.root"), std::string::npos) << parsed.status();
}

// ---------------------------------------------------------------------------
// Files and formatting.

TEST(ConfigTest, MissingFileIsNotFoundAndNamesTheFile) {
  const auto result = LoadConfigFile("/nonexistent/aers/config.yaml", Kinds());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(result.status().message().find("/nonexistent/aers/config.yaml"), std::string::npos);
}

TEST(ConfigTest, LoadedFileErrorsUseItsPath) {
  const std::string path = std::string(AERS_SOURCE_ROOT) + "/configs/default.yaml";
  const auto ok = LoadConfigFile(path, Kinds());
  ASSERT_TRUE(ok.ok()) << ok.status();
  const auto dir = LoadConfigFile(std::string(AERS_SOURCE_ROOT) + "/configs", Kinds());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("/configs"), std::string::npos) << dir.status();
}

TEST(ConfigTest, FormatIssuesUsesLongestKnownPrefix) {
  SourceMap where;
  where["nodes[1]"] = Mark{7, 5};
  where["routes[0].to"] = Mark{12, 17};
  const std::string text = FormatIssues({{"routes[0].to", "bad end"},
                                         {"nodes[1].params.gains_db[2]", "too loud"},
                                         {"version", "no position"}},
                                        where, "f.yaml");
  EXPECT_EQ(text,
            "f.yaml:7:5: nodes[1].params.gains_db[2]: too loud\n"
            "f.yaml:12:17: routes[0].to: bad end\n"
            "f.yaml: version: no position");
}

// ---------------------------------------------------------------------------
// Found by tests/fuzz/config_fuzz (the input stays in its corpus as regress-*).

// YAML escapes code points, not bytes: a value holding bytes that are not
// UTF-8 cannot be written back by EmitConfig (the state file); it came back
// with U+FFFD in their place (regress-invalid-utf8-roundtrip.yaml). Such
// values are refused where they are read; comments may hold anything.
TEST(ConfigTest, ValuesThatAreNotUtf8AreRefused) {
  const std::string plugins =
      "version: 1\n"
      "plugins:\n"
      "  root: /usr/lib/aers/plugins\n"
      "  trusted_keys_dir: \"/etc/aers/k\xe0"
      "eys\"\n";
  const std::string message =
      "test.yaml:4:21: plugins.trusted_keys_dir: trusted_keys_dir is not valid UTF-8 (byte 12 of "
      "the value); write the config as UTF-8 text";
  const auto config = ParseConfig(plugins, kFile, Kinds());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(std::string(config.status().message()), message);
  const auto settings = ParsePluginSettings(plugins, kFile);
  ASSERT_FALSE(settings.ok());
  EXPECT_EQ(std::string(settings.status().message()), message);

  const auto word =
      ParseConfig("version: 1\nnodes:\n  - {name: f, kind: biquad, params: {type: peak\xffing}}\n",
                  kFile, Kinds());
  ASSERT_FALSE(word.ok());
  EXPECT_EQ(std::string(word.status().message()),
            "test.yaml:3:44: nodes[0].params.type: parameter 'type' is not valid UTF-8 (byte 5 of "
            "the value); write the config as UTF-8 text");

  // Overlong forms, surrogates and code points above U+10FFFF are not UTF-8.
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    const auto r =
        ParseConfig(std::string("version: 1\ninputs: [{name: in, connect: [\"") + bad + "\"]}]\n",
                    kFile, Kinds());
    EXPECT_FALSE(r.ok()) << "accepted " << ::testing::PrintToString(std::string(bad));
  }
}

// yaml-cpp 0.7 never gets past a ',' outside [...] or {...}: every document
// it starts there is empty and consumes nothing, and reading "every
// document" looped forever (regress-stray-comma-hang.yaml).
TEST(ConfigTest, StrayCommaIsRefusedNotLoopedOn) {
  for (const char* text : {",o", ",", "[a, b]\n, c\n", "version: 1\nnodes: []\n---\n,\n"}) {
    const auto config = ParseConfig(text, kFile, Kinds());
    EXPECT_FALSE(config.ok()) << text;
    EXPECT_FALSE(ParsePluginSettings(text, kFile).ok()) << text;
  }
  EXPECT_EQ(std::string(ParseConfig(",o", kFile, Kinds()).status().message()),
            "test.yaml:1:1: no YAML node can start here (a ',' outside [...] or {...}?)");
}

// Found by tests/fuzz/config_fuzz (inputs that got slower with size): each
// issue was compared with every structural error before it, duplicate keys
// and plugin names were found by linear search, and every route with an
// unknown name listed (deduplicated by linear search) and measured itself
// against all sources: 2 MiB of ',' took hours, 8000 such routes minutes.
// Each shape below took from 10 s to minutes before; now well under one.
TEST(ConfigTest, ReadingCostGrowsLinearlyWithEntries) {
  constexpr int kEntries = 100000;
  std::string commas(kEntries, ',');
  std::string names, keys, routes = "routes:\n", nodes = "nodes:\n";
  for (int i = 0; i < kEntries; ++i) names += "p" + std::to_string(i) + ",";
  for (int i = 0; i < kEntries; ++i) keys += "k" + std::to_string(i) + ": 1,";
  for (int i = 0; i < 1000; ++i) nodes += "  - {name: n" + std::to_string(i) + ", kind: gain}\n";
  for (int i = 0; i < 8000; ++i) routes += "  - {from: x" + std::to_string(i) + ", to: n0}\n";
  const std::string plugins = "version: 1\nplugins: {root: /a, require_signature: false, load: [";
  const struct {
    const char* shape;
    std::string text;
    bool valid;
  } cases[] = {
      {"empty list entries", plugins + commas + "]}\n", false},
      {"empty nodes", "version: 1\nnodes: [" + commas + "]\n", false},
      {"distinct plugin names", plugins + names + "]}\n", true},
      {"distinct unknown keys", "version: 1\nengine: {" + keys + "}\n", false},
      {"routes from unknown nodes", "version: 1\n" + nodes + routes, false},
  };
  for (const auto& c : cases) {
    const auto start = std::chrono::steady_clock::now();
    const auto result = ParseConfig(c.text, kFile, Kinds());
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(result.ok(), c.valid) << c.shape << ": " << result.status();
    EXPECT_LT(took.count(), 20.0) << c.shape;
  }
}

// A graph over engine.max_nodes/max_routes is refused for its size alone:
// the limits also bound what validating it costs.
TEST(ConfigTest, GraphOverTheLimitsIsNotCheckedFurther) {
  std::string yaml = "version: 1\nnodes:\n";
  for (int i = 0; i < 1100; ++i) yaml += "  - {name: n, kind: nokind}\n";
  const auto result = ParseConfig(yaml, kFile, Kinds());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(std::string(result.status().message()),
            "test.yaml:3:3: nodes: 1100 nodes; this daemon allows at most 1024 (engine.max_nodes)");
}

TEST(ConfigTest, Utf8ValuesAndNonUtf8CommentsAreFine) {
  const std::string yaml =
      "# Verst\xe4rkung (a Latin-1 comment)\n"
      "version: 1\n"
      "plugins: {root: \"/opt/\xe2\x84\xb5/pl\xc3\xbcgins\", require_signature: false}\n"
      "inputs: [{name: in, connect: [\"system:\xf0\x9f\x8e\xa4 1\"]}]\n";
  const auto config = ParseConfig(yaml, kFile, Kinds());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->plugins.root, "/opt/\xe2\x84\xb5/pl\xc3\xbcgins");
  const auto again = ParseConfig(EmitConfig(*config), kFile, Kinds());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *config);
}

// ---------------------------------------------------------------------------
// ValidateGraph on specs built in code (the gRPC path has no YAML).

TEST(ValidateGraphTest, CollectsEveryIssueWithPaths) {
  model::GraphSpec g;
  g.version = 3;
  g.inputs = {{"in", 2, {}}};
  g.nodes = {{"a", "gain", 2, {{"gain_db", 100.0}}}, {"b", "nope", 1, {}}};
  g.routes = {{{"in", ""}, {"a", ""}}, {{"a", ""}, {"zz", ""}}};
  const auto issues = model::ValidateGraph(g, Kinds());
  std::vector<std::string> paths;
  paths.reserve(issues.size());
  for (const auto& i : issues) paths.push_back(i.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"version", "nodes[0].params.gain_db", "nodes[1].kind",
                                             "routes[1].to"}));
}

TEST(ValidateGraphTest, EmptyGraphIsValid) {
  EXPECT_TRUE(model::ValidateGraph(model::GraphSpec{}, Kinds()).empty());
}

// ---------------------------------------------------------------------------
// Issue codes: what kind of problem each line of an error is, for callers
// that act on it (never on the message text).

// The codes of every problem ParseGraphYaml reports for `yaml`, as
// "path code" in the error's order.
std::vector<std::string> CodesOf(std::string_view yaml) {
  std::vector<model::Issue> issues;
  const auto graph = ParseGraphYaml(Text(yaml), kFile, Kinds(), nullptr, &issues);
  std::vector<std::string> out;
  if (graph.ok()) return out;
  EXPECT_FALSE(issues.empty()) << graph.status();
  for (const auto& i : issues) out.push_back(i.path + " " + model::IssueCodeName(i.code));
  // One issue per line of the message (none beyond the cap here).
  EXPECT_EQ(Lines(std::string(graph.status().message())).size(), issues.size()) << graph.status();
  return out;
}

using Codes = std::vector<std::string>;

TEST(IssueCodeTest, Syntax) {
  EXPECT_EQ(CodesOf("version: 1\nnodes: [\n"), Codes{" syntax"});
  EXPECT_EQ(CodesOf("version: 1\ninputs: &a [{name: in}]\n"), Codes{" syntax"});
  EXPECT_EQ(CodesOf("version: 1\n---\nversion: 1\n"), Codes{" syntax"});
}

TEST(IssueCodeTest, Cycle) {
  EXPECT_EQ(CodesOf(R"(
version: 1
nodes:
  - {name: a, kind: gain}
  - {name: b, kind: gain}
routes:
  - {from: a, to: b}
  - {from: b, to: a}
)"),
            Codes{"routes[1] cycle"});
}

TEST(IssueCodeTest, UnknownNodeOutOfRangeDuplicateName) {
  EXPECT_EQ(CodesOf(R"(
version: 1
inputs:
  - {name: in}
nodes:
  - {name: a, kind: gain, params: {gain_db: 100}}
  - {name: in, kind: gain}
routes:
  - {from: in, to: nowhere}
)"),
            (Codes{"nodes[0].params.gain_db out_of_range", "nodes[1].name duplicate_name",
                   "routes[0].to unknown_node"}));
}

TEST(IssueCodeTest, ShapeOfTheDocument) {
  EXPECT_EQ(CodesOf(R"(
version: 1
colour: blue
engine: {sample_rate_hz: fast, period_frames: 4}
nodes:
  - {name: a, kind: gain, kind: mixer}
  - {kind: gain}
)"),
            (Codes{"colour unknown_field", "engine.sample_rate_hz wrong_type",
                   "engine.period_frames out_of_range", "nodes[0].kind duplicate_key",
                   "nodes[1].name missing_field"}));
  EXPECT_EQ(CodesOf("version: 1\nnodes: [{name: \"a\xff\", kind: gain}]\n"),
            Codes{"nodes[0].name not_utf8"});
  EXPECT_EQ(CodesOf("version: 1\nbackend: {type: pulse}\n"), Codes{"backend.type bad_value"});
  // backend.alsa: every field's rule, with its path.
  // type alsa without a device: the flags may still name one, so only the
  // daemon (with its flags applied) refuses it.
  EXPECT_EQ(CodesOf("version: 1\nbackend: {type: alsa}\n"), Codes{});
  {
    const auto issues = ValidateAlsa(AlsaSettings{}, /*selected=*/true);
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_EQ(issues[0].path, "backend.alsa");
    EXPECT_EQ(issues[0].code, model::IssueCode::kMissingField);
    AlsaSettings fractional;
    fractional.playback = "hw:0";
    fractional.sample_rate_hz = 48000.5;
    const auto f = ValidateAlsa(fractional, true);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].path, "backend.alsa.sample_rate_hz");
    EXPECT_NE(f[0].message.find("not a whole number"), std::string::npos) << f[0].message;
  }
  EXPECT_EQ(
      CodesOf(R"(
version: 1
backend:
  alsa:
    playback: hw:0
    periods: 1
    period_frames: 7
    sample_rate_hz: .nan
    format: s8
    priority: 100
    playback_channels: 2
    playback_map: [0, 0, 2]
    capture_map: [x, -1]
    buffer: 4
)"),
      (Codes{"backend.alsa.periods out_of_range", "backend.alsa.period_frames out_of_range",
             "backend.alsa.sample_rate_hz out_of_range", "backend.alsa.format bad_value",
             "backend.alsa.priority out_of_range", "backend.alsa.playback_map[1] duplicate_name",
             "backend.alsa.playback_map[2] out_of_range", "backend.alsa.capture_map[0] wrong_type",
             "backend.alsa.capture_map[1] out_of_range",
             "backend.alsa.buffer unknown_field"}));  // in file order
  EXPECT_EQ(CodesOf("version: 1\nplugins: {root: plugins, require_signature: false}\n"),
            Codes{"plugins.root bad_value"});
}

TEST(IssueCodeTest, ParseConfigReportsTheSameIssues) {
  const std::string yaml = Text(R"(
version: 1
nodes:
  - {name: a, kind: gain, params: {gain_db: 100}}
)");
  std::vector<model::Issue> from_config;
  std::vector<model::Issue> from_graph;
  const auto config = ParseConfig(yaml, kFile, Kinds(), nullptr, nullptr, &from_config);
  const auto graph = ParseGraphYaml(yaml, kFile, Kinds(), nullptr, &from_graph);
  ASSERT_FALSE(config.ok());
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(config.status(), graph.status());
  EXPECT_EQ(from_config, from_graph);
  ASSERT_EQ(from_config.size(), 1u);
  EXPECT_EQ(from_config[0].code, model::IssueCode::kOutOfRange);
  EXPECT_TRUE(model::HasIssue(from_config, model::IssueCode::kOutOfRange));
}

// ---------------------------------------------------------------------------
// Graph documents (graph_yaml.h): a config's graph, without its settings.

TEST(GraphYamlTest, ParsesTheGraphOfAConfig) {
  const std::string path = std::string(AERS_SOURCE_ROOT) + "/configs/default.yaml";
  const auto config = LoadConfigFile(path, Kinds());
  ASSERT_TRUE(config.ok()) << config.status();
  const auto text = ReadConfigText(path);
  ASSERT_TRUE(text.ok()) << text.status();
  const auto graph = ParseGraphYaml(*text, path, Kinds());
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_EQ(*graph, config->graph);
}

TEST(GraphYamlTest, EmitsAConfigWithDefaultSettings) {
  const auto config = ParseConfig(Text(R"(
version: 1
engine: {sample_rate_hz: 96000}
inputs: [{name: in, channels: 2}]
outputs: [{name: out, channels: 2}]
nodes: [{name: trim, kind: gain, channels: 2, params: {gain_db: -6}}]
routes: [{from: in, to: trim}, {from: trim, to: out}]
)"),
                                  kFile, Kinds());
  ASSERT_TRUE(config.ok()) << config.status();
  Config defaults;
  defaults.graph = config->graph;
  const std::string emitted = EmitGraphYaml(config->graph);
  EXPECT_EQ(emitted, EmitConfig(defaults));
  const auto again = ParseGraphYaml(emitted, "emitted.yaml", Kinds());
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << emitted;
  EXPECT_EQ(*again, config->graph);
}

// The settings sections of a graph document are checked as ParseConfig
// checks them: they are the context the graph is validated in.
TEST(GraphYamlTest, SettingsSectionsAreCheckedAndSetTheContext) {
  const auto bad = ParseGraphYaml("version: 1\nengine: {crossfade_ms: -1}\n", kFile, Kinds());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "test.yaml:2:24: engine.crossfade_ms: crossfade_ms = -1 ms is out of range; allowed 0 "
            "to 1000 ms");
  const std::string two_nodes =
      "version: 1\nnodes: [{name: a, kind: gain}, {name: b, kind: gain}]\n";
  EXPECT_TRUE(ParseGraphYaml(two_nodes, kFile, Kinds()).ok());
  const auto limited =
      ParseGraphYaml("engine: {max_nodes: 1}\n" + two_nodes, kFile, Kinds(), nullptr, nullptr);
  ASSERT_FALSE(limited.ok());
  EXPECT_NE(limited.status().message().find("(engine.max_nodes)"), std::string::npos)
      << limited.status();
}

}  // namespace
}  // namespace aers::config
