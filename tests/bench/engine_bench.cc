// Engine benchmark on the reference chain R (BENCHMARKS.md, "Engine"):
// stereo, 48 kHz, gain -6 dB then eight Butterworth biquads
// (hp 40, lp 18000, hp 60, lp 16000, hp 80, lp 14000, hp 100, lp 12000).
//
// Measured side by side, in frames per second, at periods 64, 128 and 1024:
//   BM_Engine    the whole engine: runner().Process() of the compiled plan
//                (biquads fused into one cascade, as shipped);
//   BM_Fused     the practical limit: one hand-written loop computing the
//                same chain (double TDF-II, 8 stages unrolled, {left, right}
//                packed in one SSE2 register per sample, gain first), same
//                compiler flags (baseline x86-64);
//   BM_Unfused   the same plan compiled with fuse_biquads=false (one node
//                step per biquad), to show what fusion buys;
//   BM_Kernel    rt::RunCascade on the eight sections plus the gain loop,
//                without plan or runner, to split kernel from plan cost;
//   BM_Kernel_<variant>  the same with each cascade kernel this CPU can run
//                forced (rt::RunCascadeWith: pair, avx2, avx512);
//   BM_ChainAlone_<variant>  the ceiling of each wavefront kernel: its
//                loop-carried chain alone, N + 7 steps a period of N frames
//                with no input, output or conversion
//                (rt::WavefrontChainAlone).
//
// Before timing anything, main() checks that the engine and the unfused
// plan compute what the fused loop computes (|diff| <= 1e-5) and aborts
// otherwise (and each forced kernel variant the same way). After the run it
// prints the ratios time(X)/time(fused) per period (1.00 = as fast as the
// hand-written loop), then the speed-up of each kernel variant and of the
// engine over the fused loop (fused time / time) with the 3x verdict, and
// the ceiling those kernels have on this CPU.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compile/compile.h"
#include "dsp/builtins.h"
#include "engine/engine.h"
#include "model/graph.h"
#include "model/kind.h"
#include "rt/biquad.h"
#include "rt/plan.h"
#include "rt/thread_role.h"

namespace {

using aers::rt::BiquadParams;
using aers::rt::BiquadType;

constexpr double kRate = 48000.0;
constexpr int kChannels = 2;
constexpr double kGainDb = -6.0;
constexpr int kStages = 8;
// Input signal length per channel: a multiple of every period, small enough
// to stay in L2 (2 x 64 KiB) so the benchmark measures compute, not DRAM.
constexpr uint32_t kSignalFrames = 16384;

struct Stage {
  BiquadType type;
  double freq_hz;
};
constexpr Stage kChain[kStages] = {
    {BiquadType::kHighpass, 40.0},  {BiquadType::kLowpass, 18000.0},
    {BiquadType::kHighpass, 60.0},  {BiquadType::kLowpass, 16000.0},
    {BiquadType::kHighpass, 80.0},  {BiquadType::kLowpass, 14000.0},
    {BiquadType::kHighpass, 100.0}, {BiquadType::kLowpass, 12000.0},
};
constexpr double kQ = 0.7071;

// ---------------------------------------------------------------------------
// Chain R as a GraphSpec (same as configs/examples/reference-chain.yaml).

aers::model::GraphSpec ChainR() {
  using aers::model::Endpoint;
  aers::model::GraphSpec g;
  g.inputs.push_back({"in", kChannels, {}});
  g.outputs.push_back({"out", kChannels, {}});
  g.nodes.push_back({"gain", "gain", kChannels, {{"gain_db", kGainDb}}});
  std::string prev = "gain";
  for (int k = 0; k < kStages; ++k) {
    const bool hp = kChain[k].type == BiquadType::kHighpass;
    const std::string name = (hp ? "hp" : "lp") + std::to_string(k / 2 + 1);
    g.nodes.push_back({name,
                       "biquad",
                       kChannels,
                       {{"type", std::string(hp ? "highpass" : "lowpass")},
                        {"freq_hz", kChain[k].freq_hz},
                        {"q", kQ}}});
    g.routes.push_back({Endpoint{prev, ""}, Endpoint{name, ""}});
    prev = name;
  }
  g.routes.insert(g.routes.begin(), {Endpoint{"in", ""}, Endpoint{"gain", ""}});
  g.routes.push_back({Endpoint{prev, ""}, Endpoint{"out", ""}});
  return g;
}

const aers::model::KindRegistry& Kinds() {
  static const auto* kinds = aers::dsp::MakeBuiltinRegistry().release();
  return *kinds;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "engine_bench: %s\n", what.c_str());
  std::abort();
}

