// The graph sections of a document (graph_parse.h) and graph documents as
// a whole (graph_yaml.h).
//
// Thread: non-real-time.
#include "config/graph_yaml.h"

#include <limits>
#include <utility>

#include "config/config.h"
#include "config/graph_parse.h"
#include "model/strings.h"

namespace aers::config {
namespace internal {
namespace {

using model::IssueCode;
using model::ParamValue;
using strutil::Cat;

}  // namespace

void GraphReader::TaintRoutesTouching(const model::GraphSpec& graph) {
  for (size_t i = 0; i < graph.routes.size(); ++i) {
    const auto& r = graph.routes[i];
    if (suspect_names_.count(r.from.node) || suspect_names_.count(r.to.node)) {
      r_.Taint(Indexed("routes", i));
    }
  }
}

void GraphReader::ParsePorts(const YAML::Node& node, const std::string& path, Mark fallback,
                             bool is_input, std::vector<model::ExternalPort>& out) {
  if (node.IsNull()) return;
  const std::string_view what = is_input ? "an input" : "an output";
  const std::string_view example =
      is_input ? "{name: main, channels: 2, connect: [system:capture_1, system:capture_2]}"
               : "{name: main_out, channels: 2, connect: [system:playback_1, system:playback_2]}";
  if (!r_.List(node, path, path, Cat("e.g. - ", example), fallback)) return;
  const Mark list_mark = r_.MarkOf(node, fallback);
  size_t i = 0;
  for (const auto& item : node) {
    const std::string ipath = Indexed(path, i++);
    model::ExternalPort port;
    const auto fields = r_.Map(item, ipath, what, {"name", "channels", "connect"}, list_mark);
    if (fields) {
      const Mark mark = r_.MarkOf(item, list_mark);
      r_.Require(*fields, {"name"}, ipath, what, mark, "name: main");
      for (const Reader::Field& f : *fields) {
        const std::string p = Join(ipath, f.key);
        if (f.key == "name") {
          if (auto v = r_.String(f.value, p, "name", f.key_mark)) port.name = *v;
        } else if (f.key == "channels") {
          if (auto v = r_.Integer(f.value, p, "channels", f.key_mark)) {
            port.channels = *v;
          } else {
            port.channels = -1;  // marked suspect below, once the name is known
          }
        } else if (f.key == "connect") {
          if (f.value.IsNull()) continue;
          if (!r_.List(f.value, p, "connect", "backend port names, e.g. [system:capture_1]",
                       f.key_mark)) {
            continue;
          }
          size_t k = 0;
          for (const auto& c : f.value) {
            if (auto v = r_.String(c, Indexed(p, k++), "a connect entry",
                                   r_.MarkOf(f.value, f.key_mark))) {
              port.connect.push_back(*v);
            }
          }
        }
      }
    }
    if (port.channels == -1) {
      // A structural problem in channels: keep the default and do not let
      // routes through this port report a (meaningless) channel mismatch.
      port.channels = 1;
      suspect_names_.insert(port.name);
    }
    if (!fields) suspect_names_.insert(port.name);
    out.push_back(std::move(port));
  }
}

void GraphReader::ParseNodes(const YAML::Node& node, const std::string& path, Mark fallback,
                             std::vector<model::NodeSpec>& out) {
  if (node.IsNull()) return;
  if (!r_.List(node, path, "nodes", "e.g. - {name: trim, kind: gain, params: {gain_db: -6}}",
               fallback)) {
    return;
  }
  const Mark list_mark = r_.MarkOf(node, fallback);
  size_t i = 0;
  for (const auto& item : node) {
    const std::string ipath = Indexed(path, i++);
    model::NodeSpec spec;
    bool suspect = false;
    const auto fields =
        r_.Map(item, ipath, "a node", {"name", "kind", "channels", "params", "preset"}, list_mark);
    if (fields) {
      const Mark mark = r_.MarkOf(item, list_mark);
      r_.Require(*fields, {"name", "kind"}, ipath, "a node", mark, "name: trim, kind: gain");
      for (const Reader::Field& f : *fields) {
        const std::string p = Join(ipath, f.key);
        if (f.key == "name") {
          if (auto v = r_.String(f.value, p, "name", f.key_mark)) spec.name = *v;
        } else if (f.key == "preset") {
          if (auto v = r_.String(f.value, p, "preset", f.key_mark)) spec.preset = *v;
        } else if (f.key == "kind") {
          if (auto v = r_.String(f.value, p, "kind", f.key_mark)) {
            spec.kind = *v;
          } else {
            suspect = true;
          }
        } else if (f.key == "channels") {
          if (auto v = r_.Integer(f.value, p, "channels", f.key_mark)) {
            spec.channels = *v;
          } else {
            suspect = true;
          }
        } else if (f.key == "params") {
          if (f.value.IsNull()) continue;
          if (!f.value.IsMap()) {
            r_.Error(IssueCode::kWrongType, r_.MarkOf(f.value, f.key_mark), p,
                     Cat("params must be a map of parameter names to values (e.g. "
                         "{gain_db: -6}), got ",
                         Describe(f.value)));
            continue;
          }
          r_.Record(p, f.value, f.key_mark);
          const Mark params_mark = r_.MarkOf(f.value, f.key_mark);
          for (const auto& kv : f.value) {
            const Mark key_mark = r_.MarkOf(kv.first, params_mark);
            if (!kv.first.IsScalar()) {
              r_.Note(IssueCode::kWrongType, key_mark, p, "parameter names must be plain words");
              continue;
            }
            const std::string name = kv.first.Scalar();
            const std::string pp = Join(p, name);
            if (spec.params.count(name)) {
              r_.Note(IssueCode::kDuplicateKey, key_mark, pp,
                      Cat("parameter '", name, "' is set twice; write it once"));
              continue;
            }
            if (auto v = ParseParam(kv.second, pp, name, key_mark)) {
              spec.params.emplace(name, std::move(*v));
            } else {
              // Keep the slot with a value no parameter accepts: validation
              // then checks the node's other parameters but skips the kind's
              // cross-parameter rules (CheckSpec), which would see a partial
              // set. What it says about this one parameter is dropped.
              spec.params.emplace(
                  name, ParamValue(std::vector<double>{std::numeric_limits<double>::quiet_NaN()}));
              r_.Taint(pp);
            }
          }
        }
      }
    }
    if (suspect || !fields) suspect_names_.insert(spec.name);
    out.push_back(std::move(spec));
  }
}

std::optional<ParamValue> GraphReader::ParseParam(const YAML::Node& node, const std::string& path,
                                                  const std::string& name, Mark fallback) {
  const Mark mark = r_.MarkOf(node, fallback);
  const auto bad = [&](std::string_view got) {
    r_.Error(IssueCode::kWrongType, mark, path,
             Cat("parameter '", name,
                 "' must be a number, true/false, a word or a list of numbers, got ", got));
    return std::nullopt;
  };
  if (node.IsMap()) return bad("a map");
  if (node.IsSequence()) {
    r_.Record(path, node, fallback);
    std::vector<double> list;
    size_t k = 0;
    bool ok = true;
    for (const auto& e : node) {
      const std::string epath = Indexed(path, k++);
      const Mark emark = r_.MarkOf(e, mark);
      const Scalar s = e.IsScalar() ? Resolve(e) : Scalar{};
      if (!e.IsScalar() || s.kind != Scalar::Kind::kNumber || !s.number_ok) {
        r_.Error(IssueCode::kWrongType, emark, epath,
                 Cat("'", name, "' is a list of numbers; element ", k - 1, " is ", Describe(e)));
        ok = false;
        continue;
      }
      r_.Record(epath, e, mark);
      list.push_back(s.number);
    }
    if (!ok) return std::nullopt;
    return ParamValue(std::move(list));
  }
  const Scalar s = node.IsScalar() ? Resolve(node) : NullScalar();
  switch (s.kind) {
    case Scalar::Kind::kNull:
      r_.Error(IssueCode::kMissingField, mark, path, Cat("parameter '", name, "' has no value"));
      return std::nullopt;
    case Scalar::Kind::kBool:
      r_.Record(path, node, fallback);
      return ParamValue(s.flag);
    case Scalar::Kind::kNumber:
      if (!s.number_ok) {
        r_.Error(IssueCode::kOutOfRange, mark, path,
                 Cat("parameter '", name, "' = ", s.text, " is not a representable number"));
        return std::nullopt;
      }
      r_.Record(path, node, fallback);
      return ParamValue(s.number);
    case Scalar::Kind::kString:
      if (!r_.Utf8(s.text, mark, path, Cat("parameter '", name, "'"))) return std::nullopt;
      r_.Record(path, node, fallback);
      return ParamValue(s.text);
  }
  return std::nullopt;
}

std::optional<model::Endpoint> GraphReader::ParseEndpoint(const YAML::Node& node,
                                                          const std::string& path,
                                                          std::string_view what, Mark fallback) {
  auto text = r_.String(node, path, what, fallback);
  if (!text) return std::nullopt;
  const model::Endpoint e = model::Endpoint::Parse(*text);
  const bool has_dot = text->find('.') != std::string::npos;
  if (e.node.empty() || (has_dot && e.port.empty())) {
    r_.Error(IssueCode::kBadValue, r_.MarkOf(node, fallback), path,
             Cat("malformed endpoint '", *text, "'; write 'node' or 'node.port'"));
    return std::nullopt;
  }
  return e;
}

void GraphReader::ParseRoutes(const YAML::Node& node, const std::string& path, Mark fallback,
                              std::vector<model::RouteSpec>& out) {
  if (node.IsNull()) return;
  if (!r_.List(node, path, "routes", "e.g. - {from: main, to: trim}", fallback)) return;
  const Mark list_mark = r_.MarkOf(node, fallback);
  size_t i = 0;
  for (const auto& item : node) {
    const std::string ipath = Indexed(path, i++);
    model::RouteSpec route;
    const auto fields = r_.Map(item, ipath, "a route", {"from", "to"}, list_mark);
    if (fields) {
      r_.Require(*fields, {"from", "to"}, ipath, "a route", r_.MarkOf(item, list_mark),
                 "{from: main, to: trim}");
      for (const Reader::Field& f : *fields) {
        const std::string p = Join(ipath, f.key);
        if (auto e = ParseEndpoint(f.value, p, f.key, f.key_mark)) {
          (f.key == "from" ? route.from : route.to) = std::move(*e);
        }
      }
    }
    out.push_back(std::move(route));
  }
}
}  // namespace internal

absl::StatusOr<model::GraphSpec> ParseGraphYaml(std::string_view yaml, std::string_view filename,
                                                const model::KindRegistry& kinds,
                                                const model::NamingLimits* names,
                                                std::vector<model::Issue>* issues) {
  auto config = ParseConfig(yaml, filename, kinds, nullptr, names, issues);
  if (!config.ok()) return config.status();
  return std::move(config->graph);
}

}  // namespace aers::config
