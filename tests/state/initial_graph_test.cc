// Start-up precedence (state::ChooseInitialGraph): one test per branch, on a
// real state file in a temporary directory.
#include "state/initial_graph.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "dsp/builtins.h"
#include "gtest/gtest.h"

namespace aers::state {
namespace {

namespace fs = std::filesystem;
using Source = InitialGraph::Source;

model::GraphSpec Graph(double gain_db) {
  model::GraphSpec g;
  g.inputs.push_back({"in", 1, {}});
  g.outputs.push_back({"out", 1, {}});
  g.nodes.push_back({"g", "gain", 1, {{"gain_db", gain_db}}});
  g.routes.push_back({model::Endpoint::Parse("in"), model::Endpoint::Parse("g")});
  g.routes.push_back({model::Endpoint::Parse("g"), model::Endpoint::Parse("out")});
  return g;
}

class InitialGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("aers-initial-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store_ = std::make_unique<StateStore>((dir_ / "graph.yaml").string());
    kinds_ = dsp::MakeBuiltinRegistry();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The state as the daemon leaves it: saved against `baseline`.
  void Persist(const model::GraphSpec& g, const std::string& baseline) {
    StateStore writer(store_->path());
    writer.set_baseline(baseline);
    ASSERT_TRUE(writer.Save(g, 7).ok());
  }
  InitialGraph Choose(bool reset = false, GraphCheck check = nullptr) {
    return ChooseInitialGraph(*store_, *kinds_, config_, "config-sha256:A", reset, check,
                              "/etc/aers/aersd.yaml");
  }

  fs::path dir_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<model::KindRegistry> kinds_;
  const model::GraphSpec config_ = Graph(-6.0);
};

TEST_F(InitialGraphTest, NoStateFileStartsFromTheConfig) {
  const auto c = Choose();
  EXPECT_EQ(c.source, Source::kConfig);
  EXPECT_EQ(c.graph, config_);
  EXPECT_FALSE(c.state_problem);
}

TEST_F(InitialGraphTest, StateSavedAgainstThisConfigWins) {
  Persist(Graph(-20.0), "config-sha256:A");
  const auto c = Choose();
  EXPECT_EQ(c.source, Source::kState);
  EXPECT_EQ(c.graph, Graph(-20.0));
  EXPECT_NE(c.reason.find("restored the live graph"), std::string::npos) << c.reason;
  // Saved, not yet checkpointed: the reason names the journal's record.
  EXPECT_NE(c.reason.find(".journal (the record at byte 0)"), std::string::npos) << c.reason;
}

TEST_F(InitialGraphTest, EditedConfigWinsOverAnOlderState) {
  Persist(Graph(-20.0), "config-sha256:OLD");
  const auto c = Choose();
  EXPECT_EQ(c.source, Source::kConfig);
  EXPECT_EQ(c.graph, config_);
  EXPECT_FALSE(c.state_problem);
  EXPECT_NE(c.reason.find("changed since the state"), std::string::npos) << c.reason;
}

TEST_F(InitialGraphTest, ResetStateRemovesTheFileAndUsesTheConfig) {
  Persist(Graph(-20.0), "config-sha256:A");
  const auto c = Choose(/*reset=*/true);
  EXPECT_EQ(c.source, Source::kConfig);
  EXPECT_EQ(c.graph, config_);
  EXPECT_FALSE(fs::exists(store_->path()));
}

TEST_F(InitialGraphTest, CorruptStateIsReportedAndTheConfigUsed) {
  std::ofstream(store_->path()) << "nodes: [ {name: g, kind: gain\n";  // unterminated
  const auto c = Choose();
  EXPECT_EQ(c.source, Source::kConfig);
  EXPECT_EQ(c.graph, config_);
  EXPECT_TRUE(c.state_problem);
  EXPECT_NE(c.reason.find(store_->path()), std::string::npos) << c.reason;
}

TEST_F(InitialGraphTest, StateThatNoLongerPassesTheCheckFallsBack) {
  Persist(Graph(-20.0), "config-sha256:A");
  const auto c = Choose(false, [](const model::GraphSpec&) {
    return absl::InvalidArgumentError("nodes[0].kind: unknown kind 'gone'");
  });
  EXPECT_EQ(c.source, Source::kConfig);
  EXPECT_EQ(c.graph, config_);
  EXPECT_TRUE(c.state_problem);
  EXPECT_NE(c.reason.find("unknown kind 'gone'"), std::string::npos) << c.reason;
}

TEST_F(InitialGraphTest, StateThatPassesTheCheckIsUsed) {
  Persist(Graph(-20.0), "config-sha256:A");
  int checked = 0;
  const auto c = Choose(false, [&](const model::GraphSpec& g) {
    ++checked;
    EXPECT_EQ(g, Graph(-20.0));
    return absl::OkStatus();
  });
  EXPECT_EQ(checked, 1);
  EXPECT_EQ(c.source, Source::kState);
}

}  // namespace
}  // namespace aers::state
