// YAML <-> configuration. yaml-cpp stays behind this wall: nothing outside
// daemon/config/ includes it, and its exceptions never leave this layer.
// This header and graph_yaml.h (a graph alone, without the settings) are
// the layer's API; the other headers in daemon/config/ are internal to it.
//
// Thread: non-real-time.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/graph.h"
#include "model/kind.h"
#include "model/naming.h"
#include "model/validate.h"

namespace aers::config {

/// Where a field was written: 1-based line and column.
struct Mark {
  int line = 0;
  int column = 0;
};

/// Field path ("nodes[2].params.gain_db") -> where its value starts in the
/// file. Paths of maps and lists map to the start of the map/list.
using SourceMap = std::map<std::string, Mark, std::less<>>;

/// `engine:` section.
/// Sample rates the engine accepts (config, render flags), Hz.
inline constexpr double kMinSampleRateHz = 8000.0;
inline constexpr double kMaxSampleRateHz = 384000.0;

struct EngineSettings {
  double sample_rate_hz = 48000.0;  ///< null/offline backends; JACK imposes its own
  int period_frames = 256;          ///< null backend period; largest for offline
  double crossfade_ms = 5.0;
  /// Largest graph accepted from the config, the state file and RPCs.
  int max_nodes = 1024;
  int max_routes = 8192;
  friend bool operator==(const EngineSettings&, const EngineSettings&) = default;
};

/// Upper bound of engine.max_nodes and engine.max_routes.
inline constexpr int kMaxGraphElements = 1 << 16;

/// The graph limits an engine section sets.
model::GraphLimits GraphLimitsOf(const EngineSettings& engine);

/// The audio backends (backend.type, aersd --backend): `auto` takes JACK
/// when a server answers, else ALSA when backend.alsa names a device that
/// opens, else the null backend.
enum class BackendType { kAuto, kJack, kAlsa, kNull };
/// Their names, in the order of the enum.
inline constexpr std::array<std::string_view, 4> kBackendTypeNames = {"auto", "jack", "alsa",
                                                                      "null"};
/// nullopt for a name that is not one of kBackendTypeNames.
std::optional<BackendType> ParseBackendType(std::string_view name);
/// "auto, jack, alsa, null": the names for messages.
std::string BackendTypeList();

/// Sample formats of the ALSA backend (backend.alsa.format), all
/// little-endian: FLOAT_LE, S32_LE, S24_LE (24 bits in 4 bytes), S24_3LE
/// (packed), S16_LE. `auto` takes the first the device accepts in that order.
enum class AlsaFormat { kAuto, kFloat, kS32, kS24, kS24_3, kS16 };
inline constexpr std::array<std::string_view, 6> kAlsaFormatNames = {"auto", "float", "s32",
                                                                     "s24",  "s24_3", "s16"};
/// nullopt for a name that is not one of kAlsaFormatNames.
std::optional<AlsaFormat> ParseAlsaFormat(std::string_view name);

/// Ranges of backend.alsa (docs/config.md).
inline constexpr int kMinAlsaPeriods = 2;
inline constexpr int kMaxAlsaPeriods = 64;
inline constexpr int kMaxAlsaChannels = 256;

/// `backend.alsa:` section: the ALSA backend (docs/running.md).
struct AlsaSettings {
  /// ALSA PCM names ("hw:CARD=x,DEV=0", "plughw:1", a PCM of an asoundrc);
  /// empty: no playback / no capture. At least one for type alsa.
  std::string playback;
  std::string capture;
  int period_frames = 0;        ///< frames per period; 0: engine.period_frames
  int periods = 3;              ///< periods per device buffer
  double sample_rate_hz = 0.0;  ///< Hz; 0: engine.sample_rate_hz
  std::string format = "auto";  ///< one of kAlsaFormatNames
  int priority = 70;            ///< SCHED_FIFO priority of the audio thread; 0: default policy
  bool dither = true;           ///< TPDF dither when writing S16
  /// Device channels; 0: as many as the graph has (output channels for
  /// playback, input channels for capture).
  int playback_channels = 0;
  int capture_channels = 0;
  /// Explicit channel maps (0-based): playback_map[i] is the device channel
  /// that graph output channel i is written to (device channels no entry
  /// names get silence); capture_map[i] the device channel graph input
  /// channel i reads. Empty: channel i <-> device channel i.
  std::vector<int> playback_map;
  std::vector<int> capture_map;
  friend bool operator==(const AlsaSettings&, const AlsaSettings&) = default;
};

/// backend.alsa on its own (ranges, format name, channel maps), with paths
/// "backend.alsa.FIELD"; `selected`: the backend type is alsa (a device is
/// then required). The daemon also runs it after its flags override fields.
std::vector<model::Issue> ValidateAlsa(const AlsaSettings& alsa, bool selected);

/// `backend:` section.
struct BackendSettings {
  std::string type = "auto";  ///< one of kBackendTypeNames
  std::string jack_client_name = "aersd";
  std::string jack_server_name;  ///< empty: the default server
  AlsaSettings alsa;
  friend bool operator==(const BackendSettings&, const BackendSettings&) = default;
};

/// `plugins:` section (docs/config.md, docs/plugins.md). Absent (or `plugins:`
/// with no value): `root` is empty and no plugin is loaded. Every path is
/// absolute. daemon::ToPluginPolicy (daemon/plugin_policy.h) turns it
/// into the loader's policy.
struct PluginSettings {
  std::string root;               ///< one directory per plugin beneath it; "" = no plugins
  bool require_signature = true;  ///< refuse plugins without a trusted signature
  std::string trusted_keys_dir;   ///< minisign *.pub files
  std::string state_dir;          ///< highest accepted serial per plugin; "" = no rollback check
  std::vector<std::string> allowed_system_dirs;  ///< where LADSPA manifests may point
  std::vector<std::string> load;  ///< directory names to load at start; empty = all under root
  std::string audit_log;          ///< JSON-lines audit file; "" = none
  friend bool operator==(const PluginSettings&, const PluginSettings&) = default;
};

/// A whole config file: daemon settings plus the graph.
struct Config {
  EngineSettings engine;
  BackendSettings backend;
  PluginSettings plugins;
  model::GraphSpec graph;
  friend bool operator==(const Config&, const Config&) = default;
};

/// Parses YAML text and validates the result as a whole (model::ValidateGraph
/// plus the settings sections). On failure: INVALID_ARGUMENT whose message
/// has one line per problem, "FILE:LINE:COLUMN: PATH: MESSAGE", in file order
/// (at most model::kMaxReportedIssues, then "... and N more problems").
///
/// `names`: the backend's name limits (model/naming.h); its client_name, if
/// empty, is taken from the config (backend.jack.client_name). Null: the
/// default limits. Parameter ranges that follow the sample rate are checked
/// at engine.sample_rate_hz (the backend re-checks them at its actual rate).
/// `issues`: if not null, every problem of a refused config is appended
/// with its model::IssueCode, in the message's order (none left out); a YAML
/// syntax error or refused construct is one kSyntax issue with an empty path.
absl::StatusOr<Config> ParseConfig(std::string_view yaml, std::string_view filename,
                                   const model::KindRegistry& kinds, SourceMap* where = nullptr,
                                   const model::NamingLimits* names = nullptr,
                                   std::vector<model::Issue>* issues = nullptr);

/// Parses and checks only the `plugins:` section of a whole config file, with
/// ParseConfig's error format (only problems inside `plugins:` and YAML
/// syntax errors are reported; the rest of the file is not looked at). Plugin
/// kinds must be registered before the graph can be validated, so the daemon
/// calls this first, loads the plugins into its registry, and then runs
/// ParseConfig on the same text with the full registry. No `plugins:`
/// section: PluginSettings{} (empty root, nothing to load).
absl::StatusOr<PluginSettings> ParsePluginSettings(std::string_view yaml,
                                                   std::string_view filename);

/// Reads a config file whole (NOT_FOUND / PERMISSION_DENIED /
/// FAILED_PRECONDITION, e.g. a directory, name the file and the reason).
absl::StatusOr<std::string> ReadConfigText(const std::string& path);

/// Reads and parses a file (NOT_FOUND / PERMISSION_DENIED name the file).
absl::StatusOr<Config> LoadConfigFile(const std::string& path, const model::KindRegistry& kinds,
                                      SourceMap* where = nullptr,
                                      const model::NamingLimits* names = nullptr);

/// YAML for a config; ParseConfig(EmitConfig(c)) == c. (A graph alone:
/// EmitGraphYaml in config/graph_yaml.h.)
std::string EmitConfig(const Config& config);

/// Formats issues as "FILE:LINE:COLUMN: PATH: MESSAGE" lines (the longest
/// known prefix of PATH gives the position; "FILE: PATH: MESSAGE" if none).
std::string FormatIssues(const std::vector<model::Issue>& issues, const SourceMap& where,
                         std::string_view filename);

}  // namespace aers::config
