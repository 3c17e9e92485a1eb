// YAML <-> Config. The only translation unit that includes yaml-cpp; its
// exceptions are caught here and turned into absl::Status.
//
// Thread: non-real-time.
#include "config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "model/strings.h"
#include "model/validate.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace aers::config {
namespace {

using model::Issue;
using model::ParamValue;

using strutil::Cat;
using strutil::FirstInvalidUtf8;
using strutil::JoinList;

// Ranges of the settings sections (documented in docs/config.md).
constexpr int kMinPeriodFrames = 16;
constexpr int kMaxPeriodFrames = 8192;
constexpr double kMaxCrossfadeMs = 1000.0;
constexpr std::array<std::string_view, 3> kBackendTypes = {"auto", "jack", "null"};
constexpr size_t kMaxPluginName = 64;  // plugin::IsValidPluginName

// ---------------------------------------------------------------------------
// Numbers

// Shortest text that reads back as exactly `v`, in a form YAML's core schema
// reads as a number.
std::string FormatDouble(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string FormatNumberForMessage(double v) {
  return model::FormatParamValue(ParamValue(v));
}

// A scalar as the YAML 1.2 core schema resolves it.
struct Scalar {
  enum class Kind { kNull, kBool, kNumber, kString } kind = Kind::kString;
  bool flag = false;
  double number = 0.0;
  bool number_ok = true;  // false: numeric syntax but not representable
  std::string text;
};

bool AllOf(std::string_view s, bool (*pred)(char)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), pred);
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsOctDigit(char c) {
  return c >= '0' && c <= '7';
}
bool IsHexDigit(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsCoreFloat(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t int_digits = 0;
  while (i < s.size() && IsDigit(s[i])) ++i, ++int_digits;
  size_t frac_digits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && IsDigit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (i == s.size() || !IsDigit(s[i])) return false;
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  return i == s.size();
}

Scalar NullScalar() {
  Scalar s;
  s.kind = Scalar::Kind::kNull;
  return s;
}

Scalar ResolvePlain(const std::string& text) {
  Scalar s;
  s.text = text;
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    s.kind = Scalar::Kind::kNull;
    return s;
  }
  if (text == "true" || text == "True" || text == "TRUE" || text == "false" || text == "False" ||
      text == "FALSE") {
    s.kind = Scalar::Kind::kBool;
    s.flag = text[0] == 't' || text[0] == 'T';
    return s;
  }
  std::string_view body = text;
  const bool negative = body[0] == '-';
  if (body[0] == '-' || body[0] == '+') body.remove_prefix(1);
  if (body == ".inf" || body == ".Inf" || body == ".INF") {
    s.kind = Scalar::Kind::kNumber;
    s.number = negative ? -std::numeric_limits<double>::infinity()
                        : std::numeric_limits<double>::infinity();
    return s;
  }
  if (text == ".nan" || text == ".NaN" || text == ".NAN") {
    s.kind = Scalar::Kind::kNumber;
    s.number = std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'o' || text[1] == 'x')) {
    const std::string_view digits = std::string_view(text).substr(2);
    const bool hex = text[1] == 'x';
    if (AllOf(digits, hex ? IsHexDigit : IsOctDigit)) {
      s.kind = Scalar::Kind::kNumber;
      uint64_t value = 0;
      const auto r =
          std::from_chars(digits.data(), digits.data() + digits.size(), value, hex ? 16 : 8);
      s.number_ok = r.ec == std::errc();
      s.number = static_cast<double>(value);
    }
    return s;
  }
  if (IsCoreFloat(text)) {
    s.kind = Scalar::Kind::kNumber;
    // from_chars takes no '+' and no leading '.' after a sign issue: feed the body.
    std::string digits(body);
    double value = 0.0;
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    s.number_ok = r.ec == std::errc() && r.ptr == digits.data() + digits.size();
    s.number = negative ? -value : value;
  }
  return s;
}

Scalar Resolve(const YAML::Node& node) {
  if (node.IsNull()) return NullScalar();
  const std::string& tag = node.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") {
    Scalar s;
    s.text = node.Scalar();
    return s;
  }
  return ResolvePlain(node.Scalar());
}

// True when `text` written as a plain YAML scalar would read back as a string.
bool ReadsAsString(const std::string& text) {
  return ResolvePlain(text).kind == Scalar::Kind::kString;
}

// ---------------------------------------------------------------------------
// Positions and problems

Mark ToMark(const YAML::Mark& m, Mark fallback) {
  if (m.is_null() || m.line < 0 || m.column < 0) return fallback;
  return Mark{m.line + 1, m.column + 1};
}

// A problem with its position in the file (column 0: no position).
struct Located {
  Mark mark;
  std::string path;
  std::string message;
};

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar: {
      const Scalar s = Resolve(node);
      switch (s.kind) {
        case Scalar::Kind::kBool:
          return s.flag ? "true" : "false";
        case Scalar::Kind::kNumber:
          return Cat("the number ", s.text);
        case Scalar::Kind::kNull:
          return "nothing";
        case Scalar::Kind::kString:
          return Cat("the string '", s.text, "'");
      }
      return "a value";
    }
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::string Join(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : Cat(parent, ".", key);
}

std::string Indexed(std::string_view list, size_t i) {
  return Cat(list, "[", i, "]");
}

// The position of `path` or of its longest known prefix (component-wise).
std::optional<Mark> Lookup(const SourceMap& where, std::string path) {
  while (true) {
    if (auto it = where.find(path); it != where.end()) return it->second;
    const size_t cut = path.find_last_of(".[");
    if (cut == std::string::npos || cut == 0) return std::nullopt;
    path.resize(cut);
  }
}

// One problem per line, whatever a user's keys and values contain.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

