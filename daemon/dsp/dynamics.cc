// compressor, limiter, gate: level-dependent gain with smoothed envelopes.
// Formulas and sources in dsp/dynamics.h and docs/config.md.
#include "dsp/dynamics.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <vector>

#include "dsp/kind_base.h"

namespace aers::dsp {
namespace {

constexpr int kMax = model::kMaxChannels;

double Load(const std::atomic<double>& a) noexcept {
  return a.load(std::memory_order_relaxed);
}

// Detector `d`'s level at frame n: |x| of its channel, or of the loudest
// channel when linked (one detector for all).
double Level(const float* const* in, int channels, int d, uint32_t n, bool link) noexcept {
  if (!link) return std::fabs(in[d][n]);
  double level = 0.0;
  for (int ch = 0; ch < channels; ++ch) {
    level = std::max(level, static_cast<double>(std::fabs(in[ch][n])));
  }
  return level;
}

// Applies detector `d`'s gain at frame n: to its channel, or to all when linked.
void ApplyGain(const float* const* in, float* const* out, int channels, int d, uint32_t n,
               bool link, float gain) noexcept {
  if (!link) {
    out[d][n] = in[d][n] * gain;
    return;
  }
  for (int ch = 0; ch < channels; ++ch) out[ch][n] = in[ch][n] * gain;
}

// --- compressor --------------------------------------------------------------

enum CompressorParam : uint32_t {
  kCThreshold = 0,
  kCRatio = 1,
  kCKnee = 2,
  kCAttack = 3,
  kCRelease = 4,
  kCMakeup = 5,
  kCLink = 6,
};

class CompressorProcessor final : public rt::Processor {
 public:
  CompressorProcessor(const std::map<std::string, model::ParamValue>& p, double rate_hz,
                      int channels)
      : channels_(channels), rate_hz_(rate_hz) {
    params_[kCThreshold].store(GetNumber(p, "threshold_db"));
    params_[kCRatio].store(GetNumber(p, "ratio"));
    params_[kCKnee].store(GetNumber(p, "knee_db"));
    params_[kCAttack].store(GetNumber(p, "attack_ms"));
    params_[kCRelease].store(GetNumber(p, "release_ms"));
    params_[kCMakeup].store(GetNumber(p, "makeup_db"));
    params_[kCLink].store(GetBool(p, "link") ? 1.0 : 0.0);
    makeup_db_ = GetNumber(p, "makeup_db");
    linked_ = GetBool(p, "link");
  }

  /// Audio thread. Wait-free. Per sample: level -> gain computer -> smooth
  /// branching (attack while the reduction grows, release while it shrinks)
  /// in dB -> gain + makeup applied. Linked: one level (the loudest channel)
  /// and one gain for all channels.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    const double threshold = Load(params_[kCThreshold]);
    const double ratio = Load(params_[kCRatio]);
    const double knee = Load(params_[kCKnee]);
    const double a_att = TimeConstantCoef(Load(params_[kCAttack]), rate_hz_);
    const double a_rel = TimeConstantCoef(Load(params_[kCRelease]), rate_hz_);
    const double makeup_target = Load(params_[kCMakeup]);
    const double a_makeup = TimeConstantCoef(20.0, rate_hz_);
    const bool link = Load(params_[kCLink]) != 0.0;
    if (link != linked_) {
      // Linking: the one detector starts from the most reduction any channel
      // had; unlinking: every channel starts from the linked state. No jump.
      if (link) {
        gain_db_[0] = *std::min_element(gain_db_, gain_db_ + channels_);
      } else {
        std::fill(gain_db_ + 1, gain_db_ + channels_, gain_db_[0]);
      }
      linked_ = link;
    }
    const int detectors = link ? 1 : channels_;
    for (uint32_t n = 0; n < frames; ++n) {
      makeup_db_ = makeup_target + (makeup_db_ - makeup_target) * a_makeup;
      for (int d = 0; d < detectors; ++d) {
        const double x_db = AmplitudeToDb(Level(in, channels_, d, n, link));
        const double target = CompressorCurveDb(x_db, threshold, ratio, knee) - x_db;  // <= 0
        double& g = gain_db_[d];
        g = target < g ? a_att * g + (1.0 - a_att) * target : a_rel * g + (1.0 - a_rel) * target;
        const auto gain = static_cast<float>(std::pow(10.0, (g + makeup_db_) / 20.0));
        ApplyGain(in, out, channels_, d, n, link, gain);
      }
    }
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t, double value) noexcept override {
    if (param <= kCLink) params_[param].store(value, std::memory_order_relaxed);
  }