// ---------------------------------------------------------------------------
// Test signal: white noise at -12 dBFS-ish plus a 997 Hz tone, per channel.

struct Signal {
  std::vector<float> ch[kChannels];
  explicit Signal(uint32_t frames) {
    std::mt19937 rng(12345);
    std::uniform_real_distribution<float> noise(-0.25f, 0.25f);
    for (int c = 0; c < kChannels; ++c) {
      ch[c].resize(frames);
      for (uint32_t n = 0; n < frames; ++n) {
        const double tone =
            0.5 * std::sin(2.0 * 3.141592653589793 * 997.0 * static_cast<double>(n) / kRate + c);
        ch[c][n] = static_cast<float>(tone) + noise(rng);
      }
    }
  }
  // Planar pointers to frames [pos, pos + period).
  void At(uint32_t pos, const float* (&p)[kChannels]) const {
    for (int c = 0; c < kChannels; ++c) p[c] = ch[c].data() + pos;
  }
};

const Signal& TestSignal() {
  static const Signal s(kSignalFrames);
  return s;
}

struct OutBuf {
  std::vector<float> ch[kChannels];
  float* p[kChannels];
  explicit OutBuf(uint32_t frames) {
    for (int c = 0; c < kChannels; ++c) {
      ch[c].assign(frames, 0.0f);
      p[c] = ch[c].data();
    }
  }
};

// ---------------------------------------------------------------------------
// The practical limit: chain R as one hand-written loop.

class FusedChain {
  // Two doubles, {left, right} (GCC/Clang vector extension).
  using V2 = double __attribute__((vector_size(16)));

 public:
  FusedChain() {
    gain_ = std::pow(10.0, kGainDb / 20.0);
    for (int k = 0; k < kStages; ++k) {
      const auto c =
          aers::rt::DesignBiquad(BiquadParams{kChain[k].type, kChain[k].freq_hz, kQ, 0.0}, kRate);
      b0_[k] = c.b0;
      b1_[k] = c.b1;
      b2_[k] = c.b2;
      a1_[k] = c.a1;
      a2_[k] = c.a2;
    }
  }

  // Both channels in one SSE2 register (baseline x86-64, no -march): each
  // stage is 5 multiplies and 4 adds on {left, right}, no shuffles.
  // Everything lives in locals and kStages is a constant, so the stage loop
  // unrolls and the compiler keeps what fits in registers. Like the engine's
  // kernel it gets an FMA clone chosen at run time, so the comparison is fair.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
  void
  Process(const float* const* in, float* const* out, uint32_t frames) noexcept {
    V2 b0[kStages], b1[kStages], b2[kStages], a1[kStages], a2[kStages];
    V2 z1[kStages], z2[kStages];
    for (int k = 0; k < kStages; ++k) {
      b0[k] = V2{b0_[k], b0_[k]};
      b1[k] = V2{b1_[k], b1_[k]};
      b2[k] = V2{b2_[k], b2_[k]};
      a1[k] = V2{a1_[k], a1_[k]};
      a2[k] = V2{a2_[k], a2_[k]};
      z1[k] = V2{z1_[k][0], z1_[k][1]};
      z2[k] = V2{z2_[k][0], z2_[k][1]};
    }
    const V2 g{gain_, gain_};
    const float* inl = in[0];
    const float* inr = in[1];
    float* outl = out[0];
    float* outr = out[1];
    for (uint32_t n = 0; n < frames; ++n) {
      V2 x = V2{static_cast<double>(inl[n]), static_cast<double>(inr[n])} * g;
      // Unrolled whatever the optimisation level: GCC's -O2 leaves this
      // loop rolled and the state in memory (about 30 % slower than -O3).
#pragma GCC unroll 8
      for (int k = 0; k < kStages; ++k) {
        const V2 y = b0[k] * x + z1[k];
        // (b1 x + z2) does not wait for y: a shorter recursion.
        z1[k] = (b1[k] * x + z2[k]) - a1[k] * y;
        z2[k] = b2[k] * x - a2[k] * y;
        x = y;
      }
      outl[n] = static_cast<float>(x[0]);
      outr[n] = static_cast<float>(x[1]);
    }
    for (int k = 0; k < kStages; ++k) {
      z1_[k][0] = z1[k][0];
      z1_[k][1] = z1[k][1];
      z2_[k][0] = z2[k][0];
      z2_[k][1] = z2[k][1];
    }
  }

