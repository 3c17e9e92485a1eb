// Internal to daemon/config/ (not part of its API; it exposes yaml-cpp,
// which nothing outside this directory includes): loading one YAML document
// safely, and reading typed values out of it with their positions.
//
// A Reader collects every problem instead of stopping at the first, records
// where each value it accepts was written (SourceMap), and "taints" the
// paths of structural problems so that what whole-graph validation says
// about them later (a consequence, not news) is dropped.
//
// Thread: non-real-time; a Reader is used by one thread.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config/config.h"
#include "config/diagnostics.h"
#include "model/graph.h"
#include "yaml-cpp/yaml.h"

namespace aers::config::internal {

// ---------------------------------------------------------------------------
// Documents

/// Loads the one document of `yaml`. YAML constructs that could hide content
/// are refused first (yaml-cpp would take only the first of several
/// documents, share aliased nodes, ignore merge keys and most tags): one
/// document; no anchors or aliases; no merge keys ("<<"); no tags beyond the
/// core schema's str, seq and map. A refusal is INVALID_ARGUMENT
/// "FILE:LINE:COLUMN: message", also appended to `issues` (if not null) as
/// one kSyntax issue. Throws YAML::Exception on syntax errors (SyntaxError
/// turns it into a status).
absl::StatusOr<YAML::Node> LoadDocument(std::string_view yaml, std::string_view filename,
                                        std::vector<model::Issue>* issues);

/// INVALID_ARGUMENT "FILE:LINE:COLUMN: yaml: MESSAGE" for a yaml-cpp
/// exception, also appended to `issues` (if not null) as one kSyntax issue.
absl::Status SyntaxError(const YAML::Exception& e, std::string_view filename,
                         std::vector<model::Issue>* issues);

// ---------------------------------------------------------------------------
// Scalars (YAML 1.2 core schema)

/// A scalar as the YAML 1.2 core schema resolves it.
struct Scalar {
  enum class Kind { kNull, kBool, kNumber, kString } kind = Kind::kString;
  bool flag = false;
  double number = 0.0;
  bool number_ok = true;  ///< false: numeric syntax but not representable
  std::string text;
};

Scalar NullScalar();
/// `text` written as a plain (unquoted, untagged) scalar.
Scalar ResolvePlain(const std::string& text);
/// A node's scalar; quoted or "!"/"!!str"-tagged scalars are strings.
Scalar Resolve(const YAML::Node& node);
/// True when `text` written as a plain YAML scalar would read back as a string.
bool ReadsAsString(const std::string& text);

// ---------------------------------------------------------------------------
// Positions, paths and descriptions

/// 1-based position of a yaml-cpp mark; `fallback` if it has none.
Mark ToMark(const YAML::Mark& m, Mark fallback);
/// What a node is, for "got ..." in messages ("a list", "the number 3").
std::string Describe(const YAML::Node& node);
/// "parent.key" ("key" at the root).
std::string Join(std::string_view parent, std::string_view key);
/// "list[i]".
std::string Indexed(std::string_view list, size_t i);

// ---------------------------------------------------------------------------
// Reader

class Reader {
 public:
  /// `source` is the document's text (null literals are read from it);
  /// positions of accepted values go to `where`. Both outlive the reader.
  Reader(std::string_view source, SourceMap& where) : source_(source), where_(where) {}

  /// One entry of a map whose key is allowed.
  struct Field {
    std::string key;
    YAML::Node value;
    Mark key_mark;
  };

  /// Every problem found so far, in the order found.
  std::vector<Located>& problems() { return problems_; }

  /// A structural problem at `path`: what validation says about `path` (and
  /// below it) only follows from it, and is dropped (Tainted).
  void Error(model::IssueCode code, Mark mark, const std::string& path, std::string message) {
    Note(code, mark, path, std::move(message));
    Taint(path);
  }
  /// A problem that leaves the parsed values sound (an unknown or repeated key).
  void Note(model::IssueCode code, Mark mark, const std::string& path, std::string message) {
    problems_.push_back({mark, path, std::move(message), code});
  }
  void Taint(const std::string& path) { tainted_.insert(path); }
  /// True for a tainted path or one beneath a tainted path.
  bool Tainted(std::string_view path) const;

  /// Where `node` starts; `fallback` (the key's position) for an empty value,
  /// whose yaml-cpp mark points at whatever follows it.
  Mark MarkOf(const YAML::Node& node, Mark fallback) const {
    if (node.IsNull() && !NullLiteral(node)) return fallback;
    return ToMark(node.Mark(), fallback);
  }
  /// Records where the value at `path` was written.
  void Record(const std::string& path, const YAML::Node& node, Mark fallback) {
    where_[path] = MarkOf(node, fallback);
  }
  /// The text of a null node written as a word ("null", "~"); nullopt for an
  /// empty value. yaml-cpp keeps no text for null nodes, so read the source.
  std::optional<std::string> NullLiteral(const YAML::Node& node) const;

  /// Checks that `node` is a map with only `allowed` keys (each once) and
  /// returns its entries. `what` names the map in messages ("a node").
  std::optional<std::vector<Field>> Map(const YAML::Node& node, const std::string& path,
                                        std::string_view what,
                                        const std::vector<std::string_view>& allowed,
                                        Mark fallback);
  /// Reports keys in `required` that `fields` lacks.
  bool Require(const std::vector<Field>& fields, const std::vector<std::string_view>& required,
               const std::string& path, std::string_view what, Mark mark, std::string_view example);
  std::optional<std::string> String(const YAML::Node& node, const std::string& path,
                                    std::string_view what, Mark fallback);
  /// Reports `text` unless it is well-formed UTF-8. Any other byte sequence
  /// could not be written back (EmitConfig, the state file): YAML escapes
  /// code points, not bytes.
  bool Utf8(const std::string& text, Mark mark, const std::string& path, std::string_view what);
  std::optional<double> Number(const YAML::Node& node, const std::string& path,
                               std::string_view what, Mark fallback);
  std::optional<int> Integer(const YAML::Node& node, const std::string& path, std::string_view what,
                             Mark fallback);
  std::optional<bool> Bool(const YAML::Node& node, const std::string& path, std::string_view what,
                           Mark fallback);
  /// A non-empty string (a path; settings validation checks that it is absolute).
  std::optional<std::string> Path(const YAML::Node& node, const std::string& path,
                                  std::string_view what, std::string_view example, Mark fallback);
  /// Reports `node` unless it is a list.
  bool List(const YAML::Node& node, const std::string& path, std::string_view what,
            std::string_view example, Mark fallback);
  /// A list of strings (allowed_system_dirs, load); an entry that is not a
  /// string is reported and kept as "" so later indices stay right.
  void StringList(const YAML::Node& node, const std::string& path, std::string_view what,
                  std::string_view example, Mark fallback, std::vector<std::string>& out);

 private:
  std::string_view source_;
  SourceMap& where_;
  std::vector<Located> problems_;
  std::set<std::string, std::less<>> tainted_;
};

}  // namespace aers::config::internal
