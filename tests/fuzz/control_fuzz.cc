// libFuzzer target: the control service as the gRPC adapter drives it,
// without a network. Input: one byte choosing the RPC, then that request's
// protobuf bytes. A request that parses goes through the same gate as a
// real call (control/request_check.h) and, if it passes, through the
// handler (control/grpc/handlers.h) as an operator, against a live engine
// whose audio thread this harness drives for one period after every call.
// Invariants: nothing crashes, leaks or trips UBSan; the live graph always
// validates and stays within the configured limits; every reply is valid
// UTF-8 once the adapter's sanitiser ran; the audit log gets valid JSON.
#include <google/protobuf/stubs/logging.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "control.pb.h"
#include "control/audit.h"
#include "control/events.h"
#include "control/grpc/handlers.h"
#include "control/request_check.h"
#include "control/service.h"
#include "control/utf8.h"
#include "dsp/builtins.h"
#include "engine/engine.h"
#include "fuzz_check.h"
#include "model/validate.h"
#include "rt/denormals.h"
#include "rt/thread_role.h"

namespace {

using aers::fuzz::Check;
namespace control = aers::control;
namespace v1 = aers::v1;

aers::model::GraphSpec BaseGraph() {
  aers::model::GraphSpec g;
  g.inputs.push_back({"in", 1, {}});
  g.outputs.push_back({"out", 1, {}});
  g.nodes.push_back({"g", "gain", 1, {{"gain_db", -6.0}}});
  g.nodes.push_back({"m", "meter", 1, {}});
  g.routes.push_back({aers::model::Endpoint::Parse("in"), aers::model::Endpoint::Parse("g")});
  g.routes.push_back({aers::model::Endpoint::Parse("g"), aers::model::Endpoint::Parse("m")});
  g.routes.push_back({aers::model::Endpoint::Parse("m"), aers::model::Endpoint::Parse("out")});
  return g;
}

struct World;
World& TheWorld();

struct World {
  World() : kinds(aers::dsp::MakeBuiltinRegistry()) {
    // Protobuf logs every string that is not UTF-8 while parsing: noise here
    // (the daemon throttles it, daemon/logging.cc).
    google::protobuf::SetLogHandler(nullptr);
    aers::engine::EngineOptions o;
    o.format = {48000.0, 64};
    o.settle_timeout = std::chrono::milliseconds(0);  // this harness drives the audio
    o.limits = {16, 48};                              // small graphs: every execution stays fast
    engine = std::make_unique<aers::engine::Engine>(*kinds, o);
    (void)engine->Apply(BaseGraph());
    service = std::make_unique<control::GraphService>(*engine, nullptr, events, [] {
      return absl::StatusOr<aers::model::GraphSpec>(BaseGraph());
    });
    // A file of its own (a device that keeps nothing is refused as an
    // audit log), emptied whenever it passes 16 MiB and removed at exit.
    char path[] = "/tmp/aers-control-fuzz-audit-XXXXXX";
    audit_fd = ::mkstemp(path);
    Check(audit_fd >= 0, "cannot create the audit log's file");
    audit_path = path;
    std::atexit([] { ::unlink(TheWorld().audit_path.c_str()); });
    auto opened = control::AuditLog::Open({audit_path});
    Check(opened.ok(), "cannot open the audit log");
    audit = std::move(*opened);
    control::ControlHandlers::Deps d;
    d.service = service.get();
    d.audit = audit.get();
    d.version = "fuzz";
    handlers = std::make_unique<control::ControlHandlers>(d);
    who.kind = control::Principal::Kind::kUnix;
    who.role = control::Role::kOperator;
    who.name = "fuzz";
  }

  // One period of audio, as the backend's thread would run it.
  void RunPeriod() {
    const auto spec = engine->spec();
    const auto in_ch = static_cast<size_t>(spec.TotalInputChannels());
    const auto out_ch = static_cast<size_t>(spec.TotalOutputChannels());
    aers::rt::ScopedFlushToZero ftz;
    in_buf.assign(in_ch * 64, 0.25f);
    out_buf.assign(out_ch * 64, 0.0f);
    std::vector<const float*> ip(in_ch);
    std::vector<float*> op(out_ch);
    for (size_t c = 0; c < in_ch; ++c) ip[c] = in_buf.data() + c * 64;
    for (size_t c = 0; c < out_ch; ++c) op[c] = out_buf.data() + c * 64;
    {
      aers::rt::AudioThreadScope audio;  // this period runs as the audio thread
      engine->runner().Process(ip.data(), static_cast<uint32_t>(in_ch), op.data(),
                               static_cast<uint32_t>(out_ch), 64);
    }
    engine->Reclaim();
  }

  std::unique_ptr<aers::model::KindRegistry> kinds;
  std::unique_ptr<aers::engine::Engine> engine;
  control::EventBus events;
  std::unique_ptr<control::GraphService> service;
  std::unique_ptr<control::AuditLog> audit;
  std::string audit_path;
  int audit_fd = -1;