 private:
  double gain_;
  double b0_[kStages], b1_[kStages], b2_[kStages], a1_[kStages], a2_[kStages];
  double z1_[kStages][kChannels] = {};
  double z2_[kStages][kChannels] = {};
};

// ---------------------------------------------------------------------------
// The engine, and the plan without fusion.

std::unique_ptr<aers::engine::Engine> MakeEngine(uint32_t period) {
  aers::engine::EngineOptions opts;
  opts.format = aers::rt::StreamFormat{kRate, period};
  auto engine = std::make_unique<aers::engine::Engine>(Kinds(), opts);
  auto result = engine->Apply(ChainR());
  if (!result.ok()) Die("Apply(chain R) failed: " + std::string(result.status().message()));
  return engine;
}

// Chain R compiled straight from instances, as the engine does it, but with
// the options given. `procs` receives the node instances (gain first).
std::unique_ptr<aers::rt::Plan> MakePlan(uint32_t period, bool fuse,
                                         std::vector<std::shared_ptr<aers::rt::Processor>>* procs) {
  using aers::compile::Vertex;
  const aers::rt::StreamFormat format{kRate, period};
  const auto spec = ChainR();
  aers::compile::Graph graph;
  Vertex in;
  in.type = Vertex::Type::kInput;
  in.name = "in";
  in.layout.outputs.push_back({"out", kChannels});
  graph.vertices.push_back(std::move(in));
  for (const auto& node : spec.nodes) {
    const aers::model::NodeKind* kind = Kinds().Find(node.kind);
    if (kind == nullptr) Die("unknown kind " + node.kind);
    auto proc = kind->Instantiate(node, kind->ResolveParams(node, format.sample_rate_hz), format);
    if (!proc.ok()) Die("Instantiate(" + node.name + "): " + std::string(proc.status().message()));
    Vertex v;
    v.type = Vertex::Type::kNode;
    v.name = node.name;
    v.layout = kind->Layout(node);
    v.proc = std::shared_ptr<aers::rt::Processor>(std::move(*proc));
    if (procs != nullptr) procs->push_back(v.proc);
    graph.vertices.push_back(std::move(v));
  }
  Vertex out;
  out.type = Vertex::Type::kOutput;
  out.name = "out";
  out.layout.inputs.push_back({"in", kChannels});
  graph.vertices.push_back(std::move(out));
  // in -> gain -> 8 biquads -> out: vertex i feeds vertex i + 1.
  for (size_t v = 0; v + 1 < graph.vertices.size(); ++v) {
    aers::compile::Edge e;
    e.src = v;
    e.dst = v + 1;
    graph.edges.push_back(e);
  }
  graph.input_channels = kChannels;
  graph.output_channels = kChannels;
  aers::compile::CompileOptions options;
  options.fuse_biquads = fuse;
  auto plan = aers::compile::CompilePlan(graph, format, options);
  if (!plan.ok()) Die("CompilePlan failed: " + std::string(plan.status().message()));
  const size_t want_cascades = fuse ? 1 : 0;
  if ((*plan)->fused_cascades() != want_cascades) {
    Die("plan has " + std::to_string((*plan)->fused_cascades()) + " fused cascades, expected " +
        std::to_string(want_cascades));
  }
  return std::move(*plan);
}

// ---------------------------------------------------------------------------
// Correctness gate: a benchmark of wrong code is worthless.

