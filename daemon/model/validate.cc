// Whole-graph validation. Every check appends to one list of issues so that a
// user sees all problems of a config at once, not one per attempt.
//
// Thread: non-real-time.
#include "model/validate.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "model/strings.h"

namespace aers::model {
namespace {

// ---------------------------------------------------------------------------
// Text helpers

using strutil::Cat;
using strutil::JoinList;

std::string Indexed(std::string_view list, size_t i) {
  return Cat(list, "[", i, "]");
}

// 'text' as typed by a user, shown safely: control characters escaped and
// long text cut, so that one issue stays one line.
std::string Quoted(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out + "'";
}

// Levenshtein distance, for "did you mean" hints (short strings only).
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0u : 1u)});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" when exactly one candidate is close to `word`, or
// is `word` plus a unit suffix ("gain" -> "gain_db"); else "".
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.empty() || word.size() > 64) return "";
  const std::string* best = nullptr;
  size_t best_distance = 0;
  bool tie = false;
  for (const auto& c : candidates) {
    if (c.size() > word.size() && c.compare(0, word.size(), word) == 0 && c[word.size()] == '_') {
      return Cat(" (did you mean ", Quoted(c), "?)");
    }
    const size_t d = EditDistance(word, c);
    if (best == nullptr || d < best_distance) {
      best = &c;
      best_distance = d;
      tie = false;
    } else if (d == best_distance && c != *best) {
      tie = true;
    }
  }
  const size_t limit = word.size() <= 3 ? 1 : 2;
  if (best == nullptr || tie || best_distance == 0 || best_distance > limit) return "";
  return Cat(" (did you mean ", Quoted(*best), "?)");
}

// "a, b, c" without repeats; long lists are cut ("..., and 40 more").
std::string ListOrNone(const std::vector<std::string>& items) {
  constexpr size_t kMaxListed = 16;
  std::vector<std::string_view> unique;
  std::set<std::string_view> seen;
  for (const auto& item : items) {
    if (seen.insert(item).second) unique.push_back(item);
  }
  if (unique.empty()) return "(none)";
  if (unique.size() <= kMaxListed) return JoinList(unique, ", ");
  const size_t more = unique.size() - kMaxListed;
  unique.resize(kMaxListed);
  return Cat(JoinList(unique, ", "), ", and ", more, " more");
}

std::string FormatNumber(double v) {
  return FormatParamValue(ParamValue(v));
}

// "-120 to 24 dB" / "1 to 32".
std::string RangeText(const ParamDesc& d) {
  return Cat(FormatNumber(d.min), " to ", FormatNumber(d.max), d.unit.empty() ? "" : " ", d.unit);
}

// What a value is, for "got ..." in type errors.
std::string Describe(const ParamValue& v) {
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const auto* d = std::get_if<double>(&v)) return Cat("the number ", FormatNumber(*d));
  if (const auto* s = std::get_if<std::string>(&v)) return Cat("the word ", Quoted(*s));
  return Cat("the list ", FormatParamValue(v));
}