  // Keeps the audit log's file small over millions of runs.
  void TrimAudit() const {
    struct stat st {};
    if (::fstat(audit_fd, &st) == 0 && st.st_size > (16 << 20)) (void)::ftruncate(audit_fd, 0);
  }
  std::unique_ptr<control::ControlHandlers> handlers;
  control::Principal who;
  std::vector<float> in_buf, out_buf;
};

World& TheWorld() {
  static World* world = new World();  // lives for the process (no leak report)
  return *world;
}

template <typename Req, typename Resp, typename Fn>
void Unary(World& /*w*/, const uint8_t* data, size_t size, Fn&& call) {
  Req req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return;
  if (!control::CheckRequest(req, control::RequestLimits{}).ok()) return;
  Resp resp;
  const absl::Status st = call(req, &resp);
  if (st.ok()) {
    control::SanitizeUtf8Fields(resp);
    std::string bytes;
    Check(resp.SerializeToString(&bytes), "a reply does not serialize");
  } else {
    Check(control::IsValidUtf8(control::SanitizeUtf8(std::string(st.message()))),
          "a sanitized error is not UTF-8");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  World& w = TheWorld();
  w.TrimAudit();
  control::ControlHandlers& h = *w.handlers;
  const control::Principal& who = w.who;
  const uint8_t which = data[0] % 13;
  ++data;
  --size;
  switch (which) {
    case 0:
      Unary<v1::GetGraphRequest, v1::GetGraphResponse>(
          w, data, size, [&](auto& r, auto* o) { return h.GetGraph(who, r, o); });
      break;
    case 1:
      Unary<v1::GetStatusRequest, v1::Status>(
          w, data, size, [&](auto& r, auto* o) { return h.GetStatus(who, r, o); });
      break;
    case 2:
      Unary<v1::ApplyGraphRequest, v1::EditResponse>(
          w, data, size, [&](auto& r, auto* o) { return h.ApplyGraph(who, r, o); });
      break;
    case 3:
      Unary<v1::EditRequest, v1::EditResponse>(w, data, size,
                                               [&](auto& r, auto* o) { return h.Edit(who, r, o); });
      break;
    case 4:
      Unary<v1::AddNodeRequest, v1::EditResponse>(
          w, data, size, [&](auto& r, auto* o) { return h.AddNode(who, r, o); });
      break;
    case 5:
      Unary<v1::RemoveNodeRequest, v1::EditResponse>(
          w, data, size, [&](auto& r, auto* o) { return h.RemoveNode(who, r, o); });
      break;
    case 6:
      Unary<v1::ConnectRequest, v1::EditResponse>(
          w, data, size, [&](auto& r, auto* o) { return h.Connect(who, r, o); });
      break;
    case 7:
      Unary<v1::DisconnectRequest, v1::EditResponse>(
          w, data, size, [&](auto& r, auto* o) { return h.Disconnect(who, r, o); });
      break;
    case 8:
      Unary<v1::SetParameterRequest, v1::EditResponse>(
          w, data, size, [&](auto& r, auto* o) { return h.SetParameter(who, r, o); });
      break;
    case 9:
      Unary<v1::ResetToConfigRequest, v1::EditResponse>(
          w, data, size, [&](auto& r, auto* o) { return h.ResetToConfig(who, r, o); });
      break;
    case 10:
      Unary<v1::ListKindsRequest, v1::ListKindsResponse>(
          w, data, size, [&](auto& r, auto* o) { return h.ListKinds(who, r, o); });
      break;
    case 11:
      Unary<v1::ListPluginsRequest, v1::ListPluginsResponse>(
          w, data, size, [&](auto& r, auto* o) { return h.ListPlugins(who, r, o); });
      break;
    default: {
      // Streams: one meter frame. (WatchEvents only waits for events and
      // relays them through the same sanitiser; it has no parsing of its own.)
      v1::StreamMetersRequest req;
      if (!req.ParseFromArray(data, static_cast<int>(size))) break;
      if (!control::CheckRequest(req, control::RequestLimits{}).ok()) break;
      int frames = 0;
      (void)h.StreamMeters(
          who, req, [&] { return frames > 0; },
          [&](const v1::MeterFrame& f) {
            ++frames;
            std::string bytes;
            return f.SerializeToString(&bytes);
          });
      break;
    }
  }
  w.RunPeriod();
  const auto spec = w.engine->spec();
  const auto issues = aers::model::ValidateGraph(spec, *w.kinds, w.engine->validation_context());
  Check(issues.empty(), "the live graph does not validate",
        issues.empty() ? "" : issues.front().path + ": " + issues.front().message);
  Check(spec.nodes.size() <= 16 && spec.routes.size() <= 48, "the live graph exceeds its limits");
  return 0;
}
