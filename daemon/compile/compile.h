// GraphSpec + instances -> immutable rt::Plan.
//
// Thread: non-real-time. Allocates; the plan it returns allocates nothing
// when it runs.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/kind.h"
#include "rt/plan.h"

namespace aers::compile {

/// One vertex of the graph to compile.
struct Vertex {
  enum class Type { kInput, kNode, kOutput };
  Type type = Type::kNode;
  std::string name;
  /// Ports. External inputs: one output port "out"; outputs: one input "in".
  model::NodeLayout layout;
  std::shared_ptr<rt::Processor> proc;  ///< kNode only
  uint32_t first_channel = 0;           ///< externals: first backend channel
  /// Externals: where non-finite/clipped samples of this port are counted.
  std::shared_ptr<rt::SignalCounters> counters;
};

/// A route between two ports, with its crossfade ramp.
struct Edge {
  size_t src = 0;       ///< vertex index
  size_t src_port = 0;  ///< output port index in the source's layout
  size_t dst = 0;
  size_t dst_port = 0;  ///< input port index in the destination's layout
  rt::Ramp ramp = rt::Ramp::kNone;
};

struct Graph {
  std::vector<Vertex> vertices;
  std::vector<Edge> edges;
  uint32_t input_channels = 0;
  uint32_t output_channels = 0;
};

struct CompileOptions {
  uint32_t ramp_frames = 0;  ///< crossfade length for ramped edges
  bool fuse_biquads = true;  ///< run chains of biquads as one fused cascade
};

/// Vertex indices in a topological order (ties keep vertex order), or
/// nullopt if the graph has a cycle.
std::optional<std::vector<size_t>> TopologicalOrder(const Graph& graph);

/// Builds the plan. Fails (FAILED_PRECONDITION) only on a cycle, which
/// validation rules out for user graphs.
absl::StatusOr<std::unique_ptr<rt::Plan>> CompilePlan(const Graph& graph,
                                                      const rt::StreamFormat& format,
                                                      const CompileOptions& options);

}  // namespace aers::compile
