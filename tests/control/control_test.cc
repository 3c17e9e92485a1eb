// The control plane's domain layer: GraphService (atomic edits, revisions,
// persistence, events) and the state store. Authentication, audit and
// request checks: security_test.cc.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "common/rig.h"
#include "control/events.h"
#include "control/service.h"
#include "dsp/builtins.h"
#include "dsp/kind_base.h"
#include "state/state_store.h"

namespace aers::test {
namespace {

namespace fs = std::filesystem;
using control::EditOp;

model::GraphSpec Base() {
  return GraphBuilder()
      .Input("in")
      .Node("g", "gain", 1, {{"gain_db", -6.0}})
      .Node("m", "meter", 1)
      .Output("out")
      .Chain({"in", "g", "m", "out"})
      .Build();
}

EditOp SetParamOp(const std::string& node, const std::string& param, model::ParamValue v) {
  EditOp op;
  op.type = EditOp::Type::kSetParameter;
  op.name = node;
  op.param = param;
  op.value = std::move(v);
  return op;
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("aers-control-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    store_ = std::make_unique<state::StateStore>((dir_ / "state" / "graph.yaml").string());
    rig_.Apply(Base());
    service_ = std::make_unique<control::GraphService>(
        rig_.engine(), store_.get(), bus_, [] { return absl::StatusOr<model::GraphSpec>(Base()); });
  }
  void TearDown() override { fs::remove_all(dir_); }

  static EditOp SetParam(const std::string& node, const std::string& param, model::ParamValue v) {
    return SetParamOp(node, param, std::move(v));
  }
  static EditOp Connect(const std::string& from, const std::string& to, bool connect = true) {
    EditOp op;
    op.type = connect ? EditOp::Type::kConnect : EditOp::Type::kDisconnect;
    op.route = {model::Endpoint::Parse(from), model::Endpoint::Parse(to)};
    return op;
  }
  static EditOp Add(const std::string& name, const std::string& kind) {
    EditOp op;
    op.type = EditOp::Type::kAddNode;
    op.node = {name, kind, 1, {}};
    return op;
  }

  fs::path dir_;
  Rig rig_;
  control::EventBus bus_;
  std::unique_ptr<state::StateStore> store_;
  std::unique_ptr<control::GraphService> service_;
};

TEST(DiffGraphsTest, KindChannelsPresetAndParamsAreEachAChange) {
  model::GraphSpec a;
  a.nodes.push_back({"d", "mda/detune", 2, {{"mix", 0.5}}, ""});
  model::GraphSpec b = a;
  b.nodes[0].preset = "urn:p#1";
  EXPECT_EQ(control::DiffGraphs(a, b),
            (std::vector<std::string>{"~ node d: preset (none) -> urn:p#1"}));
  EXPECT_EQ(control::DiffGraphs(b, a),
            (std::vector<std::string>{"~ node d: preset urn:p#1 -> (none)"}));
  model::GraphSpec c = b;
  c.nodes[0].channels = 1;
  c.nodes[0].params.clear();
  EXPECT_EQ(control::DiffGraphs(b, c),
            (std::vector<std::string>{"~ node d: mda/detune, 2 ch -> mda/detune, 1 ch",
                                      "~ node d: mix 0.5 -> (default)"}));
  model::GraphSpec empty;
  EXPECT_EQ(control::DiffGraphs(empty, b),
            (std::vector<std::string>{"+ node d (mda/detune, 2 ch, preset urn:p#1)"}));
}

TEST_F(ServiceTest, EditIsPersistedAndAnnounced) {
  auto sub = bus_.Subscribe();
  auto r = service_->Edit({SetParam("g", "gain_db", -3.0)}, false, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->applied);
  EXPECT_EQ(r->changes, std::vector<std::string>{"~ node g: gain_db -6 -> -3"});
  auto saved = store_->Load(rig_.kinds());
  ASSERT_TRUE(saved.ok() && saved->has_value());
  EXPECT_EQ(**saved, rig_.engine().spec());
  auto e = sub->Next(std::chrono::milliseconds(100));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type, control::Event::Type::kGraphChanged);
  EXPECT_EQ(e->revision, r->revision);
}

TEST_F(ServiceTest, StreamedValuesApplyInOrderAndAreSavedTogether) {
  auto sub = bus_.Subscribe();
  int audited = 0;
  control::CallContext ctx;
  ctx.origin = "stream";
  ctx.before_commit = [&](const control::PendingCommit&) {
    ++audited;
    return absl::OkStatus();
  };
  const uint64_t rev0 = rig_.engine().revision();
  auto stream = service_->OpenLiveStream(ctx);
  for (int i = 0; i < 200; ++i) {
    auto r = service_->SetLive(*stream, "g", "gain_db", -0.1 * i, static_cast<size_t>(i));
    ASSERT_TRUE(r.ok()) << r.status();
    // Each value runs at once, in order: the graph shows it.
    EXPECT_EQ(*r, rev0 + 1 + static_cast<uint64_t>(i));
    EXPECT_EQ(std::get<double>(rig_.engine().spec().FindNode("g")->params.at("gain_db")), -0.1 * i);
  }
  // Saved by the committer within its window (waited for, not timed).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto saved = store_->Load(rig_.kinds());
  while (std::chrono::steady_clock::now() < deadline &&
         !(saved.ok() && saved->has_value() && **saved == rig_.engine().spec())) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    saved = store_->Load(rig_.kinds());
  }
  ASSERT_TRUE(saved.ok() && saved->has_value());
  EXPECT_EQ(**saved, rig_.engine().spec()) << "the last value reached the journal";
  // One graph_changed event per save, from the stream, with the net change.
  auto e = sub->Next(std::chrono::seconds(5));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->origin, "stream");
  ASSERT_FALSE(e->changes.empty());
  EXPECT_EQ(e->changes.front().rfind("~ node g: gain_db -6 -> ", 0), 0u) << e->changes.front();
  EXPECT_GE(audited, 1);
  // A non-live parameter, an unknown node, a bad value: refused naming the
  // value, nothing changes.
  const auto spec = rig_.engine().spec();
  const auto rev = rig_.engine().revision();
  auto bad = service_->SetLive(*stream, "m", "loudness", true, 200);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("values[200].param: 'loudness'"), std::string::npos)
      << bad.status();
  bad = service_->SetLive(*stream, "nope", "gain_db", 1.0, 201);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(bad.status().message().find("values[201].node"), std::string::npos) << bad.status();
  bad = service_->SetLive(*stream, "g", "gain_db", 1e9, 202);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("values[202]"), std::string::npos) << bad.status();
  EXPECT_EQ(rig_.engine().spec(), spec);
  EXPECT_EQ(rig_.engine().revision(), rev);
  // One more value, then the stream ends: saved before Close returns.
  ASSERT_TRUE(service_->SetLive(*stream, "g", "gain_db", -12.0, 203).ok());
  auto closed = service_->CloseLiveStream(std::move(stream));
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->second, 201u);
  state::StateStore reread(store_->path());
  saved = reread.Load(rig_.kinds());
  ASSERT_TRUE(saved.ok() && saved->has_value());
  EXPECT_EQ(std::get<double>((*saved)->FindNode("g")->params.at("gain_db")), -12.0);
}

