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
    // First order: s -> (1/K)(1 - z^-1)/(1 + z^-1), K = tan(w0/2), so the
    // analog corner maps exactly onto freq_hz.
    case BiquadType::kLowpass1: {
      const double k = std::tan(w0 / 2.0);
      b0 = k;
      b1 = k;
      a0 = k + 1.0;
      a1 = k - 1.0;
      break;
    }
    case BiquadType::kHighpass1: {
      const double k = std::tan(w0 / 2.0);
      b0 = 1.0;
      b1 = -1.0;
      a0 = k + 1.0;
      a1 = k - 1.0;
      break;
    }
    case BiquadType::kAllpass1: {
      const double k = std::tan(w0 / 2.0);
      b0 = k - 1.0;
      b1 = k + 1.0;
      a0 = k + 1.0;
      a1 = k - 1.0;
      break;
    }
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
void BiquadSection::SetQ(double q) noexcept {
  target_q_.store(q, std::memory_order_relaxed);
}
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
  const double coef =
      1.0 - std::exp(-static_cast<double>(frames) / (kTauSeconds * sample_rate_hz_));
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

void BiquadSection::ResetNonFiniteState() noexcept {
  uint32_t resets = 0;
  for (int ch = 0; ch < channels_; ++ch) {
    if (IsNonFinite(z1[ch]) || IsNonFinite(z2[ch])) {
      z1[ch] = 0.0;
      z2[ch] = 0.0;
      ++resets;
    }
  }
  if (resets != 0 && counters != nullptr) {
    counters->state_resets.fetch_add(resets, std::memory_order_relaxed);
  }
}

void BiquadSection::Run(int channel, const float* in, float* out, uint32_t frames) noexcept {
  const BiquadCoeffs c = c_;
  double s1 = z1[channel];
  double s2 = z2[channel];
  for (uint32_t n = 0; n < frames; ++n) {
    const double x = static_cast<double>(in[n]);
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
    for (int ch = 0; ch < C; ++ch) x[ch] = static_cast<double>(src[ch][n]);
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

// Two channels packed in one 128-bit register, {ch, ch + 1}: SSE2 on any
// x86-64 (NEON on arm64), so a stage is 5 multiplies and 4 adds for both
// channels with no shuffles, coefficients are broadcast once per call, and
// no scalar copy of the signal is kept. (The generic CascadeKernel<2> leaves
// this to the SLP vectorizer, which packs only part of it.)
using V2 = double __attribute__((vector_size(16)));

// Shipped builds target baseline x86-64; where the CPU has FMA (x86-64-v3)
// a clone of this kernel with fused multiply-adds is picked at load time
// (ifunc). The rt library is compiled with -ffp-contract=fast so the clone
// actually fuses.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define AERS_KERNEL_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define AERS_KERNEL_CLONES
#endif

// K stages, fixed at compile time so the stage loop unrolls and the states
// stay in registers (the recursion never waits on a store-to-load forward).
template <int K>
AERS_KERNEL_CLONES void PairKernelN(BiquadSection* const* sections, int first,
                                    const float* const* in, float* const* out, uint32_t offset,
                                    uint32_t frames) noexcept {
  V2 b0[K], b1[K], b2[K], a1[K], a2[K], z1[K], z2[K];
  for (int k = 0; k < K; ++k) {
    const BiquadCoeffs& c = sections[k]->coeffs();
    b0[k] = V2{c.b0, c.b0};
    b1[k] = V2{c.b1, c.b1};
    b2[k] = V2{c.b2, c.b2};
    a1[k] = V2{c.a1, c.a1};
    a2[k] = V2{c.a2, c.a2};
    z1[k] = V2{sections[k]->z1[first], sections[k]->z1[first + 1]};
    z2[k] = V2{sections[k]->z2[first], sections[k]->z2[first + 1]};
  }
  const float* src0 = in[first] + offset;
  const float* src1 = in[first + 1] + offset;
  float* dst0 = out[first] + offset;
  float* dst1 = out[first + 1] + offset;
  for (uint32_t n = 0; n < frames; ++n) {
    V2 x = V2{static_cast<double>(src0[n]), static_cast<double>(src1[n])};
    for (int k = 0; k < K; ++k) {
      const V2 y = b0[k] * x + z1[k];
      // (b1 x + z2) does not wait for y: a shorter recursion.
      z1[k] = (b1[k] * x + z2[k]) - a1[k] * y;
      z2[k] = b2[k] * x - a2[k] * y;
      x = y;
    }
    dst0[n] = static_cast<float>(x[0]);
    dst1[n] = static_cast<float>(x[1]);
  }
  for (int k = 0; k < K; ++k) {
    sections[k]->z1[first] = z1[k][0];
    sections[k]->z1[first + 1] = z1[k][1];
    sections[k]->z2[first] = z2[k][0];
    sections[k]->z2[first + 1] = z2[k][1];
  }
}

// Runs `count` stages over channels {first, first + 1}: groups of up to 8
// stages, each group over the whole block (later groups work in place).
void PairKernel(BiquadSection* const* sections, int count, int first, const float* const* in,
                float* const* out, uint32_t offset, uint32_t frames) noexcept {
  const float* const* src = in;
  for (int k0 = 0; k0 < count; k0 += 8) {
    BiquadSection* const* s = sections + k0;
    switch (std::min(8, count - k0)) {
      case 1:
        PairKernelN<1>(s, first, src, out, offset, frames);
        break;
      case 2:
        PairKernelN<2>(s, first, src, out, offset, frames);
        break;
      case 3:
        PairKernelN<3>(s, first, src, out, offset, frames);
        break;
      case 4:
        PairKernelN<4>(s, first, src, out, offset, frames);
        break;
      case 5:
        PairKernelN<5>(s, first, src, out, offset, frames);
        break;
      case 6:
        PairKernelN<6>(s, first, src, out, offset, frames);
        break;
      case 7:
        PairKernelN<7>(s, first, src, out, offset, frames);
        break;
      default:
        PairKernelN<8>(s, first, src, out, offset, frames);
        break;
    }
    src = out;
  }
}

void CascadeAllChannels(BiquadSection* const* sections, int count, int channels,
                        const float* const* in, float* const* out, uint32_t offset,
                        uint32_t frames) noexcept {
  int ch = 0;
  for (; ch + 2 <= channels; ch += 2) {
    PairKernel(sections, count, ch, in, out, offset, frames);
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
  } else {
    for (uint32_t offset = 0; offset < frames; offset += BiquadSection::kSubBlock) {
      const uint32_t n = std::min(BiquadSection::kSubBlock, frames - offset);
      for (int k = 0; k < count; ++k) sections[k]->Advance(n);
      CascadeAllChannels(sections, count, channels, in, out, offset, n);
    }
  }
  // Non-finite state would latch for ever (rt/signal.h): a few compares per
  // section and channel per period.
  for (int k = 0; k < count; ++k) sections[k]->ResetNonFiniteState();
}

}  // namespace aers::rt
