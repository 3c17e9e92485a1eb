// Loading one YAML document and reading typed values out of it with their
// positions (yaml_read.h).
//
// Thread: non-real-time.
#include "config/yaml_read.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <sstream>
#include <system_error>
#include <utility>

#include "model/strings.h"
#include "yaml-cpp/eventhandler.h"

namespace aers::config::internal {
namespace {

using model::IssueCode;
using strutil::Cat;
using strutil::FirstInvalidUtf8;
using strutil::JoinList;

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

}  // namespace

absl::StatusOr<YAML::Node> LoadDocument(std::string_view yaml, std::string_view filename,
                                        std::vector<model::Issue>* issues) {
  const std::string text(yaml);
  {
    std::istringstream in(text);
    YAML::Parser parser(in);
    ConstructScan scan;
    while (!scan.stuck() && parser.HandleNextDocument(scan)) {
    }
    if (!scan.problem().empty()) {
      if (issues != nullptr) issues->push_back({"", scan.problem(), IssueCode::kSyntax});
      return absl::InvalidArgumentError(Cat(filename, ":", scan.problem()));
    }
  }
  return YAML::Load(text);
}

absl::Status SyntaxError(const YAML::Exception& e, std::string_view filename,
                         std::vector<model::Issue>* issues) {
  const Mark mark = ToMark(e.mark, Mark{1, 1});
  const std::string problem = Cat(mark.line, ":", mark.column, ": yaml: ", e.msg);
  if (issues != nullptr) issues->push_back({"", problem, IssueCode::kSyntax});
  return absl::InvalidArgumentError(Cat(filename, ":", problem));
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

Mark ToMark(const YAML::Mark& m, Mark fallback) {
  if (m.is_null() || m.line < 0 || m.column < 0) return fallback;
  return Mark{m.line + 1, m.column + 1};
}

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

// ---------------------------------------------------------------------------
// Reader

std::optional<std::string> Reader::NullLiteral(const YAML::Node& node) const {
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

bool Reader::Tainted(std::string_view path) const {
  // `path` or a prefix of it that ends where a component does (before '.' or
  // '['): a few lookups, not a pass over every tainted path per issue.
  if (tainted_.count(path) != 0) return true;
  for (size_t i = path.size(); i-- > 0;) {
    if ((path[i] == '.' || path[i] == '[') && tainted_.count(path.substr(0, i)) != 0) return true;
  }
  return false;
}

std::optional<std::vector<Reader::Field>> Reader::Map(const YAML::Node& node,
                                                      const std::string& path,
                                                      std::string_view what,
                                                      const std::vector<std::string_view>& allowed,
                                                      Mark fallback) {
  const Mark mark = MarkOf(node, fallback);
  if (!node.IsMap()) {
    Error(IssueCode::kWrongType, mark, path,
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
      Note(IssueCode::kWrongType, key_mark, path,
           Cat("keys of ", what, " must be plain words; allowed keys: ", JoinList(allowed, ", ")));
      continue;
    }
    const std::string key = kv.first.Scalar();
    const std::string key_path = Join(path, key);
    const auto [dup, inserted] = seen.emplace(key, key_mark);
    if (!inserted) {
      Note(IssueCode::kDuplicateKey, key_mark, key_path,
           Cat("duplicate key '", key, "' (first at line ", dup->second.line,
               "); write each key once"));
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      Note(IssueCode::kUnknownField, key_mark, key_path,
           Cat("unknown key '", key, "' in ", what, "; allowed keys: ", JoinList(allowed, ", ")));
      continue;
    }
    fields.push_back({key, kv.second, key_mark});
  }
  return fields;
}

bool Reader::Require(const std::vector<Field>& fields,
                     const std::vector<std::string_view>& required, const std::string& path,
                     std::string_view what, Mark mark, std::string_view example) {
  bool ok = true;
  for (const auto key : required) {
    if (std::none_of(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; })) {
      Error(IssueCode::kMissingField, mark, Join(path, key),
            Cat(what, " has no '", key, "'; it is required (e.g. ", example, ")"));
      ok = false;
    }
  }
  return ok;
}

std::optional<std::string> Reader::String(const YAML::Node& node, const std::string& path,
                                          std::string_view what, Mark fallback) {
  const Mark mark = MarkOf(node, fallback);
  if (node.IsNull()) {
    // A word that YAML reads as null ("type: null") is still that word here.
    if (auto word = NullLiteral(node)) {
      Record(path, node, fallback);
      return word;
    }
    Error(IssueCode::kMissingField, mark, path, Cat(what, " has no value; write a string"));
    return std::nullopt;
  }
  if (!node.IsScalar()) {
    Error(IssueCode::kWrongType, mark, path, Cat(what, " must be a string, got ", Describe(node)));
    return std::nullopt;
  }
  if (!Utf8(node.Scalar(), mark, path, what)) return std::nullopt;
  Record(path, node, fallback);
  return node.Scalar();
}

bool Reader::Utf8(const std::string& text, Mark mark, const std::string& path,
                  std::string_view what) {
  const size_t bad = FirstInvalidUtf8(text);
  if (bad == std::string_view::npos) return true;
  Error(IssueCode::kNotUtf8, mark, path,
        Cat(what, " is not valid UTF-8 (byte ", bad + 1,
            " of the value); write the config as UTF-8 text"));
  return false;
}

std::optional<double> Reader::Number(const YAML::Node& node, const std::string& path,
                                     std::string_view what, Mark fallback) {
  const Mark mark = MarkOf(node, fallback);
  const Scalar s = node.IsScalar() ? Resolve(node) : Scalar{};
  if (!node.IsScalar() || s.kind != Scalar::Kind::kNumber) {
    Error(IssueCode::kWrongType, mark, path, Cat(what, " must be a number, got ", Describe(node)));
    return std::nullopt;
  }
  if (!s.number_ok) {
    Error(IssueCode::kOutOfRange, mark, path,
          Cat(what, " = ", s.text, " is not a representable number"));
    return std::nullopt;
  }
  Record(path, node, fallback);
  return s.number;
}

std::optional<int> Reader::Integer(const YAML::Node& node, const std::string& path,
                                   std::string_view what, Mark fallback) {
  const Mark mark = MarkOf(node, fallback);
  const Scalar s = node.IsScalar() ? Resolve(node) : Scalar{};
  if (!node.IsScalar() || s.kind != Scalar::Kind::kNumber || !s.number_ok ||
      !std::isfinite(s.number) || s.number != std::floor(s.number)) {
    Error(IssueCode::kWrongType, mark, path,
          Cat(what, " must be a whole number, got ", Describe(node)));
    return std::nullopt;
  }
  if (std::fabs(s.number) > 1e9) {
    Error(IssueCode::kOutOfRange, mark, path, Cat(what, " = ", s.text, " is far out of range"));
    return std::nullopt;
  }
  Record(path, node, fallback);
  return static_cast<int>(s.number);
}

std::optional<bool> Reader::Bool(const YAML::Node& node, const std::string& path,
                                 std::string_view what, Mark fallback) {
  const Mark mark = MarkOf(node, fallback);
  const Scalar s = node.IsScalar() ? Resolve(node) : Scalar{};
  if (!node.IsScalar() || s.kind != Scalar::Kind::kBool) {
    Error(IssueCode::kWrongType, mark, path,
          Cat(what, " must be true or false, got ", Describe(node)));
    return std::nullopt;
  }
  Record(path, node, fallback);
  return s.flag;
}

std::optional<std::string> Reader::Path(const YAML::Node& node, const std::string& path,
                                        std::string_view what, std::string_view example,
                                        Mark fallback) {
  auto v = String(node, path, what, fallback);
  if (v && v->empty()) {
    Error(IssueCode::kBadValue, MarkOf(node, fallback), path,
          Cat(what, " is empty; write an absolute path (e.g. ", example, ")"));
    return std::nullopt;
  }
  return v;
}

bool Reader::List(const YAML::Node& node, const std::string& path, std::string_view what,
                  std::string_view example, Mark fallback) {
  if (!node.IsSequence()) {
    Error(IssueCode::kWrongType, MarkOf(node, fallback), path,
          Cat(what, " must be a list (", example, "), got ", Describe(node)));
    return false;
  }
  Record(path, node, fallback);
  return true;
}

void Reader::StringList(const YAML::Node& node, const std::string& path, std::string_view what,
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

}  // namespace aers::config::internal
