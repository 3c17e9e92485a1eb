// manifest.yaml parsing: the valid forms, and a table of malformed manifests
// each refused with "manifest.yaml:LINE:COL: field.path: message".
#include "plugin/manifest.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace aers::plugin {
namespace {

using ::testing::HasSubstr;

const std::string kHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::vector<std::string> BaseLines() {
  return {
      "name: demo",                  // 1
      "version: \"1.0\"",            // 2
      "format: aers",                // 3
      "module: demo.so",             // 4
      "abi_version: 1",              // 5
      "serial: 3",                   // 6
      "hash:",                       // 7
      "  algorithm: sha256",         // 8
      "  value: " + kHex,            // 9
      "allowed_node_kinds: [gain]",  // 10
  };
}

const std::vector<std::string> kLadspaLines = {
    "name: amp",                                        // 1
    "version: \"1\"",                                   // 2
    "format: ladspa",                                   // 3
    "module: /usr/lib/ladspa/amp.so",                   // 4
    "serial: 1",                                        // 5
    "hash: {algorithm: blake2b, value: " + kHex + "}",  // 6
    "allowed_node_kinds: [amp_mono, amp]",              // 7
    "labels:",                                          // 8
    "  - amp_mono",                                     // 9
    "  - {label: amp_stereo, kind: amp}",               // 10
};

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

TEST(ManifestTest, ParsesAValidAersManifest) {
  auto m = ParseManifest(Join(BaseLines()));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "demo");
  EXPECT_EQ(m->version, "1.0");
  EXPECT_EQ(m->format, ModuleFormat::kAers);
  EXPECT_EQ(m->module, "demo.so");
  EXPECT_EQ(m->abi_version, 1u);
  EXPECT_EQ(m->serial, 3u);
  EXPECT_EQ(m->hash_algorithm, HashAlgorithm::kSha256);
  EXPECT_EQ(m->hash_hex, kHex);
  EXPECT_EQ(m->allowed_node_kinds, std::vector<std::string>{"gain"});
  EXPECT_EQ(m->hash_value_position.line, 9);
  EXPECT_EQ(m->hash_value_position.column, 10);
}

TEST(ManifestTest, ParsesAValidLadspaManifest) {
  auto m = ParseManifest(Join(kLadspaLines));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->format, ModuleFormat::kLadspa);
  EXPECT_EQ(m->hash_algorithm, HashAlgorithm::kBlake2b);
  ASSERT_EQ(m->labels.size(), 2u);
  EXPECT_EQ(m->labels[0].label, "amp_mono");
  EXPECT_EQ(m->labels[0].kind, "amp_mono");
  EXPECT_EQ(m->labels[1].label, "amp_stereo");
  EXPECT_EQ(m->labels[1].kind, "amp");
}

TEST(ManifestTest, UppercaseHexIsNormalized) {
  auto lines = BaseLines();
  std::string upper = kHex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  lines[8] = "  value: \"" + upper + "\"";
  auto m = ParseManifest(Join(lines));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->hash_hex, kHex);
}

TEST(ManifestTest, ReportsEveryIssueAtOnce) {
  auto lines = BaseLines();
  lines[0] = "name: Bad!";
  lines[5] = "serial: -2";
  auto m = ParseManifest(Join(lines));
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("manifest.yaml:1:7: name:"));
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("manifest.yaml:6:9: serial:"));
}

enum class Op { kReplace, kDelete, kAppend, kInsertAfter, kWhole };

struct BadCase {
  const char* name;
  bool ladspa;
  Op op;
  int line;  // 1-based; for kAppend/kWhole unused
  std::string text;
  std::string expected;  // substring of the error
};

std::string Apply(const BadCase& c) {
  auto lines = c.ladspa ? kLadspaLines : BaseLines();
  const auto at = static_cast<size_t>(c.line - 1);
  switch (c.op) {
    case Op::kReplace:
      lines[at] = c.text;
      break;
    case Op::kDelete:
      lines.erase(lines.begin() + static_cast<ptrdiff_t>(at));
      break;
    case Op::kAppend:
      lines.push_back(c.text);
      break;
    case Op::kInsertAfter:
      lines.insert(lines.begin() + static_cast<ptrdiff_t>(at) + 1, c.text);
      break;
    case Op::kWhole:
      return c.text;
  }
  return Join(lines);
}

