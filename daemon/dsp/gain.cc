// gain: level change with mute, smoothed so changes never click.
#include "dsp/kind_base.h"
#include "dsp/smooth.h"

namespace aers::dsp {
namespace {

enum GainParam : uint32_t { kGainDb = 0, kMute = 1 };

class GainProcessor final : public rt::Processor {
 public:
  GainProcessor(int channels, double gain_db, bool mute, double sample_rate_hz)
      : channels_(channels),
        gain_db_(gain_db),
        mute_(mute),
        gain_(Effective(gain_db, mute), sample_rate_hz) {}

  /// Audio thread. Wait-free.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    ApplySmoothedGain(gain_, in, out, channels_, frames);
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t, double value) noexcept override {
    if (param == kGainDb) gain_db_.store(value, std::memory_order_relaxed);
    if (param == kMute) mute_.store(value != 0.0, std::memory_order_relaxed);
    gain_.Set(
        Effective(gain_db_.load(std::memory_order_relaxed), mute_.load(std::memory_order_relaxed)));
  }

 private:
  static float Effective(double gain_db, bool mute) {
    return mute ? 0.0f : static_cast<float>(DbToGain(gain_db));
  }
  int channels_;
  std::atomic<double> gain_db_;
  std::atomic<bool> mute_;
  SmoothedGain gain_;
};

}  // namespace

std::shared_ptr<model::NodeKind> MakeGainKind() {
  model::ParamDesc mute;
  mute.name = "mute";
  mute.type = model::ParamType::kBool;
  mute.default_value = false;
  mute.help = "silence the output (smoothed)";
  return std::make_shared<TableKind>(
      "gain", "Level change in dB with mute; changes glide over ~5 ms.",
      std::vector<model::ParamDesc>{
          NumberParam("gain_db", -120.0, 24.0, 0.0, "dB", "gain; -120 dB is silence"), mute},
      InOutLayout,
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        return std::make_unique<GainProcessor>(spec.channels, GetNumber(p, "gain_db"),
                                               GetBool(p, "mute"), f.sample_rate_hz);
      });
}

}  // namespace aers::dsp
