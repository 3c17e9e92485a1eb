#include "dsp/meter.h"

#include <ebur128.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "dsp/kind_base.h"

namespace aers::dsp {

namespace {

constexpr int kLoudnessMode = EBUR128_MODE_M | EBUR128_MODE_S | EBUR128_MODE_I | EBUR128_MODE_LRA |
                              EBUR128_MODE_TRUE_PEAK | EBUR128_MODE_HISTOGRAM;
constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
constexpr float kLoudnessClamp = 1e4f;
// Block energies below this (-200 LUFS) are the filters' decay after the
// signal stopped, not a level: they read as silence (-inf).
constexpr double kSilentEnergy = 1e-20;

// libebur128 reports silence as -HUGE_VAL; anything else it returns is finite.
float ToFloat(double v) noexcept {
  return static_cast<float>(v);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MeterProcessor>> MeterProcessor::Create(
    int channels, uint32_t window_frames, const rt::StreamFormat& format, bool loudness) {
  if (!loudness) {
    return std::unique_ptr<MeterProcessor>(
        new MeterProcessor(std::max(channels, 1), window_frames, 0, 1));
  }
  if (channels < 1 || channels > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("channels: the loudness meter measures 1 to 64 channels, not ", channels));
  }
  const double rate = std::round(format.sample_rate_hz);
  if (!(rate >= 1000.0 && rate <= 2822400.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the loudness meter cannot run at ", format.sample_rate_hz, " Hz"));
  }
  const auto rate_hz = static_cast<unsigned long>(rate);
  const auto step = static_cast<uint32_t>((rate_hz + 5) / 10);  // libebur128's 100 ms
  std::unique_ptr<MeterProcessor> m(
      new MeterProcessor(channels, window_frames, format.max_period_frames, step));
  m->sample_rate_hz_ = rate_hz;
  m->loudness_ = true;
  m->rt_.state = m->NewLoudnessState();
  if (m->rt_.state == nullptr) {
    return absl::ResourceExhaustedError("cannot allocate the loudness meter's state");
  }
  return m;
}

MeterProcessor::MeterProcessor(int channels, uint32_t window_frames, uint32_t max_period_frames,
                               uint32_t loudness_step_frames)
    : channels_(channels),
      window_frames_(std::max<uint32_t>(1, window_frames)),
      ch_(std::make_unique<Channel[]>(static_cast<size_t>(channels))),
      momentary_lufs_(kMinusInf),
      short_term_lufs_(kMinusInf),
      integrated_lufs_(kMinusInf) {
  rt_.max_period_frames = std::max<uint32_t>(1, max_period_frames);
  rt_.step_frames = std::max<uint32_t>(1, loudness_step_frames);
  if (max_period_frames == 0) return;  // no loudness: no buffer
  const size_t n = static_cast<size_t>(rt_.max_period_frames) * static_cast<size_t>(channels);
  rt_.interleaved = std::make_unique<float[]>(n);  // value-initialised: touched here
}

MeterProcessor::~MeterProcessor() {
  // The audio thread no longer runs this instance.
  const int phase = reset_phase_.load(std::memory_order_acquire);
  if (phase == kReady && spare_ != nullptr) ebur128_destroy(&spare_);
  if (phase == kSwapped && retired_ != nullptr) ebur128_destroy(&retired_);
  if (rt_.state != nullptr) ebur128_destroy(&rt_.state);
}

ebur128_state* MeterProcessor::NewLoudnessState() const noexcept {
  ebur128_state* s =
      ebur128_init(static_cast<unsigned int>(channels_), sample_rate_hz_, kLoudnessMode);
  if (s == nullptr) return nullptr;
  // libebur128 leaves channels beyond the sixth unmeasured; count them.
  for (int c = 6; c < channels_; ++c) {
    ebur128_set_channel(s, static_cast<unsigned int>(c), EBUR128_LEFT);
  }
  return s;
}

bool MeterProcessor::ResetLoudness() noexcept {
  if (!loudness_) return false;
  absl::MutexLock lock(&reset_mu_);
  int phase = reset_phase_.load(std::memory_order_acquire);
  if (phase == kReady) return true;  // a fresh state already waits for the audio thread
  if (phase == kSwapped) {
    ebur128_destroy(&retired_);
    reset_phase_.store(kIdle, std::memory_order_relaxed);
  }
  spare_ = NewLoudnessState();
  if (spare_ == nullptr) return false;
  reset_phase_.store(kReady, std::memory_order_release);
  return true;
}

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
  if (!loudness_) return;

  // Loudness. A requested reset swaps in the spare state prepared off this
  // thread (wait-free; without a spare the reset waits for the next period).
  bool publish = false;
  bool reset_now = false;
  if (reset_phase_.load(std::memory_order_acquire) == kReady) {
    retired_ = rt_.state;
    rt_.state = spare_;
    spare_ = nullptr;
    reset_phase_.store(kSwapped, std::memory_order_release);
    loudness_resets_.fetch_add(1, std::memory_order_release);
    rt_.since_publish = 0;
    publish = true;
    reset_now = true;
  }
  // libebur128 takes interleaved frames; non-finite samples (counted above)
  // enter as 0 so they cannot latch its filters.
  const uint32_t n = std::min(frames, rt_.max_period_frames);
  float* il = rt_.interleaved.get();
  const auto nch = static_cast<size_t>(channels_);
  for (int c = 0; c < channels_; ++c) {
    const float* x = in[c];
    for (uint32_t i = 0; i < n; ++i) {
      // Clamped to +-1e4 (+80 dBFS): beyond it libebur128's filters and
      // true-peak interpolator could overflow to Inf and latch.
      il[i * nch + static_cast<size_t>(c)] =
          rt::IsNonFinite(x[i]) ? 0.0f : std::clamp(x[i], -kLoudnessClamp, kLoudnessClamp);
    }
  }
  ebur128_add_frames_float(rt_.state, il, n);  // histogram mode: cannot fail
  rt_.since_publish += n;
  if (rt_.since_publish >= rt_.step_frames) {
    rt_.since_publish %= rt_.step_frames;
    publish = true;
  }
  if (publish) PublishLoudness(reset_now);
}

void MeterProcessor::PublishLoudness(bool after_reset) noexcept {
  ebur128_state* s = rt_.state;
  // Momentary (400 ms) and short-term (3 s) from the energies of the last
  // 4 and 30 blocks of 100 ms: one 100 ms sum per publication instead of
  // libebur128 summing 400 ms and 3 s of audio every time (the 3 s sum took
  // 30x longer and came in one period: a spike of ~0.3 ms per stereo meter,
  // ~10 ms at 64 channels). Block edges follow the periods, so a block may
  // be up to one period longer or shorter than 100 ms; the mean energy of a
  // steady signal does not change, and a step is placed within a period.
  // Energy from loudness: BS.1770-4, L = -0.691 + 10 log10(energy).
  double v = -HUGE_VAL;
  if (after_reset) {
    std::fill(std::begin(rt_.block_energy), std::end(rt_.block_energy), 0.0);
    rt_.blocks = 0;
  } else if (ebur128_loudness_window(s, 100, &v) == EBUR128_SUCCESS) {
    const double e = std::isfinite(v) ? std::pow(10.0, (v + 0.691) / 10.0) : 0.0;
    rt_.block_energy[rt_.blocks % kShortTermBlocks] = e;
    ++rt_.blocks;
  }
  const auto mean_of_last = [&](uint64_t count) {
    double sum = 0.0;
    for (uint64_t i = 1; i <= count; ++i) {
      sum += rt_.block_energy[(rt_.blocks + kShortTermBlocks - i) % kShortTermBlocks];
    }
    return sum / static_cast<double>(count);
  };
  const auto lufs = [](double energy) {
    return energy > kSilentEnergy ? static_cast<float>(-0.691 + 10.0 * std::log10(energy))
                                  : kMinusInf;
  };
  momentary_lufs_.store(lufs(mean_of_last(kMomentaryBlocks)), std::memory_order_relaxed);
  short_term_lufs_.store(lufs(mean_of_last(kShortTermBlocks)), std::memory_order_relaxed);
  v = -HUGE_VAL;
  if (ebur128_loudness_global(s, &v) == EBUR128_SUCCESS) {
    integrated_lufs_.store(ToFloat(v), std::memory_order_relaxed);
  }
  v = 0.0;
  if (ebur128_loudness_range(s, &v) == EBUR128_SUCCESS) {
    range_lu_.store(ToFloat(v), std::memory_order_relaxed);
  }
  for (int c = 0; c < channels_; ++c) {
    v = 0.0;
    if (ebur128_true_peak(s, static_cast<unsigned int>(c), &v) == EBUR128_SUCCESS) {
      ch_[static_cast<size_t>(c)].true_peak.store(ToFloat(v), std::memory_order_relaxed);
    }
  }
  loudness_updates_.fetch_add(1, std::memory_order_release);
}

float MeterProcessor::peak(int ch) const noexcept {
  return ch_[static_cast<size_t>(ch)].peak.load(std::memory_order_relaxed);
}

float MeterProcessor::rms(int ch) const noexcept {
  return ch_[static_cast<size_t>(ch)].rms.load(std::memory_order_relaxed);
}

float MeterProcessor::true_peak(int ch) const noexcept {
  return ch_[static_cast<size_t>(ch)].true_peak.load(std::memory_order_relaxed);
}

float MeterProcessor::momentary_lufs() const noexcept {
  return momentary_lufs_.load(std::memory_order_relaxed);
}

float MeterProcessor::short_term_lufs() const noexcept {
  return short_term_lufs_.load(std::memory_order_relaxed);
}

float MeterProcessor::integrated_lufs() const noexcept {
  return integrated_lufs_.load(std::memory_order_relaxed);
}

float MeterProcessor::loudness_range_lu() const noexcept {
  return range_lu_.load(std::memory_order_relaxed);
}

std::shared_ptr<model::NodeKind> MakeMeterKind() {
  model::ParamDesc loudness = BoolParam(
      "loudness", false,
      "also measure EBU R128 loudness and true peak (libebur128 on the audio thread: about 50 ns "
      "per frame per channel, and once a second a 3 s sum for the loudness range)");
  loudness.live = false;
  return std::make_shared<TableKind>(
      "meter",
      "Pass-through that measures peak and RMS per channel over a window and, with loudness: "
      "true, EBU R128 loudness (momentary, short-term, integrated, loudness range, true peak).",
      std::vector<model::ParamDesc>{NumberParam("window_ms", 1.0, 10000.0, 300.0, "ms",
                                                "peak/RMS measurement window", /*live=*/false),
                                    loudness},
      InOutLayout,
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        const auto frames =
            static_cast<uint32_t>(std::lround(GetNumber(p, "window_ms") * f.sample_rate_hz / 1000));
        auto m = MeterProcessor::Create(spec.channels, frames, f, GetBool(p, "loudness"));
        if (!m.ok()) return m.status();
        return std::unique_ptr<rt::Processor>(std::move(*m));
      });
}

}  // namespace aers::dsp
