// volume: the master fader of a DSP box. A dB volume and mute that glide
// per sample in the dB domain (no zipper noise however fast it is moved),
// optional loudness compensation, and a start-up limit the daemon applies
// when it starts.
//
// Loudness compensation follows CamillaDSP's Loudness filter (documented in
// its README, "Loudness"): a low shelf at 70 Hz and a high shelf at 3500 Hz
// (RBJ cookbook, Q 0.7071) boosted by
//   boost = clamp((reference_db - volume_db) / 20, 0, 1) * {low,high}_boost_db,
// so nothing changes at or above the reference level and the full boost
// applies 20 dB below it: the ear's lower sensitivity to bass and treble at
// low listening levels (ISO 226 equal-loudness contours).
#include <algorithm>
#include <atomic>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "dsp/kind_base.h"
#include "rt/biquad.h"

namespace aers::dsp {
namespace {

enum VolumeParam : uint32_t {
  kVolumeDb = 0,
  kMute = 1,
  kRampMs = 2,
  kLoudness = 3,
  kLoudnessReferenceDb = 4,
  kLoudnessLowBoostDb = 5,
  kLoudnessHighBoostDb = 6,
  kStartupMaxDb = 7,
};

constexpr double kSilenceDb = -120.0;  // the glide's floor; the gain is 0 there
constexpr double kLowShelfHz = 70.0;
constexpr double kHighShelfHz = 3500.0;

struct Settings {
  double volume_db = 0.0;
  bool mute = false;
  double ramp_ms = 50.0;
  bool loudness = false;
  double reference_db = -25.0;
  double low_boost_db = 7.0;
  double high_boost_db = 7.0;
};

/// Loudness boost (dB) of one shelf at `volume_db`.
double LoudnessBoostDb(const Settings& s, double boost_db) {
  if (!s.loudness) return 0.0;
  return std::clamp((s.reference_db - s.volume_db) / 20.0, 0.0, 1.0) * boost_db;
}

class VolumeProcessor final : public rt::Processor {
 public:
  VolumeProcessor(const Settings& s, double sample_rate_hz, int channels)
      : channels_(channels),
        sample_rate_hz_(sample_rate_hz),
        low_({rt::BiquadType::kLowshelf, kLowShelfHz, 0.7071, LoudnessBoostDb(s, s.low_boost_db)},
             sample_rate_hz, channels),
        high_(
            {rt::BiquadType::kHighshelf, kHighShelfHz, 0.7071, LoudnessBoostDb(s, s.high_boost_db)},
            sample_rate_hz, channels),
        current_db_(Target(s.volume_db, s.mute)),
        gain_(DbToGain(current_db_)) {
    low_.counters = &signal;
    high_.counters = &signal;
    volume_db_.store(s.volume_db);
    mute_.store(s.mute);
    ramp_ms_.store(s.ramp_ms);
    loudness_.store(s.loudness);
    reference_db_.store(s.reference_db);
    low_boost_db_.store(s.low_boost_db);
    high_boost_db_.store(s.high_boost_db);
    sections_[0] = &low_;
    sections_[1] = &high_;
  }

  /// Audio thread. Wait-free. The shelves (0 dB when loudness is off: an
  /// identity), then the gain, gliding sample by sample toward the target.
  /// The shelves' boost follows the gliding volume, not its target: set
  /// every 32 frames while the volume moves (the sections add a 20 ms glide
  /// of their own), so bass and treble never rise before the level falls.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    const double target =
        Target(volume_db_.load(std::memory_order_relaxed), mute_.load(std::memory_order_relaxed));
    if (current_db_ == target) {
      FollowVolume(current_db_);
      rt::RunCascade(sections_, 2, channels_, in, out, frames, &cache_);
      const auto g = static_cast<float>(gain_);
      for (int ch = 0; ch < channels_; ++ch) {
        for (uint32_t n = 0; n < frames; ++n) out[ch][n] *= g;
      }
      return;
    }
    // One-pole glide in dB with time constant ramp_ms; the gain follows it
    // per sample (exp per sample, only while moving). Snaps within 0.001 dB.
    const double ramp_ms = ramp_ms_.load(std::memory_order_relaxed);
    const double coef =
        ramp_ms <= 0.0 ? 1.0 : 1.0 - std::exp(-1000.0 / (ramp_ms * sample_rate_hz_));
    const float* src[model::kMaxChannels];
    float* dst[model::kMaxChannels];
    for (uint32_t offset = 0; offset < frames; offset += kSubBlock) {
      const uint32_t count = std::min(kSubBlock, frames - offset);
      FollowVolume(current_db_);
      for (int ch = 0; ch < channels_; ++ch) {
        src[ch] = in[ch] + offset;
        dst[ch] = out[ch] + offset;
      }
      rt::RunCascade(sections_, 2, channels_, src, dst, count, &cache_);
      for (uint32_t n = 0; n < count; ++n) {
        current_db_ += (target - current_db_) * coef;
        if (std::fabs(target - current_db_) < 1e-3) current_db_ = target;
        gain_ = current_db_ <= kSilenceDb ? 0.0 : std::pow(10.0, current_db_ / 20.0);
        const auto g = static_cast<float>(gain_);
        for (int ch = 0; ch < channels_; ++ch) dst[ch][n] *= g;
      }
    }
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t, double value) noexcept override {
    switch (param) {
      case kVolumeDb:
        volume_db_.store(value, std::memory_order_relaxed);
        break;
      case kMute:
        mute_.store(value != 0.0, std::memory_order_relaxed);
        break;
      case kRampMs:
        ramp_ms_.store(value, std::memory_order_relaxed);
        break;
      case kLoudness:
        loudness_.store(value != 0.0, std::memory_order_relaxed);
        break;
      case kLoudnessReferenceDb:
        reference_db_.store(value, std::memory_order_relaxed);
        break;
      case kLoudnessLowBoostDb:
        low_boost_db_.store(value, std::memory_order_relaxed);
        break;
      case kLoudnessHighBoostDb:
        high_boost_db_.store(value, std::memory_order_relaxed);
        break;
      default:
        break;  // kStartupMaxDb: the daemon's, at start
    }
  }

