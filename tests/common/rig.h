// The shared test rig (tests/common/): graph builders, signal helpers and an
// engine driven by hand, period by period, on the test thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <thread>
#include <vector>

#include "dsp/builtins.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "model/graph.h"
#include "rt/denormals.h"
#include "rt/thread_role.h"

namespace aers::test {

using Signal = std::vector<float>;

/// Small builder for graphs in tests.
struct GraphBuilder {
  model::GraphSpec spec;
  GraphBuilder& Input(std::string name, int channels = 1) {
    spec.inputs.push_back({std::move(name), channels, {}});
    return *this;
  }
  GraphBuilder& Output(std::string name, int channels = 1) {
    spec.outputs.push_back({std::move(name), channels, {}});
    return *this;
  }
  GraphBuilder& Node(std::string name, std::string kind, int channels = 1,
                     std::map<std::string, model::ParamValue> params = {}) {
    spec.nodes.push_back({std::move(name), std::move(kind), channels, std::move(params)});
    return *this;
  }
  GraphBuilder& Route(const std::string& from, const std::string& to) {
    spec.routes.push_back({model::Endpoint::Parse(from), model::Endpoint::Parse(to)});
    return *this;
  }
  /// Routes a -> b -> c ...
  GraphBuilder& Chain(const std::vector<std::string>& names) {
    for (size_t i = 0; i + 1 < names.size(); ++i) Route(names[i], names[i + 1]);
    return *this;
  }
  model::GraphSpec Build() const { return spec; }
};

inline Signal Sine(double freq_hz, double amplitude, size_t frames, double rate = 48000.0,
                   double phase = 0.0) {
  Signal s(frames);
  for (size_t n = 0; n < frames; ++n) {
    s[n] = static_cast<float>(
        amplitude *
        std::sin(2.0 * std::numbers::pi * freq_hz * static_cast<double>(n) / rate + phase));
  }
  return s;
}

inline double Rms(const Signal& s, size_t from = 0, size_t to = SIZE_MAX) {
  to = std::min(to, s.size());
  double acc = 0.0;
  for (size_t n = from; n < to; ++n) acc += static_cast<double>(s[n]) * static_cast<double>(s[n]);
  return std::sqrt(acc / static_cast<double>(to - from));
}

inline double Peak(const Signal& s, size_t from = 0, size_t to = SIZE_MAX) {
  to = std::min(to, s.size());
  double p = 0.0;
  for (size_t n = from; n < to; ++n) p = std::max(p, std::fabs(static_cast<double>(s[n])));
  return p;
}

inline double ToDb(double ratio) {
  return 20.0 * std::log10(ratio);
}

/// Largest |x[n] - x[n-1]|.
inline double MaxJump(const Signal& s, size_t from = 1) {
  double j = 0.0;
  for (size_t n = std::max<size_t>(from, 1); n < s.size(); ++n) {
    j = std::max(j, std::fabs(static_cast<double>(s[n]) - static_cast<double>(s[n - 1])));
  }
  return j;
}

/// How a Rig's engine is set up.
struct RigOptions {
  double rate_hz = 48000.0;
  uint32_t period_frames = 64;
  double crossfade_ms = 5.0;
  /// The kinds the engine compiles; must outlive the rig. nullptr: the
  /// built-in kinds, owned by the rig. (Plugin tests load plugins into a
  /// registry of their own and pass it here.)
  const model::KindRegistry* kinds = nullptr;
};

/// An engine driven by hand, period by period, on the calling thread. The
/// thread counts as the audio thread only while Run() calls Process()
/// (rt/thread_role.h); everything else the test does is normal work.
class Rig {
 public:
  explicit Rig(double rate = 48000.0, uint32_t period = 64, double crossfade_ms = 5.0)
      : Rig(RigOptions{rate, period, crossfade_ms, nullptr}) {}
  explicit Rig(const RigOptions& options) : period_(options.period_frames) {
    if (options.kinds == nullptr) owned_kinds_ = dsp::MakeBuiltinRegistry();
    kinds_ = options.kinds != nullptr ? options.kinds : owned_kinds_.get();
    engine::EngineOptions o;
    o.format = {options.rate_hz, options.period_frames};
    o.crossfade_ms = options.crossfade_ms;
    o.settle_timeout = std::chrono::milliseconds(0);  // the test thread drives the audio
    engine_ = std::make_unique<engine::Engine>(*kinds_, o);
  }

  engine::Engine& engine() { return *engine_; }
  const model::KindRegistry& kinds() const { return *kinds_; }

  void Apply(const model::GraphSpec& spec) {
    auto r = engine_->Apply(spec);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  /// Runs `frames` frames: inputs[c] is external input channel c (missing
  /// samples read as 0). Returns one signal per external output channel.
  /// Reclaims retired plans after every period, as the daemon's
  /// housekeeping would.
  std::vector<Signal> Run(const std::vector<Signal>& inputs, size_t frames) {
    const auto spec = engine_->spec();
    const auto in_ch = static_cast<size_t>(spec.TotalInputChannels());
    const auto out_ch = static_cast<size_t>(spec.TotalOutputChannels());
    rt::ScopedFlushToZero ftz;  // like every audio thread (rt/denormals.h)
    std::vector<Signal> out(out_ch, Signal(frames));
    std::vector<Signal> in_buf(in_ch, Signal(period_));
    std::vector<Signal> out_buf(out_ch, Signal(period_));
    std::vector<const float*> ip(in_ch);
    std::vector<float*> op(out_ch);
    for (size_t c = 0; c < in_ch; ++c) ip[c] = in_buf[c].data();
    for (size_t c = 0; c < out_ch; ++c) op[c] = out_buf[c].data();
    for (size_t done = 0; done < frames;) {
      const size_t n = std::min<size_t>(period_, frames - done);
      for (size_t c = 0; c < in_ch; ++c) {
        for (size_t i = 0; i < n; ++i) {
          const size_t k = done + i;
          in_buf[c][i] = c < inputs.size() && k < inputs[c].size() ? inputs[c][k] : 0.0f;
        }
      }
      {
        rt::AudioThreadScope audio;  // this period runs as the audio thread
        engine_->runner().Process(ip.data(), static_cast<uint32_t>(in_ch), op.data(),
                                  static_cast<uint32_t>(out_ch), static_cast<uint32_t>(n));
      }
      for (size_t c = 0; c < out_ch; ++c) {
        std::copy_n(out_buf[c].begin(), n, out[c].begin() + static_cast<ptrdiff_t>(done));
      }
      done += n;
      engine_->Reclaim();
    }
    return out;
  }

 private:
  std::unique_ptr<model::KindRegistry> owned_kinds_;
  const model::KindRegistry* kinds_ = nullptr;
  std::unique_ptr<engine::Engine> engine_;
  uint32_t period_;
};

/// Polls `pred` every 5 ms until it holds or `limit` passes (the machine
/// may be loaded); returns whether it held.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace aers::test
