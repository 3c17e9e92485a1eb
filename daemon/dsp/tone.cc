// tone: sine generator; frequency and level glide.
#include <cmath>
#include <numbers>

#include "dsp/kind_base.h"
#include "dsp/smooth.h"

namespace aers::dsp {
namespace {

enum ToneParam : uint32_t { kFreqHz = 0, kLevelDb = 1 };

class ToneProcessor final : public rt::Processor {
 public:
  ToneProcessor(int channels, double freq_hz, double level_db, double sample_rate_hz)
      : channels_(channels),
        sample_rate_hz_(sample_rate_hz),
        freq_target_(freq_hz),
        freq_(freq_hz),
        level_(static_cast<float>(DbToGain(level_db)), sample_rate_hz) {}

  /// Audio thread. Wait-free.
  void Process(const float* const*, float* const* out, uint32_t frames) noexcept override {
    const double target = freq_target_.load(std::memory_order_relaxed);
    // Frequency glides per block in the log domain; phase stays continuous.
    if (freq_ != target) {
      const double coef = 1.0 - std::exp(-static_cast<double>(frames) / (0.01 * sample_rate_hz_));
      freq_ = std::exp(std::log(freq_) + (std::log(target) - std::log(freq_)) * coef);
      if (std::fabs(freq_ - target) < 1e-3) freq_ = target;
    }
    const double inc = freq_ / sample_rate_hz_;
    const bool moving = level_.Moving();
    for (uint32_t n = 0; n < frames; ++n) {
      const float g = moving ? level_.Next() : level_.value();
      const auto v =
          static_cast<float>(static_cast<double>(g) * std::sin(2.0 * std::numbers::pi * phase_));
      for (int ch = 0; ch < channels_; ++ch) out[ch][n] = v;
      phase_ += inc;
      if (phase_ >= 1.0) phase_ -= 1.0;
    }
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t, double value) noexcept override {
    if (param == kFreqHz) freq_target_.store(value, std::memory_order_relaxed);
    if (param == kLevelDb) level_.Set(static_cast<float>(DbToGain(value)));
  }

 private:
  int channels_;
  double sample_rate_hz_;
  std::atomic<double> freq_target_;
  double freq_;         // audio thread
  double phase_ = 0.0;  // audio thread, cycles in [0, 1)
  SmoothedGain level_;
};

}  // namespace

std::shared_ptr<model::NodeKind> MakeToneKind() {
  return std::make_shared<TableKind>(
      "tone", "Sine generator (every channel the same); no inputs.",
      std::vector<model::ParamDesc>{
          NumberParam("freq_hz", 0.1, 24000.0, 440.0, "Hz", "frequency"),
          NumberParam("level_db", -120.0, 0.0, -20.0, "dB", "peak level (0 dB = full scale)")},
      [](const model::NodeSpec& spec) {
        model::NodeLayout l;
        l.outputs.push_back({"out", spec.channels});
        return l;
      },
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        return std::make_unique<ToneProcessor>(spec.channels, GetNumber(p, "freq_hz"),
                                               GetNumber(p, "level_db"), f.sample_rate_hz);
      });
}

}  // namespace aers::dsp
