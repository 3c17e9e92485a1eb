#include "dsp/impulse_response.h"

#include <kiss_fftr.h>
#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace aers::dsp {
namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};

// Frames after resampling `frames` from `from` to `to` Hz.
size_t ResampledFrames(size_t frames, double from, double to) {
  return static_cast<size_t>(std::ceil(static_cast<double>(frames) * to / from));
}

absl::StatusOr<std::unique_ptr<SNDFILE, SndfileCloser>> Open(const DataFile& file,
                                                             const std::string& shown_as,
                                                             SF_INFO& info) {
  info = {};
  auto fd = OpenDataFile(file, shown_as);
  if (!fd.ok()) return fd.status();
  // libsndfile closes the descriptor with the handle (or on failure).
  std::unique_ptr<SNDFILE, SndfileCloser> f(sf_open_fd(*fd, SFM_READ, &info, SF_TRUE));
  if (!f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", shown_as, "' is not an audio file aersd reads (", sf_strerror(nullptr), ")"));
  }
  return f;
}

absl::Status CheckInfo(const SF_INFO& info, const std::string& shown_as, double stream_rate_hz) {
  if (info.frames <= 0)
    return absl::InvalidArgumentError(absl::StrCat("'", shown_as, "' has no frames"));
  if (info.channels < 1 || info.channels > kMaxImpulseChannels) {
    return absl::InvalidArgumentError(absl::StrCat("'", shown_as, "' has ", info.channels,
                                                   " channels; at most ", kMaxImpulseChannels));
  }
  if (info.samplerate < 1) {
    return absl::InvalidArgumentError(absl::StrCat("'", shown_as, "' has no sample rate"));
  }
  const double seconds = static_cast<double>(info.frames) / info.samplerate;
  if (!(seconds <= kMaxImpulseSeconds)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", shown_as, "' is ", info.frames, " frames at ", info.samplerate, " Hz (",
                     absl::StrFormat("%.2f", seconds), " s); impulse responses are at most ",
                     kMaxImpulseSeconds, " s"));
  }
  // libsamplerate converts by ratios from 1/256 to 256.
  if (stream_rate_hz > 0.0 &&
      (stream_rate_hz / info.samplerate > 256.0 || info.samplerate / stream_rate_hz > 256.0)) {
    return absl::InvalidArgumentError(absl::StrCat("'", shown_as, "' is at ", info.samplerate,
                                                   " Hz, which cannot be resampled to ",
                                                   stream_rate_hz, " Hz (a ratio beyond 256)"));
  }
  return absl::OkStatus();
}

// Largest |H(f)| of `taps` on a grid of at least 4x its length.
double PeakResponse(const std::vector<float>& taps) {
  size_t n = 64;
  while (n < 4 * taps.size()) n *= 2;
  std::unique_ptr<std::remove_pointer_t<kiss_fftr_cfg>, void (*)(kiss_fftr_cfg)> plan(
      kiss_fftr_alloc(static_cast<int>(n), 0, nullptr, nullptr),
      [](kiss_fftr_cfg c) { kiss_fftr_free(c); });
  std::vector<float> time(n, 0.0f);
  std::copy(taps.begin(), taps.end(), time.begin());
  std::vector<kiss_fft_cpx> spec(n / 2 + 1);
  kiss_fftr(plan.get(), time.data(), spec.data());
  double peak = 0.0;
  for (const auto& c : spec) peak = std::max(peak, std::hypot(double{c.r}, double{c.i}));
  return peak;
}

}  // namespace

absl::StatusOr<ImpulseInfo> ReadImpulseInfo(const DataFile& file, const std::string& shown_as,
                                            double stream_rate_hz) {
  SF_INFO info;
  auto f = Open(file, shown_as, info);
  if (!f.ok()) return f.status();
  if (auto st = CheckInfo(info, shown_as, stream_rate_hz); !st.ok()) return st;
  return ImpulseInfo{info.channels, static_cast<size_t>(info.frames),
                     static_cast<double>(info.samplerate)};
}