std::string FormatLine(std::string_view filename, const Located& p) {
  const std::string where =
      p.mark.line > 0 ? Cat(filename, ":", p.mark.line, ":", p.mark.column) : std::string(filename);
  return OneLine(p.path.empty() ? Cat(where, ": ", p.message)
                                : Cat(where, ": ", p.path, ": ", p.message));
}

// Sorts by position (unpositioned last, in their original order) and joins.
std::string FormatLocated(std::vector<Located> problems, std::string_view filename) {
  std::stable_sort(problems.begin(), problems.end(), [](const Located& a, const Located& b) {
    const auto key = [](const Located& p) {
      return std::pair(p.mark.line > 0 ? p.mark.line : std::numeric_limits<int>::max(),
                       p.mark.column);
    };
    return key(a) < key(b);
  });
  std::vector<std::string> lines;
  const size_t shown = std::min(problems.size(), model::kMaxReportedIssues);
  lines.reserve(shown + 1);
  for (size_t i = 0; i < shown; ++i) lines.push_back(FormatLine(filename, problems[i]));
  if (problems.size() > shown) {
    lines.push_back(Cat("... and ", problems.size() - shown, " more problems"));
  }
  return JoinList(lines, "\n");
}

// ---------------------------------------------------------------------------
// Settings checks (the graph has model::ValidateGraph).

void CheckRange(double v, double lo, double hi, std::string_view unit, const std::string& path,
                std::string_view label, std::vector<Issue>& issues) {
  const std::string range = Cat(FormatNumberForMessage(lo), " to ", FormatNumberForMessage(hi),
                                unit.empty() ? "" : " ", unit);
  if (!std::isfinite(v)) {
    issues.push_back({path, Cat(label, " is not a finite number; use a value from ", range)});
  } else if (v < lo || v > hi) {
    issues.push_back({path, Cat(label, " = ", FormatNumberForMessage(v), unit.empty() ? "" : " ",
                                unit, " is out of range; allowed ", range)});
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
  issues.push_back({path, Cat(label, " '", value,
                              "' is not an absolute path; plugin paths must start with '/' "
                              "(relative paths would depend on the daemon's working directory)")});
}

// The `plugins:` section. An empty root means "no plugins"; the parser
// reports a section without one.
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
                        "such as /usr/lib/ladspa"});
    }
    CheckAbsolute(p.allowed_system_dirs[i], path, "allowed system directory", issues);
  }
  std::map<std::string_view, size_t> first_listed;  // name -> index in load
  for (size_t i = 0; i < p.load.size(); ++i) {
    const std::string path = Indexed("plugins.load", i);
    const std::string& name = p.load[i];
    if (!IsPluginName(name)) {
      issues.push_back(
          {path, Cat("'", name,
                     "' is not a plugin directory name; write the name of one directory "
                     "beneath root ([a-z][a-z0-9_-]*, at most 64 characters, no '/')")});
      continue;
    }
    const auto [first, inserted] = first_listed.emplace(name, i);
    if (!inserted) {
      issues.push_back({path, Cat("plugin '", name, "' is listed twice (first as load[",
                                  first->second, "]); list it once")});
    }
  }
  if (!p.root.empty() && p.require_signature && p.trusted_keys_dir.empty()) {
    issues.push_back({"plugins.trusted_keys_dir",
                      "require_signature is true but no trusted_keys_dir is given, so every "
                      "plugin would be refused; set trusted_keys_dir (e.g. /etc/aers/trusted-keys) "
                      "or require_signature: false"});
  }
  if (p.root.empty() &&
      (!p.load.empty() || !p.trusted_keys_dir.empty() || !p.state_dir.empty() ||
       !p.allowed_system_dirs.empty() || !p.audit_log.empty() || !p.require_signature)) {
    issues.push_back({"plugins.root",
                      "plugin settings without a root; set root "
                      "(e.g. /usr/lib/aers/plugins)"});
  }
  return issues;
}

}  // namespace

model::GraphLimits GraphLimitsOf(const EngineSettings& engine) {
  return {static_cast<size_t>(std::max(engine.max_nodes, 1)),
          static_cast<size_t>(std::max(engine.max_routes, 1))};
}

namespace {

std::vector<Issue> ValidateSettings(const Config& c, const model::NamingLimits& names) {
  std::vector<Issue> issues = ValidatePlugins(c.plugins);
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
  if (std::find(kBackendTypes.begin(), kBackendTypes.end(), c.backend.type) ==
      kBackendTypes.end()) {
    issues.push_back({"backend.type", Cat("unknown backend type '", c.backend.type,
                                          "'; expected one of: ", JoinList(kBackendTypes, ", "))});
  }
  // The naming policy (model/naming.h) with the backend's length limit.
  if (auto bad = model::CheckIdentifier(c.backend.jack_client_name, "client_name",
                                        names.max_client_name_bytes)) {
    issues.push_back({"backend.jack.client_name", *bad});
  }
  return issues;
}

// ---------------------------------------------------------------------------
// YAML -> Config

class Parser {
 public:
  Parser(std::string_view source, SourceMap& where) : source_(source), where_(where) {}

  void ParseRoot(const YAML::Node& root, Config& out);
  // Only the `plugins:` section of a whole file (ParsePluginSettings).
  void ParsePluginsOnly(const YAML::Node& root, PluginSettings& out);

  std::vector<Located>& problems() { return problems_; }
  // Drops graph issues that only repeat (or follow from) a structural problem.
  bool Tainted(std::string_view path) const;
  void TaintRoutesTouching(const model::GraphSpec& graph);

 private:
  // One entry of a map whose key is allowed.
  struct Field {
    std::string key;
    YAML::Node value;
    Mark key_mark;
  };