// What a parameter expects, for type errors.
std::string Expectation(const ParamDesc& d) {
  switch (d.type) {
    case ParamType::kNumber:
      return Cat("a number (", RangeText(d), ")");
    case ParamType::kInteger:
      return Cat("a whole number (", RangeText(d), ")");
    case ParamType::kBool:
      return "true or false";
    case ParamType::kEnum:
      return Cat("one of: ", JoinList(d.choices, ", "));
    case ParamType::kNumberList:
      return Cat("a list of numbers (each ", RangeText(d), "), e.g. [0, -6]");
    case ParamType::kFile:
      return "a file path (quote it in YAML if it looks like a number or true/false)";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// Parameters

// Checks one number against its range; `label` is the name shown ("gain_db",
// "gains_db[2]"). Returns false (and adds an issue) when it is not fine.
bool CheckNumber(const ParamDesc& d, double v, bool whole, const std::string& label,
                 const std::string& path, std::vector<Issue>& issues) {
  if (!std::isfinite(v)) {
    issues.push_back({path,
                      Cat(label, " is not a finite number (got ", FormatNumber(v),
                          "); use a value from ", RangeText(d)),
                      IssueCode::kOutOfRange});
    return false;
  }
  if (whole && v != std::floor(v)) {
    issues.push_back({path,
                      Cat(label, " must be a whole number, got ", FormatNumber(v), " (allowed ",
                          RangeText(d), ")"),
                      IssueCode::kWrongType});
    return false;
  }
  if (v < d.min || v > d.max) {
    issues.push_back({path,
                      Cat(label, " = ", FormatNumber(v), d.unit.empty() ? "" : " ", d.unit,
                          " is out of range; allowed ", RangeText(d)),
                      IssueCode::kOutOfRange});
    return false;
  }
  return true;
}

// Checks one parameter value against its description.
bool CheckParam(const ParamDesc& d, const ParamValue& value, const std::string& path,
                std::vector<Issue>& issues) {
  const auto wrong_type = [&] {
    issues.push_back({path, Cat(d.name, " expects ", Expectation(d), ", got ", Describe(value)),
                      IssueCode::kWrongType});
    return false;
  };
  switch (d.type) {
    case ParamType::kNumber:
    case ParamType::kInteger: {
      const auto* v = std::get_if<double>(&value);
      if (v == nullptr) return wrong_type();
      return CheckNumber(d, *v, d.type == ParamType::kInteger, d.name, path, issues);
    }
    case ParamType::kBool:
      if (!std::holds_alternative<bool>(value)) return wrong_type();
      return true;
    case ParamType::kEnum: {
      const auto* s = std::get_if<std::string>(&value);
      if (s == nullptr) return wrong_type();
      if (std::find(d.choices.begin(), d.choices.end(), *s) != d.choices.end()) return true;
      issues.push_back({path,
                        Cat("unknown ", d.name, " ", Quoted(*s), DidYouMean(*s, d.choices),
                            "; expected one of: ", JoinList(d.choices, ", ")),
                        IssueCode::kBadValue});
      return false;
    }
    case ParamType::kNumberList: {
      const auto* list = std::get_if<std::vector<double>>(&value);
      if (list == nullptr) return wrong_type();
      bool ok = true;
      for (size_t i = 0; i < list->size(); ++i) {
        ok &= CheckNumber(d, (*list)[i], false, Indexed(d.name, i), Indexed(path, i), issues);
      }
      return ok;
    }
    case ParamType::kFile: {
      const auto* s = std::get_if<std::string>(&value);
      if (s == nullptr) return wrong_type();
      std::string why;
      if (s->empty()) {
        why = "is empty";
      } else if (s->size() > kMaxPathBytes) {
        why = Cat("is ", s->size(), " bytes long; paths are at most ", kMaxPathBytes, " bytes");
      } else if (std::any_of(s->begin(), s->end(), [](char c) {
                   return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
                 })) {
        why = "contains a control character";
      } else if (const size_t bad = strutil::FirstInvalidUtf8(*s); bad != std::string_view::npos) {
        why = Cat("is not UTF-8 (byte ", bad, ")");
      }
      if (why.empty()) return true;
      issues.push_back(
          {path, Cat(d.name, " ", why, "; give the path of a file"), IssueCode::kBadValue});
      return false;
    }
  }
  return wrong_type();
}

// ---------------------------------------------------------------------------
// Names

void CheckName(const std::string& name, const std::string& owner_path,
               std::map<std::string, std::string>& seen, std::vector<Issue>& issues) {
  const std::string path = owner_path + ".name";
  if (name.empty()) {
    issues.push_back(
        {path, "name is empty; use letters, digits, '_' and '-'", IssueCode::kBadName});
    return;
  }
  if (!std::all_of(name.begin(), name.end(), IsNameChar)) {
    std::string extra;
    if (name.find('.') != std::string::npos) {
      extra = " ('.' separates node and port in routes)";
    }
    issues.push_back(
        {path, Cat("invalid name ", Quoted(name), ": use only letters, digits, '_' and '-'", extra),
         IssueCode::kBadName});
  } else if (name.size() > kMaxNameBytes) {
    issues.push_back({path,
                      Cat("name ", Quoted(name), " is ", name.size(),
                          " bytes long; names are at most ", kMaxNameBytes, " bytes"),
                      IssueCode::kBadName});
  }
  const auto [it, inserted] = seen.emplace(name, path);
  if (!inserted) {
    issues.push_back({path,
                      Cat("duplicate name ", Quoted(name), ": already used by ", it->second,
                          "; names must be unique across inputs, outputs and "
                          "nodes"),
                      IssueCode::kDuplicateName});
  }
}

void CheckChannels(int channels, int max, const std::string& owner_path, std::string_view what,
                   std::vector<Issue>& issues) {
  if (channels < 1 || channels > kMaxChannels) {
    issues.push_back({owner_path + ".channels",
                      Cat("channels = ", channels, " is out of range; allowed 1 to ", kMaxChannels),
                      IssueCode::kOutOfRange});
  } else if (channels > max) {
    issues.push_back({owner_path + ".channels",
                      Cat("channels = ", channels, " is too many: ", what, " supports at most ",
                          max, " channels"),
                      IssueCode::kOutOfRange});
  }
}

// ---------------------------------------------------------------------------
// Routes

// What a route end refers to.
struct Resolved {
  enum class What { kUnknown, kInput, kOutput, kNode } what = What::kUnknown;
  int index = -1;                      // in spec.inputs / outputs / nodes
  const NodeLayout* layout = nullptr;  // null: the node or port itself is invalid
};

NodeLayout ExternalInputLayout(const ExternalPort& p) {
  return {{}, {{"out", p.channels}}};
}
NodeLayout ExternalOutputLayout(const ExternalPort& p) {
  return {{{"in", p.channels}}, {}};
}

std::vector<std::string> PortNames(const std::vector<PortDesc>& ports) {
  std::vector<std::string> out;
  out.reserve(ports.size());
  for (const auto& p : ports) out.push_back(p.name);
  return out;
}

}  // namespace

// Backend port names derived from the external ports (model/naming.h):
// unique across inputs and outputs, and short enough for the backend.
void CheckBackendPortNames(const GraphSpec& spec, const NamingLimits& limits,
                           std::vector<Issue>& issues) {
  std::map<std::string, std::string> owner;  // backend port name -> "inputs[0] channel 2"
  const auto check = [&](const std::vector<ExternalPort>& ports, std::string_view list) {
    for (size_t i = 0; i < ports.size(); ++i) {
      const ExternalPort& p = ports[i];
      if (p.channels < 1 || p.channels > kMaxChannels) continue;  // reported elsewhere
      const std::string path = Indexed(list, i);
      for (int ch = 0; ch < p.channels; ++ch) {
        const std::string port = BackendPortName(p, ch);
        const std::string here = Cat(path, " ", Quoted(p.name), " channel ", ch + 1);
        const auto [it, inserted] = owner.emplace(port, here);
        if (!inserted) {
          issues.push_back({path + ".name",
                            Cat("backend port name ", Quoted(port), " of ", here,
                                " is also the port of ", it->second,
                                "; rename one (channel n of a multi-channel port is "
                                "'<name>_<n>')"),
                            IssueCode::kDuplicateName});
          break;
        }
        if (limits.max_port_name_bytes != 0 && !limits.client_name.empty()) {
          const size_t full = limits.client_name.size() + 1 + port.size();
          if (full > limits.max_port_name_bytes) {
            issues.push_back(
                {path + ".name",
                 Cat("backend port name '", limits.client_name, ":", port, "' is ", full,
                     " bytes long; the backend allows at most ", limits.max_port_name_bytes),
                 IssueCode::kBadName});
            break;
          }
        }
      }
    }
  };
  check(spec.inputs, "inputs");
  check(spec.outputs, "outputs");
}

namespace {

// A node's preset, parameters (types, ranges at the context's rate) and its
// kind's own constraints, reported under `path`; true when all hold.
bool CheckSettings(const NodeSpec& n, const NodeKind& kind, const std::string& path,
                   const ValidationContext& context, std::vector<Issue>& issues) {
  if (!n.preset.empty()) {
    const auto presets = kind.presets();
    const bool found = std::any_of(presets.begin(), presets.end(),
                                   [&](const PresetInfo& p) { return p.uri == n.preset; });
    if (!found) {
      std::vector<std::string> uris;
      for (const auto& p : presets) uris.push_back(p.uri);
      issues.push_back({path + ".preset",
                        presets.empty()
                            ? Cat("kind ", Quoted(n.kind), " has no presets")
                            : Cat("unknown preset ", Quoted(n.preset), " for kind ", Quoted(n.kind),
                                  "; its presets are: ", JoinList(uris, ", ")),
                        IssueCode::kBadValue});
      return false;
    }
  }

  bool params_ok = true;
  std::vector<std::string> param_names;
  for (const auto& d : kind.params()) param_names.push_back(d.name);
  for (const auto& [pname, value] : n.params) {
    const std::string ppath = Cat(path, ".params.", pname);
    const ParamDesc* d = kind.FindParam(pname);
    if (d == nullptr) {
      issues.push_back({ppath,
                        param_names.empty()
                            ? Cat("unknown parameter ", Quoted(pname), ": kind ", Quoted(n.kind),
                                  " has no parameters")
                            : Cat("unknown parameter ", Quoted(pname), " for kind ", Quoted(n.kind),
                                  DidYouMean(pname, param_names),
                                  "; its parameters are: ", JoinList(param_names, ", ")),
                        IssueCode::kUnknownParam});
      params_ok = false;
      continue;
    }
    // Ranges that follow the sample rate are checked at the actual rate.
    params_ok &= CheckParam(d->At(context.sample_rate_hz), value, ppath, issues);
  }
  if (!params_ok) return false;
  const size_t before = issues.size();
  kind.CheckSpec(n, path, issues);
  for (size_t k = before; k < issues.size(); ++k) {
    if (issues[k].code == IssueCode::kUnspecified) issues[k].code = IssueCode::kConstraint;
  }
  return issues.size() == before;
}

}  // namespace

std::vector<Issue> ValidateGraph(const GraphSpec& spec, const KindRegistry& kinds,
                                 const ValidationContext& context, const GraphSpec* valid) {
  std::vector<Issue> issues;

  if (spec.version != kSchemaVersion) {
    issues.push_back(
        {"version",
         Cat("unsupported schema version ", spec.version, "; this build reads version ",
             kSchemaVersion, " (write 'version: ", kSchemaVersion, "')"),
         IssueCode::kUnsupportedVersion});
  }

  if (spec.nodes.size() > context.limits.max_nodes) {
    issues.push_back({"nodes",
                      Cat(spec.nodes.size(), " nodes; this daemon allows at most ",
                          context.limits.max_nodes, " (engine.max_nodes)"),
                      IssueCode::kTooLarge});
  }
  if (spec.routes.size() > context.limits.max_routes) {
    issues.push_back({"routes",
                      Cat(spec.routes.size(), " routes; this daemon allows at most ",
                          context.limits.max_routes, " (engine.max_routes)"),
                      IssueCode::kTooLarge});
  }
  if (spec.inputs.size() + spec.outputs.size() > context.limits.max_nodes) {
    issues.push_back({"inputs",
                      Cat(spec.inputs.size() + spec.outputs.size(),
                          " external ports; this daemon allows at most ", context.limits.max_nodes,
                          " (engine.max_nodes)"),
                      IssueCode::kTooLarge});
  }
  // A graph over the limits is refused as it is: the limits also bound what
  // checking it costs (hints and cycle reports grow with its size).
  if (spec.nodes.size() > context.limits.max_nodes ||
      spec.routes.size() > context.limits.max_routes ||
      spec.inputs.size() + spec.outputs.size() > context.limits.max_nodes) {
    return issues;
  }

  // Names and channel counts of external ports.
  std::map<std::string, std::string> seen_names;  // name -> first "xxx[i].name"
  const auto check_externals = [&](const std::vector<ExternalPort>& ports, std::string_view list) {
    for (size_t i = 0; i < ports.size(); ++i) {
      const ExternalPort& p = ports[i];
      const std::string path = Indexed(list, i);
      CheckName(p.name, path, seen_names, issues);
      CheckChannels(p.channels, kMaxChannels, path, "a port", issues);
      if (p.channels >= 1 && p.connect.size() > static_cast<size_t>(p.channels)) {
        issues.push_back({path + ".connect",
                          Cat(p.connect.size(), " backend ports listed for ", p.channels,
                              p.channels == 1 ? " channel" : " channels",
                              "; connect takes at most one port per channel"),
                          IssueCode::kChannelMismatch});
      }
    }
  };
  check_externals(spec.inputs, "inputs");
  check_externals(spec.outputs, "outputs");
  CheckBackendPortNames(spec, context.names, issues);

  // Nodes: name, kind, channels, parameters, the kind's own constraints.
  std::vector<std::string> kind_names;
  for (const NodeKind* k : kinds.List()) kind_names.push_back(k->name());
  std::vector<const NodeKind*> node_kinds(spec.nodes.size(), nullptr);
  std::vector<bool> node_ok(spec.nodes.size(), false);  // fit for Layout()
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    const NodeSpec& n = spec.nodes[i];
    const std::string path = Indexed("nodes", i);
    CheckName(n.name, path, seen_names, issues);
    const NodeKind* kind = kinds.Find(n.kind);
    node_kinds[i] = kind;
    if (kind == nullptr) {
      const std::string* refused = kinds.RefusalOf(n.kind);
      issues.push_back(
          {path + ".kind",
           n.kind.empty() ? Cat("kind is empty; known kinds: ", ListOrNone(kind_names))
           : refused != nullptr
               ? Cat("unknown kind ", Quoted(n.kind), ": its plugin was not loaded: ", *refused)
               : Cat("unknown kind ", Quoted(n.kind), DidYouMean(n.kind, kind_names),
                     "; known kinds: ", ListOrNone(kind_names)),
           IssueCode::kUnknownKind});
    }
    CheckChannels(n.channels, kind ? kind->max_channels() : kMaxChannels, path,
                  kind ? Cat("kind ", Quoted(n.kind)) : std::string("a node"), issues);
    if (kind == nullptr) continue;
    const bool unchanged =
        valid != nullptr && i < valid->nodes.size() && valid->nodes[i] == n && !kind->ReadsFiles();
    const bool settings_ok = unchanged || CheckSettings(n, *kind, path, context, issues);
    const bool channels_ok =
        n.channels >= 1 && n.channels <= kind->max_channels() && n.channels <= kMaxChannels;
    node_ok[i] = settings_ok && channels_ok;
  }

  // Routes. Names resolve inputs first, then nodes, then outputs (duplicates
  // were reported above); each valid node's layout is computed once.
  std::map<std::string_view, std::pair<Resolved::What, size_t>> by_name;
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    by_name.emplace(spec.inputs[i].name, std::pair(Resolved::What::kInput, i));
  }
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    by_name.emplace(spec.nodes[i].name, std::pair(Resolved::What::kNode, i));
  }
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    by_name.emplace(spec.outputs[i].name, std::pair(Resolved::What::kOutput, i));
  }
  std::vector<std::optional<NodeLayout>> node_layouts(spec.nodes.size());
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    if (node_ok[i]) node_layouts[i] = node_kinds[i]->Layout(spec.nodes[i]);
  }
  const auto external_layouts = [](const std::vector<ExternalPort>& ports, bool input) {
    std::vector<std::optional<NodeLayout>> out(ports.size());
    for (size_t i = 0; i < ports.size(); ++i) {
      if (ports[i].channels < 1 || ports[i].channels > kMaxChannels) continue;
      out[i] = input ? ExternalInputLayout(ports[i]) : ExternalOutputLayout(ports[i]);
    }
    return out;
  };
  const auto input_layouts = external_layouts(spec.inputs, true);
  const auto output_layouts = external_layouts(spec.outputs, false);
  const auto resolve = [&](const std::string& name) {
    Resolved r;
    const auto it = by_name.find(name);
    if (it == by_name.end()) return r;
    const auto [what, i] = it->second;
    const auto& layouts = what == Resolved::What::kInput  ? input_layouts
                          : what == Resolved::What::kNode ? node_layouts
                                                          : output_layouts;
    r.what = what;
    r.index = static_cast<int>(i);
    if (layouts[i]) r.layout = &*layouts[i];
    return r;
  };
  // Names a route may start from (inputs, nodes) or end at (nodes, outputs).
  std::vector<std::string> source_names;
  std::vector<std::string> sink_names;
  for (const auto& p : spec.inputs) source_names.push_back(p.name);
  for (const auto& n : spec.nodes) {
    source_names.push_back(n.name);
    sink_names.push_back(n.name);
  }
  for (const auto& p : spec.outputs) sink_names.push_back(p.name);
  // Built once, when a message first needs it, not per route: a graph of
  // unknown names would otherwise cost routes x nodes.
  std::optional<std::string> sources_list, sinks_list;
  const auto sources_text = [&]() -> const std::string& {
    if (!sources_list) sources_list = ListOrNone(source_names);
    return *sources_list;
  };
  const auto sinks_text = [&]() -> const std::string& {
    if (!sinks_list) sinks_list = ListOrNone(sink_names);
    return *sinks_list;
  };
  // "Did you mean" measures the edit distance to every source or sink, so
  // only the first kMaxReportedIssues unknown names get one (no more are
  // shown; model/validate.h).
  size_t name_hints_left = kMaxReportedIssues;
  const auto name_hint = [&](const std::string& name, const std::vector<std::string>& names) {
    if (name_hints_left == 0) return std::string();
    --name_hints_left;
    return DidYouMean(name, names);
  };

  // Node-level edges for the cycle check: node index -> (node index, route index).
  std::vector<std::vector<std::pair<int, size_t>>> edges(spec.nodes.size());
  std::set<std::pair<int, int>> edge_set;
  // Canonical route (ports filled in) -> first route index, for duplicates.
  std::map<std::pair<std::string, std::string>, size_t> seen_routes;

  for (size_t i = 0; i < spec.routes.size(); ++i) {
    const RouteSpec& route = spec.routes[i];
    const std::string path = Indexed("routes", i);
    const Resolved from = resolve(route.from.node);
    const Resolved to = resolve(route.to.node);
    const PortDesc* from_port = nullptr;
    const PortDesc* to_port = nullptr;

    // Source end.
    const std::string from_path = path + ".from";
    if (route.from.node.empty()) {
      issues.push_back({from_path,
                        Cat("route has no source; write an input or node "
                            "name (sources: ",
                            sources_text(), ")"),
                        IssueCode::kMissingField});
    } else if (from.what == Resolved::What::kUnknown) {
      issues.push_back(
          {from_path,
           Cat("unknown node ", Quoted(route.from.node), name_hint(route.from.node, source_names),
               "; routes can start at: ", sources_text()),
           IssueCode::kUnknownNode});
    } else if (from.what == Resolved::What::kOutput) {
      issues.push_back({from_path,
                        Cat(Quoted(route.from.node),
                            " is an external output: routes go into it, "
                            "not out of it"),
                        IssueCode::kWrongDirection});
    } else if (from.layout) {
      if (from.layout->outputs.empty()) {
        issues.push_back({from_path,
                          Cat("node ", Quoted(route.from.node),
                              " has no output ports; it cannot be a "
                              "route's source"),
                          IssueCode::kWrongDirection});
      } else {
        from_port = from.layout->FindOutput(route.from.port);
        if (from_port == nullptr) {
          const auto names = PortNames(from.layout->outputs);
          std::string hint = DidYouMean(route.from.port, names);
          if (from.layout->FindInput(route.from.port) != nullptr) {
            hint = Cat(" (", Quoted(route.from.port), " is an input port)");
          }
          issues.push_back(
              {from_path,
               Cat(Quoted(route.from.node), " has no output port ", Quoted(route.from.port), hint,
                   "; its output ports are: ", ListOrNone(names)),
               IssueCode::kUnknownPort});
        }
      }
    }

    // Destination end.
    const std::string to_path = path + ".to";
    if (route.to.node.empty()) {
      issues.push_back({to_path,
                        Cat("route has no destination; write a node or "
                            "output name (destinations: ",
                            sinks_text(), ")"),
                        IssueCode::kMissingField});
    } else if (to.what == Resolved::What::kUnknown) {
      issues.push_back(
          {to_path,
           Cat("unknown node ", Quoted(route.to.node), name_hint(route.to.node, sink_names),
               "; routes can end at: ", sinks_text()),
           IssueCode::kUnknownNode});
    } else if (to.what == Resolved::What::kInput) {
      issues.push_back({to_path,
                        Cat(Quoted(route.to.node),
                            " is an external input: routes come out of it, "
                            "not into it"),
                        IssueCode::kWrongDirection});
    } else if (to.layout) {
      if (to.layout->inputs.empty()) {
        issues.push_back({to_path,
                          Cat("node ", Quoted(route.to.node), " (kind ",
                              Quoted(spec.nodes[static_cast<size_t>(to.index)].kind),
                              ") has no input ports; it is a source, route it into another node"),
                          IssueCode::kWrongDirection});
      } else {
        to_port = to.layout->FindInput(route.to.port);
        if (to_port == nullptr) {
          const auto names = PortNames(to.layout->inputs);
          std::string hint = DidYouMean(route.to.port, names);
          if (to.layout->FindOutput(route.to.port) != nullptr) {
            hint = Cat(" (", Quoted(route.to.port), " is an output port)");
          }
          issues.push_back({to_path,
                            Cat(Quoted(route.to.node), " has no input port ", Quoted(route.to.port),
                                hint, "; its input ports are: ", ListOrNone(names)),
                            IssueCode::kUnknownPort});
        }
      }
    }

    if (from_port != nullptr && to_port != nullptr) {
      const std::string from_text = Cat(route.from.node, ".", from_port->name);
      const std::string to_text = Cat(route.to.node, ".", to_port->name);
      if (from_port->channels != to_port->channels) {
        issues.push_back(
            {path,
             Cat("channel mismatch: ", from_text, " has ", from_port->channels, " channel",
                 from_port->channels == 1 ? "" : "s", " but ", to_text, " has ", to_port->channels,
                 "; both ends of a route need the "
                 "same number of channels"),
             IssueCode::kChannelMismatch});
      }
      const auto [it, inserted] = seen_routes.emplace(std::pair(from_text, to_text), i);
      if (!inserted) {
        issues.push_back({path,
                          Cat("duplicate route ", from_text, " -> ", to_text, " (same as routes[",
                              it->second, "]); remove one of them"),
                          IssueCode::kDuplicateRoute});
      }
    }

    if (from.what == Resolved::What::kNode && to.what == Resolved::What::kNode &&
        edge_set.emplace(from.index, to.index).second) {
      edges[static_cast<size_t>(from.index)].emplace_back(to.index, i);
    }
  }

  // Cycles: iterative DFS over node-level edges; every back edge closes a
  // cycle and is reported at the route that makes it.
  enum class Color : unsigned char { kWhite, kGray, kBlack };
  std::vector<Color> color(spec.nodes.size(), Color::kWhite);
  std::vector<std::pair<size_t, size_t>> stack;  // (node, next edge)
  for (size_t root = 0; root < spec.nodes.size(); ++root) {
    if (color[root] != Color::kWhite) continue;
    color[root] = Color::kGray;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      auto& [u, next] = stack.back();
      if (next == edges[u].size()) {
        color[u] = Color::kBlack;
        stack.pop_back();
        continue;
      }
      const auto [v_int, route_index] = edges[u][next++];
      const auto v = static_cast<size_t>(v_int);
      if (color[v] == Color::kWhite) {
        color[v] = Color::kGray;
        stack.emplace_back(v, 0);
      } else if (color[v] == Color::kGray) {
        std::vector<std::string> names;
        bool in_cycle = false;
        for (const auto& frame : stack) {
          in_cycle |= frame.first == v;
          if (in_cycle) names.push_back(spec.nodes[frame.first].name);
        }
        names.push_back(spec.nodes[v].name);
        constexpr size_t kEnds = 10;  // a long cycle shows its first and last nodes
        if (names.size() > 3 * kEnds) {
          const size_t hidden = names.size() - 2 * kEnds;
          names.erase(names.begin() + kEnds, names.end() - kEnds);
          names.insert(names.begin() + kEnds, Cat("... (", hidden, " more) ..."));
        }
        issues.push_back({Indexed("routes", route_index),
                          Cat("cycle: ", JoinList(names, " -> "),
                              "; routes must not form a loop (feedback is not "
                              "supported)"),
                          IssueCode::kCycle});
      }
    }
  }

  return issues;
}