absl::StatusOr<ImpulseResponse> LoadImpulseResponse(const DataFile& file,
                                                    const std::string& shown_as,
                                                    double stream_rate_hz, IrNormalize normalize) {
  SF_INFO info;
  auto f = Open(file, shown_as, info);
  if (!f.ok()) return f.status();
  if (auto st = CheckInfo(info, shown_as, stream_rate_hz); !st.ok()) return st;
  const auto channels = static_cast<size_t>(info.channels);
  const auto frames = static_cast<size_t>(info.frames);
  std::vector<float> interleaved(frames * channels);
  // Integer files come in scaled to +-1 (libsndfile's default for float reads).
  const sf_count_t got = sf_readf_float(f->get(), interleaved.data(), info.frames);
  if (got != info.frames) {
    return absl::InvalidArgumentError(absl::StrCat("'", shown_as, "': read ", got, " of ",
                                                   info.frames, " frames (", sf_strerror(f->get()),
                                                   ")"));
  }
  for (size_t i = 0; i < interleaved.size(); ++i) {
    if (!std::isfinite(interleaved[i])) {
      return absl::InvalidArgumentError(absl::StrCat("'", shown_as, "': channel ", i % channels + 1,
                                                     ", frame ", i / channels,
                                                     " is not a finite number"));
    }
    if (std::fabs(interleaved[i]) > kMaxImpulseSample) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", shown_as, "': channel ", i % channels + 1, ", frame ", i / channels,
                       " is ", interleaved[i], "; impulse-response samples are at most ",
                       kMaxImpulseSample, " (+80 dB) in magnitude"));
    }
  }
  ImpulseResponse ir;
  ir.file_rate_hz = info.samplerate;
  ir.file_frames = frames;
  if (static_cast<double>(info.samplerate) != stream_rate_hz) {
    const double ratio = stream_rate_hz / info.samplerate;
    std::vector<float> resampled(ResampledFrames(frames, info.samplerate, stream_rate_hz) *
                                 channels);
    SRC_DATA data{};
    data.data_in = interleaved.data();
    data.input_frames = static_cast<long>(frames);
    data.data_out = resampled.data();
    data.output_frames = static_cast<long>(resampled.size() / channels);
    data.src_ratio = ratio;
    if (const int err = src_simple(&data, SRC_SINC_BEST_QUALITY, info.channels); err != 0) {
      return absl::InvalidArgumentError(absl::StrCat("'", shown_as, "': resampling from ",
                                                     info.samplerate, " Hz to ", stream_rate_hz,
                                                     " Hz failed: ", src_strerror(err)));
    }
    resampled.resize(static_cast<size_t>(data.output_frames_gen) * channels);
    // The taps sample a continuous response: at a higher rate more of them
    // make up the same area, so they scale by from/to to keep the filter's
    // gain (a 44.1 kHz IR resampled to 48 kHz would otherwise gain 0.74 dB).
    const auto area = static_cast<float>(info.samplerate / stream_rate_hz);
    for (float& v : resampled) v *= area;
    interleaved = std::move(resampled);
  }
  const size_t out_frames = std::max<size_t>(interleaved.size() / channels, 1);
  ir.taps.assign(channels, std::vector<float>(out_frames, 0.0f));
  for (size_t i = 0; i < interleaved.size(); ++i)
    ir.taps[i % channels][i / channels] = interleaved[i];

  if (normalize != IrNormalize::kNone) {
    double largest = 0.0;
    for (const auto& t : ir.taps) {
      double g = 0.0;
      if (normalize == IrNormalize::kDcGain) {
        for (float v : t) g += static_cast<double>(v);
        g = std::fabs(g);
      } else {
        g = PeakResponse(t);
      }
      largest = std::max(largest, g);
    }
    if (!(largest > 1e-12)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", shown_as, "': cannot normalise, its ",
                       normalize == IrNormalize::kDcGain ? "DC gain" : "response", " is zero"));
    }
    const auto scale = static_cast<float>(1.0 / largest);
    for (auto& t : ir.taps) {
      for (float& v : t) v *= scale;
    }
  }
  return ir;
}

}  // namespace aers::dsp