  // Where `node` starts; `fallback` (the key's position) for an empty value,
  // whose yaml-cpp mark points at whatever follows it.
  Mark MarkOf(const YAML::Node& node, Mark fallback) const {
    if (node.IsNull() && !NullLiteral(node)) return fallback;
    return ToMark(node.Mark(), fallback);
  }
  // The text of a null node written as a word ("null", "~"); nullopt for an
  // empty value. yaml-cpp keeps no text for null nodes, so read the source.
  std::optional<std::string> NullLiteral(const YAML::Node& node) const;
  void Record(const std::string& path, const YAML::Node& node, Mark fallback) {
    where_[path] = MarkOf(node, fallback);
  }
  // A structural problem at `path`: what validation says about `path` (and
  // below it) only follows from it, and is dropped.
  void Error(Mark mark, const std::string& path, std::string message) {
    Note(mark, path, std::move(message));
    tainted_.insert(path);
  }
  // A problem that leaves the parsed values sound (an unknown or repeated key).
  void Note(Mark mark, const std::string& path, std::string message) {
    problems_.push_back({mark, path, std::move(message)});
  }

  // Checks that `node` is a map with only `allowed` keys (each once) and
  // returns its entries. `what` names the map in messages ("a node").
  std::optional<std::vector<Field>> Map(const YAML::Node& node, const std::string& path,
                                        std::string_view what,
                                        const std::vector<std::string_view>& allowed,
                                        Mark fallback);
  // Reports keys in `required` that `fields` lacks.
  bool Require(const std::vector<Field>& fields, const std::vector<std::string_view>& required,
               const std::string& path, std::string_view what, Mark mark, std::string_view example);
  std::optional<std::string> String(const YAML::Node& node, const std::string& path,
                                    std::string_view what, Mark fallback);
  // Reports `text` unless it is well-formed UTF-8. Any other byte sequence
  // could not be written back (EmitConfig, the state file): YAML escapes
  // code points, not bytes.
  bool Utf8(const std::string& text, Mark mark, const std::string& path, std::string_view what);
  std::optional<double> Number(const YAML::Node& node, const std::string& path,
                               std::string_view what, Mark fallback);
  std::optional<int> Integer(const YAML::Node& node, const std::string& path, std::string_view what,
                             Mark fallback);
  std::optional<bool> Bool(const YAML::Node& node, const std::string& path, std::string_view what,
                           Mark fallback);
  // A non-empty string (a path; ValidatePlugins checks that it is absolute).
  std::optional<std::string> Path(const YAML::Node& node, const std::string& path,
                                  std::string_view what, std::string_view example, Mark fallback);
  bool List(const YAML::Node& node, const std::string& path, std::string_view what,
            std::string_view example, Mark fallback);

  void ParseEngine(const YAML::Node& node, const std::string& path, Mark fallback,
                   EngineSettings& out);
  void ParseBackend(const YAML::Node& node, const std::string& path, Mark fallback,
                    BackendSettings& out);
  void ParsePlugins(const YAML::Node& node, const std::string& path, Mark fallback,
                    PluginSettings& out);
  // A list of strings (allowed_system_dirs, load).
  void StringList(const YAML::Node& node, const std::string& path, std::string_view what,
                  std::string_view example, Mark fallback, std::vector<std::string>& out);
  void ParsePorts(const YAML::Node& node, const std::string& path, Mark fallback, bool is_input,
                  std::vector<model::ExternalPort>& out);
  void ParseNodes(const YAML::Node& node, const std::string& path, Mark fallback,
                  std::vector<model::NodeSpec>& out);
  std::optional<ParamValue> ParseParam(const YAML::Node& node, const std::string& path,
                                       const std::string& name, Mark fallback);
  void ParseRoutes(const YAML::Node& node, const std::string& path, Mark fallback,
                   std::vector<model::RouteSpec>& out);
  std::optional<model::Endpoint> ParseEndpoint(const YAML::Node& node, const std::string& path,
                                               std::string_view what, Mark fallback);

  std::string_view source_;
  SourceMap& where_;
  std::vector<Located> problems_;
  std::set<std::string, std::less<>> tainted_;
  std::set<std::string> suspect_names_;  // elements whose shape is unsure
};

std::optional<std::string> Parser::NullLiteral(const YAML::Node& node) const {
  const YAML::Mark m = node.Mark();
  if (m.is_null() || m.pos < 0 || static_cast<size_t>(m.pos) >= source_.size()) {
    return std::nullopt;
  }
  const std::string_view rest = source_.substr(static_cast<size_t>(m.pos));
  for (const std::string_view word : {"null", "Null", "NULL", "~"}) {
    if (rest.substr(0, word.size()) != word) continue;
    if (rest.size() == word.size()) return std::string(word);
    const char next = rest[word.size()];
    if (next == ' ' || next == '\t' || next == '\n' || next == '\r' || next == ',' || next == ']' ||
        next == '}' || next == '#') {
      return std::string(word);
    }
  }
  return std::nullopt;
}

bool Parser::Tainted(std::string_view path) const {
  // `path` or a prefix of it that ends where a component does (before '.' or
  // '['): a few lookups, not a pass over every tainted path per issue.
  if (tainted_.count(path) != 0) return true;
  for (size_t i = path.size(); i-- > 0;) {
    if ((path[i] == '.' || path[i] == '[') && tainted_.count(path.substr(0, i)) != 0) return true;
  }
  return false;
}

void Parser::TaintRoutesTouching(const model::GraphSpec& graph) {
  for (size_t i = 0; i < graph.routes.size(); ++i) {
    const auto& r = graph.routes[i];
    if (suspect_names_.count(r.from.node) || suspect_names_.count(r.to.node)) {
      tainted_.insert(Indexed("routes", i));
    }
  }
}

std::optional<std::vector<Parser::Field>> Parser::Map(const YAML::Node& node,
                                                      const std::string& path,
                                                      std::string_view what,
                                                      const std::vector<std::string_view>& allowed,
                                                      Mark fallback) {
  const Mark mark = MarkOf(node, fallback);
  if (!node.IsMap()) {
    Error(mark, path,
          Cat("expected ", what, " (a map with keys ", JoinList(allowed, ", "), "), got ",
              Describe(node)));
    return std::nullopt;
  }
  Record(path, node, fallback);
  std::vector<Field> fields;
  std::map<std::string, Mark, std::less<>> seen;  // key -> where it was first
  for (const auto& kv : node) {
    const Mark key_mark = MarkOf(kv.first, mark);
    if (!kv.first.IsScalar()) {
      Note(key_mark, path,
           Cat("keys of ", what, " must be plain words; allowed keys: ", JoinList(allowed, ", ")));
      continue;
    }
    const std::string key = kv.first.Scalar();
    const std::string key_path = Join(path, key);
    const auto [dup, inserted] = seen.emplace(key, key_mark);
    if (!inserted) {
      Note(key_mark, key_path,
           Cat("duplicate key '", key, "' (first at line ", dup->second.line,
               "); write each key once"));
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      Note(key_mark, key_path,
           Cat("unknown key '", key, "' in ", what, "; allowed keys: ", JoinList(allowed, ", ")));
      continue;
    }
    fields.push_back({key, kv.second, key_mark});
  }
  return fields;
}

bool Parser::Require(const std::vector<Field>& fields,
                     const std::vector<std::string_view>& required, const std::string& path,
                     std::string_view what, Mark mark, std::string_view example) {
  bool ok = true;
  for (const auto key : required) {
    if (std::none_of(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; })) {
      Error(mark, Join(path, key),
            Cat(what, " has no '", key, "'; it is required (e.g. ", example, ")"));
      ok = false;
    }
  }
  return ok;
}

