// Whole-graph validation on specs built in code (the gRPC path has no
// YAML): every problem carries an IssueCode that says what kind of problem
// it is, so that no caller reads the message to classify it.
#include "model/validate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dsp/builtins.h"

namespace aers::model {
namespace {

const KindRegistry& Kinds() {
  static const auto* const registry = dsp::MakeBuiltinRegistry().release();
  return *registry;
}

RouteSpec Route(const char* from, const char* to) {
  return {Endpoint::Parse(from), Endpoint::Parse(to)};
}

// in -> a -> out, all stereo.
GraphSpec Chain() {
  GraphSpec g;
  g.inputs = {{"in", 2, {}}};
  g.outputs = {{"out", 2, {}}};
  g.nodes = {{"a", "gain", 2, {}}};
  g.routes = {Route("in", "a"), Route("a", "out")};
  return g;
}

std::vector<IssueCode> Codes(const std::vector<Issue>& issues) {
  std::vector<IssueCode> out;
  for (const Issue& i : issues) out.push_back(i.code);
  return out;
}

// The one issue a graph has, as "path code".
std::string Only(const GraphSpec& g) {
  const auto issues = ValidateGraph(g, Kinds());
  if (issues.size() != 1) return "expected one issue, got " + IssuesText(issues);
  return issues[0].path + " " + IssueCodeName(issues[0].code);
}

TEST(ValidateCodesTest, ValidGraphHasNoIssues) {
  EXPECT_TRUE(ValidateGraph(Chain(), Kinds()).empty());
}

TEST(ValidateCodesTest, Cycle) {
  GraphSpec g = Chain();
  g.nodes.push_back({"b", "gain", 2, {}});
  g.routes.push_back(Route("a", "b"));
  g.routes.push_back(Route("b", "a"));
  const auto issues = ValidateGraph(g, Kinds());
  EXPECT_EQ(Codes(issues), std::vector<IssueCode>{IssueCode::kCycle}) << IssuesText(issues);
  EXPECT_TRUE(HasIssue(issues, IssueCode::kCycle));
  EXPECT_FALSE(HasIssue(issues, IssueCode::kUnknownNode));
}

TEST(ValidateCodesTest, UnknownNodeAndPort) {
  GraphSpec g = Chain();
  g.routes.push_back(Route("a", "nowhere"));
  EXPECT_EQ(Only(g), "routes[2].to unknown_node");
  g = Chain();
  g.routes[1] = Route("a.sideways", "out");
  EXPECT_EQ(Only(g), "routes[1].from unknown_port");
}

TEST(ValidateCodesTest, OutOfRangeAndWrongType) {
  GraphSpec g = Chain();
  g.nodes[0].params["gain_db"] = 100.0;
  EXPECT_EQ(Only(g), "nodes[0].params.gain_db out_of_range");
  g.nodes[0].params["gain_db"] = std::string("loud");
  EXPECT_EQ(Only(g), "nodes[0].params.gain_db wrong_type");
  g = Chain();
  g.inputs[0].channels = kMaxChannels + 1;
  g.routes = {};
  EXPECT_EQ(Only(g), "inputs[0].channels out_of_range");
}

TEST(ValidateCodesTest, Names) {
  GraphSpec g = Chain();
  g.nodes.push_back({"in", "gain", 2, {}});
  EXPECT_EQ(Only(g), "nodes[1].name duplicate_name");
  g = Chain();
  g.nodes.push_back({"b.c", "gain", 2, {}});
  EXPECT_EQ(Only(g), "nodes[1].name bad_name");
}

TEST(ValidateCodesTest, KindsParametersAndConstraints) {
  GraphSpec g = Chain();
  g.nodes.push_back({"b", "gian", 2, {}});
  EXPECT_EQ(Only(g), "nodes[1].kind unknown_kind");
  g = Chain();
  g.nodes[0].params["gain"] = 1.0;
  EXPECT_EQ(Only(g), "nodes[0].params.gain unknown_param");
  // NodeKind::CheckSpec issues (the mixer's one gain per input) are
  // constraints even though the kind sets no code.
  g = Chain();
  g.nodes.push_back({"m", "mixer", 2, {{"inputs", 2.0}, {"gains_db", std::vector<double>{0.0}}}});
  EXPECT_EQ(Only(g), "nodes[1].params.gains_db constraint");
}

TEST(ValidateCodesTest, RoutesEnds) {
  GraphSpec g = Chain();
  g.routes.push_back(Route("out", "a"));
  EXPECT_EQ(Only(g), "routes[2].from wrong_direction");
  g = Chain();
  g.nodes.push_back({"mono", "gain", 1, {}});
  g.routes.push_back(Route("a", "mono"));
  EXPECT_EQ(Only(g), "routes[2] channel_mismatch");
  g = Chain();
  g.routes.push_back(Route("in", "a"));
  EXPECT_EQ(Only(g), "routes[2] duplicate_route");
}

TEST(ValidateCodesTest, VersionAndLimits) {
  GraphSpec g = Chain();
  g.version = 2;
  EXPECT_EQ(Only(g), "version unsupported_version");
  ValidationContext context;
  context.limits.max_routes = 1;
  const auto issues = ValidateGraph(Chain(), Kinds(), context);
  EXPECT_EQ(Codes(issues), std::vector<IssueCode>{IssueCode::kTooLarge}) << IssuesText(issues);
}

// The code, not the text: a name that reads like another problem's message
// is still only what it is.
TEST(ValidateCodesTest, MessageTextDoesNotClassify) {
  GraphSpec g = Chain();
  g.nodes.push_back({"b", "x: cycle: a -> a", 2, {}});
  const auto issues = ValidateGraph(g, Kinds());
  ASSERT_EQ(Codes(issues), std::vector<IssueCode>{IssueCode::kUnknownKind}) << IssuesText(issues);
  EXPECT_NE(issues[0].message.find(": cycle: "), std::string::npos);
  EXPECT_FALSE(HasIssue(issues, IssueCode::kCycle));
}

TEST(ValidateCodesTest, CodeNamesAreStableAndDistinct) {
  EXPECT_STREQ(IssueCodeName(IssueCode::kCycle), "cycle");
  EXPECT_STREQ(IssueCodeName(IssueCode::kUnknownNode), "unknown_node");
  EXPECT_STREQ(IssueCodeName(IssueCode::kOutOfRange), "out_of_range");
  EXPECT_STREQ(IssueCodeName(IssueCode::kDuplicateName), "duplicate_name");
  EXPECT_STREQ(IssueCodeName(IssueCode::kSyntax), "syntax");
  std::set<std::string> names;
  for (int c = 0; c <= static_cast<int>(IssueCode::kCycle); ++c) {
    const std::string name = IssueCodeName(static_cast<IssueCode>(c));
    EXPECT_NE(name, "invalid") << c;
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string::npos)
        << name;
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  EXPECT_STREQ(IssueCodeName(static_cast<IssueCode>(9999)), "invalid");
}

TEST(ValidateCodesTest, IssuesTextListsAtMostTheCap) {
  EXPECT_EQ(IssuesText({{"a", "one"}, {"b", "two"}}), "a: one\nb: two");
  std::vector<Issue> many(kMaxReportedIssues + 3, Issue{"p", "m"});
  const std::string text = IssuesText(many);
  EXPECT_NE(text.find("\n... and 3 more problems"), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(kMaxReportedIssues));
}

TEST(ValidateCodesTest, NodeSettingsFindWhatTheWholeCheckFinds) {
  // ValidateNodeSettings checks only the nodes named, with the paths and
  // messages of ValidateGraph (the engine's check of a live change).
  GraphSpec g = Chain();
  g.nodes.push_back({"b", "gain", 2, {}});
  g.routes.push_back(Route("a", "b"));
  EXPECT_TRUE(ValidateNodeSettings(g, {0, 1}, Kinds()).empty());
  g.nodes[1].params["gain_db"] = 99.0;
  g.nodes[1].params["gian_db"] = 0.0;
  g.nodes[0].params["gain_db"] = std::string("loud");
  const auto whole = ValidateGraph(g, Kinds());
  EXPECT_EQ(IssuesText(ValidateNodeSettings(g, {0, 1}, Kinds())), IssuesText(whole));
  const auto one = ValidateNodeSettings(g, {1}, Kinds());
  ASSERT_EQ(Codes(one), (std::vector<IssueCode>{IssueCode::kOutOfRange, IssueCode::kUnknownParam}))
      << IssuesText(one);
  EXPECT_EQ(one[0].path, "nodes[1].params.gain_db");
  EXPECT_EQ(ValidateNodeSettings(g, {7}, Kinds())[0].path, "nodes[7]");
}

TEST(ValidateCodesTest, NodesUnchangedSinceAValidGraphKeepTheirVerdict) {
  // The engine validates an edit against the graph that runs: a node equal
  // to the one at its index there is not checked again. (To show it, the
  // "valid" graph here holds a value out of range: it is not reported.)
  GraphSpec valid = Chain();
  valid.nodes.push_back({"b", "gain", 2, {{"gain_db", 99.0}}});
  GraphSpec g = valid;
  g.routes.push_back(Route("a", "nowhere"));
  auto issues = ValidateGraph(g, Kinds(), {}, &valid);
  EXPECT_EQ(Codes(issues), std::vector<IssueCode>{IssueCode::kUnknownNode}) << IssuesText(issues);
  EXPECT_EQ(ValidateGraph(g, Kinds()).size(), 2u) << "without `valid`: both";
  // A changed node is checked, and so is one at another index.
  g.routes.pop_back();
  g.nodes[1].params["gian_db"] = 0.0;
  issues = ValidateGraph(g, Kinds(), {}, &valid);
  EXPECT_EQ(Codes(issues),
            (std::vector<IssueCode>{IssueCode::kOutOfRange, IssueCode::kUnknownParam}))
      << IssuesText(issues);
  g = valid;
  std::swap(g.nodes[0], g.nodes[1]);
  issues = ValidateGraph(g, Kinds(), {}, &valid);
  EXPECT_EQ(Codes(issues), std::vector<IssueCode>{IssueCode::kOutOfRange}) << IssuesText(issues);
  EXPECT_EQ(issues[0].path, "nodes[0].params.gain_db");
}

// A value of `d` other than the node's current one, or nullopt.
std::optional<ParamValue> OtherValue(const ParamDesc& d, const ParamValue& current) {
  std::vector<ParamValue> candidates;
  switch (d.type) {
    case ParamType::kNumber:
    case ParamType::kInteger:
      candidates = {d.min, d.max, std::round((d.min + d.max) / 2)};
      break;
    case ParamType::kBool:
      candidates = {true, false};
      break;
    case ParamType::kEnum:
      for (const auto& c : d.choices) candidates.emplace_back(c);
      break;
    case ParamType::kNumberList:
      if (const auto* list = std::get_if<std::vector<double>>(&current); list && !list->empty()) {
        for (const double v : {d.min, d.max}) {
          auto changed = *list;
          changed[0] = v;
          candidates.emplace_back(changed);
        }
      }
      break;
    case ParamType::kFile:
      break;
  }
  for (const auto& c : candidates) {
    if (!(c == current)) return c;
  }
  return std::nullopt;
}

TEST(KindContractTest, LiveParametersNeverChangeANodesPorts) {
  // The engine commits a change of live parameters without a new plan, and
  // checks only those nodes' settings: it relies on every live parameter of
  // every built-in kind taking a new value without new ports.
  size_t checked = 0;
  for (const NodeKind* kind : Kinds().List()) {
    for (const int channels : {1, 2}) {
      NodeSpec node{"n", kind->name(), channels, {}};
      for (const auto& [name, value] : kind->ResolveParams(node, 48000.0)) {
        node.params[name] = value;
      }
      GraphSpec g;
      g.nodes = {node};
      if (!ValidateGraph(g, Kinds()).empty()) continue;  // a kind that needs a file
      for (const ParamDesc& desc : kind->params()) {
        if (!desc.live) continue;
        const ParamDesc d = desc.At(48000.0);
        const auto other = OtherValue(d, node.params.at(d.name));
        if (!other) continue;
        NodeSpec after = node;
        after.params[d.name] = *other;
        g.nodes = {after};
        if (!ValidateNodeSettings(g, {0}, Kinds()).empty()) continue;  // the kind's constraints
        SCOPED_TRACE(kind->name() + "." + d.name + " on " + std::to_string(channels) + " channels");
        EXPECT_TRUE(kind->UpdateLive(nullptr, node, after));
        const NodeLayout a = kind->Layout(node);
        const NodeLayout b = kind->Layout(after);
        const auto ports = [](const std::vector<PortDesc>& p) {
          std::vector<std::pair<std::string, int>> out;
          for (const auto& x : p) out.emplace_back(x.name, x.channels);
          return out;
        };
        EXPECT_EQ(ports(a.inputs), ports(b.inputs));
        EXPECT_EQ(ports(a.outputs), ports(b.outputs));
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 20u) << "live parameters of the built-in kinds checked";
}

}  // namespace
}  // namespace aers::model
