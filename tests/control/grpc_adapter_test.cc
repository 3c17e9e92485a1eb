// The gRPC adapter (control/grpc/server.h, handlers.h, convert.h) end to
// end, without jackd: a real ControlServer over a real engine and
// GraphService, driven by a real gRPC client. The engine's audio is run by
// the test thread (common/rig.h), so an edit is checked where it matters:
// in the samples.
//
// The server listens on a Unix socket in a temp dir (operator, like the
// daemon's local socket) and on a loopback TCP port with a token file
// (viewer and operator tokens). ControlServer does not expose its
// grpc::Server, so there is no in-process channel to use; and the role gate
// lives in ControlServer (from the peer and the bearer token), so only a
// real listener exercises it.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/net.h"
#include "common/rig.h"
#include "control.grpc.pb.h"
#include "control/audit.h"
#include "control/events.h"
#include "control/grpc/convert.h"
#include "control/grpc/server.h"
#include "control/service.h"
#include "gmock/gmock.h"

namespace aers::test {
namespace {

namespace fs = std::filesystem;
namespace v1 = aers::v1;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kViewer[] = "viewer-token-0123456789";
constexpr char kOperator[] = "operator-token-0123456789";
constexpr size_t kSecond = 48000;

model::GraphSpec Base() {
  return GraphBuilder()
      .Input("in")
      .Node("g", "gain", 1, {{"gain_db", -6.0}})
      .Node("m", "meter", 1, {{"window_ms", 50.0}})
      .Output("out")
      .Chain({"in", "g", "m", "out"})
      .Build();
}

class GrpcAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/aers-grpc-XXXXXX";  // short: a socket path has 107 bytes
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    rig_.Apply(Base());
    service_ = std::make_unique<control::GraphService>(
        rig_.engine(), nullptr, bus_, [] { return absl::StatusOr<model::GraphSpec>(Base()); });
    std::ofstream(dir_ / "tokens")
        << "viewer " << kViewer << " viewer1\noperator " << kOperator << " op1\n";
    ::chmod((dir_ / "tokens").c_str(), 0600);
    auto audit = control::AuditLog::Open({(dir_ / "audit.jsonl").string()});
    ASSERT_TRUE(audit.ok()) << audit.status();
    audit_ = std::move(*audit);
    server_ = std::make_unique<control::ControlServer>(
        *service_,
        [] {
          backend::BackendStatus s;
          s.name = "test";
          s.running = true;
          s.sample_rate_hz = 48000.0;
          s.period_frames = 64;
          s.xruns = 3;
          return s;
        },
        "adapter-test", "/var/lib/aers/graph.yaml",
        [] {
          control::PluginSummary p;
          p.name = "amp";
          p.version = "1.2";
          p.format = "ladspa";
          p.hash_algorithm = "sha256";
          p.hash = "ab12";
          p.serial = 7;
          p.kinds = {"amp/amp_mono"};
          return std::vector<control::PluginSummary>{p};
        },
        audit_.get());
    control::ListenerOptions o;
    o.unix_socket = (dir_ / "run" / "aersd.sock").string();
    port_ = FreeTcpPort();
    o.listen = {"tcp:127.0.0.1:" + std::to_string(port_)};
    o.token_file = (dir_ / "tokens").string();
    const absl::Status st = server_->Start(o);
    ASSERT_TRUE(st.ok()) << st;
    unix_ = v1::Control::NewStub(
        grpc::CreateChannel("unix:" + o.unix_socket, grpc::InsecureChannelCredentials()));
    tcp_ = v1::Control::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                                    grpc::InsecureChannelCredentials()));
    tone_ = Sine(1000.0, 0.5, kSecond);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    audit_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A client context with a deadline and, if given, a bearer token.
  static std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token = "") {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return ctx;
  }
  static std::string Reason(const grpc::ClientContext& ctx) {
    const auto& md = ctx.GetServerTrailingMetadata();
    auto it = md.find("aers-error-reason");
    return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
  }

  static v1::EditOp SetParam(const std::string& node, const std::string& param, double value) {
    v1::EditOp op;
    auto* sp = op.mutable_set_parameter();
    sp->set_node(node);
    sp->set_param(param);
    sp->mutable_value()->set_number(value);
    return op;
  }
  static v1::EditOp Route(bool connect, const std::string& from, const std::string& to) {
    v1::EditOp op;
    v1::Route* r = connect ? op.mutable_connect() : op.mutable_disconnect();
    r->set_from(from);
    r->set_to(to);
    return op;
  }

  // Output level (dB relative to the input tone) after a second of audio,
  // measured over the last half.
  double OutputGainDb() {
    const auto out = rig_.Run({tone_}, kSecond);
    return ToDb(Rms(out[0], kSecond / 2) / Rms(tone_, kSecond / 2));
  }

  std::vector<nlohmann::json> Audit() {
    std::vector<nlohmann::json> out;
    std::ifstream in(dir_ / "audit.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  // Graph, revision and audio are what they were before a refused call.
  void ExpectUnchanged(const model::GraphSpec& spec, uint64_t revision) {
    EXPECT_EQ(rig_.engine().spec(), spec);
    EXPECT_EQ(rig_.engine().revision(), revision);
    EXPECT_NEAR(OutputGainDb(), -6.0, 0.05);
  }

  fs::path dir_;
  Rig rig_;
  control::EventBus bus_;
  std::unique_ptr<control::GraphService> service_;
  std::unique_ptr<control::AuditLog> audit_;
  std::unique_ptr<control::ControlServer> server_;
  std::unique_ptr<v1::Control::Stub> unix_, tcp_;
  int port_ = 0;
  Signal tone_;
};

TEST_F(GrpcAdapterTest, GetGraphReturnsTheLiveGraph) {
  auto ctx = Ctx();
  v1::GetGraphResponse resp;
  const grpc::Status st = unix_->GetGraph(ctx.get(), {}, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.revision(), rig_.engine().revision());
  EXPECT_GT(resp.revision(), 0u);
  const v1::Graph& g = resp.graph();
  ASSERT_EQ(g.inputs_size(), 1);
  EXPECT_EQ(g.inputs(0).name(), "in");
  ASSERT_EQ(g.outputs_size(), 1);
  EXPECT_EQ(g.outputs(0).name(), "out");
  ASSERT_EQ(g.nodes_size(), 2);
  EXPECT_EQ(g.nodes(0).name(), "g");
  EXPECT_EQ(g.nodes(0).kind(), "gain");
  ASSERT_TRUE(g.nodes(0).params().contains("gain_db"));
  EXPECT_EQ(g.nodes(0).params().at("gain_db").value_case(), v1::ParamValue::kNumber);
  EXPECT_EQ(g.nodes(0).params().at("gain_db").number(), -6.0);
  EXPECT_EQ(g.nodes(1).kind(), "meter");
  ASSERT_EQ(g.routes_size(), 3);
  EXPECT_EQ(g.routes(0).from(), "in");
  EXPECT_EQ(g.routes(0).to(), "g");
  EXPECT_EQ(g.routes(2).to(), "out");
  // The proto graph converts back to exactly the engine's graph.
  EXPECT_EQ(control::FromProto(g), rig_.engine().spec());
  EXPECT_THAT(resp.yaml(), HasSubstr("gain_db: -6"));
}

TEST_F(GrpcAdapterTest, StatusKindsAndPluginsAreConverted) {
  EXPECT_NEAR(OutputGainDb(), -6.0, 0.05);  // some audio through the meter
  {
    auto ctx = Ctx();
    v1::Status s;
    ASSERT_TRUE(unix_->GetStatus(ctx.get(), {}, &s).ok());
    EXPECT_EQ(s.backend(), "test");
    EXPECT_TRUE(s.audio_running());
    EXPECT_EQ(s.sample_rate_hz(), 48000.0);
    EXPECT_EQ(s.period_frames(), 64u);
    EXPECT_EQ(s.xruns(), 3u);
    EXPECT_EQ(s.version(), "adapter-test");
    EXPECT_EQ(s.state_file(), "/var/lib/aers/graph.yaml");
    EXPECT_EQ(s.revision(), rig_.engine().revision());
    EXPECT_EQ(s.nodes(), 2u);
    std::vector<std::string> signals;
    for (const auto& c : s.signals()) signals.push_back(c.where() + ":" + c.name());
    EXPECT_THAT(signals, Contains("node:g"));
    EXPECT_THAT(signals, Contains("input:in"));
    EXPECT_THAT(signals, Contains("output:out"));
  }
  {
    auto ctx = Ctx();
    v1::ListKindsResponse kinds;
    ASSERT_TRUE(unix_->ListKinds(ctx.get(), {}, &kinds).ok());
    const v1::KindInfo* gain = nullptr;
    const v1::KindInfo* biquad = nullptr;
    for (const auto& k : kinds.kinds()) {
      if (k.name() == "gain") gain = &k;
      if (k.name() == "biquad") biquad = &k;
    }
    ASSERT_NE(gain, nullptr);
    ASSERT_NE(biquad, nullptr);
    const v1::ParamInfo* gain_db = nullptr;
    for (const auto& p : gain->params()) {
      if (p.name() == "gain_db") gain_db = &p;
    }
    ASSERT_NE(gain_db, nullptr);
    EXPECT_EQ(gain_db->unit(), "dB");
    EXPECT_LT(gain_db->min(), gain_db->max());
    bool type_has_peaking = false;
    for (const auto& p : biquad->params()) {
      if (p.name() == "type") {
        for (const auto& c : p.choices()) type_has_peaking |= c == "peaking";
      }
    }
    EXPECT_TRUE(type_has_peaking);
  }
  {
    auto ctx = Ctx(kViewer);  // reading is for viewers too
    v1::ListPluginsResponse plugins;
    ASSERT_TRUE(tcp_->ListPlugins(ctx.get(), {}, &plugins).ok());
    ASSERT_EQ(plugins.plugins_size(), 1);
    EXPECT_EQ(plugins.plugins(0).name(), "amp");
    EXPECT_EQ(plugins.plugins(0).format(), "ladspa");
    EXPECT_EQ(plugins.plugins(0).serial(), 7u);
    EXPECT_EQ(plugins.plugins(0).kinds(0), "amp/amp_mono");
  }
}

// One Edit with several operations: applied atomically, reported, audited,
// and heard.
TEST_F(GrpcAdapterTest, AnEditAppliesAndReachesTheAudio) {
  EXPECT_NEAR(OutputGainDb(), -6.0, 0.05);
  const uint64_t rev = rig_.engine().revision();
  v1::EditRequest req;
  *req.add_ops() = SetParam("g", "gain_db", -12.0);
  {
    auto* add = req.add_ops()->mutable_add_node();
    add->set_name("trim");
    add->set_kind("gain");
    (*add->mutable_params())["gain_db"].set_number(-3.0);
  }
  *req.add_ops() = Route(false, "m", "out");
  *req.add_ops() = Route(true, "m", "trim");
  *req.add_ops() = Route(true, "trim", "out");
  req.set_expected_revision(rev);

  // A dry run first: reported, not applied.
  {
    auto ctx = Ctx();
    v1::EditRequest dry = req;
    dry.set_dry_run(true);
    v1::EditResponse resp;
    const grpc::Status st = unix_->Edit(ctx.get(), dry, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_FALSE(resp.applied());
    EXPECT_EQ(resp.revision(), rev);
    EXPECT_THAT(resp.changes(), Contains(StartsWith("+ node trim (gain")));
    EXPECT_EQ(rig_.engine().revision(), rev);
  }

  auto ctx = Ctx();
  v1::EditResponse resp;
  const grpc::Status st = unix_->Edit(ctx.get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(resp.applied());
  EXPECT_TRUE(resp.replanned());
  EXPECT_EQ(resp.revision(), rev + 1);
  EXPECT_EQ(rig_.engine().revision(), rev + 1);
  EXPECT_THAT(resp.changes(), Contains("~ node g: gain_db -6 -> -12"));
  EXPECT_THAT(resp.changes(), Contains(StartsWith("+ node trim (gain")));
  const auto spec = rig_.engine().spec();
  ASSERT_NE(spec.FindNode("trim"), nullptr);
  EXPECT_EQ(spec.FindNode("g")->params.at("gain_db"), model::ParamValue(-12.0));

  EXPECT_NEAR(OutputGainDb(), -15.0, 0.05) << "the edit did not reach the audio";

  // GetGraph agrees.
  auto ctx2 = Ctx();
  v1::GetGraphResponse g;
  ASSERT_TRUE(unix_->GetGraph(ctx2.get(), {}, &g).ok());
  EXPECT_EQ(g.revision(), rev + 1);
  EXPECT_EQ(control::FromProto(g.graph()), spec);

  const auto audit = Audit();
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0]["operation"], "Edit");
  EXPECT_TRUE(audit[0].contains("dry_run"));
  EXPECT_EQ(audit[1]["result"], "OK");
  EXPECT_EQ(audit[1]["principal"]["kind"], "unix");
}

// Invalid edits: INVALID_ARGUMENT (or NOT_FOUND for a missing name) with the
// path of the offending field, and nothing changes: graph, revision, audio.
TEST_F(GrpcAdapterTest, AnInvalidEditIsRefusedWithTheFieldPath) {
  const auto spec = rig_.engine().spec();
  const uint64_t rev = rig_.engine().revision();
  struct Case {
    std::vector<v1::EditOp> ops;
    grpc::StatusCode code;
    std::string path;
  };
  v1::EditOp empty_op;  // no operation set
  const std::vector<Case> cases = {
      // Out of range: found by validating the whole edited graph.
      {{SetParam("g", "gain_db", 1000.0)}, grpc::INVALID_ARGUMENT, "nodes[0].params.gain_db"},
      // The second op is the bad one; the first must not stick.
      {{SetParam("g", "gain_db", -3.0), SetParam("nope", "gain_db", 0.0)},
       grpc::NOT_FOUND,
       "ops[1].set_parameter.node"},
      {{SetParam("g", "freq_hz", 0.0)}, grpc::NOT_FOUND, "ops[0].set_parameter.param"},
      {{Route(true, "g.", "out")}, grpc::INVALID_ARGUMENT, "ops[0].connect.from"},
      {{empty_op}, grpc::INVALID_ARGUMENT, "ops[0]"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    v1::EditRequest req;
    for (const auto& op : c.ops) *req.add_ops() = op;
    auto ctx = Ctx();
    v1::EditResponse resp;
    const grpc::Status st = unix_->Edit(ctx.get(), req, &resp);
    EXPECT_EQ(st.error_code(), c.code) << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr(c.path));
    EXPECT_FALSE(resp.applied());
    EXPECT_EQ(rig_.engine().spec(), spec);
    EXPECT_EQ(rig_.engine().revision(), rev);
  }
  // A whole graph whose route names no endpoint: caught by the adapter's
  // conversion before the domain sees it.
  {
    v1::ApplyGraphRequest req;
    *req.mutable_graph() = control::ToProto(Base());
    req.mutable_graph()->mutable_routes(1)->set_to("");
    auto ctx = Ctx();
    v1::EditResponse resp;
    const grpc::Status st = unix_->ApplyGraph(ctx.get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::INVALID_ARGUMENT) << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr("routes[1].to"));
  }
  // A whole graph naming an unknown kind.
  {
    v1::ApplyGraphRequest req;
    *req.mutable_graph() = control::ToProto(Base());
    req.mutable_graph()->mutable_nodes(1)->set_kind("no_such_kind");
    auto ctx = Ctx();
    v1::EditResponse resp;
    const grpc::Status st = unix_->ApplyGraph(ctx.get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::INVALID_ARGUMENT) << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr("nodes[1].kind"));
  }
  ExpectUnchanged(spec, rev);
  // Each refusal is audited with its code.
  std::vector<std::string> results;
  for (const auto& j : Audit()) results.push_back(j["result"].get<std::string>());
  EXPECT_EQ(results.size(), cases.size() + 2) << ::testing::PrintToString(results);
  for (const auto& r : results) EXPECT_NE(r, "OK");
}