std::optional<std::string> Parser::String(const YAML::Node& node, const std::string& path,
                                          std::string_view what, Mark fallback) {
  const Mark mark = MarkOf(node, fallback);
  if (node.IsNull()) {
    // A word that YAML reads as null ("type: null") is still that word here.
    if (auto word = NullLiteral(node)) {
      Record(path, node, fallback);
      return word;
    }
    Error(mark, path, Cat(what, " has no value; write a string"));
    return std::nullopt;
  }
  if (!node.IsScalar()) {
    Error(mark, path, Cat(what, " must be a string, got ", Describe(node)));
    return std::nullopt;
  }
  if (!Utf8(node.Scalar(), mark, path, what)) return std::nullopt;
  Record(path, node, fallback);
  return node.Scalar();
}

bool Parser::Utf8(const std::string& text, Mark mark, const std::string& path,
                  std::string_view what) {
  const size_t bad = FirstInvalidUtf8(text);
  if (bad == std::string_view::npos) return true;
  Error(mark, path,
        Cat(what, " is not valid UTF-8 (byte ", bad + 1,
            " of the value); write the config as UTF-8 text"));
  return false;
}

std::optional<double> Parser::Number(const YAML::Node& node, const std::string& path,
                                     std::string_view what, Mark fallback) {
  const Mark mark = MarkOf(node, fallback);
  const Scalar s = node.IsScalar() ? Resolve(node) : Scalar{};
  if (!node.IsScalar() || s.kind != Scalar::Kind::kNumber) {
    Error(mark, path, Cat(what, " must be a number, got ", Describe(node)));
    return std::nullopt;
  }
  if (!s.number_ok) {
    Error(mark, path, Cat(what, " = ", s.text, " is not a representable number"));
    return std::nullopt;
  }
  Record(path, node, fallback);
  return s.number;
}

std::optional<int> Parser::Integer(const YAML::Node& node, const std::string& path,
                                   std::string_view what, Mark fallback) {
  const Mark mark = MarkOf(node, fallback);
  const Scalar s = node.IsScalar() ? Resolve(node) : Scalar{};
  if (!node.IsScalar() || s.kind != Scalar::Kind::kNumber || !s.number_ok ||
      !std::isfinite(s.number) || s.number != std::floor(s.number)) {
    Error(mark, path, Cat(what, " must be a whole number, got ", Describe(node)));
    return std::nullopt;
  }
  if (std::fabs(s.number) > 1e9) {
    Error(mark, path, Cat(what, " = ", s.text, " is far out of range"));
    return std::nullopt;
  }
  Record(path, node, fallback);
  return static_cast<int>(s.number);
}

std::optional<bool> Parser::Bool(const YAML::Node& node, const std::string& path,
                                 std::string_view what, Mark fallback) {
  const Mark mark = MarkOf(node, fallback);
  const Scalar s = node.IsScalar() ? Resolve(node) : Scalar{};
  if (!node.IsScalar() || s.kind != Scalar::Kind::kBool) {
    Error(mark, path, Cat(what, " must be true or false, got ", Describe(node)));
    return std::nullopt;
  }
  Record(path, node, fallback);
  return s.flag;
}

std::optional<std::string> Parser::Path(const YAML::Node& node, const std::string& path,
                                        std::string_view what, std::string_view example,
                                        Mark fallback) {
  auto v = String(node, path, what, fallback);
  if (v && v->empty()) {
    Error(MarkOf(node, fallback), path,
          Cat(what, " is empty; write an absolute path (e.g. ", example, ")"));
    return std::nullopt;
  }
  return v;
}

bool Parser::List(const YAML::Node& node, const std::string& path, std::string_view what,
                  std::string_view example, Mark fallback) {
  if (!node.IsSequence()) {
    Error(MarkOf(node, fallback), path,
          Cat(what, " must be a list (", example, "), got ", Describe(node)));
    return false;
  }
  Record(path, node, fallback);
  return true;
}

