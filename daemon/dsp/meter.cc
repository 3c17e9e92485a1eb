#include "dsp/meter.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "dsp/kind_base.h"

namespace aers::dsp {

MeterProcessor::MeterProcessor(int channels, uint32_t window_frames)
    : channels_(channels),
      window_frames_(std::max<uint32_t>(1, window_frames)),
      ch_(std::make_unique<Channel[]>(static_cast<size_t>(channels))) {}

void MeterProcessor::Process(const float* const* in, float* const* out, uint32_t frames) noexcept {
  for (int c = 0; c < channels_; ++c) std::memcpy(out[c], in[c], frames * sizeof(float));
  uint32_t done = 0;
  uint32_t bad = 0;
  uint32_t over = 0;
  while (done < frames) {
    const uint32_t n = std::min(frames - done, window_frames_ - count_);
    for (int c = 0; c < channels_; ++c) {
      Channel& m = ch_[static_cast<size_t>(c)];
      const float* x = in[c] + done;
      float pk = m.acc_peak;
      double sq = m.acc_sq;
      for (uint32_t i = 0; i < n; ++i) {
        if (rt::IsNonFinite(x[i])) {  // counted, never shown as silence or latched
          ++bad;
          continue;
        }
        const float a = std::fabs(x[i]);
        if (a > 1.0f) ++over;
        pk = std::max(pk, a);
        sq += static_cast<double>(x[i]) * static_cast<double>(x[i]);
      }
      m.acc_peak = pk;
      m.acc_sq = sq;
    }
    count_ += n;
    done += n;
    if (count_ == window_frames_) {
      for (int c = 0; c < channels_; ++c) {
        Channel& m = ch_[static_cast<size_t>(c)];
        m.peak.store(m.acc_peak, std::memory_order_relaxed);
        m.rms.store(static_cast<float>(std::sqrt(m.acc_sq / window_frames_)),
                    std::memory_order_relaxed);
        m.acc_peak = 0.0f;
        m.acc_sq = 0.0;
      }
      count_ = 0;
      windows_.fetch_add(1, std::memory_order_release);
    }
  }
  signal.Add(bad, over);
}

float MeterProcessor::peak(int ch) const noexcept {
  return ch_[static_cast<size_t>(ch)].peak.load(std::memory_order_relaxed);
}

float MeterProcessor::rms(int ch) const noexcept {
  return ch_[static_cast<size_t>(ch)].rms.load(std::memory_order_relaxed);
}

std::shared_ptr<model::NodeKind> MakeMeterKind() {
  return std::make_shared<TableKind>(
      "meter", "Pass-through that measures peak and RMS per channel over a window.",
      std::vector<model::ParamDesc>{NumberParam("window_ms", 1.0, 10000.0, 300.0, "ms",
                                                "measurement window", /*live=*/false)},
      InOutLayout,
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        const auto frames =
            static_cast<uint32_t>(std::lround(GetNumber(p, "window_ms") * f.sample_rate_hz / 1000));
        return std::make_unique<MeterProcessor>(spec.channels, frames);
      });
}

}  // namespace aers::dsp
