// proto <-> model conversions and status mapping for the gRPC adapter and
// aersctl. The only place that knows both worlds.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "control.pb.h"
#include "engine/engine.h"
#include "model/graph.h"
#include "model/kind.h"

namespace aers::control {

model::ParamValue FromProto(const aers::v1::ParamValue& p);
aers::v1::ParamValue ToProto(const model::ParamValue& v);

model::NodeSpec FromProto(const aers::v1::Node& n);
aers::v1::Node ToProto(const model::NodeSpec& n);

model::GraphSpec FromProto(const aers::v1::Graph& g);
aers::v1::Graph ToProto(const model::GraphSpec& g);

aers::v1::SignalCounts ToProto(const engine::SignalReport& report);

/// A kind with its parameter ranges as enforced at `sample_rate_hz` (ranges
/// that follow the rate are scaled; ParamDesc::At).
aers::v1::KindInfo ToProto(const model::NodeKind& kind, double sample_rate_hz);

grpc::Status ToGrpcStatus(const absl::Status& status);

/// An endpoint as text: "node" or "node.port", both parts non-empty.
/// INVALID_ARGUMENT naming `path` otherwise.
absl::Status CheckEndpointText(const std::string& text, const std::string& path);
/// Every route endpoint of a proto graph (paths "routes[i].from"/"to").
absl::Status CheckEndpoints(const aers::v1::Graph& g);

}  // namespace aers::control
