// delay: sample-exact delay up to a configured maximum. Changing the delay
// crossfades from the old tap to the new one (no click, no pitch sweep).
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "dsp/kind_base.h"

namespace aers::dsp {
namespace {

enum DelayParam : uint32_t { kMaxDelayMs = 0, kDelayMs = 1 };

uint32_t MsToFrames(double ms, double sample_rate_hz) {
  return static_cast<uint32_t>(std::lround(ms * sample_rate_hz / 1000.0));
}

float Finite(float x, uint32_t& bad) noexcept {
  if (!rt::IsNonFinite(x)) return x;
  ++bad;
  return 0.0f;
}

class DelayProcessor final : public rt::Processor {
 public:
  DelayProcessor(int channels, uint32_t max_frames, uint32_t delay_frames,
                 const rt::StreamFormat& format)
      : channels_(channels),
        max_frames_(max_frames),
        sample_rate_hz_(format.sample_rate_hz),
        xfade_frames_(std::max<uint32_t>(1, MsToFrames(10.0, format.sample_rate_hz))),
        target_(delay_frames),
        current_(delay_frames) {
    size_t size = 1;
    while (size < static_cast<size_t>(max_frames) + format.max_period_frames + 1) size <<= 1;
    mask_ = size - 1;
    lines_.resize(static_cast<size_t>(channels));
    for (auto& l : lines_) l.assign(size, 0.0f);  // touched now, not on the audio thread
  }

  /// Audio thread. Wait-free, bounded: frames * channels steps.
  /// A non-finite sample never enters the line (it would come out again
  /// delay_ms later): 0 is written instead and counted (rt/signal.h).
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    uint32_t bad = 0;
    for (uint32_t n = 0; n < frames; ++n) {
      if (fade_pos_ == 0) {
        const uint32_t t = target_.load(std::memory_order_relaxed);
        if (t != current_) {
          next_ = t;
          fade_pos_ = 1;
        }
      }
      const size_t w = write_pos_;
      if (fade_pos_ == 0) {
        for (int ch = 0; ch < channels_; ++ch) {
          float* line = lines_[static_cast<size_t>(ch)].data();
          line[w] = Finite(in[ch][n], bad);
          out[ch][n] = line[(w - current_) & mask_];
        }
      } else {
        const float a = static_cast<float>(fade_pos_) / static_cast<float>(xfade_frames_);
        for (int ch = 0; ch < channels_; ++ch) {
          float* line = lines_[static_cast<size_t>(ch)].data();
          line[w] = Finite(in[ch][n], bad);
          out[ch][n] = (1.0f - a) * line[(w - current_) & mask_] + a * line[(w - next_) & mask_];
        }
        if (++fade_pos_ > xfade_frames_) {
          current_ = next_;
          fade_pos_ = 0;
        }
      }
      write_pos_ = (w + 1) & mask_;
    }
    signal.Add(bad, 0);
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t, double value) noexcept override {
    if (param == kDelayMs) {
      target_.store(std::min(max_frames_, MsToFrames(value, sample_rate_hz_)),
                    std::memory_order_relaxed);
    }
  }

  uint32_t LatencyFrames() const noexcept override {
    return target_.load(std::memory_order_relaxed);
  }

 private:
  int channels_;
  uint32_t max_frames_;
  double sample_rate_hz_;
  uint32_t xfade_frames_;
  std::atomic<uint32_t> target_;
  std::vector<std::vector<float>> lines_;
  size_t mask_ = 0;
  // Audio thread only:
  size_t write_pos_ = 0;
  uint32_t current_;
  uint32_t next_ = 0;
  uint32_t fade_pos_ = 0;
};

}  // namespace

std::shared_ptr<model::NodeKind> MakeDelayKind() {
  return std::make_shared<TableKind>(
      "delay", "Sample-exact delay (delay_ms rounded to the nearest frame); changes crossfade.",
      std::vector<model::ParamDesc>{
          NumberParam("max_delay_ms", 0.0, 10000.0, 1000.0, "ms",
                      "largest delay this node can be set to (memory is reserved for it)",
                      /*live=*/false),
          NumberParam("delay_ms", 0.0, 10000.0, 0.0, "ms", "delay; at most max_delay_ms")},
      InOutLayout,
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        const uint32_t max_frames = MsToFrames(GetNumber(p, "max_delay_ms"), f.sample_rate_hz);
        const uint32_t frames =
            std::min(max_frames, MsToFrames(GetNumber(p, "delay_ms"), f.sample_rate_hz));
        return std::make_unique<DelayProcessor>(spec.channels, max_frames, frames, f);
      },
      [](const model::NodeSpec& spec, const std::string& prefix,
         std::vector<model::Issue>& issues) {
        auto get = [&](const char* name, double def) {
          auto it = spec.params.find(name);
          const double* d = it == spec.params.end() ? nullptr : std::get_if<double>(&it->second);
          return d ? *d : def;
        };
        const double max_ms = get("max_delay_ms", 1000.0);
        const double ms = get("delay_ms", 0.0);
        if (ms > max_ms) {
          issues.push_back({prefix + ".params.delay_ms",
                            absl::StrCat("delay_ms ", ms, " exceeds max_delay_ms ", max_ms,
                                         "; raise max_delay_ms or lower delay_ms")});
        }
      });
}

}  // namespace aers::dsp
