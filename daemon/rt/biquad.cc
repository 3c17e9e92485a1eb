#include "rt/biquad.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>

namespace aers::rt {

BiquadCoeffs DesignBiquad(const BiquadParams& p, double sample_rate_hz) noexcept {
  // Below Nyquist with a margin; above it the formulas fold back.
  const double f = std::clamp(p.freq_hz, 1e-3, 0.49 * sample_rate_hz);
  const double w0 = 2.0 * std::numbers::pi * f / sample_rate_hz;
  const double cosw = std::cos(w0);
  const double sinw = std::sin(w0);
  const double q = std::max(p.q, 1e-3);
  const double alpha = sinw / (2.0 * q);
  const double a = std::pow(10.0, p.gain_db / 40.0);
  double b0 = 1, b1 = 0, b2 = 0, a0 = 1, a1 = 0, a2 = 0;
  switch (p.type) {
    case BiquadType::kLowpass:
      b0 = (1.0 - cosw) / 2.0;
      b1 = 1.0 - cosw;
      b2 = b0;
      a0 = 1.0 + alpha;
      a1 = -2.0 * cosw;
      a2 = 1.0 - alpha;
      break;
    case BiquadType::kHighpass:
      b0 = (1.0 + cosw) / 2.0;
      b1 = -(1.0 + cosw);
      b2 = b0;
      a0 = 1.0 + alpha;
      a1 = -2.0 * cosw;
      a2 = 1.0 - alpha;
      break;
    case BiquadType::kBandpass:
      b0 = alpha;
      b1 = 0.0;
      b2 = -alpha;
      a0 = 1.0 + alpha;
      a1 = -2.0 * cosw;
      a2 = 1.0 - alpha;
      break;
    case BiquadType::kNotch:
      b0 = 1.0;
      b1 = -2.0 * cosw;
      b2 = 1.0;
      a0 = 1.0 + alpha;
      a1 = -2.0 * cosw;
      a2 = 1.0 - alpha;
      break;
    case BiquadType::kPeaking:
      b0 = 1.0 + alpha * a;
      b1 = -2.0 * cosw;
      b2 = 1.0 - alpha * a;
      a0 = 1.0 + alpha / a;
      a1 = -2.0 * cosw;
      a2 = 1.0 - alpha / a;
      break;
    case BiquadType::kLowshelf: {
      const double s = 2.0 * std::sqrt(a) * alpha;
      b0 = a * ((a + 1.0) - (a - 1.0) * cosw + s);
      b1 = 2.0 * a * ((a - 1.0) - (a + 1.0) * cosw);
      b2 = a * ((a + 1.0) - (a - 1.0) * cosw - s);
      a0 = (a + 1.0) + (a - 1.0) * cosw + s;
      a1 = -2.0 * ((a - 1.0) + (a + 1.0) * cosw);
      a2 = (a + 1.0) + (a - 1.0) * cosw - s;
      break;
    }
    case BiquadType::kHighshelf: {
      const double s = 2.0 * std::sqrt(a) * alpha;
      b0 = a * ((a + 1.0) + (a - 1.0) * cosw + s);
      b1 = -2.0 * a * ((a - 1.0) + (a + 1.0) * cosw);
      b2 = a * ((a + 1.0) + (a - 1.0) * cosw - s);
      a0 = (a + 1.0) - (a - 1.0) * cosw + s;
      a1 = 2.0 * ((a - 1.0) - (a + 1.0) * cosw);
      a2 = (a + 1.0) - (a - 1.0) * cosw - s;
      break;
    }
    case BiquadType::kAllpass:
      b0 = 1.0 - alpha;
      b1 = -2.0 * cosw;
      b2 = 1.0 + alpha;
      a0 = 1.0 + alpha;
      a1 = -2.0 * cosw;
      a2 = 1.0 - alpha;
      break;
  }
  return BiquadCoeffs{b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0};
}

double BiquadMagnitudeDb(const BiquadCoeffs& c, double freq_hz, double sample_rate_hz) noexcept {
  const double w = 2.0 * std::numbers::pi * freq_hz / sample_rate_hz;
  const std::complex<double> z1 = std::polar(1.0, -w);
  const std::complex<double> z2 = z1 * z1;
  const std::complex<double> h = (c.b0 + c.b1 * z1 + c.b2 * z2) / (1.0 + c.a1 * z1 + c.a2 * z2);
  return 20.0 * std::log10(std::abs(h));
}

BiquadSection::BiquadSection(const BiquadParams& initial, double sample_rate_hz, int channels)
    : sample_rate_hz_(sample_rate_hz),
      channels_(std::clamp(channels, 1, kMaxChannels)),
      current_(initial),
      c_(DesignBiquad(initial, sample_rate_hz)),
      target_type_(static_cast<uint8_t>(initial.type)),
      target_freq_hz_(initial.freq_hz),
      target_q_(initial.q),
      target_gain_db_(initial.gain_db) {}

void BiquadSection::SetType(BiquadType type) noexcept {
  target_type_.store(static_cast<uint8_t>(type), std::memory_order_relaxed);
}
void BiquadSection::SetFreqHz(double freq_hz) noexcept {
  target_freq_hz_.store(freq_hz, std::memory_order_relaxed);
}
void BiquadSection::SetQ(double q) noexcept { target_q_.store(q, std::memory_order_relaxed); }
void BiquadSection::SetGainDb(double gain_db) noexcept {
  target_gain_db_.store(gain_db, std::memory_order_relaxed);
}

bool BiquadSection::Gliding() const noexcept {
  return static_cast<uint8_t>(current_.type) != target_type_.load(std::memory_order_relaxed) ||
         current_.freq_hz != target_freq_hz_.load(std::memory_order_relaxed) ||
         current_.q != target_q_.load(std::memory_order_relaxed) ||
         current_.gain_db != target_gain_db_.load(std::memory_order_relaxed);
}

namespace {
// One-pole glide toward `target` with a ~20 ms time constant; snaps when close.
double Glide(double current, double target, double coef, double snap) noexcept {
  const double next = current + (target - current) * coef;
  return std::fabs(target - next) <= snap ? target : next;
}
}  // namespace

bool BiquadSection::Advance(uint32_t frames) noexcept {
  if (!Gliding()) return false;
  const auto type = static_cast<BiquadType>(target_type_.load(std::memory_order_relaxed));
  const double tf = target_freq_hz_.load(std::memory_order_relaxed);
  const double tq = target_q_.load(std::memory_order_relaxed);
  const double tg = target_gain_db_.load(std::memory_order_relaxed);
  constexpr double kTauSeconds = 0.020;
  const double coef = 1.0 - std::exp(-static_cast<double>(frames) / (kTauSeconds * sample_rate_hz_));
  // A type change cannot glide; it switches at once (the state carries over).
  current_.type = type;
  // Frequency glides in the log domain (perceptually even).
  const double lf = Glide(std::log(current_.freq_hz), std::log(tf), coef, 1e-4);
  current_.freq_hz = lf == std::log(tf) ? tf : std::exp(lf);
  current_.q = Glide(current_.q, tq, coef, 1e-4);
  current_.gain_db = Glide(current_.gain_db, tg, coef, 1e-3);
  c_ = DesignBiquad(current_, sample_rate_hz_);
  return Gliding();
}

void BiquadSection::Run(int channel, const float* in, float* out, uint32_t frames) noexcept {
  const BiquadCoeffs c = c_;
  double s1 = z1[channel];
  double s2 = z2[channel];
  for (uint32_t n = 0; n < frames; ++n) {
    const double x = in[n];
    const double y = c.b0 * x + s1;
    s1 = c.b1 * x - c.a1 * y + s2;
    s2 = c.b2 * x - c.a2 * y;
    out[n] = static_cast<float>(y);
  }
  z1[channel] = s1;
  z2[channel] = s2;
}

namespace {

// Runs sections [0, count) over channels [first, first + C), sample-major.
template <int C>
void CascadeKernel(BiquadSection* const* sections, int count, int first, const float* const* in,
                   float* const* out, uint32_t offset, uint32_t frames) noexcept {
  struct Stage {
    double b0, b1, b2, a1, a2;
    double z1[C], z2[C];
  };
  Stage st[kMaxCascade];
  for (int k = 0; k < count; ++k) {
    const BiquadCoeffs& c = sections[k]->coeffs();
    st[k].b0 = c.b0;
    st[k].b1 = c.b1;
    st[k].b2 = c.b2;
    st[k].a1 = c.a1;
    st[k].a2 = c.a2;
    for (int ch = 0; ch < C; ++ch) {
      st[k].z1[ch] = sections[k]->z1[first + ch];
      st[k].z2[ch] = sections[k]->z2[first + ch];
    }
  }
  const float* src[C];
  float* dst[C];
  for (int ch = 0; ch < C; ++ch) {
    src[ch] = in[first + ch] + offset;
    dst[ch] = out[first + ch] + offset;
  }
  for (uint32_t n = 0; n < frames; ++n) {
    double x[C];
    for (int ch = 0; ch < C; ++ch) x[ch] = src[ch][n];
    for (int k = 0; k < count; ++k) {
      Stage& s = st[k];
      for (int ch = 0; ch < C; ++ch) {
        const double y = s.b0 * x[ch] + s.z1[ch];
        s.z1[ch] = s.b1 * x[ch] - s.a1 * y + s.z2[ch];
        s.z2[ch] = s.b2 * x[ch] - s.a2 * y;
        x[ch] = y;
      }
    }
    for (int ch = 0; ch < C; ++ch) dst[ch][n] = static_cast<float>(x[ch]);
  }
  for (int k = 0; k < count; ++k) {
    for (int ch = 0; ch < C; ++ch) {
      sections[k]->z1[first + ch] = st[k].z1[ch];
      sections[k]->z2[first + ch] = st[k].z2[ch];
    }
  }
}

void CascadeAllChannels(BiquadSection* const* sections, int count, int channels,
                        const float* const* in, float* const* out, uint32_t offset,
                        uint32_t frames) noexcept {
  int ch = 0;
  for (; ch + 2 <= channels; ch += 2) {
    CascadeKernel<2>(sections, count, ch, in, out, offset, frames);
  }
  if (ch < channels) CascadeKernel<1>(sections, count, ch, in, out, offset, frames);
}

}  // namespace

void RunCascade(BiquadSection* const* sections, int count, int channels, const float* const* in,
                float* const* out, uint32_t frames) noexcept {
  bool gliding = false;
  for (int k = 0; k < count; ++k) gliding |= sections[k]->Gliding();
  if (!gliding) {
    CascadeAllChannels(sections, count, channels, in, out, 0, frames);
    return;
  }
  for (uint32_t offset = 0; offset < frames; offset += BiquadSection::kSubBlock) {
    const uint32_t n = std::min(BiquadSection::kSubBlock, frames - offset);
    for (int k = 0; k < count; ++k) sections[k]->Advance(n);
    CascadeAllChannels(sections, count, channels, in, out, offset, n);
  }
}

}  // namespace aers::rt
