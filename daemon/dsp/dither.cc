// dither: requantizes to `bits` (the grid of a 16/24-bit sink, full scale
// +-1) with TPDF dither of +-1 LSB, optionally with first-order noise
// shaping (error feedback), so that what a 16-bit device or file keeps of
// the signal carries no distortion correlated with it.
//
// TPDF at +-1 LSB makes the first two moments of the total error independent
// of the signal: mean 0, power LSB^2/4 (quantization LSB^2/12 plus dither
// LSB^2/6). S. P. Lipshitz, R. A. Wannamaker, J. Vanderkooy, "Quantization
// and Dither: A Theoretical Survey", JAES 40(5), 1992. With `shaping:
// first_order` the error fed back gives the output error e[n] - e[n-1]:
// noise moved up by (1 - z^-1), +6 dB/octave, out of the low and middle
// frequencies.
#include "rt/dither.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "dsp/kind_base.h"

namespace aers::dsp {
namespace {

enum DitherParam : uint32_t { kBits = 0, kShaping = 1 };

class DitherProcessor final : public rt::Processor {
 public:
  DitherProcessor(int bits, int shaping, int channels) : channels_(channels) {
    bits_.store(bits);
    shaping_.store(shaping);
    for (int ch = 0; ch < channels; ++ch) {
      // A different sequence per channel: uncorrelated noise between them.
      rng_[ch] = rt::TpdfDither(0x9E3779B9u + 0x85EBCA6Bu * static_cast<uint32_t>(ch + 1));
    }
  }

  /// Audio thread. Wait-free. Every output sample is a multiple of 2^-(bits-1)
  /// within [-1, 1 - 2^-(bits-1)].
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    const int bits = bits_.load(std::memory_order_relaxed);
    const bool shaped = shaping_.load(std::memory_order_relaxed) != 0;
    const double steps = std::ldexp(1.0, bits - 1);  // LSBs per unit of full scale
    const double lsb = 1.0 / steps;
    const double top = 1.0 - lsb;
    for (int ch = 0; ch < channels_; ++ch) {
      double e = shaped ? error_[ch] : 0.0;
      for (uint32_t n = 0; n < frames; ++n) {
        const double v = static_cast<double>(in[ch][n]) - e;
        const double d = static_cast<double>(rng_[ch].Next());
        const double q = std::clamp(std::nearbyint(v * steps + d) * lsb, -1.0, top);
        if (shaped) e = q - v;
        out[ch][n] = static_cast<float>(q);
      }
      // Non-finite or clipped errors would be fed back for ever: bounded.
      error_[ch] = std::isfinite(e) ? std::clamp(e, -2.0 * lsb, 2.0 * lsb) : 0.0;
    }
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t, double value) noexcept override {
    if (param == kBits) bits_.store(static_cast<int>(value), std::memory_order_relaxed);
    if (param == kShaping) shaping_.store(static_cast<int>(value), std::memory_order_relaxed);
  }

 private:
  int channels_;
  std::atomic<int> bits_{16};
  std::atomic<int> shaping_{0};
  rt::TpdfDither rng_[model::kMaxChannels];
  double error_[model::kMaxChannels] = {};
};

}  // namespace

std::shared_ptr<model::NodeKind> MakeDitherKind() {
  model::ParamDesc bits =
      NumberParam("bits", 8, 24, 16, "bits", "word length of the sink: the grid is 2^-(bits-1)");
  bits.type = model::ParamType::kInteger;
  model::ParamDesc shaping;
  shaping.name = "shaping";
  shaping.type = model::ParamType::kEnum;
  shaping.choices = {"none", "first_order"};
  shaping.default_value = std::string("none");
  shaping.help = "noise shaping: none (white) or first_order (error feedback, +6 dB/octave)";
  return std::make_shared<TableKind>(
      "dither",
      "Requantizes to a bits-deep grid with TPDF dither (+-1 LSB), optionally noise-shaped: the "
      "last node before a 16- or 24-bit sink.",
      std::vector<model::ParamDesc>{bits, shaping}, InOutLayout,
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat&) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        return std::make_unique<DitherProcessor>(
            static_cast<int>(GetNumber(p, "bits")),
            std::get<std::string>(p.at("shaping")) == "first_order" ? 1 : 0, spec.channels);
      });
}

}  // namespace aers::dsp
