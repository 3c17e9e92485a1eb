// Config -> YAML (EmitConfig in config.h, EmitGraphYaml in graph_yaml.h).
//
// Thread: non-real-time.
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config/config.h"
#include "config/graph_yaml.h"
#include "config/yaml_read.h"
#include "model/strings.h"

namespace aers::config {
namespace {

using internal::ReadsAsString;
using model::ParamValue;
using strutil::Cat;

// Shortest text that reads back as exactly `v`, in a form YAML's core schema
// reads as a number.
std::string FormatDouble(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void EmitString(YAML::Emitter& out, const std::string& s) {
  out << s;
}

// A string parameter value: quoted when plain text would read as another type.
void EmitWord(YAML::Emitter& out, const std::string& s) {
  if (ReadsAsString(s)) {
    out << s;
  } else {
    out << YAML::DoubleQuoted << s;
  }
}

void EmitParam(YAML::Emitter& out, const ParamValue& v) {
  if (const auto* b = std::get_if<bool>(&v)) {
    out << (*b ? "true" : "false");
  } else if (const auto* d = std::get_if<double>(&v)) {
    out << FormatDouble(*d);
  } else if (const auto* s = std::get_if<std::string>(&v)) {
    EmitWord(out, *s);
  } else {
    out << YAML::Flow << YAML::BeginSeq;
    for (double e : std::get<std::vector<double>>(v)) out << FormatDouble(e);
    out << YAML::EndSeq;
  }
}

void EmitPorts(YAML::Emitter& out, std::string_view key,
               const std::vector<model::ExternalPort>& ports) {
  if (ports.empty()) return;
  out << YAML::Key << std::string(key) << YAML::Value << YAML::BeginSeq;
  for (const auto& p : ports) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value;
    EmitString(out, p.name);
    out << YAML::Key << "channels" << YAML::Value << p.channels;
    if (!p.connect.empty()) {
      out << YAML::Key << "connect" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const auto& c : p.connect) EmitString(out, c);
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

}  // namespace

std::string EmitConfig(const Config& config) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::BeginMap;
  out << YAML::Key << "version" << YAML::Value << config.graph.version;

  out << YAML::Key << "engine" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "sample_rate_hz" << YAML::Value << FormatDouble(config.engine.sample_rate_hz);
  out << YAML::Key << "period_frames" << YAML::Value << config.engine.period_frames;
  out << YAML::Key << "crossfade_ms" << YAML::Value << FormatDouble(config.engine.crossfade_ms);
  if (config.engine.max_nodes != EngineSettings{}.max_nodes) {
    out << YAML::Key << "max_nodes" << YAML::Value << config.engine.max_nodes;
  }
  if (config.engine.max_routes != EngineSettings{}.max_routes) {
    out << YAML::Key << "max_routes" << YAML::Value << config.engine.max_routes;
  }
  out << YAML::EndMap;

  out << YAML::Key << "backend" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "type" << YAML::Value;
  EmitString(out, config.backend.type);
  out << YAML::Key << "jack" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "client_name" << YAML::Value;
  EmitString(out, config.backend.jack_client_name);
  if (!config.backend.jack_server_name.empty()) {
    out << YAML::Key << "server_name" << YAML::Value;
    EmitString(out, config.backend.jack_server_name);
  }
  out << YAML::EndMap;
  if (config.backend.alsa != AlsaSettings{}) {
    const AlsaSettings& a = config.backend.alsa;
    const AlsaSettings d;
    out << YAML::Key << "alsa" << YAML::Value << YAML::BeginMap;
    const auto emit_str = [&](const char* key, const std::string& v, const std::string& def) {
      if (v == def) return;
      out << YAML::Key << key << YAML::Value;
      EmitWord(out, v);
    };
    const auto emit_int = [&](const char* key, int v, int def) {
      if (v != def) out << YAML::Key << key << YAML::Value << v;
    };
    const auto emit_map = [&](const char* key, const std::vector<int>& v) {
      if (v.empty()) return;
      out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (int c : v) out << c;
      out << YAML::EndSeq;
    };
    emit_str("playback", a.playback, d.playback);
    emit_str("capture", a.capture, d.capture);
    emit_int("period_frames", a.period_frames, d.period_frames);
    emit_int("periods", a.periods, d.periods);
    if (a.sample_rate_hz != d.sample_rate_hz) {
      out << YAML::Key << "sample_rate_hz" << YAML::Value << FormatDouble(a.sample_rate_hz);
    }
    emit_str("format", a.format, d.format);
    emit_int("priority", a.priority, d.priority);
    if (a.dither != d.dither)
      out << YAML::Key << "dither" << YAML::Value << (a.dither ? "true" : "false");
    emit_int("playback_channels", a.playback_channels, d.playback_channels);
    emit_int("capture_channels", a.capture_channels, d.capture_channels);
    emit_map("playback_map", a.playback_map);
    emit_map("capture_map", a.capture_map);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;

  if (config.plugins != PluginSettings{}) {
    const PluginSettings& p = config.plugins;
    out << YAML::Key << "plugins" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "root" << YAML::Value;
    EmitWord(out, p.root);
    out << YAML::Key << "require_signature" << YAML::Value
        << (p.require_signature ? "true" : "false");
    const auto emit_path = [&](const char* key, const std::string& value) {
      if (value.empty()) return;
      out << YAML::Key << key << YAML::Value;
      EmitWord(out, value);
    };
    emit_path("trusted_keys_dir", p.trusted_keys_dir);
    emit_path("state_dir", p.state_dir);
    const auto emit_list = [&](const char* key, const std::vector<std::string>& items) {
      if (items.empty()) return;
      out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const auto& item : items) EmitWord(out, item);
      out << YAML::EndSeq;
    };
    emit_list("allowed_system_dirs", p.allowed_system_dirs);
    emit_list("load", p.load);
    emit_path("audit_log", p.audit_log);
    out << YAML::EndMap;
  }

  EmitPorts(out, "inputs", config.graph.inputs);
  EmitPorts(out, "outputs", config.graph.outputs);

  if (!config.graph.nodes.empty()) {
    out << YAML::Key << "nodes" << YAML::Value << YAML::BeginSeq;
    for (const auto& n : config.graph.nodes) {
      out << YAML::BeginMap;
      out << YAML::Key << "name" << YAML::Value;
      EmitString(out, n.name);
      out << YAML::Key << "kind" << YAML::Value;
      EmitString(out, n.kind);
      out << YAML::Key << "channels" << YAML::Value << n.channels;
      if (!n.preset.empty()) {
        out << YAML::Key << "preset" << YAML::Value;
        EmitString(out, n.preset);
      }
      if (!n.params.empty()) {
        out << YAML::Key << "params" << YAML::Value << YAML::BeginMap;
        for (const auto& [name, value] : n.params) {
          out << YAML::Key << name << YAML::Value;
          EmitParam(out, value);
        }
        out << YAML::EndMap;
      }
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }

  if (!config.graph.routes.empty()) {
    out << YAML::Key << "routes" << YAML::Value << YAML::BeginSeq;
    for (const auto& r : config.graph.routes) {
      out << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "from" << YAML::Value;
      EmitString(out, r.from.ToString());
      out << YAML::Key << "to" << YAML::Value;
      EmitString(out, r.to.ToString());
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
  return Cat(out.c_str(), "\n");
}

std::string EmitGraphYaml(const model::GraphSpec& graph) {
  Config c;
  c.graph = graph;
  return EmitConfig(c);
}

namespace {

using Json = nlohmann::ordered_json;

Json PortsJson(const std::vector<model::ExternalPort>& ports) {
  Json out = Json::array();
  for (const auto& p : ports) {
    Json j = {{"name", p.name}, {"channels", p.channels}};
    if (!p.connect.empty()) j["connect"] = p.connect;
    out.push_back(std::move(j));
  }
  return out;
}

// JSON has no NaN or infinity (nlohmann writes null): `finite` turns false.
Json ParamJson(const ParamValue& v, bool& finite) {
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  if (const auto* d = std::get_if<double>(&v)) {
    finite = finite && std::isfinite(*d);
    return *d;
  }
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  const auto& list = std::get<std::vector<double>>(v);
  for (double e : list) finite = finite && std::isfinite(e);
  return list;
}

}  // namespace

namespace {

// One node as JSON text; nullopt when JSON cannot hold it (see below).
std::optional<std::string> NodeJsonText(const model::NodeSpec& n) {
  bool finite = true;
  Json j = {{"name", n.name}, {"kind", n.kind}, {"channels", n.channels}};
  if (!n.preset.empty()) j["preset"] = n.preset;
  if (!n.params.empty()) {
    Json& params = j["params"] = Json::object();
    for (const auto& [name, value] : n.params) params[name] = ParamJson(value, finite);
  }
  if (!finite) return std::nullopt;  // a validated graph has none
  try {
    return j.dump();
  } catch (const Json::type_error&) {
    return std::nullopt;  // a string that is not UTF-8
  }
}

}  // namespace

std::optional<std::string> EmitGraphJson(const model::GraphSpec& graph, GraphJsonCache* cache) {
  // The document is written piece by piece, as nlohmann/json writes it
  // whole (one line, no spaces, keys in this order), so that the pieces of
  // unchanged nodes and routes can be kept.
  try {
    std::string out;
    if (cache != nullptr) out.reserve(cache->size_ + cache->size_ / 8);
    absl::StrAppend(&out, "{\"version\":", Json(graph.version).dump());
    if (!graph.inputs.empty()) {
      absl::StrAppend(&out, ",\"inputs\":", PortsJson(graph.inputs).dump());
    }
    if (!graph.outputs.empty()) {
      absl::StrAppend(&out, ",\"outputs\":", PortsJson(graph.outputs).dump());
    }
    if (!graph.nodes.empty()) {
      out += ",\"nodes\":[";
      for (size_t i = 0; i < graph.nodes.size(); ++i) {
        const model::NodeSpec& n = graph.nodes[i];
        if (i > 0) out += ',';
        if (cache != nullptr) {
          if (auto old = cache->nodes_.find(n.name);
              old != cache->nodes_.end() && model::Identical(old->second.first, n)) {
            out += old->second.second;
            continue;
          }
        }
        std::optional<std::string> text = NodeJsonText(n);
        if (!text) return std::nullopt;
        out += *text;
        if (cache != nullptr) {
          cache->nodes_.insert_or_assign(n.name, std::make_pair(n, *std::move(text)));
        }
      }
      out += ']';
    }
    if (cache != nullptr && cache->nodes_.size() > graph.nodes.size()) {
      // Nodes removed or renamed: their entries go.
      std::set<std::string_view> names;
      for (const auto& n : graph.nodes) names.insert(n.name);
      std::erase_if(cache->nodes_, [&](const auto& e) { return !names.contains(e.first); });
    }
    if (!graph.routes.empty()) {
      out += ",\"routes\":[";
      std::map<GraphJsonCache::RouteKey, std::string>
          kept;  // this document's routes, for the next one
      for (size_t i = 0; i < graph.routes.size(); ++i) {
        const model::RouteSpec& r = graph.routes[i];
        if (i > 0) out += ',';
        const GraphJsonCache::RouteKey key{r.from.node, r.from.port, r.to.node, r.to.port};
        if (cache != nullptr) {
          if (auto old = cache->routes_.find(key); old != cache->routes_.end()) {
            out += old->second;
            kept.insert(cache->routes_.extract(old));
            continue;
          }
        }
        std::string text = Json{{"from", r.from.ToString()}, {"to", r.to.ToString()}}.dump();
        out += text;
        if (cache != nullptr) kept.insert_or_assign(key, std::move(text));
      }
      out += ']';
      if (cache != nullptr) cache->routes_ = std::move(kept);
    } else if (cache != nullptr) {
      cache->routes_.clear();
    }
    out += '}';
    if (cache != nullptr) cache->size_ = out.size();
    return out;
  } catch (const Json::type_error&) {
    return std::nullopt;  // a string that is not UTF-8
  }
}

}  // namespace aers::config