bool HasIssue(const std::vector<Issue>& issues, IssueCode code) {
  return std::any_of(issues.begin(), issues.end(),
                     [code](const Issue& issue) { return issue.code == code; });
}

const char* IssueCodeName(IssueCode code) {
  switch (code) {
    case IssueCode::kUnspecified:
      return "unspecified";
    case IssueCode::kSyntax:
      return "syntax";
    case IssueCode::kNotUtf8:
      return "not_utf8";
    case IssueCode::kWrongType:
      return "wrong_type";
    case IssueCode::kMissingField:
      return "missing_field";
    case IssueCode::kUnknownField:
      return "unknown_field";
    case IssueCode::kDuplicateKey:
      return "duplicate_key";
    case IssueCode::kOutOfRange:
      return "out_of_range";
    case IssueCode::kBadValue:
      return "bad_value";
    case IssueCode::kUnsupportedVersion:
      return "unsupported_version";
    case IssueCode::kTooLarge:
      return "too_large";
    case IssueCode::kBadName:
      return "bad_name";
    case IssueCode::kDuplicateName:
      return "duplicate_name";
    case IssueCode::kUnknownKind:
      return "unknown_kind";
    case IssueCode::kUnknownParam:
      return "unknown_param";
    case IssueCode::kConstraint:
      return "constraint";
    case IssueCode::kUnknownNode:
      return "unknown_node";
    case IssueCode::kUnknownPort:
      return "unknown_port";
    case IssueCode::kWrongDirection:
      return "wrong_direction";
    case IssueCode::kChannelMismatch:
      return "channel_mismatch";
    case IssueCode::kDuplicateRoute:
      return "duplicate_route";
    case IssueCode::kCycle:
      return "cycle";
  }
  return "invalid";
}