void Parser::ParseRoot(const YAML::Node& root, Config& out) {
  const Mark start{1, 1};
  if (root.IsNull()) {
    Error(start, "",
          "the config is empty; it is a map that starts with 'version: 1' (see docs/config.md)");
    return;
  }
  const auto fields = Map(
      root, "", "the config",
      {"version", "engine", "backend", "plugins", "inputs", "outputs", "nodes", "routes"}, start);
  if (!fields) return;
  const Mark root_mark = MarkOf(root, start);
  Require(*fields, {"version"}, "", "the config", root_mark, "'version: 1' as the first line");
  for (const Field& f : *fields) {
    const std::string path = f.key;
    if (f.key == "version") {
      if (auto v = Integer(f.value, path, "version", f.key_mark)) out.graph.version = *v;
    } else if (f.key == "engine") {
      ParseEngine(f.value, path, f.key_mark, out.engine);
    } else if (f.key == "backend") {
      ParseBackend(f.value, path, f.key_mark, out.backend);
    } else if (f.key == "plugins") {
      ParsePlugins(f.value, path, f.key_mark, out.plugins);
    } else if (f.key == "inputs") {
      ParsePorts(f.value, path, f.key_mark, true, out.graph.inputs);
    } else if (f.key == "outputs") {
      ParsePorts(f.value, path, f.key_mark, false, out.graph.outputs);
    } else if (f.key == "nodes") {
      ParseNodes(f.value, path, f.key_mark, out.graph.nodes);
    } else if (f.key == "routes") {
      ParseRoutes(f.value, path, f.key_mark, out.graph.routes);
    }
  }
}

void Parser::ParseEngine(const YAML::Node& node, const std::string& path, Mark fallback,
                         EngineSettings& out) {
  if (node.IsNull()) return;  // "engine:" alone: all defaults
  const auto fields =
      Map(node, path, "the engine section",
          {"sample_rate_hz", "period_frames", "crossfade_ms", "max_nodes", "max_routes"}, fallback);
  if (!fields) return;
  for (const Field& f : *fields) {
    const std::string p = Join(path, f.key);
    if (f.key == "sample_rate_hz") {
      if (auto v = Number(f.value, p, f.key, f.key_mark)) out.sample_rate_hz = *v;
    } else if (f.key == "period_frames") {
      if (auto v = Integer(f.value, p, f.key, f.key_mark)) out.period_frames = *v;
    } else if (f.key == "crossfade_ms") {
      if (auto v = Number(f.value, p, f.key, f.key_mark)) out.crossfade_ms = *v;
    } else if (f.key == "max_nodes") {
      if (auto v = Integer(f.value, p, f.key, f.key_mark)) out.max_nodes = *v;
    } else if (f.key == "max_routes") {
      if (auto v = Integer(f.value, p, f.key, f.key_mark)) out.max_routes = *v;
    }
  }
}

void Parser::ParseBackend(const YAML::Node& node, const std::string& path, Mark fallback,
                          BackendSettings& out) {
  if (node.IsNull()) return;
  const auto fields = Map(node, path, "the backend section", {"type", "jack"}, fallback);
  if (!fields) return;
  for (const Field& f : *fields) {
    const std::string p = Join(path, f.key);
    if (f.key == "type") {
      if (auto v = String(f.value, p, "type", f.key_mark)) out.type = *v;
    } else if (f.key == "jack") {
      if (f.value.IsNull()) continue;
      const auto jack =
          Map(f.value, p, "the jack section", {"client_name", "server_name"}, f.key_mark);
      if (!jack) continue;
      for (const Field& j : *jack) {
        const std::string jp = Join(p, j.key);
        if (j.key == "client_name") {
          if (auto v = String(j.value, jp, j.key, j.key_mark)) out.jack_client_name = *v;
        } else if (j.key == "server_name") {
          if (auto v = String(j.value, jp, j.key, j.key_mark)) out.jack_server_name = *v;
        }
      }
    }
  }
}

void Parser::ParsePluginsOnly(const YAML::Node& root, PluginSettings& out) {
  // Everything outside `plugins:` is ParseConfig's business; a file that is
  // not a map has no plugins section.
  if (!root.IsMap()) return;
  const Mark start{1, 1};
  const Mark root_mark = MarkOf(root, start);
  for (const auto& kv : root) {
    if (!kv.first.IsScalar() || kv.first.Scalar() != "plugins") continue;
    ParsePlugins(kv.second, "plugins", MarkOf(kv.first, root_mark), out);
    return;  // a repeated key is reported by ParseConfig
  }
}

void Parser::StringList(const YAML::Node& node, const std::string& path, std::string_view what,
                        std::string_view example, Mark fallback, std::vector<std::string>& out) {
  if (node.IsNull()) return;
  if (!List(node, path, what, example, fallback)) return;
  const Mark list_mark = MarkOf(node, fallback);
  size_t i = 0;
  for (const auto& item : node) {
    auto v = String(item, Indexed(path, i++), Cat("an entry of ", what), list_mark);
    // Keep the indices of later entries; what validation says about this
    // (tainted) one is dropped.
    out.push_back(v ? std::move(*v) : std::string());
  }
}

void Parser::ParsePlugins(const YAML::Node& node, const std::string& path, Mark fallback,
                          PluginSettings& out) {
  if (node.IsNull()) return;  // "plugins:" alone: no plugins
  const auto fields = Map(node, path, "the plugins section",
                          {"root", "require_signature", "trusted_keys_dir", "state_dir",
                           "allowed_system_dirs", "load", "audit_log"},
                          fallback);
  if (!fields) return;
  Require(*fields, {"root"}, path, "the plugins section", MarkOf(node, fallback),
          "root: /usr/lib/aers/plugins");
  for (const Field& f : *fields) {
    const std::string p = Join(path, f.key);
    if (f.key == "root") {
      if (auto v = Path(f.value, p, f.key, "/usr/lib/aers/plugins", f.key_mark)) out.root = *v;
    } else if (f.key == "require_signature") {
      if (auto v = Bool(f.value, p, f.key, f.key_mark)) {
        out.require_signature = *v;
      } else {
        // Unknown: the config is refused anyway; do not also report that
        // signatures need trusted_keys_dir.
        out.require_signature = false;
      }
    } else if (f.key == "trusted_keys_dir") {
      if (auto v = Path(f.value, p, f.key, "/etc/aers/trusted-keys", f.key_mark)) {
        out.trusted_keys_dir = *v;
      }
    } else if (f.key == "state_dir") {
      if (auto v = Path(f.value, p, f.key, "/var/lib/aers/plugins", f.key_mark)) out.state_dir = *v;
    } else if (f.key == "audit_log") {
      if (auto v = Path(f.value, p, f.key, "/var/log/aers/plugin-audit.jsonl", f.key_mark)) {
        out.audit_log = *v;
      }
    } else if (f.key == "allowed_system_dirs") {
      StringList(f.value, p, "allowed_system_dirs", "e.g. [/usr/lib/ladspa]", f.key_mark,
                 out.allowed_system_dirs);
    } else if (f.key == "load") {
      StringList(f.value, p, "load", "plugin directory names, e.g. [example_gain]", f.key_mark,
                 out.load);
    }
  }
}