TEST_F(ServiceTest, StreamedValuesThatCannotBeSavedEndTheStream) {
  // The stream's save record is written first (audit write-ahead); when the
  // state then cannot be written, the follow-up says the values were not
  // saved, the stream ends with UNAVAILABLE, and health follows.
  std::vector<std::string> records;
  control::CallContext ctx;
  ctx.origin = "stream";
  ctx.before_commit = [&](const control::PendingCommit&) {
    records.push_back("OK");
    return absl::OkStatus();
  };
  ctx.after_failure = [&](const absl::Status& st) {
    records.push_back(absl::StatusCodeToString(st.code()));
  };
  auto stream = service_->OpenLiveStream(ctx);
  fs::create_directories(store_->path());  // a directory where the state file goes
  ASSERT_TRUE(service_->SetLive(*stream, "g", "gain_db", -9.0, 0).ok());
  auto closed = service_->CloseLiveStream(std::move(stream));
  EXPECT_EQ(closed.status().code(), absl::StatusCode::kUnavailable) << closed.status();
  EXPECT_NE(closed.status().message().find("the streamed values run but are not saved"),
            std::string::npos)
      << closed.status();
  EXPECT_EQ(records, (std::vector<std::string>{"OK", "UNAVAILABLE"}));
  EXPECT_TRUE(service_->state_diverged());
  fs::remove_all(store_->path());
  EXPECT_TRUE(service_->ResaveIfDiverged());
  EXPECT_FALSE(service_->state_diverged());
}

TEST_F(ServiceTest, AnEditAfterStreamedValuesKeepsThem) {
  // Another client's edit while a stream's values are unsaved: the values
  // are saved first (their own record), and the edit builds on them.
  auto sub = bus_.Subscribe();
  auto stream = service_->OpenLiveStream({.origin = "stream"});
  ASSERT_TRUE(service_->SetLive(*stream, "g", "gain_db", -20.0, 0).ok());
  auto r = service_->Edit({Add("x", "gain")}, false, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->changes, std::vector<std::string>{"+ node x (gain, 1 ch)"});
  EXPECT_EQ(std::get<double>(rig_.engine().spec().FindNode("g")->params.at("gain_db")), -20.0);
  auto first = sub->Next(std::chrono::seconds(1));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->origin, "stream");
  EXPECT_EQ(first->changes, std::vector<std::string>{"~ node g: gain_db -6 -> -20"});
  auto second = sub->Next(std::chrono::seconds(1));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->origin, "rpc");
  ASSERT_TRUE(service_->CloseLiveStream(std::move(stream)).ok());
  auto saved = store_->Load(rig_.kinds());
  ASSERT_TRUE(saved.ok() && saved->has_value());
  EXPECT_EQ(**saved, rig_.engine().spec());
}

TEST_F(ServiceTest, MultiOpEditIsAllOrNothing) {
  const auto before = rig_.engine().spec();
  const auto rev = rig_.engine().revision();
  // Valid first op, then an op naming an unknown node: nothing applies.
  auto r = service_->Edit({Add("x", "gain"), SetParam("nope", "gain_db", 1.0)}, false, rev);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("ops[1].set_parameter.node"), absl::string_view::npos);
  EXPECT_EQ(rig_.engine().spec(), before);
  EXPECT_EQ(rig_.engine().revision(), rev);
  EXPECT_FALSE(fs::exists(store_->path())) << "a failed edit must not write state";
  // Both valid: both apply under one revision step.
  r = service_->Edit({Add("x", "gain"), Connect("in", "x"), Connect("x", "out")}, false, rev);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->revision, rev + 1);
  EXPECT_EQ(rig_.engine().spec().routes.size(), before.routes.size() + 2);
}

TEST_F(ServiceTest, RevisionConflictIsAborted) {
  const auto rev = rig_.engine().revision();
  ASSERT_TRUE(service_->Edit({SetParam("g", "gain_db", -1.0)}, false, rev).ok());
  auto r = service_->Edit({SetParam("g", "gain_db", -2.0)}, false, rev);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(std::get<double>(rig_.engine().spec().FindNode("g")->params.at("gain_db")), -1.0);
}

TEST_F(ServiceTest, CycleIsAFailedPrecondition) {
  auto r = service_->Edit({Connect("m", "g")}, false, std::nullopt);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("cycle"), absl::string_view::npos) << r.status();
}

TEST_F(ServiceTest, DryRunReportsButChangesNothing) {
  const auto rev = rig_.engine().revision();
  auto r = service_->Edit({Add("x", "tone"), Connect("x", "out")}, true, std::nullopt);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->applied);
  EXPECT_EQ(r->revision, rev);
  EXPECT_EQ(rig_.engine().revision(), rev);
  EXPECT_EQ(r->changes, (std::vector<std::string>{"+ node x (tone, 1 ch)", "+ route x -> out"}));
}

TEST_F(ServiceTest, YamlErrorsCiteSourceLineAndColumn) {
  auto r = service_->ApplyYaml("version: 1\nnodes:\n  - {name: a, kind: nosuch}\n", "edit.yaml",
                               false, std::nullopt);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("edit.yaml:3:"), absl::string_view::npos) << r.status();
}