 private:
  int channels_;
  double rate_hz_;
  std::atomic<double> params_[kCLink + 1];
  double gain_db_[kMax] = {};  // audio thread: smoothed gain (dB, <= 0)
  double makeup_db_ = 0.0;     // audio thread
  bool linked_ = true;         // audio thread: the link in force last period
};

// --- limiter -------------------------------------------------------------------

enum LimiterParam : uint32_t { kLCeiling = 0, kLLookahead = 1, kLRelease = 2 };

/// Lookahead limiter whose output never exceeds the ceiling. With a delay of
/// D frames (the lookahead): g_req = min(1, ceiling / max_ch |x|); h = the
/// minimum of g_req over the last D + 1 frames; r = h when it falls, else a
/// release glide toward it; the gain is the mean of r over the last D + 1
/// frames, applied to the input delayed by D. Every r in the window that
/// ends at a peak's output time is <= that peak's g_req, so the peak comes
/// out at or below the ceiling; a final clamp to +-ceiling guards against
/// rounding.
class LimiterProcessor final : public rt::Processor {
 public:
  LimiterProcessor(double ceiling_db, double lookahead_ms, double release_ms, double rate_hz,
                   int channels)
      : channels_(channels),
        rate_hz_(rate_hz),
        delay_(static_cast<uint32_t>(std::lround(lookahead_ms * rate_hz / 1000.0))),
        window_(delay_ + 1),
        lines_(static_cast<size_t>(channels) * window_, 0.0f),
        r_ring_(window_, 1.0),
        min_index_(window_),
        min_value_(window_),
        sum_(static_cast<double>(window_)) {
    ceiling_db_.store(ceiling_db);
    release_ms_.store(release_ms);
  }

  uint32_t LatencyFrames() const noexcept override { return delay_; }

  /// Audio thread. Wait-free; O(1) amortised per frame (monotonic deque).
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    const double ceiling = std::pow(10.0, Load(ceiling_db_) / 20.0);
    const auto ceiling_f = static_cast<float>(ceiling);
    const double a_rel = TimeConstantCoef(Load(release_ms_), rate_hz_);
    for (uint32_t n = 0; n < frames; ++n) {
      double peak = 0.0;
      for (int ch = 0; ch < channels_; ++ch) {
        peak = std::max(peak, static_cast<double>(std::fabs(in[ch][n])));
      }
      const double req = peak > ceiling ? ceiling / peak : 1.0;
      // Sliding minimum over the last window_ frames: a deque of increasing
      // values. The entry that has left the window goes first, so the deque
      // never holds more than window_ entries (its capacity); then larger
      // entries from the back, then the new one.
      if (count_ > 0 && frame_ - min_index_[head_] >= window_) {
        head_ = (head_ + 1) % window_;
        --count_;
      }
      while (count_ > 0 && min_value_[Back()] >= req) --count_;
      min_index_[(head_ + count_) % window_] = frame_;
      min_value_[(head_ + count_) % window_] = req;
      ++count_;
      const double h = min_value_[head_];
      r_ = h < r_ ? h : a_rel * r_ + (1.0 - a_rel) * h;
      // Running mean of r over the window (the sum recomputed now and then
      // so rounding cannot drift).
      const uint32_t slot = static_cast<uint32_t>(frame_ % window_);
      sum_ += r_ - r_ring_[slot];
      r_ring_[slot] = r_;
      if ((frame_ & 0xFFFF) == 0) {
        sum_ = 0.0;
        for (double v : r_ring_) sum_ += v;
      }
      const auto gain = static_cast<float>(sum_ / static_cast<double>(window_));
      // Delay line: write the new frame, read the one D frames old.
      for (int ch = 0; ch < channels_; ++ch) {
        float* line = &lines_[static_cast<size_t>(ch) * window_];
        line[slot] = in[ch][n];
        const float delayed = line[static_cast<uint32_t>((frame_ + 1) % window_)];
        out[ch][n] = std::clamp(delayed * gain, -ceiling_f, ceiling_f);
      }
      ++frame_;
    }
  }

  /// Any thread. Wait-free. (lookahead_ms is not live: it is the latency.)
  void SetParam(uint32_t param, uint32_t, double value) noexcept override {
    if (param == kLCeiling) ceiling_db_.store(value, std::memory_order_relaxed);
    if (param == kLRelease) release_ms_.store(value, std::memory_order_relaxed);
  }