void Parser::ParsePorts(const YAML::Node& node, const std::string& path, Mark fallback,
                        bool is_input, std::vector<model::ExternalPort>& out) {
  if (node.IsNull()) return;
  const std::string_view what = is_input ? "an input" : "an output";
  const std::string_view example =
      is_input ? "{name: main, channels: 2, connect: [system:capture_1, system:capture_2]}"
               : "{name: main_out, channels: 2, connect: [system:playback_1, system:playback_2]}";
  if (!List(node, path, path, Cat("e.g. - ", example), fallback)) return;
  const Mark list_mark = MarkOf(node, fallback);
  size_t i = 0;
  for (const auto& item : node) {
    const std::string ipath = Indexed(path, i++);
    model::ExternalPort port;
    const auto fields = Map(item, ipath, what, {"name", "channels", "connect"}, list_mark);
    if (fields) {
      const Mark mark = MarkOf(item, list_mark);
      Require(*fields, {"name"}, ipath, what, mark, "name: main");
      for (const Field& f : *fields) {
        const std::string p = Join(ipath, f.key);
        if (f.key == "name") {
          if (auto v = String(f.value, p, "name", f.key_mark)) port.name = *v;
        } else if (f.key == "channels") {
          if (auto v = Integer(f.value, p, "channels", f.key_mark)) {
            port.channels = *v;
          } else {
            port.channels = -1;  // marked suspect below, once the name is known
          }
        } else if (f.key == "connect") {
          if (f.value.IsNull()) continue;
          if (!List(f.value, p, "connect", "backend port names, e.g. [system:capture_1]",
                    f.key_mark)) {
            continue;
          }
          size_t k = 0;
          for (const auto& c : f.value) {
            if (auto v =
                    String(c, Indexed(p, k++), "a connect entry", MarkOf(f.value, f.key_mark))) {
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

void Parser::ParseNodes(const YAML::Node& node, const std::string& path, Mark fallback,
                        std::vector<model::NodeSpec>& out) {
  if (node.IsNull()) return;
  if (!List(node, path, "nodes", "e.g. - {name: trim, kind: gain, params: {gain_db: -6}}",
            fallback)) {
    return;
  }
  const Mark list_mark = MarkOf(node, fallback);
  size_t i = 0;
  for (const auto& item : node) {
    const std::string ipath = Indexed(path, i++);
    model::NodeSpec spec;
    bool suspect = false;
    const auto fields =
        Map(item, ipath, "a node", {"name", "kind", "channels", "params"}, list_mark);
    if (fields) {
      const Mark mark = MarkOf(item, list_mark);
      Require(*fields, {"name", "kind"}, ipath, "a node", mark, "name: trim, kind: gain");
      for (const Field& f : *fields) {
        const std::string p = Join(ipath, f.key);
        if (f.key == "name") {
          if (auto v = String(f.value, p, "name", f.key_mark)) spec.name = *v;
        } else if (f.key == "kind") {
          if (auto v = String(f.value, p, "kind", f.key_mark)) {
            spec.kind = *v;
          } else {
            suspect = true;
          }
        } else if (f.key == "channels") {
          if (auto v = Integer(f.value, p, "channels", f.key_mark)) {
            spec.channels = *v;
          } else {
            suspect = true;
          }
        } else if (f.key == "params") {
          if (f.value.IsNull()) continue;
          if (!f.value.IsMap()) {
            Error(MarkOf(f.value, f.key_mark), p,
                  Cat("params must be a map of parameter names to values (e.g. "
                      "{gain_db: -6}), got ",
                      Describe(f.value)));
            continue;
          }
          Record(p, f.value, f.key_mark);
          const Mark params_mark = MarkOf(f.value, f.key_mark);
          for (const auto& kv : f.value) {
            const Mark key_mark = MarkOf(kv.first, params_mark);
            if (!kv.first.IsScalar()) {
              Note(key_mark, p, "parameter names must be plain words");
              continue;
            }
            const std::string name = kv.first.Scalar();
            const std::string pp = Join(p, name);
            if (spec.params.count(name)) {
              Note(key_mark, pp, Cat("parameter '", name, "' is set twice; write it once"));
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
              tainted_.insert(pp);
            }
          }
        }
      }
    }
    if (suspect || !fields) suspect_names_.insert(spec.name);
    out.push_back(std::move(spec));
  }
}

std::optional<ParamValue> Parser::ParseParam(const YAML::Node& node, const std::string& path,
                                             const std::string& name, Mark fallback) {
  const Mark mark = MarkOf(node, fallback);
  const auto bad = [&](std::string_view got) {
    Error(mark, path,
          Cat("parameter '", name,
              "' must be a number, true/false, a word or a list of numbers, got ", got));
    return std::nullopt;
  };
  if (node.IsMap()) return bad("a map");
  if (node.IsSequence()) {
    Record(path, node, fallback);
    std::vector<double> list;
    size_t k = 0;
    bool ok = true;
    for (const auto& e : node) {
      const std::string epath = Indexed(path, k++);
      const Mark emark = MarkOf(e, mark);
      const Scalar s = e.IsScalar() ? Resolve(e) : Scalar{};
      if (!e.IsScalar() || s.kind != Scalar::Kind::kNumber || !s.number_ok) {
        Error(emark, epath,
              Cat("'", name, "' is a list of numbers; element ", k - 1, " is ", Describe(e)));
        ok = false;
        continue;
      }
      Record(epath, e, mark);
      list.push_back(s.number);
    }
    if (!ok) return std::nullopt;
    return ParamValue(std::move(list));
  }
  const Scalar s = node.IsScalar() ? Resolve(node) : NullScalar();
  switch (s.kind) {
    case Scalar::Kind::kNull:
      Error(mark, path, Cat("parameter '", name, "' has no value"));
      return std::nullopt;
    case Scalar::Kind::kBool:
      Record(path, node, fallback);
      return ParamValue(s.flag);
    case Scalar::Kind::kNumber:
      if (!s.number_ok) {
        Error(mark, path,
              Cat("parameter '", name, "' = ", s.text, " is not a representable number"));
        return std::nullopt;
      }
      Record(path, node, fallback);
      return ParamValue(s.number);
    case Scalar::Kind::kString:
      if (!Utf8(s.text, mark, path, Cat("parameter '", name, "'"))) return std::nullopt;
      Record(path, node, fallback);
      return ParamValue(s.text);
  }
  return std::nullopt;
}

std::optional<model::Endpoint> Parser::ParseEndpoint(const YAML::Node& node,
                                                     const std::string& path, std::string_view what,
                                                     Mark fallback) {
  auto text = String(node, path, what, fallback);
  if (!text) return std::nullopt;
  const model::Endpoint e = model::Endpoint::Parse(*text);
  const bool has_dot = text->find('.') != std::string::npos;
  if (e.node.empty() || (has_dot && e.port.empty())) {
    Error(MarkOf(node, fallback), path,
          Cat("malformed endpoint '", *text, "'; write 'node' or 'node.port'"));
    return std::nullopt;
  }
  return e;
}

void Parser::ParseRoutes(const YAML::Node& node, const std::string& path, Mark fallback,
                         std::vector<model::RouteSpec>& out) {
  if (node.IsNull()) return;
  if (!List(node, path, "routes", "e.g. - {from: main, to: trim}", fallback)) return;
  const Mark list_mark = MarkOf(node, fallback);
  size_t i = 0;
  for (const auto& item : node) {
    const std::string ipath = Indexed(path, i++);
    model::RouteSpec route;
    const auto fields = Map(item, ipath, "a route", {"from", "to"}, list_mark);
    if (fields) {
      Require(*fields, {"from", "to"}, ipath, "a route", MarkOf(item, list_mark),
              "{from: main, to: trim}");
      for (const Field& f : *fields) {
        const std::string p = Join(ipath, f.key);
        if (auto e = ParseEndpoint(f.value, p, f.key, f.key_mark)) {
          (f.key == "from" ? route.from : route.to) = std::move(*e);
        }
      }
    }
    out.push_back(std::move(route));
  }
}

// ---------------------------------------------------------------------------
// Config -> YAML

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

// YAML constructs that could hide content are refused before the document
// is read (yaml-cpp would take only the first of several documents, share
// aliased nodes, ignore merge keys and most tags): one document; no
// aliases; no merge keys ("<<"); no tags beyond the core schema's str,
// seq and map. Returns "" or "LINE:COLUMN: message".
class ConstructScan final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    // yaml-cpp 0.7 starts a document at a token it cannot read (a ','
    // outside [...] or {...}) without consuming it, so the same start comes
    // back forever (found by tests/fuzz/config_fuzz): stop there.
    if (documents_ > 0 && mark.pos == last_start_) {
      stuck_ = true;
      Refuse(mark, "no YAML node can start here (a ',' outside [...] or {...}?)");
      return;
    }
    last_start_ = mark.pos;
    if (++documents_ == 2) Refuse(mark, "a second YAML document ('---'); a config is one document");
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Node(mark, false);
    Anchor(mark, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    Refuse(mark, "an alias (*NAME): anchors and aliases are not supported; write the value out");
    Node(mark, false);
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    const bool key = Node(mark, false);
    Anchor(mark, anchor);
    if (key && tag == "?" && value == "<<") {
      Refuse(mark, "a merge key (<<): merge keys are not supported; write the keys out");
    }
    Tag(mark, tag, "tag:yaml.org,2002:str");
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Node(mark, true);
    Anchor(mark, anchor);
    Tag(mark, tag, "tag:yaml.org,2002:seq");
  }
  void OnSequenceEnd() override { Pop(); }
  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Node(mark, true, /*map=*/true);
    Anchor(mark, anchor);
    Tag(mark, tag, "tag:yaml.org,2002:map");
  }
  void OnMapEnd() override { Pop(); }

  const std::string& problem() const { return problem_; }
  // True once the parser makes no progress (see OnDocumentStart).
  bool stuck() const { return stuck_; }

 private:
  struct Frame {
    bool map;
    bool next_is_key;
  };
  // A node begins; true if it is a mapping key. Containers push a frame.
  bool Node(const YAML::Mark&, bool container, bool map = false) {
    bool key = false;
    if (!stack_.empty() && stack_.back().map) {
      key = stack_.back().next_is_key;
      stack_.back().next_is_key = !key;
    }
    if (container) stack_.push_back({map, true});
    return key;
  }
  void Pop() {
    if (!stack_.empty()) stack_.pop_back();
  }
  // An anchor alone hides nothing, but it only exists to be aliased.
  void Anchor(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) {
      Refuse(mark, "an anchor (&NAME): anchors and aliases are not supported; write the value out");
    }
  }
  // "?" (plain) and "!" (quoted, or the non-specific tag "!" a value may
  // carry to be read as a string) are untagged; the core tag of the node's
  // own type changes nothing; anything else is refused.
  void Tag(const YAML::Mark& mark, const std::string& tag, const char* own) {
    if (tag.empty() || tag == "?" || tag == "!" || tag == own) return;
    Refuse(mark, Cat("the tag '", tag, "' is not supported; remove it"));
  }
  void Refuse(const YAML::Mark& mark, const std::string& what) {
    if (!problem_.empty()) return;
    const Mark m = ToMark(mark, Mark{1, 1});
    problem_ = Cat(m.line, ":", m.column, ": ", what);
  }

  int documents_ = 0;
  int last_start_ = -1;  // YAML::Mark::pos of the last document start
  bool stuck_ = false;
  std::vector<Frame> stack_;
  std::string problem_;
};

// Loads the one document of `yaml`, refusing what ConstructScan refuses.
// Throws YAML::Exception on syntax errors (callers report them).
absl::StatusOr<YAML::Node> LoadDocument(std::string_view yaml, std::string_view filename) {
  const std::string text(yaml);
  {
    std::istringstream in(text);
    YAML::Parser parser(in);
    ConstructScan scan;
    while (!scan.stuck() && parser.HandleNextDocument(scan)) {
    }
    if (!scan.problem().empty()) {
      return absl::InvalidArgumentError(Cat(filename, ":", scan.problem()));
    }
  }
  return YAML::Load(text);
}

absl::StatusOr<Config> ParseConfig(std::string_view yaml, std::string_view filename,
                                   const model::KindRegistry& kinds, SourceMap* where,
                                   const model::NamingLimits* names) {
  SourceMap local_where;
  SourceMap& map = where != nullptr ? *where : local_where;
  map.clear();
  Config config;
  Parser parser(yaml, map);
  try {
    auto root = LoadDocument(yaml, filename);
    if (!root.ok()) return root.status();
    parser.ParseRoot(*root, config);
  } catch (const YAML::Exception& e) {
    const Mark mark = ToMark(e.mark, Mark{1, 1});
    return absl::InvalidArgumentError(
        Cat(filename, ":", mark.line, ":", mark.column, ": yaml: ", e.msg));
  }

  std::vector<Located> problems = std::move(parser.problems());
  parser.TaintRoutesTouching(config.graph);
  auto add_issues = [&](const std::vector<Issue>& issues) {
    for (const Issue& issue : issues) {
      if (parser.Tainted(issue.path)) continue;
      problems.push_back({Lookup(map, issue.path).value_or(Mark{}), issue.path, issue.message});
    }
  };
  model::ValidationContext context;
  if (names != nullptr) context.names = *names;
  if (context.names.client_name.empty())
    context.names.client_name = config.backend.jack_client_name;
  context.sample_rate_hz = config.engine.sample_rate_hz;
  context.limits = GraphLimitsOf(config.engine);
  add_issues(ValidateSettings(config, context.names));
  add_issues(model::ValidateGraph(config.graph, kinds, context));
  if (!problems.empty()) {
    return absl::InvalidArgumentError(FormatLocated(std::move(problems), filename));
  }
  return config;
}

absl::StatusOr<PluginSettings> ParsePluginSettings(std::string_view yaml,
                                                   std::string_view filename) {
  SourceMap map;
  PluginSettings settings;
  Parser parser(yaml, map);
  try {
    auto root = LoadDocument(yaml, filename);
    if (!root.ok()) return root.status();
    parser.ParsePluginsOnly(*root, settings);
  } catch (const YAML::Exception& e) {
    const Mark mark = ToMark(e.mark, Mark{1, 1});
    return absl::InvalidArgumentError(
        Cat(filename, ":", mark.line, ":", mark.column, ": yaml: ", e.msg));
  }
  std::vector<Located> problems = std::move(parser.problems());
  for (const Issue& issue : ValidatePlugins(settings)) {
    if (parser.Tainted(issue.path)) continue;
    problems.push_back({Lookup(map, issue.path).value_or(Mark{}), issue.path, issue.message});
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(FormatLocated(std::move(problems), filename));
  }
  return settings;
}

absl::StatusOr<std::string> ReadConfigText(const std::string& path) {
  const auto fail = [&](int err) {
    const std::string message =
        Cat("cannot read config file '", path, "': ", std::generic_category().message(err));
    switch (err) {
      case ENOENT:
      case ENOTDIR:
        return absl::NotFoundError(message);
      case EACCES:
      case EPERM:
        return absl::PermissionDeniedError(message);
      default:
        return absl::FailedPreconditionError(message);
    }
  };
  // O_NONBLOCK: a FIFO must not hang the caller; only regular files are read.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail(errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(
        Cat("cannot read config file '", path,
            "': ", S_ISDIR(st.st_mode) ? "it is a directory" : "it is not a regular file"));
  }
  constexpr size_t kMaxConfigBytes = size_t{16} << 20;
  std::string text;
  char buf[1 << 14];
  while (true) {
    if (text.size() > kMaxConfigBytes) {
      ::close(fd);
      return absl::FailedPreconditionError(
          Cat("cannot read config file '", path, "': larger than 16 MiB"));
    }
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return fail(err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path, const model::KindRegistry& kinds,
                                      SourceMap* where, const model::NamingLimits* names) {
  auto text = ReadConfigText(path);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path, kinds, where, names);
}

std::string EmitGraph(const model::GraphSpec& graph) {
  Config c;
  c.graph = graph;
  return EmitConfig(c);
}

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
  out << YAML::EndMap << YAML::EndMap;

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

std::string FormatIssues(const std::vector<model::Issue>& issues, const SourceMap& where,
                         std::string_view filename) {
  std::vector<Located> problems;
  problems.reserve(issues.size());
  for (const Issue& issue : issues) {
    problems.push_back({Lookup(where, issue.path).value_or(Mark{}), issue.path, issue.message});
  }
  return FormatLocated(std::move(problems), filename);
}

}  // namespace aers::config