class MalformedManifest : public ::testing::TestWithParam<BadCase> {};

TEST_P(MalformedManifest, IsRefusedWithPosition) {
  const BadCase& c = GetParam();
  auto m = ParseManifest(Apply(c));
  ASSERT_FALSE(m.ok()) << c.name << " was accepted:\n" << Apply(c);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr(c.expected)) << c.name;
}

const BadCase kBadCases[] = {
    {"unknown_top_key", false, Op::kAppend, 0, "colour: red",
     "manifest.yaml:11:1: colour: unknown key; allowed: abi_version, allowed_node_kinds"},
    {"duplicate_key", false, Op::kAppend, 0, "serial: 4",
     "manifest.yaml:11:1: serial: duplicate key"},
    {"missing_name", false, Op::kDelete, 1, "", "manifest.yaml:1:1: name: missing (required)"},
    {"invalid_name", false, Op::kReplace, 1, "name: Demo!",
     "manifest.yaml:1:7: name: 'Demo!' is not a valid plugin name"},
    {"name_is_list", false, Op::kReplace, 1, "name: [a, b]",
     "manifest.yaml:1:7: name: must be a single value, not a list"},
    {"name_null", false, Op::kReplace, 1, "name:", "manifest.yaml:1:1: name: missing value"},
    {"empty_version", false, Op::kReplace, 2, "version: \"\"",
     "manifest.yaml:2:10: version: must not be empty"},
    {"control_char_version", false, Op::kReplace, 2, "version: \"1\\x01\"",
     "manifest.yaml:2:10: version: contains a control character"},
    {"unknown_format", false, Op::kReplace, 3, "format: vst",
     "manifest.yaml:3:9: format: 'vst' is not one of: aers, ladspa"},
    {"module_dotdot", false, Op::kReplace, 4, "module: ../other/x.so",
     "manifest.yaml:4:9: module: '../other/x.so' must not contain '..'"},
    {"module_dotdot_inside", false, Op::kReplace, 4, "module: lib/../../x.so",
     "manifest.yaml:4:9: module: 'lib/../../x.so' must not contain '..'"},
    {"module_absolute", false, Op::kReplace, 4, "module: /usr/lib/x.so",
     "manifest.yaml:4:9: module: '/usr/lib/x.so' must be a relative path inside the plugin "
     "directory"},
    {"module_empty_component", false, Op::kReplace, 4, "module: lib//x.so",
     "manifest.yaml:4:9: module: 'lib//x.so' has an empty path component"},
    {"module_dot", false, Op::kReplace, 4, "module: ./x.so",
     "manifest.yaml:4:9: module: './x.so' must not contain '.' components"},
    {"abi_zero", false, Op::kReplace, 5, "abi_version: 0",
     "manifest.yaml:5:14: abi_version: = 0 is out of range; allowed 1 to 4294967295"},
    {"abi_quoted", false, Op::kReplace, 5, "abi_version: \"1\"",
     "manifest.yaml:5:14: abi_version: must be an integer, not a quoted string"},
    {"abi_missing", false, Op::kDelete, 5, "",
     "manifest.yaml:1:1: abi_version: missing (required for format aers)"},
    {"serial_negative", false, Op::kReplace, 6, "serial: -1",
     "manifest.yaml:6:9: serial: must be a non-negative decimal integer, got '-1'"},
    {"serial_fraction", false, Op::kReplace, 6, "serial: 1.5",
     "manifest.yaml:6:9: serial: must be a non-negative decimal integer, got '1.5'"},
    {"serial_overflow", false, Op::kReplace, 6, "serial: 99999999999999999999",
     "manifest.yaml:6:9: serial: is out of range"},
    {"serial_too_big", false, Op::kReplace, 6, "serial: 9223372036854775808",
     "manifest.yaml:6:9: serial: = 9223372036854775808 is out of range"},
    {"hash_algorithm", false, Op::kReplace, 8, "  algorithm: md5",
     "manifest.yaml:8:14: hash.algorithm: 'md5' is not one of: sha256, blake2b"},
    {"hash_short", false, Op::kReplace, 9, "  value: abc",
     "manifest.yaml:9:10: hash.value: has 3 hex digits; sha256 needs 64"},
    {"hash_not_hex", false, Op::kReplace, 9, "  value: " + std::string(64, 'z'),
     "manifest.yaml:9:10: hash.value: must be hexadecimal digits"},
    {"hash_unknown_key", false, Op::kInsertAfter, 9, "  salt: x",
     "manifest.yaml:10:3: hash.salt: unknown key; allowed: algorithm, value"},
    {"hash_missing_value", false, Op::kDelete, 9, "",
     "manifest.yaml:8:3: hash.value: missing (required)"},
    {"hash_scalar", false, Op::kWhole, 0,
     "name: demo\nversion: \"1.0\"\nformat: aers\nmodule: demo.so\nabi_version: 1\nserial: 3\n"
     "hash: abc\nallowed_node_kinds: [gain]\n",
     "manifest.yaml:7:7: hash: must be a map with keys algorithm and value"},
    {"kinds_empty", false, Op::kReplace, 10, "allowed_node_kinds: []",
     "manifest.yaml:10:21: allowed_node_kinds: must name at least one kind"},
    {"kinds_scalar", false, Op::kReplace, 10, "allowed_node_kinds: gain",
     "manifest.yaml:10:21: allowed_node_kinds: must be a list of kind names"},
    {"kinds_bad_name", false, Op::kReplace, 10, "allowed_node_kinds: [Gain]",
     "manifest.yaml:10:22: allowed_node_kinds[0]: 'Gain' is not a valid kind name"},
    {"kinds_duplicate", false, Op::kReplace, 10, "allowed_node_kinds: [gain, gain]",
     "manifest.yaml:10:28: allowed_node_kinds[1]: 'gain' is listed twice"},
    {"dependency_path", false, Op::kAppend, 0, "dependencies: [../evil.so]",
     "manifest.yaml:11:16: dependencies[0]: '../evil.so' is not a library soname"},
    {"labels_in_aers", false, Op::kAppend, 0, "labels: [amp_mono]",
     "manifest.yaml:11:9: labels: is only for format ladspa"},
    {"syntax_error", false, Op::kReplace, 10, "allowed_node_kinds: [gain",
     "(document): YAML syntax error"},
    {"not_a_map", false, Op::kWhole, 0, "- a\n- b\n",
     "manifest.yaml:1:1: (document): must be a map of keys"},
    {"empty_document", false, Op::kWhole, 0, "# nothing\n",
     "manifest.yaml:1:1: (document): manifest is empty"},
    {"nul_byte", false, Op::kWhole, 0, std::string("name: a\0b\n", 10),
     "(document): contains a NUL byte"},
    {"ladspa_abi", true, Op::kAppend, 0, "abi_version: 1",
     "manifest.yaml:11:14: abi_version: is only for format aers"},
    {"ladspa_no_labels", false, Op::kWhole, 0,
     "name: amp\nversion: \"1\"\nformat: ladspa\nmodule: /usr/lib/ladspa/amp.so\nserial: 1\n"
     "hash: {algorithm: blake2b, value: " +
         kHex + "}\nallowed_node_kinds: [amp_mono]\n",
     "manifest.yaml:1:1: labels: missing (required for format ladspa)"},
    {"ladspa_kind_not_allowed", true, Op::kReplace, 7, "allowed_node_kinds: [amp]",
     "manifest.yaml:9:5: labels[0]: kind 'amp_mono' is not in allowed_node_kinds"},
    {"ladspa_label_unknown_key", true, Op::kReplace, 10, "  - {label: amp_stereo, knd: amp}",
     "manifest.yaml:10:25: labels[1].knd: unknown key"},
    {"ladspa_relative_escape", true, Op::kReplace, 4, "module: ../../usr/lib/ladspa/amp.so",
     "manifest.yaml:4:9: module: '../../usr/lib/ladspa/amp.so' must not contain '..'"},
    {"ladspa_absolute_dotdot", true, Op::kReplace, 4, "module: /usr/lib/ladspa/../../../etc/x.so",
     "manifest.yaml:4:9: module: '/usr/lib/ladspa/../../../etc/x.so' must not contain '..'"},
};

INSTANTIATE_TEST_SUITE_P(Table, MalformedManifest, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& p) {
                           return std::string(p.param.name);
                         });

}  // namespace
}  // namespace aers::plugin
