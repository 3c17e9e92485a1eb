// biquad: one RBJ cookbook section per channel with gliding parameters.
// Chains of biquads are fused by the plan compiler (see rt::RunCascade).
#include "rt/biquad.h"

#include "dsp/kind_base.h"

namespace aers::dsp {
namespace {

enum BiquadParam : uint32_t { kType = 0, kFreqHz = 1, kQ = 2, kGainDb = 3 };

const std::vector<std::string>& TypeNames() {
  // In rt::BiquadType order.
  static const std::vector<std::string> names = {"lowpass",  "highpass",  "bandpass",  "notch",
                                                 "peaking",  "lowshelf",  "highshelf", "allpass",
                                                 "lowpass1", "highpass1", "allpass1"};
  return names;
}

class BiquadProcessor final : public rt::Processor {
 public:
  BiquadProcessor(const rt::BiquadParams& params, double sample_rate_hz, int channels)
      : section_(params, sample_rate_hz, channels) {
    section_.counters = &signal;
  }

  /// Audio thread. Wait-free.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    rt::BiquadSection* s = &section_;
    rt::RunCascade(&s, 1, section_.channels(), in, out, frames);
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t, double value) noexcept override {
    switch (param) {
      case kType:
        section_.SetType(static_cast<rt::BiquadType>(static_cast<int>(value)));
        break;
      case kFreqHz:
        section_.SetFreqHz(value);
        break;
      case kQ:
        section_.SetQ(value);
        break;
      case kGainDb:
        section_.SetGainDb(value);
        break;
      default:
        break;
    }
  }

  rt::BiquadSection* AsBiquad() noexcept override { return &section_; }

 private:
  rt::BiquadSection section_;
};

}  // namespace

std::shared_ptr<model::NodeKind> MakeBiquadKind() {
  model::ParamDesc type;
  type.name = "type";
  type.type = model::ParamType::kEnum;
  type.choices = TypeNames();
  type.default_value = std::string("lowpass");
  type.help =
      "filter shape: second order from the RBJ Audio EQ Cookbook; lowpass1, highpass1, "
      "allpass1 first order (bilinear transform, q and gain_db unused)";
  return std::make_shared<TableKind>(
      "biquad",
      "Second-order IIR filter: lowpass, highpass, bandpass, notch, peaking, lowshelf, "
      "highshelf, allpass; first-order lowpass1, highpass1, allpass1. Parameter changes glide.",
      std::vector<model::ParamDesc>{
          type,
          NumberParam("freq_hz", 10.0, 40000.0, 1000.0, "Hz",
                      "corner/centre frequency (kept below Nyquist)"),
          NumberParam("q", 0.025, 40.0, 0.7071, "", "quality factor"),
          NumberParam("gain_db", -48.0, 48.0, 0.0, "dB", "peaking and shelf gain")},
      InOutLayout,
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        const auto& names = TypeNames();
        const auto& type_name = std::get<std::string>(p.at("type"));
        rt::BiquadParams bp;
        bp.type = static_cast<rt::BiquadType>(std::find(names.begin(), names.end(), type_name) -
                                              names.begin());
        bp.freq_hz = GetNumber(p, "freq_hz");
        bp.q = GetNumber(p, "q");
        bp.gain_db = GetNumber(p, "gain_db");
        return std::make_unique<BiquadProcessor>(bp, f.sample_rate_hz, spec.channels);
      });
}

}  // namespace aers::dsp