void CheckEquivalence() {
  constexpr uint32_t kPeriod = 128;
  constexpr uint32_t kTotal = 48000 * 2;  // 2 s, well past the filters' settling
  constexpr double kTolerance = 1e-5;
  const Signal& sig = TestSignal();
  auto engine = MakeEngine(kPeriod);
  auto unfused = MakePlan(kPeriod, /*fuse=*/false, nullptr);
  FusedChain fused;
  OutBuf o_engine(kPeriod), o_fused(kPeriod), o_unfused(kPeriod);
  double max_engine = 0.0, max_unfused = 0.0, peak = 0.0;
  for (uint32_t done = 0; done < kTotal; done += kPeriod) {
    const float* in[kChannels];
    sig.At(done % kSignalFrames, in);
    {
      aers::rt::AudioThreadScope audio;  // the periods run as the audio thread
      engine->runner().Process(in, kChannels, o_engine.p, kChannels, kPeriod);
      unfused->Process(in, o_unfused.p, kPeriod);
      fused.Process(in, o_fused.p, kPeriod);
    }
    for (int c = 0; c < kChannels; ++c) {
      for (uint32_t n = 0; n < kPeriod; ++n) {
        const double ref = o_fused.ch[c][n];
        peak = std::max(peak, std::fabs(ref));
        max_engine = std::max(max_engine, std::fabs(static_cast<double>(o_engine.ch[c][n]) - ref));
        max_unfused =
            std::max(max_unfused, std::fabs(static_cast<double>(o_unfused.ch[c][n]) - ref));
      }
    }
  }
  if (engine->runner().silent_cycles() != 0) Die("engine produced silent periods");
  if (peak < 0.05) Die("fused reference output is (near) silent; the check proves nothing");
  std::printf(
      "equivalence (period %u, %u frames): max |engine - fused| = %.3g, max |unfused - fused| = "
      "%.3g, output peak %.3f\n",
      kPeriod, kTotal, max_engine, max_unfused, peak);
  if (!(max_engine <= kTolerance)) Die("engine output differs from the fused loop by > 1e-5");
  if (!(max_unfused <= kTolerance))
    Die("unfused plan output differs from the fused loop by > 1e-5");
}

// ---------------------------------------------------------------------------
// Benchmarks. Each iteration processes one period, walking through the test
// signal so the input keeps changing.

template <typename Fn>
void RunPeriods(benchmark::State& state, uint32_t period, Fn&& process) {
  const Signal& sig = TestSignal();
  OutBuf out(period);
  uint32_t pos = 0;
  for (auto _ : state) {
    const float* in[kChannels];
    sig.At(pos, in);
    process(in, out.p, period);
    benchmark::ClobberMemory();
    pos += period;
    if (pos + period > kSignalFrames) pos = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * period);
  benchmark::DoNotOptimize(out.ch[0].data());
}

void BM_Engine(benchmark::State& state) {
  const auto period = static_cast<uint32_t>(state.range(0));
  auto engine = MakeEngine(period);
  aers::rt::Runner& runner = engine->runner();
  aers::rt::AudioThreadScope audio;  // the engine is built; from here on this thread runs periods
  RunPeriods(state, period, [&](const float* const* in, float* const* out, uint32_t frames) {
    runner.Process(in, kChannels, out, kChannels, frames);
  });
  if (runner.silent_cycles() != 0) state.SkipWithError("engine produced silent periods");
}

void BM_Fused(benchmark::State& state) {
  const auto period = static_cast<uint32_t>(state.range(0));
  FusedChain chain;
  RunPeriods(state, period, [&](const float* const* in, float* const* out, uint32_t frames) {
    chain.Process(in, out, frames);
  });
}

void BM_Unfused(benchmark::State& state) {
  const auto period = static_cast<uint32_t>(state.range(0));
  auto plan = MakePlan(period, /*fuse=*/false, nullptr);
  aers::rt::AudioThreadScope audio;
  RunPeriods(state, period, [&](const float* const* in, float* const* out, uint32_t frames) {
    plan->Process(in, out, frames);
  });
}

