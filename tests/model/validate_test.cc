// Whole-graph validation on specs built in code (the gRPC path has no
// YAML): every problem carries an IssueCode that says what kind of problem
// it is, so that no caller reads the message to classify it.
#include "model/validate.h"

#include <gtest/gtest.h>

#include <algorithm>
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

}  // namespace
}  // namespace aers::model