TEST_F(ServiceTest, AnUnwritableStateRefusesTheEditBeforeTheAudioChanges) {
  // Make the state directory unwritable (as root, use a file in its place).
  ASSERT_TRUE(fs::create_directories(dir_ / "blocked"));
  std::ofstream(dir_ / "blocked" / "state") << "not a directory";
  state::StateStore bad((dir_ / "blocked" / "state" / "graph.yaml").string());
  control::GraphService svc(rig_.engine(), &bad, bus_, nullptr);
  const auto before = rig_.engine().spec();
  const uint64_t rev = rig_.engine().revision();
  auto r = svc.Edit({SetParam("g", "gain_db", -20.0)}, false, std::nullopt);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_NE(r.status().message().find("nothing changed"), absl::string_view::npos) << r.status();
  EXPECT_EQ(rig_.engine().spec(), before);
  EXPECT_EQ(rig_.engine().revision(), rev);  // never applied, so no revision spent
}

TEST_F(ServiceTest, ResetGoesBackToTheConfigGraph) {
  ASSERT_TRUE(service_->Edit({SetParam("g", "gain_db", 0.0)}, false, std::nullopt).ok());
  auto r = service_->ResetToConfig(std::nullopt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(rig_.engine().spec(), Base());
}

// Waits (bounded) until `pred` holds.
template <typename Pred>
bool WaitFor(Pred pred) {
  for (int i = 0; i < 10000 && !pred(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

// Concurrent edits are committed in batches: those that arrive while a
// batch runs queue up, and the next batch records every one of them before
// the first is made durable (one flush for all), then applies each in
// arrival order with its own revision.
TEST_F(ServiceTest, ConcurrentEditsShareOneDurableStepAndKeepTheirOrder) {
  constexpr int kQueued = 5;
  std::mutex mu;
  std::vector<std::string> log;
  std::atomic<bool> release{false};
  auto say = [&](std::string what) {
    std::lock_guard lock(mu);
    log.push_back(std::move(what));
  };
  std::vector<control::CallContext> contexts(kQueued + 1);
  for (int n = 0; n <= kQueued; ++n) {
    contexts[n].before_commit = [&, n](const control::PendingCommit& p) {
      say("record " + std::to_string(n) + " -> " + std::to_string(p.revision_after));
      while (n == 0 && !release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return absl::OkStatus();
    };
    contexts[n].make_durable = [&, n] {
      say("durable " + std::to_string(n));
      return absl::OkStatus();
    };
  }
  const uint64_t rev = rig_.engine().revision();
  std::vector<absl::StatusOr<control::EditOutcome>> outcomes(kQueued + 1,
                                                             absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  auto edit = [&](int n) {
    threads.emplace_back([&, n] {
      outcomes[n] = service_->Edit({SetParam("g", "gain_db", -static_cast<double>(n + 1))}, false,
                                   std::nullopt, contexts[n]);
    });
  };
  edit(0);  // its record waits: a batch is running
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return !log.empty();
  }));
  for (int n = 1; n <= kQueued; ++n) {
    edit(n);
    ASSERT_TRUE(WaitFor([&] { return service_->queued_edits() == static_cast<size_t>(n); }));
  }
  release = true;
  for (auto& t : threads) t.join();

  std::vector<std::string> want = {"record 0 -> " + std::to_string(rev + 1), "durable 0"};
  for (int n = 1; n <= kQueued; ++n) {
    want.push_back("record " + std::to_string(n) + " -> " + std::to_string(rev + 1 + n));
  }
  for (int n = 1; n <= kQueued; ++n) want.push_back("durable " + std::to_string(n));
  EXPECT_EQ(log, want);
  for (int n = 0; n <= kQueued; ++n) {
    ASSERT_TRUE(outcomes[n].ok()) << n << ": " << outcomes[n].status();
    EXPECT_TRUE(outcomes[n]->applied);
    EXPECT_EQ(outcomes[n]->revision, rev + 1 + n);
    // Each diffed against the graph the one ahead of it left (-6 dB at first).
    EXPECT_EQ(outcomes[n]->changes,
              std::vector<std::string>{"~ node g: gain_db " + std::to_string(n == 0 ? -6 : -n) +
                                       " -> " + std::to_string(-(n + 1))});
  }
  EXPECT_EQ(rig_.engine().revision(), rev + 1 + kQueued);
  EXPECT_EQ(std::get<double>(rig_.engine().spec().FindNode("g")->params.at("gain_db")),
            -static_cast<double>(kQueued + 1));
  auto saved = store_->Load(rig_.engine().kinds());
  ASSERT_TRUE(saved.ok() && saved->has_value()) << saved.status();
  EXPECT_EQ(**saved, rig_.engine().spec());
}

// An edit of a batch refused for a reason every edit shares (the state
// file cannot be written) refuses the edits behind it with the same error,
// without recording them again; those that had failed their checks, or dry
// runs, checked against its graph, are checked again against what runs.
TEST_F(ServiceTest, AnUnwritableStateRefusesTheRestOfTheBatchWithoutRetries) {
  std::atomic<bool> release{false};
  std::atomic<int> recorded{0};
  std::atomic<int> last_records{0};
  std::atomic<int> last_retries{0};
  control::CallContext first, add, last, dry;
  first.before_commit = [&](const control::PendingCommit&) {
    ++recorded;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return absl::OkStatus();
  };
  add.before_commit = [&](const control::PendingCommit&) {
    // Something that is not a file takes the state file's place.
    fs::create_directories(store_->path());
    return absl::OkStatus();
  };
  last.before_commit = [&](const control::PendingCommit&) {
    ++last_records;
    return absl::OkStatus();
  };
  last.before_retry = [&](const absl::Status&) {
    ++last_retries;
    return absl::OkStatus();
  };
  const uint64_t rev = rig_.engine().revision();
  absl::StatusOr<control::EditOutcome> r0, r1, r2, r3;
  std::thread t0(
      [&] { r0 = service_->Edit({SetParam("g", "gain_db", -1.0)}, false, std::nullopt, first); });
  ASSERT_TRUE(WaitFor([&] { return recorded == 1; }));
  std::thread t1([&] { r1 = service_->Edit({Add("y", "gain")}, false, std::nullopt, add); });
  ASSERT_TRUE(WaitFor([&] { return service_->queued_edits() == 1; }));
  std::thread t2(
      [&] { r2 = service_->Edit({SetParam("y", "gain_db", -3.0)}, false, std::nullopt, last); });
  ASSERT_TRUE(WaitFor([&] { return service_->queued_edits() == 2; }));
  std::thread t3([&] {
    r3 = service_->Edit({SetParam("y", "gain_db", -4.0)}, /*dry_run=*/true, std::nullopt, dry);
  });
  ASSERT_TRUE(WaitFor([&] { return service_->queued_edits() == 3; }));
  release = true;
  for (auto* t : {&t0, &t1, &t2, &t3}) t->join();

  ASSERT_TRUE(r0.ok()) << r0.status();
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().code(), absl::StatusCode::kUnavailable) << r1.status();
  EXPECT_NE(r1.status().message().find("nothing changed"), absl::string_view::npos) << r1.status();
  EXPECT_EQ(r2.status(), r1.status());
  EXPECT_EQ(last_records, 1);
  EXPECT_EQ(last_retries, 0);
  // The dry run passed against the graph with node y; against what runs
  // there is no y.
  EXPECT_EQ(r3.status().code(), absl::StatusCode::kNotFound) << r3.status();
  EXPECT_EQ(rig_.engine().revision(), rev + 1);
  EXPECT_EQ(rig_.engine().spec().FindNode("y"), nullptr);
  fs::remove_all(store_->path());
}

TEST(StateStore, CorruptFileIsReportedNotTrusted) {
  const fs::path dir = fs::temp_directory_path() / ("aers-state-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  state::StateStore store((dir / "graph.yaml").string());
  auto kinds = dsp::MakeBuiltinRegistry();
  auto none = store.Load(*kinds);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  std::ofstream(dir / "graph.yaml") << "version: 1\nnodes: [ {name: broken";
  auto bad = store.Load(*kinds);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("graph.yaml"), absl::string_view::npos);
  ASSERT_TRUE(store.Save(Base(), 7).ok());
  // Restarts go on past the lease the record reserved.
  EXPECT_EQ(store.SavedRevision(), std::optional<uint64_t>(7 + state::StateStore::kRevisionLease));
  auto good = store.Load(*kinds);
  ASSERT_TRUE(good.ok() && good->has_value());
  EXPECT_EQ(**good, Base());
  ASSERT_TRUE(store.Checkpoint().ok());
  good = store.Load(*kinds);
  ASSERT_TRUE(good.ok() && good->has_value());
  EXPECT_EQ(**good, Base());
  // No temporary files left behind: the state file and its journal.
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.insert(e.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"graph.yaml", "graph.yaml.journal"}));
  fs::remove_all(dir);
}