std::string IssuesText(const std::vector<Issue>& issues) {
  const size_t shown = std::min(issues.size(), kMaxReportedIssues);
  std::vector<std::string> lines;
  lines.reserve(shown + 1);
  for (size_t i = 0; i < shown; ++i) lines.push_back(Cat(issues[i].path, ": ", issues[i].message));
  if (issues.size() > shown)
    lines.push_back(Cat("... and ", issues.size() - shown, " more problems"));
  return JoinList(lines, "\n");
}

std::vector<Issue> ValidateNodeSettings(const GraphSpec& spec, const std::vector<size_t>& nodes,
                                        const KindRegistry& kinds,
                                        const ValidationContext& context) {
  std::vector<Issue> issues;
  for (const size_t i : nodes) {
    const std::string path = Indexed("nodes", i);
    if (i >= spec.nodes.size()) {
      issues.push_back({path, "no such node", IssueCode::kUnknownNode});
      continue;
    }
    const NodeSpec& n = spec.nodes[i];
    const NodeKind* kind = kinds.Find(n.kind);
    if (kind == nullptr) {
      const std::string* refused = kinds.RefusalOf(n.kind);
      issues.push_back({path + ".kind",
                        refused != nullptr ? Cat("unknown kind ", Quoted(n.kind),
                                                 ": its plugin was not loaded: ", *refused)
                                           : Cat("unknown kind ", Quoted(n.kind)),
                        IssueCode::kUnknownKind});
      continue;
    }
    CheckSettings(n, *kind, path, context, issues);
  }
  return issues;
}

std::optional<NodeLayout> LayoutOf(const GraphSpec& spec, const KindRegistry& kinds,
                                   std::string_view name) {
  if (const ExternalPort* p = spec.FindInput(name)) return ExternalInputLayout(*p);
  if (const NodeSpec* n = spec.FindNode(name)) {
    const NodeKind* kind = kinds.Find(n->kind);
    if (kind == nullptr) return std::nullopt;
    return kind->Layout(*n);
  }
  if (const ExternalPort* p = spec.FindOutput(name)) return ExternalOutputLayout(*p);
  return std::nullopt;
}

}  // namespace aers::model
