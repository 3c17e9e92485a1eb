#include "plugin/manifest.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace aers::plugin {
namespace {

bool IsLowerAlpha(char c) {
  return c >= 'a' && c <= 'z';
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsHex(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool IsValidSoname(std::string_view s) {
  if (s.empty() || s.size() > 128 || s.find(".so") == std::string_view::npos) return false;
  for (char c : s) {
    if (!(IsLowerAlpha(c) || IsDigit(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
          c == '-' || c == '+')) {
      return false;
    }
  }
  return s.front() != '.';
}

// Collects issues with positions.
class Checker {
 public:
  explicit Checker(std::string_view file) : file_(file) {}

  void Issue(const YAML::Node& at, const std::string& path, const std::string& message) {
    Issue(Pos(at), path, message);
  }
  void Issue(TextPosition p, const std::string& path, const std::string& message) {
    issues_.push_back(absl::StrCat(file_, ":", p.line, ":", p.column, ": ", path, ": ", message));
  }
  static TextPosition Pos(const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    if (m.is_null()) return {0, 0};
    return {m.line + 1, m.column + 1};
  }
  bool ok() const { return issues_.empty(); }
  std::string Joined() const { return absl::StrJoin(issues_, "\n"); }

  // A scalar that YAML would read as a string (plain or quoted). Reports and
  // returns false otherwise.
  bool Scalar(const YAML::Node& n, const std::string& path, std::string& out) {
    if (n.IsNull()) {
      // yaml-cpp places an empty value at the next token: point at the key.
      auto k = key_pos_.find(path);
      Issue(k != key_pos_.end() ? k->second : Pos(n), path, "missing value");
      return false;
    }
    if (!n.IsScalar()) {
      Issue(n, path, absl::StrCat("must be a single value, not a ", n.IsMap() ? "map" : "list"));
      return false;
    }
    out = n.Scalar();
    return true;
  }

  bool String(const YAML::Node& n, const std::string& path, std::string& out, size_t max_len) {
    if (!Scalar(n, path, out)) return false;
    if (out.empty()) {
      Issue(n, path, "must not be empty");
      return false;
    }
    if (out.size() > max_len) {
      Issue(n, path, absl::StrCat("is longer than ", max_len, " characters"));
      return false;
    }
    for (unsigned char c : out) {
      if (c < 0x20 || c == 0x7f) {
        Issue(n, path, "contains a control character");
        return false;
      }
    }
    return true;
  }

  // A plain (unquoted) non-negative decimal integer in [lo, hi].
  bool Integer(const YAML::Node& n, const std::string& path, uint64_t lo, uint64_t hi,
               uint64_t& out) {
    std::string s;
    if (!Scalar(n, path, s)) return false;
    if (n.Tag() != "?") {
      Issue(n, path, absl::StrCat("must be an integer, not a quoted string (\"", s, "\")"));
      return false;
    }
    if (s.empty() || s.size() > 20) {
      Issue(n, path, absl::StrCat("must be an integer, got '", s, "'"));
      return false;
    }
    uint64_t v = 0;
    for (char c : s) {
      if (!IsDigit(c)) {
        Issue(n, path, absl::StrCat("must be a non-negative decimal integer, got '", s, "'"));
        return false;
      }
      const uint64_t d = static_cast<uint64_t>(c - '0');
      if (v > (UINT64_MAX - d) / 10) {
        Issue(n, path, absl::StrCat("is out of range; allowed ", lo, " to ", hi));
        return false;
      }
      v = v * 10 + d;
    }
    if (v < lo || v > hi) {
      Issue(n, path, absl::StrCat("= ", v, " is out of range; allowed ", lo, " to ", hi));
      return false;
    }
    out = v;
    return true;
  }

  // Map keys in `allowed`; duplicate and unknown keys are issues. Returns the
  // (unique, known) entries by key.
  std::vector<std::pair<std::string, YAML::Node>> Map(const YAML::Node& n, const std::string& path,
                                                      const std::set<std::string>& allowed) {
    std::vector<std::pair<std::string, YAML::Node>> out;
    std::set<std::string> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const YAML::Node key = it->first;  // NOLINT(performance-unnecessary-copy-initialization): the
                                         // iterator yields a temporary
      const std::string kp = path.empty() ? "" : path + ".";
      if (!key.IsScalar()) {
        Issue(key, path.empty() ? "(root)" : path, "keys must be plain words");
        continue;
      }
      const std::string k = key.Scalar();
      if (!seen.insert(k).second) {
        Issue(key, kp + k, "duplicate key");
        continue;
      }
      if (!allowed.count(k)) {
        Issue(key, kp + k, absl::StrCat("unknown key; allowed: ", absl::StrJoin(allowed, ", ")));
        continue;
      }
      key_pos_[kp + k] = Pos(key);
      out.emplace_back(k, it->second);
    }
    return out;
  }

 private:
  std::string file_;
  std::vector<std::string> issues_;
  std::map<std::string, TextPosition> key_pos_;  // field path -> its key's position
};

// Lexical check of the module path: relative, normal components.
std::string ModulePathProblem(std::string_view p, bool allow_absolute) {
  if (p.size() > 1024) return "is too long";
  std::string_view rest = p;
  if (rest.front() == '/') {
    if (!allow_absolute) return "must be a relative path inside the plugin directory";
    rest.remove_prefix(1);
  }
  if (rest.empty()) return "names no file";
  size_t start = 0;
  while (start <= rest.size()) {
    size_t slash = rest.find('/', start);
    std::string_view c =
        rest.substr(start, slash == std::string_view::npos ? rest.npos : slash - start);
    if (c.empty()) return "has an empty path component ('//' or a trailing '/')";
    if (c == "..") return "must not contain '..' (it would leave the plugin directory)";
    if (c == ".") return "must not contain '.' components";
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return "";
}

}  // namespace

const char* ModuleFormatName(ModuleFormat f) {
  switch (f) {
    case ModuleFormat::kAers:
      return "aers";
    case ModuleFormat::kLadspa:
      return "ladspa";
    case ModuleFormat::kLv2:
      return "lv2";
  }
  return "?";
}
const char* HashAlgorithmName(HashAlgorithm a) {
  return a == HashAlgorithm::kSha256 ? "sha256" : "blake2b";
}

bool IsValidKindName(std::string_view s) {
  if (s.empty() || s.size() > 64 || !IsLowerAlpha(s.front())) return false;
  for (char c : s) {
    if (!(IsLowerAlpha(c) || IsDigit(c) || c == '_')) return false;
  }
  return true;
}

bool IsValidPluginName(std::string_view s) {
  if (s.empty() || s.size() > 64 || !IsLowerAlpha(s.front())) return false;
  for (char c : s) {
    if (!(IsLowerAlpha(c) || IsDigit(c) || c == '_' || c == '-')) return false;
  }
  return true;
}

std::string KindNameForLabel(std::string_view label) {
  std::string out;
  for (char c : label) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    out += (IsLowerAlpha(c) || IsDigit(c)) ? c : '_';
  }
  if (out.empty() || !IsLowerAlpha(out.front())) out = "l_" + out;
  return out.substr(0, 64);
}

std::string KindNameForUri(std::string_view uri) {
  std::string_view tail = uri;
  while (!tail.empty() && (tail.back() == '/' || tail.back() == '#')) tail.remove_suffix(1);
  const size_t cut = tail.find_last_of("/#:");
  if (cut != std::string_view::npos) tail = tail.substr(cut + 1);
  return KindNameForLabel(tail);
}

absl::StatusOr<Manifest> ParseManifest(std::string_view text, std::string_view file_name) {
  const std::string file(file_name);
  if (text.size() > kMaxManifestBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ":1:1: (document): larger than ", kMaxManifestBytes, " bytes"));
  }
  if (text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(file, ":1:1: (document): contains a NUL byte"));
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    const int line = e.mark.is_null() ? 1 : e.mark.line + 1;
    const int col = e.mark.is_null() ? 1 : e.mark.column + 1;
    return absl::InvalidArgumentError(
        absl::StrCat(file, ":", line, ":", col, ": (document): YAML syntax error: ", e.msg));
  }

  Checker c(file);
  Manifest m;
  try {
    if (!root.IsDefined() || root.IsNull()) {
      return absl::InvalidArgumentError(absl::StrCat(file, ":1:1: (document): manifest is empty"));
    }
    if (!root.IsMap()) {
      auto p = Checker::Pos(root);
      return absl::InvalidArgumentError(
          absl::StrCat(file, ":", p.line, ":", p.column, ": (document): must be a map of keys"));
    }
    static const std::set<std::string> kTop = {
        "name",        "version",      "description",        "module", "format", "hash",   "serial",
        "abi_version", "dependencies", "allowed_node_kinds", "labels", "bundle", "plugins"};
    std::map<std::string, YAML::Node> f;
    for (auto& [k, v] : c.Map(root, "", kTop)) f[k] = v;
    const TextPosition root_pos = Checker::Pos(root);
    auto required = [&](const char* key) {
      if (!f.count(key)) c.Issue(root_pos, key, "missing (required)");
      return f.count(key) > 0;
    };

    if (required("name") && c.String(f["name"], "name", m.name, 64) && !IsValidPluginName(m.name)) {
      c.Issue(
          f["name"], "name",
          absl::StrCat("'", m.name, "' is not a valid plugin name ([a-z][a-z0-9_-]*, at most 64)"));
    }
    if (required("version")) c.String(f["version"], "version", m.version, 64);
    if (f.count("description")) c.String(f["description"], "description", m.description, 512);

    bool format_ok = false;
    if (required("format")) {
      std::string s;
      if (c.String(f["format"], "format", s, 16)) {
        if (s == "aers") {
          m.format = ModuleFormat::kAers;
          format_ok = true;
        } else if (s == "ladspa") {
          m.format = ModuleFormat::kLadspa;
          format_ok = true;
        } else if (s == "lv2") {
          m.format = ModuleFormat::kLv2;
          format_ok = true;
        } else {
          c.Issue(f["format"], "format",
                  absl::StrCat("'", s, "' is not one of: aers, ladspa, lv2"));
        }
      }
    }
    const bool ladspa = format_ok && m.format == ModuleFormat::kLadspa;
    const bool lv2 = format_ok && m.format == ModuleFormat::kLv2;

    // An LV2 plugin is a bundle directory (`bundle`), the others a file (`module`).
    const char* path_key = lv2 ? "bundle" : "module";
    const char* other_key = lv2 ? "module" : "bundle";
    if (format_ok && f.count(other_key)) {
      c.Issue(f[other_key], other_key,
              lv2 ? "is not for format lv2 (an LV2 plugin is named by its bundle: use bundle)"
                  : "is only for format lv2 (use module)");
    }
    if (format_ok && required(path_key) && c.String(f[path_key], path_key, m.module, 1024)) {
      const std::string problem = ModulePathProblem(m.module, ladspa || lv2);
      if (!problem.empty())
        c.Issue(f[path_key], path_key, absl::StrCat("'", m.module, "' ", problem));
    }

    if (required("hash")) {
      const YAML::Node h = f["hash"];
      if (!h.IsMap()) {
        c.Issue(h, "hash", "must be a map with keys algorithm and value");
      } else {
        std::map<std::string, YAML::Node> hf;
        for (auto& [k, v] : c.Map(h, "hash", {"algorithm", "value"})) hf[k] = v;
        const TextPosition hp = Checker::Pos(h);
        bool algo_ok = false;
        if (!hf.count("algorithm")) {
          c.Issue(hp, "hash.algorithm", "missing (required)");
        } else {
          std::string s;
          if (c.String(hf["algorithm"], "hash.algorithm", s, 16)) {
            if (s == "sha256") {
              m.hash_algorithm = HashAlgorithm::kSha256;
              algo_ok = true;
            } else if (s == "blake2b") {
              m.hash_algorithm = HashAlgorithm::kBlake2b;
              algo_ok = true;
            } else {
              c.Issue(hf["algorithm"], "hash.algorithm",
                      absl::StrCat("'", s, "' is not one of: sha256, blake2b"));
            }
          }
        }
        if (!hf.count("value")) {
          c.Issue(hp, "hash.value", "missing (required)");
        } else {
          std::string s;
          const YAML::Node v = hf["value"];
          m.hash_value_position = Checker::Pos(v);
          if (c.Scalar(v, "hash.value", s)) {
            bool hex = !s.empty();
            for (char ch : s) hex = hex && IsHex(ch);
            if (!hex) {
              c.Issue(v, "hash.value", "must be hexadecimal digits");
            } else if (s.size() != 64) {
              c.Issue(v, "hash.value",
                      absl::StrCat(
                          "has ", s.size(), " hex digits; ",
                          algo_ok ? std::string(HashAlgorithmName(m.hash_algorithm)) : "the digest",
                          " needs 64"));
            } else {
              for (char& ch : s)
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
              m.hash_hex = s;
            }
          }
        }
      }
    }

    if (required("serial")) {
      c.Integer(f["serial"], "serial", 0, (uint64_t{1} << 63) - 1, m.serial);
    }

    if (f.count("abi_version")) {
      if (ladspa || lv2) {
        c.Issue(f["abi_version"], "abi_version",
                "is only for format aers (LADSPA and LV2 have no AERS ABI)");
      } else {
        uint64_t v = 0;
        if (c.Integer(f["abi_version"], "abi_version", 1, UINT32_MAX, v))
          m.abi_version = static_cast<uint32_t>(v);
      }
    } else if (format_ok && !ladspa && !lv2) {
      c.Issue(root_pos, "abi_version", "missing (required for format aers)");
    }

    if (required("allowed_node_kinds")) {
      const YAML::Node k = f["allowed_node_kinds"];
      if (!k.IsSequence()) {
        c.Issue(k, "allowed_node_kinds", "must be a list of kind names");
      } else if (k.size() == 0) {
        c.Issue(k, "allowed_node_kinds", "must name at least one kind");
      } else {
        std::set<std::string> seen;
        for (size_t i = 0; i < k.size(); ++i) {
          const std::string path = absl::StrCat("allowed_node_kinds[", i, "]");
          std::string s;
          if (!c.String(k[i], path, s, 64)) continue;
          if (!IsValidKindName(s)) {
            c.Issue(k[i], path,
                    absl::StrCat("'", s, "' is not a valid kind name ([a-z][a-z0-9_]*)"));
          } else if (!seen.insert(s).second) {
            c.Issue(k[i], path, absl::StrCat("'", s, "' is listed twice"));
          } else {
            m.allowed_node_kinds.push_back(s);
          }
        }
      }
    }

    if (f.count("dependencies")) {
      const YAML::Node d = f["dependencies"];
      if (!d.IsSequence()) {
        c.Issue(d, "dependencies", "must be a list of sonames");
      } else {
        for (size_t i = 0; i < d.size(); ++i) {
          const std::string path = absl::StrCat("dependencies[", i, "]");
          std::string s;
          if (!c.String(d[i], path, s, 128)) continue;
          if (!IsValidSoname(s)) {
            c.Issue(d[i], path,
                    absl::StrCat("'", s, "' is not a library soname (e.g. libfoo.so.1; no '/')"));
          } else {
            m.dependencies.push_back(s);
          }
        }
      }
    }

    if (f.count("labels")) {
      const YAML::Node l = f["labels"];
      if (format_ok && !ladspa) {
        c.Issue(l, "labels", "is only for format ladspa");
      } else if (!l.IsSequence() || l.size() == 0) {
        c.Issue(l, "labels", "must be a non-empty list of {label, kind}");
      } else {
        std::set<std::string> labels_seen, kinds_seen;
        for (size_t i = 0; i < l.size(); ++i) {
          const std::string path = absl::StrCat("labels[", i, "]");
          const YAML::Node item = l[i];
          LadspaLabel lab;
          if (item.IsScalar()) {
            if (!c.String(item, path, lab.label, 128)) continue;
          } else if (item.IsMap()) {
            std::map<std::string, YAML::Node> lf;
            for (auto& [k, v] : c.Map(item, path, {"label", "kind"})) lf[k] = v;
            if (!lf.count("label")) {
              c.Issue(item, path + ".label", "missing (required)");
              continue;
            }
            if (!c.String(lf["label"], path + ".label", lab.label, 128)) continue;
            if (lf.count("kind")) {
              if (!c.String(lf["kind"], path + ".kind", lab.kind, 64)) continue;
              if (!IsValidKindName(lab.kind)) {
                c.Issue(
                    lf["kind"], path + ".kind",
                    absl::StrCat("'", lab.kind, "' is not a valid kind name ([a-z][a-z0-9_]*)"));
                continue;
              }
            }
          } else {
            c.Issue(item, path, "must be a label or a map {label, kind}");
            continue;
          }
          if (lab.kind.empty()) lab.kind = KindNameForLabel(lab.label);
          if (!labels_seen.insert(lab.label).second) {
            c.Issue(item, path, absl::StrCat("label '", lab.label, "' is listed twice"));
            continue;
          }
          if (!kinds_seen.insert(lab.kind).second) {
            c.Issue(item, path, absl::StrCat("kind '", lab.kind, "' is used twice"));
            continue;
          }
          m.labels.push_back(std::move(lab));
        }
      }
    } else if (ladspa) {
      c.Issue(root_pos, "labels", "missing (required for format ladspa)");
    }

    if (f.count("plugins")) {
      const YAML::Node l = f["plugins"];
      if (format_ok && !lv2) {
        c.Issue(l, "plugins", "is only for format lv2");
      } else if (!l.IsSequence() || l.size() == 0) {
        c.Issue(l, "plugins", "must be a non-empty list of {uri, kind}");
      } else {
        std::set<std::string> uris_seen, kinds_seen;
        for (size_t i = 0; i < l.size(); ++i) {
          const std::string path = absl::StrCat("plugins[", i, "]");
          const YAML::Node item = l[i];
          Lv2Entry e;
          YAML::Node uri_node;  // rebound with reset(): Node's operator= writes into the tree
          uri_node.reset(item);
          if (item.IsScalar()) {
            if (!c.String(item, path, e.uri, 1024)) continue;
          } else if (item.IsMap()) {
            std::map<std::string, YAML::Node> lf;
            for (auto& [k, v] : c.Map(item, path, {"uri", "kind"})) lf[k] = v;
            if (!lf.count("uri")) {
              c.Issue(item, path + ".uri", "missing (required)");
              continue;
            }
            uri_node.reset(lf["uri"]);
            if (!c.String(lf["uri"], path + ".uri", e.uri, 1024)) continue;
            if (lf.count("kind")) {
              if (!c.String(lf["kind"], path + ".kind", e.kind, 64)) continue;
              if (!IsValidKindName(e.kind)) {
                c.Issue(lf["kind"], path + ".kind",
                        absl::StrCat("'", e.kind, "' is not a valid kind name ([a-z][a-z0-9_]*)"));
                continue;
              }
            }
          } else {
            c.Issue(item, path, "must be a URI or a map {uri, kind}");
            continue;
          }
          const size_t colon = e.uri.find(':');
          if (colon == std::string::npos || colon == 0 ||
              e.uri.find_first_of(" \t<>\"{}|\\^`") != std::string::npos) {
            c.Issue(uri_node, path + (item.IsMap() ? ".uri" : ""),
                    absl::StrCat("'", e.uri, "' is not an absolute URI (scheme:..., no spaces)"));
            continue;
          }
          if (e.kind.empty()) e.kind = KindNameForUri(e.uri);
          if (!uris_seen.insert(e.uri).second) {
            c.Issue(item, path, absl::StrCat("URI '", e.uri, "' is listed twice"));
            continue;
          }
          if (!kinds_seen.insert(e.kind).second) {
            c.Issue(item, path, absl::StrCat("kind '", e.kind, "' is used twice"));
            continue;
          }
          m.lv2_plugins.push_back(std::move(e));
        }
      }
    } else if (lv2) {
      c.Issue(root_pos, "plugins", "missing (required for format lv2)");
    }
    if (lv2 && c.ok()) {
      const std::set<std::string> allowed(m.allowed_node_kinds.begin(), m.allowed_node_kinds.end());
      const YAML::Node l = f["plugins"];
      for (size_t i = 0; i < m.lv2_plugins.size(); ++i) {
        if (!allowed.count(m.lv2_plugins[i].kind)) {
          c.Issue(l[i], absl::StrCat("plugins[", i, "]"),
                  absl::StrCat("kind '", m.lv2_plugins[i].kind, "' is not in allowed_node_kinds"));
        }
      }
    }

    // Every kind a LADSPA manifest exposes must be allowed.
    if (ladspa && c.ok()) {
      const std::set<std::string> allowed(m.allowed_node_kinds.begin(), m.allowed_node_kinds.end());
      const YAML::Node l = f["labels"];
      for (size_t i = 0; i < m.labels.size(); ++i) {
        if (!allowed.count(m.labels[i].kind)) {
          c.Issue(l[i], absl::StrCat("labels[", i, "]"),
                  absl::StrCat("kind '", m.labels[i].kind, "' is not in allowed_node_kinds"));
        }
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file, ":1:1: (document): ", e.what()));
  }
  if (!c.ok()) return absl::InvalidArgumentError(c.Joined());
  return m;
}

}  // namespace aers::plugin