 private:
  uint32_t Back() const noexcept { return (head_ + count_ - 1) % window_; }

  int channels_;
  double rate_hz_;
  uint32_t delay_;
  uint32_t window_;
  std::vector<float> lines_;    // channels x window_ delay lines
  std::vector<double> r_ring_;  // r over the window
  std::vector<uint64_t> min_index_;
  std::vector<double> min_value_;
  uint32_t head_ = 0;
  uint32_t count_ = 0;
  uint64_t frame_ = 0;
  double r_ = 1.0;
  double sum_;
  std::atomic<double> ceiling_db_;
  std::atomic<double> release_ms_;
};

// --- gate ------------------------------------------------------------------------

enum GateParam : uint32_t {
  kGThreshold = 0,
  kGHysteresis = 1,
  kGHold = 2,
  kGAttack = 3,
  kGRelease = 4,
  kGRange = 5,
  kGLink = 6,
};

/// Peak envelope (instant rise, 10 ms fall) against two thresholds: opens
/// when it reaches threshold_db, closes when it has stayed below
/// threshold_db - hysteresis_db for hold_ms. The gain glides in dB toward 0
/// (open, attack_ms) or range_db (closed, release_ms).
class GateProcessor final : public rt::Processor {
 public:
  GateProcessor(const std::map<std::string, model::ParamValue>& p, double rate_hz, int channels)
      : channels_(channels), rate_hz_(rate_hz), a_env_(TimeConstantCoef(10.0, rate_hz)) {
    params_[kGThreshold].store(GetNumber(p, "threshold_db"));
    params_[kGHysteresis].store(GetNumber(p, "hysteresis_db"));
    params_[kGHold].store(GetNumber(p, "hold_ms"));
    params_[kGAttack].store(GetNumber(p, "attack_ms"));
    params_[kGRelease].store(GetNumber(p, "release_ms"));
    params_[kGRange].store(GetNumber(p, "range_db"));
    params_[kGLink].store(GetBool(p, "link") ? 1.0 : 0.0);
    std::fill(gain_db_, gain_db_ + kMax, GetNumber(p, "range_db"));
    linked_ = GetBool(p, "link");
  }

  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    const double open_at = std::pow(10.0, Load(params_[kGThreshold]) / 20.0);
    const double close_at =
        std::pow(10.0, (Load(params_[kGThreshold]) - Load(params_[kGHysteresis])) / 20.0);
    const auto hold = static_cast<uint32_t>(Load(params_[kGHold]) * rate_hz_ / 1000.0);
    const double a_att = TimeConstantCoef(Load(params_[kGAttack]), rate_hz_);
    const double a_rel = TimeConstantCoef(Load(params_[kGRelease]), rate_hz_);
    const double range = Load(params_[kGRange]);
    const bool link = Load(params_[kGLink]) != 0.0;
    if (link != linked_) {
      // Linking: the one detector takes the loudest envelope and the most
      // open state; unlinking: every channel starts from the linked state.
      if (link) {
        for (int ch = 1; ch < channels_; ++ch) {
          env_[0] = std::max(env_[0], env_[ch]);
          gain_db_[0] = std::max(gain_db_[0], gain_db_[ch]);
          hold_left_[0] = std::max(hold_left_[0], hold_left_[ch]);
          open_[0] = open_[0] || open_[ch];
        }
      } else {
        std::fill(env_ + 1, env_ + channels_, env_[0]);
        std::fill(gain_db_ + 1, gain_db_ + channels_, gain_db_[0]);
        std::fill(hold_left_ + 1, hold_left_ + channels_, hold_left_[0]);
        std::fill(open_ + 1, open_ + channels_, open_[0]);
      }
      linked_ = link;
    }
    const int detectors = link ? 1 : channels_;
    for (uint32_t n = 0; n < frames; ++n) {
      for (int d = 0; d < detectors; ++d) {
        env_[d] = std::max(Level(in, channels_, d, n, link), env_[d] * a_env_);
        if (env_[d] >= open_at) {
          open_[d] = true;
          hold_left_[d] = hold;
        } else if (open_[d] && env_[d] < close_at) {
          if (hold_left_[d] > 0) {
            --hold_left_[d];
          } else {
            open_[d] = false;
          }
        } else if (open_[d]) {
          hold_left_[d] = hold;  // between the thresholds: stays open
        }
        const double target = open_[d] ? 0.0 : range;
        double& g = gain_db_[d];
        const double a = target > g ? a_att : a_rel;
        g = a * g + (1.0 - a) * target;
        const auto gain = g <= -120.0 ? 0.0f : static_cast<float>(std::pow(10.0, g / 20.0));
        ApplyGain(in, out, channels_, d, n, link, gain);
      }
    }
  }

  void SetParam(uint32_t param, uint32_t, double value) noexcept override {
    if (param <= kGLink) params_[param].store(value, std::memory_order_relaxed);
  }

 private:
  int channels_;
  double rate_hz_;
  double a_env_;
  std::atomic<double> params_[kGLink + 1];
  double env_[kMax] = {};
  double gain_db_[kMax] = {};
  bool open_[kMax] = {};
  uint32_t hold_left_[kMax] = {};
  bool linked_ = true;  // audio thread: the link in force last period
};

}  // namespace