// A fresh directory for one state test (removed first).
fs::path FreshDir(const std::string& tag) {
  const fs::path dir =
      fs::temp_directory_path() / ("aers-" + tag + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

model::GraphSpec WithGain(double gain_db) {
  auto g = Base();
  g.nodes.push_back({"extra", "gain", 1, {{"gain_db", gain_db}}});
  return g;
}

TEST(StateStore, AJournalRecordSurvivesTheProcessBeforeAnyFlush) {
  // What kill -9 leaves: records written, none flushed, no checkpoint. A
  // new store (the restarted daemon) reads the newest one.
  const fs::path dir = fs::temp_directory_path() / ("aers-journal-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto kinds = dsp::MakeBuiltinRegistry();
  {
    state::StateStore store((dir / "graph.yaml").string());
    ASSERT_TRUE(store.Save(Base(), 10).ok());
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(store.Append(WithGain(-i), 10 + i).ok());
    EXPECT_EQ(store.journal_records(), 4u);
  }
  state::StateStore again((dir / "graph.yaml").string());
  auto loaded = again.Load(*kinds);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ(**loaded, WithGain(-3));
  EXPECT_EQ(again.SavedRevision(), std::optional<uint64_t>(13 + state::StateStore::kRevisionLease));
  // A torn record at the end (a power cut in the middle of a write) is
  // ignored: the one before it wins.
  {
    std::ofstream j(dir / "graph.yaml.journal", std::ios::app);
    j << "AERSJ1 14 1038 500 00112233445566778899aabbccddeeff\nversion: 1\nnod";
  }
  loaded = again.Load(*kinds);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ(**loaded, WithGain(-3));
  // A record whose bytes do not match its hash ends the journal too.
  {
    std::ofstream j(dir / "graph.yaml.journal", std::ios::trunc);
    j << "AERSJ1 20 1044 11 00112233445566778899aabbccddeeff\nversion: 1\n\n";
  }
  state::StateStore third((dir / "graph.yaml").string());
  loaded = third.Load(*kinds);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->has_value()) << "no state file, no valid record";
  fs::remove_all(dir);
}

TEST(StateStore, ADamagedRecordIsSkippedAndTheNewestIntactOneWins) {
  const fs::path dir = fs::temp_directory_path() / ("aers-damage-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto kinds = dsp::MakeBuiltinRegistry();
  {
    state::StateStore store((dir / "graph.yaml").string());
    for (int i = 1; i <= 4; ++i) ASSERT_TRUE(store.Append(WithGain(-i), 100 + i).ok());
  }
  const fs::path journal = dir / "graph.yaml.journal";
  std::string bytes;
  {
    std::ifstream in(journal, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  // One flipped byte in the second record's payload, and its header's
  // revision edited in the third: both are skipped, the fourth wins.
  const size_t second = bytes.find("AERSJ1 102 ");
  const size_t third = bytes.find("AERSJ1 103 ");
  ASSERT_NE(second, std::string::npos);
  ASSERT_NE(third, std::string::npos);
  bytes[second + 200] ^= 0x20;
  bytes.replace(third, 10, "AERSJ1 999");
  {
    std::ofstream out(journal, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  state::StateStore again((dir / "graph.yaml").string());
  auto loaded = again.Load(*kinds);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ(**loaded, WithGain(-4));
  EXPECT_EQ(again.SavedRevision(),
            std::optional<uint64_t>(104 + state::StateStore::kRevisionLease));
  const std::string damage = again.journal_damage();
  EXPECT_NE(
      damage.find("graph.yaml.journal: damaged records skipped at bytes " + std::to_string(second)),
      std::string::npos)
      << damage;
  // Kept aside, not emptied: the next edit starts a fresh journal.
  ASSERT_TRUE(again.SetAsideJournal().ok());
  EXPECT_TRUE(fs::exists(dir / "graph.yaml.journal.damaged"));
  EXPECT_FALSE(fs::exists(journal));
  // A header whose revision would wrap the counter is no record at all.
  {
    std::ofstream out(journal, std::ios::binary | std::ios::trunc);
    out << "AERSJ1 18446744073709551615 1023 1 00112233445566778899aabbccddeeff\nx\n";
  }
  state::StateStore third_store((dir / "graph.yaml").string());
  EXPECT_EQ(third_store.SavedRevision(), std::optional<uint64_t>(0));
  fs::remove_all(dir);
}

TEST(StateStore, ARecordThatCouldNotBeWrittenNeverReachesTheStateFile) {
  // A write that fails (here: the file size limit, as a full disk would)
  // refuses the edit; the next checkpoint writes the last state that was
  // written, never the refused one. The journal's zero-filled room is used
  // first: it fails when the room would have to grow.
  const fs::path dir = fs::temp_directory_path() / ("aers-refused-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  state::StateStore store((dir / "graph.yaml").string());
  ASSERT_TRUE(store.Save(Base(), 1).ok());
  const auto size = fs::file_size(dir / "graph.yaml.journal");
  EXPECT_EQ(size, 256u << 10) << "room ahead of the records";
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = size;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const auto gain = [](int i) { return -1.0 - 0.25 * (i % 400); };  // in range
  absl::StatusOr<uint64_t> refused;
  int written = 0;
  for (int i = 0; i < 1000; ++i) {
    refused = store.Append(WithGain(gain(i)), static_cast<uint64_t>(2 + i));
    if (!refused.ok()) break;
    ++written;
  }
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_GT(written, 0) << "the room takes records without growing";
  EXPECT_FALSE(refused.ok()) << "and is full after " << written;
  EXPECT_NE(refused.status().message().find("graph.yaml.journal: write"), std::string::npos)
      << refused.status();
  EXPECT_EQ(fs::file_size(dir / "graph.yaml.journal"), size) << "no partial record left";
  auto kinds = dsp::MakeBuiltinRegistry();
  const model::GraphSpec last = WithGain(gain(written - 1));
  {
    state::StateStore before_checkpoint((dir / "graph.yaml").string());
    auto loaded = before_checkpoint.Load(*kinds);
    ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
    EXPECT_EQ(**loaded, last) << "the refused record is not in the journal";
    EXPECT_EQ(before_checkpoint.journal_damage(), "");
  }
  ASSERT_TRUE(store.Checkpoint().ok());
  state::StateStore again((dir / "graph.yaml").string());
  auto loaded = again.Load(*kinds);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ(**loaded, last);
  fs::remove_all(dir);
}

TEST(StateStore, OneFlushMakesEveryRecordBeforeItDurable) {
  // Group commit: records appended while no flush ran are all made durable
  // by the next one; a Sync for a record already flushed costs nothing.
  const fs::path dir = fs::temp_directory_path() / ("aers-group-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  state::StateStore store((dir / "graph.yaml").string());
  ASSERT_TRUE(store.Save(Base(), 1).ok());  // as the daemon does at start
  EXPECT_EQ(store.flushes(), 1u);
  std::vector<uint64_t> tickets;
  for (int i = 0; i < 5; ++i) {
    auto t = store.Append(WithGain(-i), static_cast<uint64_t>(i + 2));
    ASSERT_TRUE(t.ok()) << t.status();
    tickets.push_back(*t);
  }
  EXPECT_EQ(store.flushes(), 1u);
  ASSERT_TRUE(store.Sync(tickets[2]).ok());
  EXPECT_EQ(store.flushes(), 2u);
  for (const uint64_t t : tickets) ASSERT_TRUE(store.Sync(t).ok());
  EXPECT_EQ(store.flushes(), 2u) << "one flush covered every record appended before it";
  // Concurrent syncs of concurrent appends (the control service's shape:
  // appends one at a time, flushes outside its lock): every one durable,
  // fewer flushes than records.
  std::mutex append_mu;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        uint64_t ticket = 0;
        {
          std::lock_guard lock(append_mu);
          auto a = store.Append(WithGain(-t), static_cast<uint64_t>(100 + t * 100 + i));
          if (!a.ok()) {
            ++failures;
            return;
          }
          ticket = *a;
        }
        if (!store.Sync(ticket).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store.journal_records(), 6u + 200u);
  auto kinds = dsp::MakeBuiltinRegistry();
  state::StateStore again((dir / "graph.yaml").string());
  auto loaded = again.Load(*kinds);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_NE((*loaded)->FindNode("extra"), nullptr);
  fs::remove_all(dir);
}

TEST(StateStore, ABigJournalIsFoldedIntoTheStateFile) {
  const fs::path dir = fs::temp_directory_path() / ("aers-compact-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  state::StateStore store((dir / "graph.yaml").string());
  auto big = Base();
  for (int i = 0; i < 200; ++i) {
    big.nodes.push_back({"g" + std::to_string(i), "gain", 1, {{"gain_db", -1.0}}});
  }
  int folds = 0;
  for (int i = 1; i <= 200; ++i) {
    const uint64_t before = store.journal_records();
    ASSERT_TRUE(store.Append(big, static_cast<uint64_t>(i)).ok());
    if (store.journal_records() <= before) ++folds;
  }
  EXPECT_GE(folds, 2) << "the journal is folded in at 1 MiB";
  EXPECT_LE(fs::file_size(dir / "graph.yaml.journal"), size_t{1} << 20);
  auto kinds = dsp::MakeBuiltinRegistry();
  state::StateStore again((dir / "graph.yaml").string());
  auto loaded = again.Load(*kinds);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ(**loaded, big);
  EXPECT_EQ(again.SavedRevision(),
            std::optional<uint64_t>(200 + state::StateStore::kRevisionLease));
  fs::remove_all(dir);
}

TEST(StateStore, RecordsTheBaselineItWasDerivedFrom) {
  const fs::path dir = fs::temp_directory_path() / ("aers-baseline-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  state::StateStore store((dir / "graph.yaml").string());
  EXPECT_EQ(store.SavedBaseline(), "");
  store.set_baseline("config-sha256:abc");
  ASSERT_TRUE(store.Save(Base(), 1).ok());
  EXPECT_EQ(store.SavedBaseline(), "config-sha256:abc");
  // A checkpoint writes the baseline the record was appended with: a
  // reload sets the new config's baseline before its own edit arrives.
  store.set_baseline("config-sha256:new");
  ASSERT_TRUE(store.Checkpoint().ok());
  EXPECT_EQ(store.SavedBaseline(), "config-sha256:abc");
  auto kinds = dsp::MakeBuiltinRegistry();
  auto loaded = store.Load(*kinds);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ(**loaded, Base());
  fs::remove_all(dir);
}

TEST(StateStore, JournalRecordsAreJsonAndTheStateFileIsYaml) {
  // Every edit writes a record, so the journal takes the faster encoding;
  // the state file, which people read, stays YAML.
  const fs::path dir = FreshDir("json");
  auto kinds = dsp::MakeBuiltinRegistry();
  state::StateStore store((dir / "graph.yaml").string());
  ASSERT_TRUE(store.Append(WithGain(-1.5), 7).ok());
  const std::string journal = Slurp(dir / "graph.yaml.journal");
  EXPECT_NE(journal.find("\n{\"version\":1,"), std::string::npos) << journal;
  EXPECT_NE(journal.find("\"gain_db\":-1.5"), std::string::npos) << journal;
  auto loaded = state::StateStore((dir / "graph.yaml").string()).Load(*kinds);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ(**loaded, WithGain(-1.5));
  ASSERT_TRUE(store.Checkpoint().ok());
  const std::string file = Slurp(dir / "graph.yaml");
  EXPECT_EQ(file.find("\"version\""), std::string::npos) << file;
  EXPECT_NE(file.find("\n    params:\n      gain_db: -1.5\n"), std::string::npos) << file;
  EXPECT_NE(file.find("# revision: 7\n"), std::string::npos) << file;
  state::StateStore again((dir / "graph.yaml").string());
  loaded = again.Load(*kinds);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ(**loaded, WithGain(-1.5));
  EXPECT_EQ(again.SavedRevision(), std::optional<uint64_t>(7 + state::StateStore::kRevisionLease));
  fs::remove_all(dir);
}

TEST(StateStore, RecordsOverwriteZeroFilledRoomAndZerosAreNotDamage) {
  // The journal keeps its size while records come and go (so a record's
  // flush writes data only); zeros are room, wherever they are.
  const fs::path dir = FreshDir("room");
  const fs::path journal = dir / "graph.yaml.journal";
  auto kinds = dsp::MakeBuiltinRegistry();
  state::StateStore store((dir / "graph.yaml").string());
  for (int i = 1; i <= 3; ++i)
    ASSERT_TRUE(store.Append(WithGain(-i), static_cast<uint64_t>(i)).ok());
  const auto room = fs::file_size(journal);
  EXPECT_EQ(room, 256u << 10);
  ASSERT_TRUE(store.Checkpoint().ok());
  EXPECT_EQ(fs::file_size(journal), room) << "cleared in place";
  ASSERT_TRUE(store.Append(WithGain(-4), 4).ok());
  EXPECT_EQ(fs::file_size(journal), room) << "the record went into the room";
  {
    state::StateStore reader((dir / "graph.yaml").string());
    auto loaded = reader.Load(*kinds);
    ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
    EXPECT_EQ(**loaded, WithGain(-4));
    EXPECT_EQ(reader.journal_damage(), "");
  }
  // A crash while a checkpoint clears the journal: zeros, then what is
  // left of older records (the state file has the newest).
  ASSERT_TRUE(store.Append(WithGain(-5), 5).ok());
  ASSERT_TRUE(store.Append(WithGain(-6), 6).ok());
  std::string text = Slurp(journal);
  const size_t second = text.find("AERSJ1 5 ");
  ASSERT_NE(second, std::string::npos);
  ASSERT_TRUE(store.Checkpoint().ok());  // the state file: revision 6
  {
    std::fstream out(journal, std::ios::binary | std::ios::in | std::ios::out);
    text.replace(0, second + 10, second + 10, '\0');  // cleared halfway into record 5
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  state::StateStore after_crash((dir / "graph.yaml").string());
  auto loaded = after_crash.Load(*kinds);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ(**loaded, WithGain(-6)) << "the state file is newer than record 6 left behind";
  std::optional<uint64_t> graph_revision;
  EXPECT_EQ(after_crash.SavedRevision(&graph_revision),
            std::optional<uint64_t>(6 + state::StateStore::kRevisionLease));
  EXPECT_EQ(graph_revision, std::optional<uint64_t>(6));
  EXPECT_EQ(after_crash.journal_damage(), "")
      << "the rest of a record a checkpoint was clearing is no damage";
  fs::remove_all(dir);
}

TEST(StateStore, ATornLastRecordIsNoDamageAndAFlippedByteIs) {
  // What kill -9 in the middle of a record's write leaves (the write stops
  // at a page: the record runs into the zero-filled room) loses nothing
  // acknowledged: no warning. A flipped byte in a whole record is damage.
  const fs::path dir = FreshDir("torn");
  const fs::path journal = dir / "graph.yaml.journal";
  auto kinds = dsp::MakeBuiltinRegistry();
  {
    state::StateStore store((dir / "graph.yaml").string());
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(store.Append(WithGain(-i), static_cast<uint64_t>(i)).ok());
    }
  }
  const std::string text = Slurp(journal);
  const size_t third = text.find("AERSJ1 3 ");
  const size_t end = text.find_last_not_of('\0') + 1;
  ASSERT_NE(third, std::string::npos);
  const auto write = [&](const std::string& t) {
    std::ofstream out(journal, std::ios::binary | std::ios::trunc);
    out.write(t.data(), static_cast<std::streamsize>(t.size()));
  };
  const auto read_back = [&](model::GraphSpec want, bool damaged) {
    state::StateStore reader((dir / "graph.yaml").string());
    auto loaded = reader.Load(*kinds);
    ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
    EXPECT_EQ(**loaded, want);
    EXPECT_EQ(reader.journal_damage().empty(), !damaged) << reader.journal_damage();
  };
  // Cut in the payload, in the header line, and a file ending in the record.
  for (const size_t cut : {third + 200, third + 20}) {
    std::string torn = text;
    std::fill(torn.begin() + static_cast<std::ptrdiff_t>(cut),
              torn.begin() + static_cast<std::ptrdiff_t>(end), '\0');
    write(torn);
    read_back(WithGain(-2), /*damaged=*/false);
    write(torn.substr(0, cut));
    read_back(WithGain(-2), /*damaged=*/false);
  }
  // The same length with one byte changed: a record that was whole.
  std::string flipped = text;
  flipped[third + 300] ^= 0x01;
  write(flipped);
  read_back(WithGain(-2), /*damaged=*/true);
  // Garbage run into the next record's header without a line break: the
  // record after it is still found.
  std::string prefixed = text;
  prefixed.insert(third, "XYZ");
  write(prefixed);
  read_back(WithGain(-3), /*damaged=*/true);
  fs::remove_all(dir);
}

TEST(StateStore, AJournalNoWriterMadeIsNotRead) {
  // A link (not followed), or a file bigger than any journal: not read,
  // reported for the start-up to set aside; the state file is used.
  const fs::path dir = FreshDir("odd");
  const fs::path journal = dir / "graph.yaml.journal";
  auto kinds = dsp::MakeBuiltinRegistry();
  {
    state::StateStore store((dir / "graph.yaml").string());
    ASSERT_TRUE(store.Save(Base(), 1).ok());
    ASSERT_TRUE(store.Checkpoint().ok());
    ASSERT_TRUE(store.Append(WithGain(-2), 2).ok());
  }
  fs::rename(journal, dir / "elsewhere");
  fs::create_symlink(dir / "elsewhere", journal);
  {
    state::StateStore reader((dir / "graph.yaml").string());
    auto loaded = reader.Load(*kinds);
    ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
    EXPECT_EQ(**loaded, Base()) << "the record behind the link is not read";
    EXPECT_NE(reader.journal_damage().find("not a regular file"), std::string::npos)
        << reader.journal_damage();
  }
  fs::remove(journal);
  fs::rename(dir / "elsewhere", journal);
  fs::resize_file(journal, 100u << 20);  // zeros, sparse
  {
    state::StateStore reader((dir / "graph.yaml").string());
    auto loaded = reader.Load(*kinds);
    ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
    EXPECT_EQ(**loaded, Base());
    EXPECT_NE(reader.journal_damage().find("104857600 bytes, more than a journal ever holds"),
              std::string::npos)
        << reader.journal_damage();
    EXPECT_TRUE(reader.SetAsideJournal().ok());
    EXPECT_TRUE(fs::exists(dir / "graph.yaml.journal.damaged"));
  }
  // Extra zero-filled room (within the limit) is cut back when writing.
  fs::resize_file(dir / "graph.yaml.journal.damaged", 4u << 20);
  fs::rename(dir / "graph.yaml.journal.damaged", journal);
  {
    state::StateStore store((dir / "graph.yaml").string());
    auto loaded = store.Load(*kinds);
    ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
    EXPECT_EQ(**loaded, WithGain(-2));
    ASSERT_TRUE(store.Append(WithGain(-3), 3).ok());
    EXPECT_EQ(fs::file_size(journal), 256u << 10);
  }
  fs::remove_all(dir);
}

TEST(StateStore, OneWriterAtATime) {
  // Two daemons on one state file: the second cannot write the journal
  // (its records would overwrite the first's), and says why.
  const fs::path dir = FreshDir("two");
  state::StateStore first((dir / "graph.yaml").string());
  ASSERT_TRUE(first.Append(WithGain(-1), 1).ok());
  {
    state::StateStore second((dir / "graph.yaml").string());
    auto refused = second.Append(WithGain(-2), 2);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("graph.yaml.journal: in use by another process"),
              std::string::npos)
        << refused.status();
  }
  ASSERT_TRUE(first.Append(WithGain(-3), 3).ok());
  auto kinds = dsp::MakeBuiltinRegistry();
  auto loaded = state::StateStore((dir / "graph.yaml").string()).Load(*kinds);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ(**loaded, WithGain(-3));
  fs::remove_all(dir);
}

TEST(EventBus, SlowWatcherDropsAndCountsWithoutBlocking) {
  control::EventBus bus(4);
  auto slow = bus.Subscribe();
  for (int i = 0; i < 10; ++i) {
    control::Event e;
    e.type = control::Event::Type::kXrun;
    e.xruns_total = static_cast<uint64_t>(i);
    bus.Publish(e);
  }
  EXPECT_EQ(bus.dropped(), 6u);
  auto first = slow->Next(std::chrono::milliseconds(10));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->xruns_total, 0u);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(slow->Next(std::chrono::milliseconds(10)).has_value());
  control::Event e;
  bus.Publish(e);
  auto after = slow->Next(std::chrono::milliseconds(10));
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->dropped_before, 6u);
}

// An edit written to the state file that then fails to apply, where the
// state cannot be put back either: the service says so (log, a
// StateDiverged event, state_diverged() for health) instead of ignoring it,
// and the next edit that is written and applied clears it.
TEST(ServiceRollback, AStateFileThatCannotBePutBackIsReportedNotIgnored) {
  const fs::path dir = fs::temp_directory_path() / ("aers-rollback-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path state = dir / "graph.yaml";
  // A kind whose instances cannot be made, and which, when asked, puts a
  // directory where the state file is: the write-ahead save succeeded, the
  // apply fails, and the undo save finds something it must not replace.
  auto kinds = dsp::MakeBuiltinRegistry();
  ASSERT_TRUE(
      kinds
          ->Add(std::make_shared<dsp::TableKind>(
              "broken", "fails to instantiate", std::vector<model::ParamDesc>{}, dsp::InOutLayout,
              [state](const model::NodeSpec&, const auto&,
                      const rt::StreamFormat&) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
                fs::remove(state);
                fs::create_directory(state);
                return absl::InternalError("no instance today");
              }))
          .ok());
  Rig rig(RigOptions{48000.0, 64, 5.0, kinds.get()});
  rig.Apply(Base());
  state::StateStore store(state.string());
  control::EventBus bus;
  auto events = bus.Subscribe();
  control::GraphService service(rig.engine(), &store, bus, nullptr);
  const uint64_t rev = rig.engine().revision();

  model::GraphSpec bad = Base();
  bad.nodes.push_back({"x", "broken", 1, {}});
  bad.routes.push_back({model::Endpoint::Parse("g"), model::Endpoint::Parse("x")});
  auto r = service.ApplyGraph(bad, false, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("no instance today"), std::string::npos)
      << r.status();
  EXPECT_EQ(rig.engine().revision(), rev) << "the failed edit changed the running graph";
  EXPECT_EQ(rig.engine().spec(), Base());
  EXPECT_TRUE(service.state_diverged());
  std::optional<control::Event> e;
  while ((e = events->Next(std::chrono::milliseconds(100)))) {
    if (e->type == control::Event::Type::kStateDiverged) break;
  }
  ASSERT_TRUE(e.has_value()) << "no StateDiverged event";
  EXPECT_NE(e->text.find(state.string()), std::string::npos) << e->text;
  EXPECT_EQ(e->revision, rev);

  // While the path stays blocked, the retry fails and says so.
  EXPECT_FALSE(service.ResaveIfDiverged());
  EXPECT_TRUE(service.state_diverged());
  // The operator clears the path: the retry (every second in the daemon)
  // writes what runs, with no edit needed.
  fs::remove_all(state);
  EXPECT_TRUE(service.ResaveIfDiverged());
  EXPECT_FALSE(service.state_diverged());
  {
    state::StateStore reread(state.string());
    auto saved = reread.Load(*kinds);
    ASSERT_TRUE(saved.ok() && saved->has_value()) << saved.status();
    EXPECT_EQ(**saved, rig.engine().spec());
  }
  // The next edit is written and applied.
  auto ok = service.Edit({SetParamOp("g", "gain_db", -3.0)}, false, std::nullopt);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_FALSE(service.state_diverged());
  fs::remove_all(dir);
}

// An edit of a batch refused at the last step (its node cannot be built)
// sends the edits behind it, checked against a graph that never ran, back
// to be checked and recorded again: they apply against what runs.
TEST(ServiceBatch, AnEditRefusedAtTheLastStepSendsTheOnesBehindItBackToBeCheckedAgain) {
  const fs::path dir = fs::temp_directory_path() / ("aers-batch-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto kinds = dsp::MakeBuiltinRegistry();
  ASSERT_TRUE(
      kinds
          ->Add(std::make_shared<dsp::TableKind>(
              "broken", "fails to instantiate", std::vector<model::ParamDesc>{}, dsp::InOutLayout,
              [](const model::NodeSpec&, const auto&,
                 const rt::StreamFormat&) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
                return absl::InternalError("no instance today");
              }))
          .ok());
  Rig rig(RigOptions{48000.0, 64, 5.0, kinds.get()});
  rig.Apply(Base());
  state::StateStore store((dir / "graph.yaml").string());
  control::EventBus bus;
  control::GraphService service(rig.engine(), &store, bus, nullptr);
  const uint64_t rev = rig.engine().revision();

  std::atomic<bool> release{false};
  std::atomic<int> recorded{0};
  std::mutex mu;
  std::vector<std::string> records;  // of the last edit
  std::vector<std::string> retries;
  control::CallContext first, broken, last;
  first.before_commit = [&](const control::PendingCommit&) {
    ++recorded;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return absl::OkStatus();
  };
  last.before_commit = [&](const control::PendingCommit& p) {
    std::lock_guard lock(mu);
    records.push_back(std::to_string(p.revision_before) + " -> " +
                      std::to_string(p.revision_after));
    return absl::OkStatus();
  };
  last.before_retry = [&](const absl::Status& why) {
    std::lock_guard lock(mu);
    retries.push_back(std::string(why.message()));
    return absl::OkStatus();
  };
  absl::StatusOr<control::EditOutcome> r0, r1, r2;
  std::thread t0(
      [&] { r0 = service.Edit({SetParamOp("g", "gain_db", -1.0)}, false, std::nullopt, first); });
  ASSERT_TRUE(WaitFor([&] { return recorded == 1; }));
  model::GraphSpec bad = Base();
  bad.nodes.push_back({"x", "broken", 1, {}});
  bad.routes.push_back({model::Endpoint::Parse("g"), model::Endpoint::Parse("x")});
  std::thread t1([&] { r1 = service.ApplyGraph(bad, false, std::nullopt, broken); });
  ASSERT_TRUE(WaitFor([&] { return service.queued_edits() == 1; }));
  std::thread t2(
      [&] { r2 = service.Edit({SetParamOp("g", "gain_db", -7.0)}, false, std::nullopt, last); });
  ASSERT_TRUE(WaitFor([&] { return service.queued_edits() == 2; }));
  release = true;
  t0.join();
  t1.join();
  t2.join();

  ASSERT_TRUE(r0.ok()) << r0.status();
  EXPECT_EQ(r0->revision, rev + 1);
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(std::string(r1.status().message()).find("no instance today"), std::string::npos)
      << r1.status();
  // Recorded first against the graph with node x (revision + 2 -> + 3),
  // then again against what runs.
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->revision, rev + 2);
  EXPECT_EQ(records,
            (std::vector<std::string>{std::to_string(rev + 2) + " -> " + std::to_string(rev + 3),
                                      std::to_string(rev + 1) + " -> " + std::to_string(rev + 2)}));
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_NE(retries[0].find("no instance today"), std::string::npos) << retries[0];
  EXPECT_EQ(r2->changes, std::vector<std::string>{"~ node g: gain_db -1 -> -7"});
  EXPECT_EQ(rig.engine().spec().FindNode("x"), nullptr);
  EXPECT_EQ(std::get<double>(rig.engine().spec().FindNode("g")->params.at("gain_db")), -7.0);
  EXPECT_EQ(rig.engine().revision(), rev + 2);
  auto saved = store.Load(*kinds);
  ASSERT_TRUE(saved.ok() && saved->has_value()) << saved.status();
  EXPECT_EQ(**saved, rig.engine().spec());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aers::test
