#include "compile/compile.h"

#include <algorithm>
#include <queue>

#include "absl/status/status.h"
#include "compile/plan_builder.h"

namespace aers::compile {

std::optional<std::vector<size_t>> TopologicalOrder(const Graph& graph) {
  const size_t n = graph.vertices.size();
  std::vector<size_t> indegree(n, 0);
  std::vector<std::vector<size_t>> succ(n);
  for (const auto& e : graph.edges) {
    succ[e.src].push_back(e.dst);
    ++indegree[e.dst];
  }
  // Min-heap on index keeps the order stable and deterministic.
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t v = 0; v < n; ++v) {
    if (indegree[v] == 0) ready.push(v);
  }
  std::vector<size_t> order;
  order.reserve(n);
  while (!ready.empty()) {
    const size_t v = ready.top();
    ready.pop();
    order.push_back(v);
    for (size_t w : succ[v]) {
      if (--indegree[w] == 0) ready.push(w);
    }
  }
  if (order.size() != n) return std::nullopt;
  return order;
}

namespace {

bool Fusable(const Vertex& v) {
  return v.type == Vertex::Type::kNode && v.proc && v.proc->AsBiquad() != nullptr &&
         v.layout.inputs.size() == 1 && v.layout.outputs.size() == 1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<rt::Plan>> CompilePlan(const Graph& graph,
                                                      const rt::StreamFormat& format,
                                                      const CompileOptions& options) {
  const auto order = TopologicalOrder(graph);
  if (!order) return absl::FailedPreconditionError("graph has a cycle");
  const size_t nv = graph.vertices.size();
  PlanBuilder builder(format, graph.input_channels, graph.output_channels, options.ramp_frames);

  // Output buffers: out_buf[v][port][ch].
  std::vector<std::vector<std::vector<PlanBuilder::BufferId>>> out_buf(nv);
  for (size_t v = 0; v < nv; ++v) {
    const Vertex& vx = graph.vertices[v];
    for (const auto& port : vx.layout.outputs) {
      std::vector<PlanBuilder::BufferId> chans;
      for (int ch = 0; ch < port.channels; ++ch) {
        chans.push_back(vx.type == Vertex::Type::kInput
                            ? builder.InputBuffer(vx.first_channel + static_cast<uint32_t>(ch))
                            : builder.NewBuffer());
      }
      out_buf[v].push_back(std::move(chans));
    }
  }

  // Incoming edges per vertex/port; outgoing edge counts per vertex/port.
  std::vector<std::vector<std::vector<const Edge*>>> in_edges(nv);
  std::vector<std::vector<int>> out_count(nv);
  for (size_t v = 0; v < nv; ++v) {
    in_edges[v].resize(graph.vertices[v].layout.inputs.size());
    out_count[v].assign(graph.vertices[v].layout.outputs.size(), 0);
  }
  for (const auto& e : graph.edges) {
    in_edges[e.dst][e.dst_port].push_back(&e);
    ++out_count[e.src][e.src_port];
  }

  // Biquad chains: next[u] = v when u's only consumer is v and v's only
  // source is u (unramped), so the intermediate signal is needed nowhere else.
  std::vector<std::optional<size_t>> next(nv);
  std::vector<bool> has_prev(nv, false);
  if (options.fuse_biquads) {
    for (size_t v = 0; v < nv; ++v) {
      if (!Fusable(graph.vertices[v]) || in_edges[v][0].size() != 1) continue;
      const Edge& e = *in_edges[v][0][0];
      if (e.ramp != rt::Ramp::kNone || !Fusable(graph.vertices[e.src]) ||
          out_count[e.src][0] != 1 ||
          graph.vertices[e.src].layout.outputs[0].channels !=
              graph.vertices[v].layout.inputs[0].channels) {
        continue;
      }
      next[e.src] = v;
      has_prev[v] = true;
    }
  }

  auto sources_of = [&](const Edge* e, int ch) {
    return PlanBuilder::Source{out_buf[e->src][e->src_port][static_cast<size_t>(ch)], e->ramp};
  };
  // Input buffers of a vertex: alias a single unramped source, mix otherwise.
  auto resolve_inputs = [&](size_t v) {
    std::vector<PlanBuilder::BufferId> ins;
    const Vertex& vx = graph.vertices[v];
    for (size_t p = 0; p < vx.layout.inputs.size(); ++p) {
      const auto& edges = in_edges[v][p];
      for (int ch = 0; ch < vx.layout.inputs[p].channels; ++ch) {
        if (edges.empty()) {
          ins.push_back(builder.SilenceBuffer());
        } else if (edges.size() == 1 && edges[0]->ramp == rt::Ramp::kNone) {
          ins.push_back(sources_of(edges[0], ch).buffer);
        } else {
          std::vector<PlanBuilder::Source> srcs;
          for (const Edge* e : edges) srcs.push_back(sources_of(e, ch));
          const PlanBuilder::BufferId dst = builder.NewBuffer();
          builder.AddMix(dst, srcs);
          ins.push_back(dst);
        }
      }
    }
    return ins;
  };

  for (size_t v : *order) {
    const Vertex& vx = graph.vertices[v];
    switch (vx.type) {
      case Vertex::Type::kInput:
        for (int ch = 0; ch < vx.layout.outputs[0].channels; ++ch) {
          builder.SetInputCounters(vx.first_channel + static_cast<uint32_t>(ch), vx.counters);
        }
        break;
      case Vertex::Type::kOutput: {
        const auto& edges = in_edges[v][0];
        for (int ch = 0; ch < vx.layout.inputs[0].channels; ++ch) {
          std::vector<PlanBuilder::Source> srcs;
          for (const Edge* e : edges) srcs.push_back(sources_of(e, ch));
          builder.AddOutput(vx.first_channel + static_cast<uint32_t>(ch), srcs, vx.counters);
        }
        break;
      }
      case Vertex::Type::kNode: {
        if (has_prev[v]) break;  // runs inside its chain's cascade
        std::vector<PlanBuilder::BufferId> ins = resolve_inputs(v);
        if (next[v]) {
          std::vector<std::shared_ptr<rt::Processor>> chain{vx.proc};
          size_t last = v;
          while (next[last] && chain.size() < static_cast<size_t>(rt::kMaxCascade)) {
            last = *next[last];
            chain.push_back(graph.vertices[last].proc);
          }
          if (next[last]) has_prev[*next[last]] = false;  // chain too long: restart there
          builder.AddCascade(chain, vx.layout.inputs[0].channels, ins, out_buf[last][0]);
          break;
        }
        std::vector<PlanBuilder::BufferId> outs;
        for (const auto& port : out_buf[v]) outs.insert(outs.end(), port.begin(), port.end());
        builder.AddNode(vx.proc, ins, outs);
        break;
      }
    }
  }
  return builder.Finish();
}

}  // namespace aers::compile
