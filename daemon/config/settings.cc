// The settings sections of a config file: `engine:`, `backend:`, `plugins:`
// (settings.h).
//
// Thread: non-real-time.
#include "config/settings.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <string_view>

#include "model/strings.h"

namespace aers::config {
namespace internal {
namespace {

using model::Issue;
using model::IssueCode;
using strutil::Cat;
using strutil::JoinList;

// Ranges of the settings sections (documented in docs/config.md).
constexpr int kMinPeriodFrames = 16;
constexpr int kMaxPeriodFrames = 8192;
constexpr double kMaxCrossfadeMs = 1000.0;
constexpr size_t kMaxPluginName = 64;  // plugin::IsValidPluginName

std::string FormatNumberForMessage(double v) {
  return model::FormatParamValue(model::ParamValue(v));
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

void CheckRange(double v, double lo, double hi, std::string_view unit, const std::string& path,
                std::string_view label, std::vector<Issue>& issues) {
  const std::string range = Cat(FormatNumberForMessage(lo), " to ", FormatNumberForMessage(hi),
                                unit.empty() ? "" : " ", unit);
  if (!std::isfinite(v)) {
    issues.push_back({path, Cat(label, " is not a finite number; use a value from ", range),
                      IssueCode::kOutOfRange});
  } else if (v < lo || v > hi) {
    issues.push_back({path,
                      Cat(label, " = ", FormatNumberForMessage(v), unit.empty() ? "" : " ", unit,
                          " is out of range; allowed ", range),
                      IssueCode::kOutOfRange});
  }
}

// A plugin directory name, as the loader accepts it ([a-z][a-z0-9_-]*, at
// most 64; the same rule as plugin::IsValidPluginName, which config/ does
// not link against).
bool IsPluginName(std::string_view s) {
  if (s.empty() || s.size() > kMaxPluginName || s[0] < 'a' || s[0] > 'z') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || IsDigit(c) || c == '_' || c == '-';
  });
}

void CheckAbsolute(const std::string& value, const std::string& path, std::string_view label,
                   std::vector<Issue>& issues) {
  if (value.empty() || value.front() == '/') return;
  issues.push_back({path,
                    Cat(label, " '", value,
                        "' is not an absolute path; plugin paths must start with '/' "
                        "(relative paths would depend on the daemon's working directory)"),
                    IssueCode::kBadValue});
}

}  // namespace

void ParseEngine(Reader& r, const YAML::Node& node, const std::string& path, Mark fallback,
                 EngineSettings& out) {
  if (node.IsNull()) return;  // "engine:" alone: all defaults
  const auto fields = r.Map(
      node, path, "the engine section",
      {"sample_rate_hz", "period_frames", "crossfade_ms", "max_nodes", "max_routes"}, fallback);
  if (!fields) return;
  for (const Reader::Field& f : *fields) {
    const std::string p = Join(path, f.key);
    if (f.key == "sample_rate_hz") {
      if (auto v = r.Number(f.value, p, f.key, f.key_mark)) out.sample_rate_hz = *v;
    } else if (f.key == "period_frames") {
      if (auto v = r.Integer(f.value, p, f.key, f.key_mark)) out.period_frames = *v;
    } else if (f.key == "crossfade_ms") {
      if (auto v = r.Number(f.value, p, f.key, f.key_mark)) out.crossfade_ms = *v;
    } else if (f.key == "max_nodes") {
      if (auto v = r.Integer(f.value, p, f.key, f.key_mark)) out.max_nodes = *v;
    } else if (f.key == "max_routes") {
      if (auto v = r.Integer(f.value, p, f.key, f.key_mark)) out.max_routes = *v;
    }
  }
}

namespace {

// A list of integers (channel maps); an entry that is not one is reported
// and kept as -1 so later indices stay right.
void IntList(Reader& r, const YAML::Node& node, const std::string& path, std::string_view what,
             Mark fallback, std::vector<int>& out) {
  if (node.IsNull()) return;
  if (!r.List(node, path, what, "e.g. [0, 1]", fallback)) return;
  const Mark list_mark = r.MarkOf(node, fallback);
  size_t i = 0;
  for (const auto& item : node) {
    auto v = r.Integer(item, Indexed(path, i++), Cat("an entry of ", what), list_mark);
    out.push_back(v ? *v : -1);
  }
}

void ParseAlsa(Reader& r, const YAML::Node& node, const std::string& path, Mark fallback,
               AlsaSettings& out) {
  if (node.IsNull()) return;
  const auto fields = r.Map(
      node, path, "the alsa section",
      {"playback", "capture", "period_frames", "periods", "sample_rate_hz", "format", "priority",
       "dither", "playback_channels", "capture_channels", "playback_map", "capture_map"},
      fallback);
  if (!fields) return;
  for (const Reader::Field& f : *fields) {
    const std::string p = Join(path, f.key);
    if (f.key == "playback") {
      if (auto v = r.String(f.value, p, f.key, f.key_mark)) out.playback = *v;
    } else if (f.key == "capture") {
      if (auto v = r.String(f.value, p, f.key, f.key_mark)) out.capture = *v;
    } else if (f.key == "period_frames") {
      if (auto v = r.Integer(f.value, p, f.key, f.key_mark)) out.period_frames = *v;
    } else if (f.key == "periods") {
      if (auto v = r.Integer(f.value, p, f.key, f.key_mark)) out.periods = *v;
    } else if (f.key == "sample_rate_hz") {
      if (auto v = r.Number(f.value, p, f.key, f.key_mark)) out.sample_rate_hz = *v;
    } else if (f.key == "format") {
      if (auto v = r.String(f.value, p, f.key, f.key_mark)) out.format = *v;
    } else if (f.key == "priority") {
      if (auto v = r.Integer(f.value, p, f.key, f.key_mark)) out.priority = *v;
    } else if (f.key == "dither") {
      if (auto v = r.Bool(f.value, p, f.key, f.key_mark)) out.dither = *v;
    } else if (f.key == "playback_channels") {
      if (auto v = r.Integer(f.value, p, f.key, f.key_mark)) out.playback_channels = *v;
    } else if (f.key == "capture_channels") {
      if (auto v = r.Integer(f.value, p, f.key, f.key_mark)) out.capture_channels = *v;
    } else if (f.key == "playback_map") {
      IntList(r, f.value, p, "playback_map", f.key_mark, out.playback_map);
    } else if (f.key == "capture_map") {
      IntList(r, f.value, p, "capture_map", f.key_mark, out.capture_map);
    }
  }
}

}  // namespace

void ParseBackend(Reader& r, const YAML::Node& node, const std::string& path, Mark fallback,
                  BackendSettings& out) {
  if (node.IsNull()) return;
  const auto fields = r.Map(node, path, "the backend section", {"type", "jack", "alsa"}, fallback);
  if (!fields) return;
  for (const Reader::Field& f : *fields) {
    const std::string p = Join(path, f.key);
    if (f.key == "type") {
      if (auto v = r.String(f.value, p, "type", f.key_mark)) out.type = *v;
    } else if (f.key == "alsa") {
      ParseAlsa(r, f.value, p, f.key_mark, out.alsa);
    } else if (f.key == "jack") {
      if (f.value.IsNull()) continue;
      const auto jack =
          r.Map(f.value, p, "the jack section", {"client_name", "server_name"}, f.key_mark);
      if (!jack) continue;
      for (const Reader::Field& j : *jack) {
        const std::string jp = Join(p, j.key);
        if (j.key == "client_name") {
          if (auto v = r.String(j.value, jp, j.key, j.key_mark)) out.jack_client_name = *v;
        } else if (j.key == "server_name") {
          if (auto v = r.String(j.value, jp, j.key, j.key_mark)) out.jack_server_name = *v;
        }
      }
    }
  }
}

void ParsePlugins(Reader& r, const YAML::Node& node, const std::string& path, Mark fallback,
                  PluginSettings& out) {
  if (node.IsNull()) return;  // "plugins:" alone: no plugins
  const auto fields = r.Map(node, path, "the plugins section",
                            {"root", "require_signature", "trusted_keys_dir", "state_dir",
                             "allowed_system_dirs", "load", "audit_log"},
                            fallback);
  if (!fields) return;
  r.Require(*fields, {"root"}, path, "the plugins section", r.MarkOf(node, fallback),
            "root: /usr/lib/aers/plugins");
  for (const Reader::Field& f : *fields) {
    const std::string p = Join(path, f.key);
    if (f.key == "root") {
      if (auto v = r.Path(f.value, p, f.key, "/usr/lib/aers/plugins", f.key_mark)) out.root = *v;
    } else if (f.key == "require_signature") {
      if (auto v = r.Bool(f.value, p, f.key, f.key_mark)) {
        out.require_signature = *v;
      } else {
        // Unknown: the config is refused anyway; do not also report that
        // signatures need trusted_keys_dir.
        out.require_signature = false;
      }
    } else if (f.key == "trusted_keys_dir") {
      if (auto v = r.Path(f.value, p, f.key, "/etc/aers/trusted-keys", f.key_mark)) {
        out.trusted_keys_dir = *v;
      }
    } else if (f.key == "state_dir") {
      if (auto v = r.Path(f.value, p, f.key, "/var/lib/aers/plugins", f.key_mark))
        out.state_dir = *v;
    } else if (f.key == "audit_log") {
      if (auto v = r.Path(f.value, p, f.key, "/var/log/aers/plugin-audit.jsonl", f.key_mark)) {
        out.audit_log = *v;
      }
    } else if (f.key == "allowed_system_dirs") {
      r.StringList(f.value, p, "allowed_system_dirs", "e.g. [/usr/lib/ladspa]", f.key_mark,
                   out.allowed_system_dirs);
    } else if (f.key == "load") {
      r.StringList(f.value, p, "load", "plugin directory names, e.g. [example_gain]", f.key_mark,
                   out.load);
    }
  }
}

std::vector<Issue> ValidatePlugins(const PluginSettings& p) {
  std::vector<Issue> issues;
  CheckAbsolute(p.root, "plugins.root", "root", issues);
  CheckAbsolute(p.trusted_keys_dir, "plugins.trusted_keys_dir", "trusted_keys_dir", issues);
  CheckAbsolute(p.state_dir, "plugins.state_dir", "state_dir", issues);
  CheckAbsolute(p.audit_log, "plugins.audit_log", "audit_log", issues);
  for (size_t i = 0; i < p.allowed_system_dirs.size(); ++i) {
    const std::string path = Indexed("plugins.allowed_system_dirs", i);
    if (p.allowed_system_dirs[i].empty()) {
      issues.push_back({path,
                        "an allowed system directory is empty; write an absolute path "
                        "such as /usr/lib/ladspa",
                        IssueCode::kBadValue});
    }
    CheckAbsolute(p.allowed_system_dirs[i], path, "allowed system directory", issues);
  }
  std::map<std::string_view, size_t> first_listed;  // name -> index in load
  for (size_t i = 0; i < p.load.size(); ++i) {
    const std::string path = Indexed("plugins.load", i);
    const std::string& name = p.load[i];
    if (!IsPluginName(name)) {
      issues.push_back({path,
                        Cat("'", name,
                            "' is not a plugin directory name; write the name of one directory "
                            "beneath root ([a-z][a-z0-9_-]*, at most 64 characters, no '/')"),
                        IssueCode::kBadName});
      continue;
    }
    const auto [first, inserted] = first_listed.emplace(name, i);
    if (!inserted) {
      issues.push_back({path,
                        Cat("plugin '", name, "' is listed twice (first as load[", first->second,
                            "]); list it once"),
                        IssueCode::kDuplicateName});
    }
  }
  if (!p.root.empty() && p.require_signature && p.trusted_keys_dir.empty()) {
    issues.push_back({"plugins.trusted_keys_dir",
                      "require_signature is true but no trusted_keys_dir is given, so every "
                      "plugin would be refused; set trusted_keys_dir (e.g. /etc/aers/trusted-keys) "
                      "or require_signature: false",
                      IssueCode::kMissingField});
  }
  if (p.root.empty() &&
      (!p.load.empty() || !p.trusted_keys_dir.empty() || !p.state_dir.empty() ||
       !p.allowed_system_dirs.empty() || !p.audit_log.empty() || !p.require_signature)) {
    issues.push_back({"plugins.root",
                      "plugin settings without a root; set root "
                      "(e.g. /usr/lib/aers/plugins)",
                      IssueCode::kMissingField});
  }
  return issues;
}

namespace {

std::vector<Issue> ValidateAlsaSection(const AlsaSettings& a, bool selected) {
  std::vector<Issue> issues;
  const std::string base = "backend.alsa";
  if (selected && a.playback.empty() && a.capture.empty()) {
    issues.push_back({base,
                      "backend type alsa needs a device: set backend.alsa.playback and/or "
                      "backend.alsa.capture (e.g. playback: hw:0), or --alsa_playback/"
                      "--alsa_capture",
                      IssueCode::kMissingField});
  }
  for (const auto& [value, field] :
       {std::pair{&a.playback, "playback"}, std::pair{&a.capture, "capture"}}) {
    if (value->size() > 256 ||
        value->find_first_of(std::string_view("\0\n", 2)) != std::string::npos) {
      issues.push_back({Cat(base, ".", field),
                        Cat(field, " is not an ALSA PCM name (at most 256 bytes, one line)"),
                        IssueCode::kBadValue});
    }
  }
  if (a.period_frames != 0) {
    CheckRange(a.period_frames, kMinPeriodFrames, kMaxPeriodFrames, "frames",
               Cat(base, ".period_frames"), "period_frames", issues);
  }
  CheckRange(a.periods, kMinAlsaPeriods, kMaxAlsaPeriods, "", Cat(base, ".periods"), "periods",
             issues);
  if (a.sample_rate_hz != 0.0) {
    const size_t before = issues.size();
    CheckRange(a.sample_rate_hz, kMinSampleRateHz, kMaxSampleRateHz, "Hz",
               Cat(base, ".sample_rate_hz"), "sample_rate_hz", issues);
    if (issues.size() == before && a.sample_rate_hz != std::round(a.sample_rate_hz)) {
      issues.push_back({Cat(base, ".sample_rate_hz"),
                        Cat("sample_rate_hz = ", FormatNumberForMessage(a.sample_rate_hz),
                            " Hz is not a whole number; ALSA devices run at whole rates"),
                        IssueCode::kBadValue});
    }
  }
  if (!ParseAlsaFormat(a.format)) {
    issues.push_back({Cat(base, ".format"),
                      Cat("unknown sample format '", a.format,
                          "'; expected one of: ", JoinList(kAlsaFormatNames, ", ")),
                      IssueCode::kBadValue});
  }
  CheckRange(a.priority, 0, 99, "", Cat(base, ".priority"), "priority", issues);
  const auto check_map = [&](const std::vector<int>& map, int channels, const char* field,
                             bool unique) {
    CheckRange(channels, 0, kMaxAlsaChannels, "channels", Cat(base, ".", field, "_channels"),
               Cat(field, "_channels"), issues);
    const int limit = channels > 0 ? channels : kMaxAlsaChannels;
    std::map<int, size_t> first;
    for (size_t i = 0; i < map.size(); ++i) {
      const std::string p = Indexed(Cat(base, ".", field, "_map"), i);
      if (map[i] < 0 || map[i] >= limit) {
        issues.push_back(
            {p,
             Cat("device channel ", map[i], " does not exist; ",
                 channels > 0 ? Cat(field, "_channels is ", channels, ", so use 0 to ", limit - 1)
                              : Cat("use 0 to ", limit - 1)),
             IssueCode::kOutOfRange});
        continue;
      }
      const auto [it, inserted] = first.emplace(map[i], i);
      if (unique && !inserted) {
        issues.push_back({p,
                          Cat("device channel ", map[i], " is already written by graph channel ",
                              it->second, " (", field, "_map[", it->second,
                              "]); each device channel takes one graph channel"),
                          IssueCode::kDuplicateName});
      }
    }
    if (map.size() > static_cast<size_t>(kMaxAlsaChannels)) {
      issues.push_back({Cat(base, ".", field, "_map"),
                        Cat("lists ", map.size(), " channels; at most ", kMaxAlsaChannels),
                        IssueCode::kOutOfRange});
    }
  };
  check_map(a.playback_map, a.playback_channels, "playback", true);
  check_map(a.capture_map, a.capture_channels, "capture", false);
  return issues;
}

}  // namespace

std::vector<Issue> ValidateSettings(const Config& c, const model::NamingLimits& names) {
  std::vector<Issue> issues = ValidatePlugins(c.plugins);
  // The device may come from --alsa_playback/--alsa_capture: the daemon
  // checks that one is given once its flags are applied.
  for (Issue& i : ValidateAlsaSection(c.backend.alsa, false)) {
    issues.push_back(std::move(i));
  }
  CheckRange(c.engine.sample_rate_hz, kMinSampleRateHz, kMaxSampleRateHz, "Hz",
             "engine.sample_rate_hz", "sample_rate_hz", issues);
  CheckRange(c.engine.period_frames, kMinPeriodFrames, kMaxPeriodFrames, "frames",
             "engine.period_frames", "period_frames", issues);
  CheckRange(c.engine.crossfade_ms, 0.0, kMaxCrossfadeMs, "ms", "engine.crossfade_ms",
             "crossfade_ms", issues);
  CheckRange(c.engine.max_nodes, 1, kMaxGraphElements, "nodes", "engine.max_nodes", "max_nodes",
             issues);
  CheckRange(c.engine.max_routes, 1, kMaxGraphElements, "routes", "engine.max_routes", "max_routes",
             issues);
  if (std::find(kBackendTypeNames.begin(), kBackendTypeNames.end(), c.backend.type) ==
      kBackendTypeNames.end()) {
    issues.push_back({"backend.type",
                      Cat("unknown backend type '", c.backend.type,
                          "'; expected one of: ", JoinList(kBackendTypeNames, ", ")),
                      IssueCode::kBadValue});
  }
  // The naming policy (model/naming.h) with the backend's length limit.
  if (auto bad = model::CheckIdentifier(c.backend.jack_client_name, "client_name",
                                        names.max_client_name_bytes)) {
    issues.push_back({"backend.jack.client_name", *bad, IssueCode::kBadName});
  }
  return issues;
}

}  // namespace internal

std::vector<model::Issue> ValidateAlsa(const AlsaSettings& alsa, bool selected) {
  return internal::ValidateAlsaSection(alsa, selected);
}

model::GraphLimits GraphLimitsOf(const EngineSettings& engine) {
  return {static_cast<size_t>(std::max(engine.max_nodes, 1)),
          static_cast<size_t>(std::max(engine.max_routes, 1))};
}

}  // namespace aers::config