 private:
  static constexpr uint32_t kSubBlock = 32;

  // Audio thread. Points the shelves at the loudness boost for `volume_db`.
  void FollowVolume(double volume_db) noexcept {
    Settings s;
    s.volume_db = volume_db;
    s.loudness = loudness_.load(std::memory_order_relaxed);
    s.reference_db = reference_db_.load(std::memory_order_relaxed);
    low_.SetGainDb(LoudnessBoostDb(s, low_boost_db_.load(std::memory_order_relaxed)));
    high_.SetGainDb(LoudnessBoostDb(s, high_boost_db_.load(std::memory_order_relaxed)));
  }

  static double Target(double volume_db, bool mute) {
    return mute ? kSilenceDb : std::max(volume_db, kSilenceDb);
  }

  int channels_;
  double sample_rate_hz_;
  rt::BiquadSection low_;
  rt::BiquadSection high_;
  rt::BiquadSection* sections_[2] = {};
  rt::CascadeCache cache_;
  double current_db_;  // audio thread
  double gain_;        // audio thread
  std::atomic<double> volume_db_{0.0};
  std::atomic<bool> mute_{false};
  std::atomic<double> ramp_ms_{50.0};
  std::atomic<bool> loudness_{false};
  std::atomic<double> reference_db_{-25.0};
  std::atomic<double> low_boost_db_{7.0};
  std::atomic<double> high_boost_db_{7.0};
};

}  // namespace

std::shared_ptr<model::NodeKind> MakeVolumeKind() {
  return std::make_shared<TableKind>(
      "volume",
      "Master volume in dB with mute, gliding per sample; optional loudness compensation "
      "(bass and treble shelves that rise as the volume falls below a reference); a start-up "
      "limit applied when the daemon starts.",
      std::vector<model::ParamDesc>{
          NumberParam("volume_db", -120.0, 12.0, 0.0, "dB", "volume; -120 dB is silence"),
          BoolParam("mute", false, "silence, gliding down and back like the volume"),
          NumberParam("ramp_ms", 0.0, 2000.0, 50.0, "ms",
                      "time constant of the volume's glide in dB (0: a step)"),
          BoolParam("loudness", false, "loudness compensation (shelves at 70 Hz and 3.5 kHz)"),
          NumberParam("loudness_reference_db", -60.0, 12.0, -25.0, "dB",
                      "volume at and above which loudness compensation adds nothing"),
          NumberParam("loudness_low_boost_db", 0.0, 20.0, 7.0, "dB",
                      "bass boost at 20 dB or more below the reference"),
          NumberParam("loudness_high_boost_db", 0.0, 20.0, 7.0, "dB",
                      "treble boost at 20 dB or more below the reference"),
          NumberParam(
              "startup_max_db", -120.0, 12.0, 12.0, "dB",
              "at start, reset and reload, volume_db above this is set to it (12: no limit)")},
      InOutLayout,
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        Settings s;
        s.volume_db = GetNumber(p, "volume_db");
        s.mute = GetBool(p, "mute");
        s.ramp_ms = GetNumber(p, "ramp_ms");
        s.loudness = GetBool(p, "loudness");
        s.reference_db = GetNumber(p, "loudness_reference_db");
        s.low_boost_db = GetNumber(p, "loudness_low_boost_db");
        s.high_boost_db = GetNumber(p, "loudness_high_boost_db");
        return std::make_unique<VolumeProcessor>(s, f.sample_rate_hz, spec.channels);
      },
      nullptr,
      [](model::NodeSpec& spec) -> std::string {
        auto limit = spec.params.find("startup_max_db");
        const double* max =
            limit == spec.params.end() ? nullptr : std::get_if<double>(&limit->second);
        if (max == nullptr) return {};
        const double max_db = *max;
        auto vol = spec.params.find("volume_db");
        const double* set = vol == spec.params.end() ? nullptr : std::get_if<double>(&vol->second);
        const double volume_db = set != nullptr ? *set : 0.0;
        if (volume_db <= max_db) return {};
        spec.params["volume_db"] = max_db;
        return absl::StrCat("volume_db ", volume_db, " dB is above startup_max_db; starting at ",
                            max_db, " dB");
      });
}

}  // namespace aers::dsp
