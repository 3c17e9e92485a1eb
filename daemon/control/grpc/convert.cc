#include "control/grpc/convert.h"

#include "absl/strings/str_cat.h"

namespace aers::control {

model::ParamValue FromProto(const aers::v1::ParamValue& p) {
  switch (p.value_case()) {
    case aers::v1::ParamValue::kFlag:
      return p.flag();
    case aers::v1::ParamValue::kChoice:
      return p.choice();
    case aers::v1::ParamValue::kList:
      return std::vector<double>(p.list().values().begin(), p.list().values().end());
    case aers::v1::ParamValue::kNumber:
    case aers::v1::ParamValue::VALUE_NOT_SET:
      break;
  }
  return p.number();
}

aers::v1::ParamValue ToProto(const model::ParamValue& v) {
  aers::v1::ParamValue p;
  if (const auto* b = std::get_if<bool>(&v)) {
    p.set_flag(*b);
  } else if (const auto* d = std::get_if<double>(&v)) {
    p.set_number(*d);
  } else if (const auto* s = std::get_if<std::string>(&v)) {
    p.set_choice(*s);
  } else {
    for (double x : std::get<std::vector<double>>(v)) p.mutable_list()->add_values(x);
  }
  return p;
}

model::NodeSpec FromProto(const aers::v1::Node& n) {
  model::NodeSpec s;
  s.name = n.name();
  s.kind = n.kind();
  s.channels = n.channels() == 0 ? 1 : n.channels();
  s.preset = n.preset();
  for (const auto& [k, v] : n.params()) s.params[k] = FromProto(v);
  return s;
}

aers::v1::Node ToProto(const model::NodeSpec& n) {
  aers::v1::Node p;
  p.set_name(n.name);
  p.set_kind(n.kind);
  p.set_channels(n.channels);
  p.set_preset(n.preset);
  for (const auto& [k, v] : n.params) (*p.mutable_params())[k] = ToProto(v);
  return p;
}

model::GraphSpec FromProto(const aers::v1::Graph& g) {
  model::GraphSpec s;
  s.version = g.version() == 0 ? model::kSchemaVersion : g.version();
  auto ports = [](const auto& in, std::vector<model::ExternalPort>& out) {
    for (const auto& p : in) {
      out.push_back({p.name(), p.channels(), {p.connect().begin(), p.connect().end()}});
    }
  };
  ports(g.inputs(), s.inputs);
  ports(g.outputs(), s.outputs);
  for (const auto& n : g.nodes()) s.nodes.push_back(FromProto(n));
  for (const auto& r : g.routes()) {
    s.routes.push_back({model::Endpoint::Parse(r.from()), model::Endpoint::Parse(r.to())});
  }
  return s;
}

aers::v1::Graph ToProto(const model::GraphSpec& g) {
  aers::v1::Graph p;
  p.set_version(g.version);
  auto ports = [](const std::vector<model::ExternalPort>& in, auto* out) {
    for (const auto& e : in) {
      auto* q = out->Add();
      q->set_name(e.name);
      q->set_channels(e.channels);
      for (const auto& c : e.connect) q->add_connect(c);
    }
  };
  ports(g.inputs, p.mutable_inputs());
  ports(g.outputs, p.mutable_outputs());
  for (const auto& n : g.nodes) *p.add_nodes() = ToProto(n);
  for (const auto& r : g.routes) {
    auto* q = p.add_routes();
    q->set_from(r.from.ToString());
    q->set_to(r.to.ToString());
  }
  return p;
}

aers::v1::KindInfo ToProto(const model::NodeKind& kind, double sample_rate_hz) {
  aers::v1::KindInfo k;
  k.set_name(kind.name());
  k.set_description(std::string(kind.description()));
  for (const auto& raw : kind.params()) {
    const model::ParamDesc d = raw.At(sample_rate_hz);  // the range enforced now
    auto* p = k.add_params();
    p->set_name(d.name);
    p->set_type(std::string(model::ParamTypeName(d.type)));
    p->set_min(d.min);
    p->set_max(d.max);
    *p->mutable_default_value() = ToProto(d.default_value);
    p->set_unit(d.unit);
    for (const auto& c : d.choices) p->add_choices(c);
    p->set_live(d.live);
    p->set_help(d.help);
  }
  for (const auto& preset : kind.presets()) {
    auto* p = k.add_presets();
    p->set_uri(preset.uri);
    p->set_label(preset.label);
  }
  return k;
}

aers::v1::SignalCounts ToProto(const engine::SignalReport& r) {
  aers::v1::SignalCounts c;
  c.set_name(r.name);
  c.set_where(r.where == engine::SignalReport::Where::kInput    ? "input"
              : r.where == engine::SignalReport::Where::kOutput ? "output"
                                                                : "node");
  c.set_nonfinite(r.nonfinite);
  c.set_clipped(r.clipped);
  c.set_state_resets(r.state_resets);
  return c;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status CheckEndpointText(const std::string& text, const std::string& path) {
  const auto dot = text.find('.');
  if (text.empty() || dot == 0 || (dot != std::string::npos && dot + 1 == text.size()) ||
      (dot != std::string::npos && text.find('.', dot + 1) != std::string::npos)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": '", text, "' is not an endpoint; write NODE or NODE.PORT (e.g. mix.in2)"));
  }
  return absl::OkStatus();
}

absl::Status CheckEndpoints(const aers::v1::Graph& g) {
  for (int i = 0; i < g.routes_size(); ++i) {
    const std::string p = absl::StrCat("routes[", i, "]");
    if (auto st = CheckEndpointText(g.routes(i).from(), p + ".from"); !st.ok()) return st;
    if (auto st = CheckEndpointText(g.routes(i).to(), p + ".to"); !st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace aers::control