std::shared_ptr<model::NodeKind> MakeCompressorKind() {
  return std::make_shared<TableKind>(
      "compressor",
      "Downward compressor: soft-knee gain computer and attack/release smoothing in dB "
      "(Giannoulis, Massberg, Reiss, JAES 2012), makeup gain, stereo link.",
      std::vector<model::ParamDesc>{
          NumberParam("threshold_db", -80.0, 0.0, -20.0, "dB", "level where compression starts"),
          NumberParam("ratio", 1.0, 100.0, 4.0, "", "input dB per output dB above the threshold"),
          NumberParam("knee_db", 0.0, 24.0, 6.0, "dB", "width of the soft knee (0: hard)"),
          NumberParam("attack_ms", 0.05, 500.0, 10.0, "ms",
                      "time constant while the gain reduction grows"),
          NumberParam("release_ms", 1.0, 5000.0, 100.0, "ms",
                      "time constant while the gain reduction shrinks"),
          NumberParam("makeup_db", -24.0, 40.0, 0.0, "dB", "gain after compression (glides)"),
          BoolParam("link", true, "one gain for all channels from the loudest")},
      InOutLayout,
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        return std::make_unique<CompressorProcessor>(p, f.sample_rate_hz, spec.channels);
      });
}

std::shared_ptr<model::NodeKind> MakeLimiterKind() {
  return std::make_shared<TableKind>(
      "limiter",
      "Lookahead peak limiter: no sample leaves above ceiling_db; the lookahead is the node's "
      "latency.",
      std::vector<model::ParamDesc>{
          NumberParam("ceiling_db", -40.0, 0.0, -1.0, "dBFS", "highest sample level out"),
          NumberParam("lookahead_ms", 0.1, 20.0, 5.0, "ms",
                      "how far ahead the gain falls (the node's latency)", /*live=*/false),
          NumberParam("release_ms", 1.0, 5000.0, 100.0, "ms", "time constant of the recovery")},
      InOutLayout,
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        return std::make_unique<LimiterProcessor>(
            GetNumber(p, "ceiling_db"), GetNumber(p, "lookahead_ms"), GetNumber(p, "release_ms"),
            f.sample_rate_hz, spec.channels);
      });
}

std::shared_ptr<model::NodeKind> MakeGateKind() {
  return std::make_shared<TableKind>(
      "gate",
      "Noise gate: opens at threshold_db, closes below threshold_db - hysteresis_db after "
      "hold_ms; attenuates by range_db when closed.",
      std::vector<model::ParamDesc>{
          NumberParam("threshold_db", -100.0, 0.0, -50.0, "dB", "level that opens the gate"),
          NumberParam("hysteresis_db", 0.0, 40.0, 6.0, "dB",
                      "the gate closes this far below the threshold"),
          NumberParam("hold_ms", 0.0, 5000.0, 50.0, "ms",
                      "time below the closing level before it closes"),
          NumberParam("attack_ms", 0.05, 500.0, 1.0, "ms", "time constant of opening"),
          NumberParam("release_ms", 1.0, 5000.0, 100.0, "ms", "time constant of closing"),
          NumberParam("range_db", -120.0, 0.0, -120.0, "dB", "gain when closed (-120: silence)"),
          BoolParam("link", true, "one gate for all channels from the loudest")},
      InOutLayout,
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        return std::make_unique<GateProcessor>(p, f.sample_rate_hz, spec.channels);
      });
}

}  // namespace aers::dsp