// Roles: over TCP a viewer token reads but may not edit; an operator token
// edits; no token gets nothing. The refused edit changes nothing.
TEST_F(GrpcAdapterTest, AViewerReadsButMayNotEdit) {
  const auto spec = rig_.engine().spec();
  const uint64_t rev = rig_.engine().revision();
  {
    auto ctx = Ctx(kViewer);
    v1::GetGraphResponse g;
    const grpc::Status st = tcp_->GetGraph(ctx.get(), {}, &g);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(g.revision(), rev);
  }
  {
    auto ctx = Ctx(kViewer);
    v1::EditRequest req;
    *req.add_ops() = SetParam("g", "gain_db", -20.0);
    v1::EditResponse resp;
    const grpc::Status st = tcp_->Edit(ctx.get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::PERMISSION_DENIED) << st.error_message();
    EXPECT_EQ(Reason(*ctx), "permission");
    EXPECT_THAT(st.error_message(), HasSubstr("viewer"));
  }
  {
    auto ctx = Ctx(kViewer);
    v1::SetParameterRequest req;
    req.set_node("g");
    req.set_param("gain_db");
    req.mutable_value()->set_number(-20.0);
    v1::EditResponse resp;
    EXPECT_EQ(tcp_->SetParameter(ctx.get(), req, &resp).error_code(), grpc::PERMISSION_DENIED);
  }
  {
    auto ctx = Ctx();  // no token over TCP
    v1::GetGraphResponse g;
    EXPECT_EQ(tcp_->GetGraph(ctx.get(), {}, &g).error_code(), grpc::UNAUTHENTICATED);
  }
  ExpectUnchanged(spec, rev);

  auto ctx = Ctx(kOperator);
  v1::SetParameterRequest req;
  req.set_node("g");
  req.set_param("gain_db");
  req.mutable_value()->set_number(-20.0);
  v1::EditResponse resp;
  const grpc::Status st = tcp_->SetParameter(ctx.get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.revision(), rev + 1);
  EXPECT_FALSE(resp.replanned()) << "a live parameter needs no new plan";
  EXPECT_NEAR(OutputGainDb(), -20.0, 0.05);

  // Mutations are audited whoever asked (the unauthenticated GetGraph is
  // recorded as an authentication failure, not counted here).
  std::vector<std::string> who;
  for (const auto& j : Audit()) {
    if (j["operation"] == "GetGraph") continue;
    who.push_back(j["principal"]["name"].get<std::string>() + ":" + j["result"].get<std::string>());
  }
  EXPECT_EQ(who, (std::vector<std::string>{"viewer1:PERMISSION_DENIED", "viewer1:PERMISSION_DENIED",
                                           "op1:OK"}));
}