// The cascade kernel alone: gain node into a scratch buffer, then
// rt::RunCascade over the eight sections with a cache of the kernel's
// layout as a plan's cascade step has, no plan, no runner.
void BM_Kernel(benchmark::State& state) {
  const auto period = static_cast<uint32_t>(state.range(0));
  std::vector<std::shared_ptr<aers::rt::Processor>> procs;
  auto keep = MakePlan(period, /*fuse=*/true, &procs);  // instances only
  aers::rt::BiquadSection* sections[kStages];
  for (int k = 0; k < kStages; ++k) {
    sections[k] = procs[static_cast<size_t>(k) + 1]->AsBiquad();
    if (sections[k] == nullptr) Die("node is not a biquad");
  }
  aers::rt::Processor* gain = procs[0].get();
  OutBuf scratch(period);
  aers::rt::CascadeCache cache;
  RunPeriods(state, period, [&](const float* const* in, float* const* out, uint32_t frames) {
    gain->Process(in, scratch.p, frames);
    aers::rt::RunCascade(sections, kStages, kChannels, scratch.p, out, frames, &cache);
  });
}

// The same with one cascade kernel variant forced.
void BM_KernelVariant(benchmark::State& state, aers::rt::CascadeVariant variant) {
  const auto period = static_cast<uint32_t>(state.range(0));
  std::vector<std::shared_ptr<aers::rt::Processor>> procs;
  auto keep = MakePlan(period, /*fuse=*/true, &procs);  // instances only
  aers::rt::BiquadSection* sections[kStages];
  for (int k = 0; k < kStages; ++k) {
    sections[k] = procs[static_cast<size_t>(k) + 1]->AsBiquad();
    if (sections[k] == nullptr) Die("node is not a biquad");
  }
  aers::rt::Processor* gain = procs[0].get();
  OutBuf scratch(period);
  aers::rt::CascadeCache cache;
  RunPeriods(state, period, [&](const float* const* in, float* const* out, uint32_t frames) {
    gain->Process(in, scratch.p, frames);
    aers::rt::RunCascadeWith(variant, sections, kStages, kChannels, scratch.p, out, frames, &cache);
  });
}

// The ceiling of a wavefront kernel: its loop-carried chain alone
// (rt::WavefrontChainAlone: the steps of a period, N + 7 of them, without
// input, output or conversions). What a period of that kernel could take
// if everything but the recursion were free.
void BM_ChainAlone(benchmark::State& state, aers::rt::CascadeVariant variant) {
  const auto period = static_cast<uint32_t>(state.range(0));
  for (auto _ : state) {
    benchmark::DoNotOptimize(aers::rt::WavefrontChainAlone(variant, period + 7));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * period);
}

constexpr aers::rt::CascadeVariant kVariants[] = {aers::rt::CascadeVariant::kPair,
                                                  aers::rt::CascadeVariant::kAvx2,
                                                  aers::rt::CascadeVariant::kAvx512};

// Each available variant against the fused loop, like CheckEquivalence.
void CheckVariants() {
  constexpr uint32_t kPeriod = 128;
  constexpr uint32_t kTotal = 48000 * 2;
  const Signal& sig = TestSignal();
  for (const auto variant : kVariants) {
    if (!aers::rt::CascadeVariantAvailable(variant)) continue;
    std::vector<std::shared_ptr<aers::rt::Processor>> procs;
    auto keep = MakePlan(kPeriod, /*fuse=*/true, &procs);
    aers::rt::BiquadSection* sections[kStages];
    for (int k = 0; k < kStages; ++k) sections[k] = procs[static_cast<size_t>(k) + 1]->AsBiquad();
    FusedChain fused;
    OutBuf o_kernel(kPeriod), o_fused(kPeriod), scratch(kPeriod);
    double max_diff = 0.0;
    for (uint32_t done = 0; done < kTotal; done += kPeriod) {
      const float* in[kChannels];
      sig.At(done % kSignalFrames, in);
      procs[0]->Process(in, scratch.p, kPeriod);
      aers::rt::RunCascadeWith(variant, sections, kStages, kChannels, scratch.p, o_kernel.p,
                               kPeriod);
      fused.Process(in, o_fused.p, kPeriod);
      for (int c = 0; c < kChannels; ++c) {
        for (uint32_t n = 0; n < kPeriod; ++n) {
          max_diff = std::max(max_diff, std::fabs(static_cast<double>(o_kernel.ch[c][n]) -
                                                  static_cast<double>(o_fused.ch[c][n])));
        }
      }
    }
    std::printf("equivalence: max |kernel %s - fused| = %.3g\n",
                aers::rt::CascadeVariantName(variant), max_diff);
    if (!(max_diff <= 1e-5)) Die("a kernel variant differs from the fused loop by > 1e-5");
  }
}

BENCHMARK(BM_Fused)->Arg(64)->Arg(128)->Arg(1024);
BENCHMARK(BM_Engine)->Arg(64)->Arg(128)->Arg(1024);
BENCHMARK(BM_Kernel)->Arg(64)->Arg(128)->Arg(1024);
BENCHMARK(BM_Unfused)->Arg(64)->Arg(128)->Arg(1024);

// ---------------------------------------------------------------------------
// Console output as usual, plus the frames/s of every run kept for the
// summary. With repetitions, the summary uses the best (highest) rate of the
// repetitions, or their median when only aggregates are reported
// (--benchmark_report_aggregates_only).

class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  SummaryReporter() : benchmark::ConsoleReporter(OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& reports) override {
    ConsoleReporter::ReportRuns(reports);
    for (const Run& r : reports) {
      if (r.error_occurred) continue;
      const auto it = r.counters.find("items_per_second");
      if (it == r.counters.end()) continue;
      if (r.run_type == Run::RT_Iteration) {
        double& best = rates_[r.run_name.function_name][r.run_name.args];
        best = std::max(best, it->second.value);
      } else if (r.aggregate_name == "median") {
        medians_[r.run_name.function_name][r.run_name.args] = it->second.value;
      }
    }
  }

  void PrintSummary() const {
    const bool medians = rates_.empty();
    const auto& table = medians ? medians_ : rates_;
    const auto fused = table.find("BM_Fused");
    if (fused == table.end()) return;
    std::printf("\nframes/s (%s) and time ratio X/fused (1.00 = hand-written loop):\n",
                medians ? "median of repetitions" : "best run");
    std::printf("%-8s %14s %14s %8s %14s %8s %14s %8s\n", "period", "fused", "engine", "ratio",
                "kernel", "ratio", "unfused", "ratio");
    for (const auto& [args, fused_rate] : fused->second) {
      std::printf("%-8s %14.4g", args.c_str(), fused_rate);
      for (const char* name : {"BM_Engine", "BM_Kernel", "BM_Unfused"}) {
        const double rate = Rate(table, name, args);
        if (rate <= 0.0) {
          std::printf(" %14s %8s", "-", "-");
        } else {
          std::printf(" %14.4g %8.2f", rate, fused_rate / rate);
        }
      }
      std::printf("\n");
    }
    const double engine128 = Rate(table, "BM_Engine", "128");
    const double fused128 = Rate(table, "BM_Fused", "128");
    if (engine128 > 0.0 && fused128 > 0.0) {
      const double ratio = fused128 / engine128;
      std::printf("target: engine within 1.30x of fused at period 128: %.2fx -> %s\n", ratio,
                  ratio <= 1.30 ? "MET" : "MISSED");
    }
    // Kernel variants: frames/s and speed-up over the fused loop.
    std::printf(
        "\ncascade kernels (gain + RunCascadeWith), frames/s and speed-up over fused "
        "(fused time / time; selected: %s):\n",
        aers::rt::CascadeVariantName(aers::rt::SelectedCascadeVariant()));
    std::vector<std::string> names = {"BM_Engine"};
    for (const auto v : kVariants) {
      if (aers::rt::CascadeVariantAvailable(v)) {
        names.push_back(std::string("BM_Kernel_") + aers::rt::CascadeVariantName(v));
      }
    }
    std::printf("%-8s %14s", "period", "fused");
    for (const auto& n : names) std::printf(" %16s %7s", n.c_str() + 3, "x");
    std::printf("\n");
    for (const auto& [args, fused_rate] : fused->second) {
      std::printf("%-8s %14.4g", args.c_str(), fused_rate);
      for (const auto& n : names) {
        const double rate = Rate(table, n, args);
        if (rate <= 0.0) {
          std::printf(" %16s %7s", "-", "-");
        } else {
          std::printf(" %16.4g %7.2f", rate, rate / fused_rate);
        }
      }
      std::printf("\n");
    }
    // The ceiling: each wavefront kernel's chain alone against the fused loop.
    std::printf(
        "\nceiling: the wavefront's loop-carried chain alone (no input, output or conversion; "
        "N + 7 steps a period), speed-up over fused:\n");
    std::printf("%-8s", "period");
    for (const auto v : kVariants) {
      if (v != aers::rt::CascadeVariant::kPair && aers::rt::CascadeVariantAvailable(v)) {
        std::printf(" %22s",
                    (std::string("ChainAlone_") + aers::rt::CascadeVariantName(v)).c_str());
      }
    }
    std::printf("\n");
    double ceiling128 = 0.0;
    for (const auto& [args, fused_rate] : fused->second) {
      std::printf("%-8s", args.c_str());
      for (const auto v : kVariants) {
        if (v == aers::rt::CascadeVariant::kPair || !aers::rt::CascadeVariantAvailable(v)) continue;
        const double rate =
            Rate(table, std::string("BM_ChainAlone_") + aers::rt::CascadeVariantName(v), args);
        if (rate <= 0.0) {
          std::printf(" %22s", "-");
          continue;
        }
        std::printf(" %14.4g %6.2fx", rate, rate / fused_rate);
        if (args == "128") ceiling128 = std::max(ceiling128, rate / fused_rate);
      }
      std::printf("\n");
    }
    double best = 0.0;
    std::string best_name;
    for (const auto& n : names) {
      const double rate = Rate(table, n, "128");
      if (rate > best) {
        best = rate;
        best_name = n;
      }
    }
    if (best > 0.0 && fused128 > 0.0) {
      const double engine_x = engine128 > 0.0 ? engine128 / fused128 : 0.0;
      std::printf(
          "target: chain R at period 128 at least 3x the fused loop: engine %.2fx, best %s "
          "%.2fx -> %s\n",
          engine_x, best_name.c_str() + 3, best / fused128, engine_x >= 3.0 ? "MET" : "MISSED");
      if (ceiling128 > 0.0) {
        // Times per period relative to the fused loop's: the kernel's, its
        // chain's alone, and the target's. What is not the chain is input,
        // output and conversions.
        const double kernel_x = best / fused128;
        const double other_now = 1.0 - kernel_x / ceiling128;
        const double other_left = 1.0 - 3.0 / ceiling128;
        std::printf(
            "ceiling at period 128: the fastest wavefront's chain alone is %.2fx the fused loop; "
            "input, output and conversions take %.0f%% of the best kernel's time, and 3x leaves "
            "them %s\n",
            ceiling128, 100.0 * other_now,
            other_left > 0.0
                ? (std::to_string(static_cast<int>(100.0 * other_left + 0.5)) + "%").c_str()
                : "nothing (below 3x: no kernel of this design reaches it here)");
      }
    }
  }

 private:
  // function name -> args ("64") -> frames/s, args ordered as numbers.
  struct ByNumber {
    bool operator()(const std::string& a, const std::string& b) const {
      return std::strtoul(a.c_str(), nullptr, 10) < std::strtoul(b.c_str(), nullptr, 10);
    }
  };
  using Table = std::map<std::string, std::map<std::string, double, ByNumber>>;
  Table rates_;    // best iteration run
  Table medians_;  // median aggregates

  static double Rate(const Table& table, const std::string& function, const std::string& args) {
    const auto f = table.find(function);
    if (f == table.end()) return 0.0;
    const auto a = f->second.find(args);
    return a == f->second.end() ? 0.0 : a->second;
  }
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  CheckEquivalence();
  CheckVariants();
  for (const auto v : kVariants) {
    if (!aers::rt::CascadeVariantAvailable(v)) continue;
    benchmark::RegisterBenchmark(
        (std::string("BM_Kernel_") + aers::rt::CascadeVariantName(v)).c_str(), BM_KernelVariant, v)
        ->Arg(64)
        ->Arg(128)
        ->Arg(1024);
    if (v == aers::rt::CascadeVariant::kPair) continue;
    benchmark::RegisterBenchmark(
        (std::string("BM_ChainAlone_") + aers::rt::CascadeVariantName(v)).c_str(), BM_ChainAlone, v)
        ->Arg(64)
        ->Arg(128)
        ->Arg(1024);
  }
  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  return 0;
}