// A meter stream carries what the audio thread measured, converted.
TEST_F(GrpcAdapterTest, MeterStreamCarriesTheMeasuredLevel) {
  rig_.Run({tone_}, kSecond);  // -6 dB: peak 0.25
  auto ctx = Ctx();
  v1::StreamMetersRequest req;
  req.set_rate_hz(60.0);
  auto reader = unix_->StreamMeters(ctx.get(), req);
  v1::MeterFrame frame;
  ASSERT_TRUE(reader->Read(&frame));
  ctx->TryCancel();
  v1::MeterFrame rest;
  while (reader->Read(&rest)) {
  }
  (void)reader->Finish();
  ASSERT_EQ(frame.meters_size(), 1);
  EXPECT_EQ(frame.meters(0).node(), "m");
  ASSERT_EQ(frame.meters(0).peak_size(), 1);
  EXPECT_NEAR(frame.meters(0).peak(0), 0.25, 0.005);
  EXPECT_NEAR(frame.meters(0).rms(0), 0.25 / std::sqrt(2.0), 0.005);

  // An unknown meter: NOT_FOUND naming the request field.
  auto ctx2 = Ctx();
  req.add_nodes("g");
  auto bad = unix_->StreamMeters(ctx2.get(), req);
  v1::MeterFrame none;
  EXPECT_FALSE(bad->Read(&none));
  const grpc::Status st = bad->Finish();
  EXPECT_EQ(st.error_code(), grpc::NOT_FOUND) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("nodes[0]"));
}

}  // namespace
}  // namespace aers::test
