#include "rt/biquad.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <new>
#include <numbers>
#include <type_traits>
#include <utility>

#include "rt/clones.h"

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

namespace {
BiquadGainForm GainFormOf(const BiquadCoeffs& c) noexcept {
  BiquadGainForm g;
  // Bounds keep products of up to kMaxCascade factors far from overflow
  // and underflow; NaN fails them too.
  const double m = std::fabs(c.b0);
  if (!(m >= 1e-8 && m <= 1e8)) {
    g.ok = false;
    return g;
  }
  g.inv_b0 = 1.0 / c.b0;
  g.c1 = c.b1 / c.b0;
  g.c2 = c.b2 / c.b0;
  g.ok = std::isfinite(g.c1) && std::isfinite(g.c2);
  return g;
}

// Values of BiquadSection::coeff_generation(), never handed out twice (a
// cache keyed on a section's address cannot mistake a new section for a
// freed one). Wait-free: one relaxed add per glide step.
std::atomic<uint64_t> g_coeff_generation{0};
uint64_t NextCoeffGeneration() noexcept {
  return g_coeff_generation.fetch_add(1, std::memory_order_relaxed) + 1;
}
}  // namespace

BiquadSection::BiquadSection(const BiquadParams& initial, double sample_rate_hz, int channels)
    : sample_rate_hz_(sample_rate_hz),
      channels_(std::clamp(channels, 1, kMaxChannels)),
      current_(initial),
      c_(DesignBiquad(initial, sample_rate_hz)),
      g_(GainFormOf(c_)),
      generation_(NextCoeffGeneration()),
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
  g_ = GainFormOf(c_);
  generation_ = NextCoeffGeneration();
  return Gliding();
}

void BiquadSection::ResetState() noexcept {
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
// (ifunc, rt/clones.h). The rt library is compiled with -ffp-contract=fast
// so the clone actually fuses.
#define AERS_KERNEL_CLONES AERS_CLONES_V3

// K stages, fixed at compile time so the stage loop unrolls and the states
// stay in registers (the recursion never waits on a store-to-load forward).
// TIn/TOut: float for the block's buffers, double for the scratch between
// groups of stages (so a long cascade is never rounded to float inside).
template <int K, class TIn, class TOut>
AERS_KERNEL_CLONES void PairKernelN(BiquadSection* const* sections, int first, const TIn* src0,
                                    const TIn* src1, TOut* dst0, TOut* dst1,
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
  for (uint32_t n = 0; n < frames; ++n) {
    V2 x = V2{static_cast<double>(src0[n]), static_cast<double>(src1[n])};
    for (int k = 0; k < K; ++k) {
      const V2 y = b0[k] * x + z1[k];
      // (b1 x + z2) does not wait for y: a shorter recursion.
      z1[k] = (b1[k] * x + z2[k]) - a1[k] * y;
      z2[k] = b2[k] * x - a2[k] * y;
      x = y;
    }
    dst0[n] = static_cast<TOut>(x[0]);
    dst1[n] = static_cast<TOut>(x[1]);
  }
  for (int k = 0; k < K; ++k) {
    sections[k]->z1[first] = z1[k][0];
    sections[k]->z1[first + 1] = z1[k][1];
    sections[k]->z2[first] = z2[k][0];
    sections[k]->z2[first + 1] = z2[k][1];
  }
}

template <class TIn, class TOut>
void PairGroup(BiquadSection* const* s, int count, int first, const TIn* src0, const TIn* src1,
               TOut* dst0, TOut* dst1, uint32_t frames) noexcept {
  switch (count) {
    case 1:
      return PairKernelN<1>(s, first, src0, src1, dst0, dst1, frames);
    case 2:
      return PairKernelN<2>(s, first, src0, src1, dst0, dst1, frames);
    case 3:
      return PairKernelN<3>(s, first, src0, src1, dst0, dst1, frames);
    case 4:
      return PairKernelN<4>(s, first, src0, src1, dst0, dst1, frames);
    case 5:
      return PairKernelN<5>(s, first, src0, src1, dst0, dst1, frames);
    case 6:
      return PairKernelN<6>(s, first, src0, src1, dst0, dst1, frames);
    case 7:
      return PairKernelN<7>(s, first, src0, src1, dst0, dst1, frames);
    default:
      return PairKernelN<8>(s, first, src0, src1, dst0, dst1, frames);
  }
}

// Frames per pass when a cascade runs as several groups of stages: the
// groups hand the signal on in double scratch buffers of this size.
constexpr uint32_t kScratchFrames = 256;

// Runs `count` stages over channels {first, first + 1}: one group of up to 8
// stages, or groups of up to 8 over chunks of the block with the signal
// kept in double between groups.
void PairKernel(BiquadSection* const* sections, int count, int first, const float* const* in,
                float* const* out, uint32_t offset, uint32_t frames) noexcept {
  const float* src0 = in[first] + offset;
  const float* src1 = in[first + 1] + offset;
  float* dst0 = out[first] + offset;
  float* dst1 = out[first + 1] + offset;
  if (count <= 8) {
    PairGroup(sections, count, first, src0, src1, dst0, dst1, frames);
    return;
  }
  double a0[kScratchFrames], a1[kScratchFrames], b0[kScratchFrames], b1[kScratchFrames];
  for (uint32_t c0 = 0; c0 < frames; c0 += kScratchFrames) {
    const uint32_t n = std::min(kScratchFrames, frames - c0);
    double *x0 = a0, *x1 = a1, *y0 = b0, *y1 = b1;
    PairGroup(sections, 8, first, src0 + c0, src1 + c0, x0, x1, n);
    int k0 = 8;
    for (; count - k0 > 8; k0 += 8) {
      PairGroup(sections + k0, 8, first, x0, x1, y0, y1, n);
      std::swap(x0, y0);
      std::swap(x1, y1);
    }
    PairGroup(sections + k0, count - k0, first, x0, x1, dst0 + c0, dst1 + c0, n);
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

// ---------------------------------------------------------------------------
// Wavefront kernels (x86-64). With R registers of S = lanes / 2 positions,
// position p sits in register p % R, slot p / R (lanes {2 slot, 2 slot + 1}
// = channels {ch, ch + 1}). At step t position p works on sample t - p: one
// vector recursion advances every stage of both channels, then position p's
// output is position p + 1's input at the next step. Positions interleave
// over the registers so that this hand-over is register r's output as it is
// for register r + 1, and a shift by one slot (with the next input pair
// entering slot 0) only from the last register to the first: one shift, a
// 5-cycle latency on the loop-carried path, per R stages instead of one per
// stage. The last position's output leaves
// P - 1 steps late; the first and last P - 1 steps of a call run with the
// positions outside their samples masked, so a call's output is complete and
// the state it leaves is each stage's own.
//
// Each section runs with b0 factored out: with P_k the product of b0 over
// stages 0..k, stage k sees u = x / P_(k-1), keeps s = z / P_k and produces
// v = y / P_k:
//   v = u + s1;  s1 = c1 u + s2 - a1 v;  s2 = c2 u - a2 v
// (c1 = b1 / b0, c2 = b2 / b0), four multiplies, three where c2 == 1
// (lowpass, highpass, notch), and the cascade output is P_last * v. The state
// is converted from and back to the sections' z1/z2 on every call, so
// switching kernels, glides and ResetNonFiniteState see what the other
// kernels keep. Positions in front of the first stage (when the stage count
// does not fill the registers) are exact identities: c1 = a1 = 0,
// c2 = a2 = 1 and zero state give v = u, s1 = s2 = 0 for finite u.

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define AERS_WAVEFRONT 1
#endif
#endif

#ifdef AERS_WAVEFRONT

constexpr int kWaveMaxPositions = 16;

struct WaveGroup {
  int positions = 0;
  int regs = 1;  // R: registers the positions interleave over
  // Index of each position's first lane (channel ch0) in the lane arrays:
  // register pos % R, slot pos / R.
  int lane[kWaveMaxPositions];
  int pad = 0;  // identity positions in front of stage 0
  bool unit_c2 = true;
  double gain = 1.0;                // product of the stages' b0: output scale
  double p[kWaveMaxPositions];      // P_k per position (1 for the identities)
  double inv_p[kWaveMaxPositions];  // 1 / P_k
  // Lane layout: position pos, channel c in lane[pos] + c.
  alignas(64) double c1[2 * kWaveMaxPositions];
  alignas(64) double c2[2 * kWaveMaxPositions];
  alignas(64) double a1[2 * kWaveMaxPositions];
  alignas(64) double a2[2 * kWaveMaxPositions];
  alignas(64) double s1[2 * kWaveMaxPositions];
  alignas(64) double s2[2 * kWaveMaxPositions];
};

// Coefficients of `count` stages at positions positions - count ..
// positions - 1, over `regs` registers. False if a stage has no usable gain
// form.
bool PrepareWave(BiquadSection* const* sections, int count, int positions, int regs,
                 WaveGroup* g) noexcept {
  g->positions = positions;
  g->regs = regs;
  const int per_reg = positions / regs;
  for (int r = 0; r < regs; ++r) {
    for (int slot = 0; slot < per_reg; ++slot) g->lane[slot * regs + r] = (r * per_reg + slot) * 2;
  }
  g->pad = positions - count;
  g->unit_c2 = true;
  double prod = 1.0, inv = 1.0;
  for (int pos = 0; pos < positions; ++pos) {
    double c1 = 0.0, c2 = 1.0, a1 = 0.0, a2 = 1.0;
    if (pos >= g->pad) {
      const BiquadSection& s = *sections[pos - g->pad];
      const BiquadGainForm& f = s.gain_form();
      if (!f.ok) return false;
      prod *= s.coeffs().b0;
      inv *= f.inv_b0;
      c1 = f.c1;
      c2 = f.c2;
      a1 = s.coeffs().a1;
      a2 = s.coeffs().a2;
      g->unit_c2 = g->unit_c2 && c2 == 1.0;
    }
    g->p[pos] = prod;
    g->inv_p[pos] = inv;
    const int lane = g->lane[pos];
    for (int ch = 0; ch < 2; ++ch) {
      g->c1[lane + ch] = c1;
      g->c2[lane + ch] = c2;
      g->a1[lane + ch] = a1;
      g->a2[lane + ch] = a2;
    }
  }
  g->gain = prod;
  return true;
}

// Channels ch0 and ch1 of the sections' state into g (normalized).
void LoadWaveState(BiquadSection* const* sections, int ch0, int ch1, WaveGroup* g) noexcept {
  for (int pos = 0; pos < g->positions; ++pos) {
    const int lane = g->lane[pos];
    if (pos < g->pad) {
      g->s1[lane] = g->s1[lane + 1] = 0.0;
      g->s2[lane] = g->s2[lane + 1] = 0.0;
      continue;
    }
    const BiquadSection& s = *sections[pos - g->pad];
    const double inv = g->inv_p[pos];
    g->s1[lane] = s.z1[ch0] * inv;
    g->s1[lane + 1] = s.z1[ch1] * inv;
    g->s2[lane] = s.z2[ch0] * inv;
    g->s2[lane + 1] = s.z2[ch1] * inv;
  }
}

void StoreWaveState(const WaveGroup& g, BiquadSection* const* sections, int ch0, int ch1) noexcept {
  for (int pos = g.pad; pos < g.positions; ++pos) {
    BiquadSection& s = *sections[pos - g.pad];
    const double p = g.p[pos];
    const int lane = g.lane[pos];
    s.z1[ch0] = g.s1[lane] * p;
    s.z2[ch0] = g.s2[lane] * p;
    if (ch1 != ch0) {
      s.z1[ch1] = g.s1[lane + 1] * p;
      s.z2[ch1] = g.s2[lane + 1] * p;
    }
  }
}

// Masks for the fill and drain steps: entry b has the lanes of the slots
// whose bit is set in b (slot j of a register in lanes 2j and 2j + 1) all
// ones.
template <int S>
struct LaneMasks {
  alignas(64) long long m[1 << S][2 * S];
  constexpr LaneMasks() : m{} {
    for (int b = 0; b < (1 << S); ++b) {
      for (int l = 0; l < 2 * S; ++l) m[b][l] = (b >> (l / 2)) & 1 ? -1 : 0;
    }
  }
};

// The masks of the fill steps (positions 0..i run) and the drain steps
// (positions i..P - 1 run) of a block of at least P - 1 frames, per
// register, in the interleaved layout: looked up, not built, on the
// 2 (P - 1) edge steps of every call.
template <int S, int R>
struct EdgeMasks {
  static constexpr int kPositions = S * R;
  alignas(64) long long fill[kPositions][R][2 * S];
  alignas(64) long long drain[kPositions][R][2 * S];
  constexpr EdgeMasks() : fill{}, drain{} {
    for (int i = 0; i < kPositions; ++i) {
      for (int pos = 0; pos < kPositions; ++pos) {
        const int r = pos % R;
        const int lane = 2 * (pos / R);
        const long long f = pos <= i ? -1 : 0;
        const long long d = pos >= i ? -1 : 0;
        fill[i][r][lane] = fill[i][r][lane + 1] = f;
        drain[i][r][lane] = drain[i][r][lane + 1] = d;
      }
    }
  }
};

// One step: every position advances one sample; u0 is register 0's input
// (the new input pair in slot 0, the last register's outputs one slot up).
// With kMasked, only the positions whose lanes are set in mask[r] change
// state.
template <class V, class VI, int R, bool kUnitC2, bool kMasked>
[[gnu::always_inline]] inline void WaveCore(const V& u0, V (&v)[R], V (&s1)[R], V (&s2)[R],
                                            const V (&c1)[R], const V (&c2)[R], const V (&a1)[R],
                                            const V (&a2)[R], const VI* mask) noexcept {
  V u[R];
  u[0] = u0;
  // Register r takes register r - 1's outputs as they are.
#pragma GCC unroll 4
  for (int r = 1; r < R; ++r) u[r] = v[r - 1];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    const V vn = u[r] + s1[r];
    const V n1 = (c1[r] * u[r] + s2[r]) - a1[r] * vn;
    V n2;
    if constexpr (kUnitC2) {
      n2 = u[r] - a2[r] * vn;
    } else {
      n2 = c2[r] * u[r] - a2[r] * vn;
    }
    if constexpr (kMasked) {
      s1[r] = __builtin_bit_cast(
          V, (__builtin_bit_cast(VI, n1) & mask[r]) | (__builtin_bit_cast(VI, s1[r]) & ~mask[r]));
      s2[r] = __builtin_bit_cast(
          V, (__builtin_bit_cast(VI, n2) & mask[r]) | (__builtin_bit_cast(VI, s2[r]) & ~mask[r]));
    } else {
      s1[r] = n1;
      s2[r] = n2;
    }
    v[r] = vn;
  }
}

// Register 0's input when the new pair sits in lanes 2J and 2J + 1 of x
// (J = -1: its top two lanes).
template <class V, int L, int J>
[[gnu::always_inline]] inline void FirstInput(const V& x, const V& last, V& u0) noexcept {
  constexpr int j = J < 0 ? L / 2 - 1 : J;
  if constexpr (L == 8) {
    u0 = __builtin_shufflevector(x, last, 2 * j, 2 * j + 1, 8, 9, 10, 11, 12, 13);
  } else {
    u0 = __builtin_shufflevector(x, last, 2 * j, 2 * j + 1, 4, 5);
  }
}

// One step with the input pair in x's top two lanes; o receives the last
// position's output pair (the top slot of the last register).
template <class V, class VI, int L, int R, bool kUnitC2, bool kMasked>
[[gnu::always_inline]] inline void WaveStep(const V& x, V (&v)[R], V (&s1)[R], V (&s2)[R],
                                            const V (&c1)[R], const V (&c2)[R], const V (&a1)[R],
                                            const V (&a2)[R], const VI* mask,
                                            double (&o)[2]) noexcept {
  V u0;
  FirstInput<V, L, -1>(x, v[R - 1], u0);
  WaveCore<V, VI, R, kUnitC2, kMasked>(u0, v, s1, s2, c1, c2, a1, a2, mask);
  o[0] = v[R - 1][L - 2];
  o[1] = v[R - 1][L - 1];
}

// Four values of T as one vector (half an AVX-512 register's lanes).
template <class T>
struct QuadOf;
template <>
struct QuadOf<float> {
  using type = float __attribute__((vector_size(16)));
};
template <>
struct QuadOf<double> {
  using type = double __attribute__((vector_size(32)));
};

// One unmasked step taking its input pair from lanes 2J, 2J + 1 of x and
// shifting its output pair into the top of acc.
template <class V, class VI, int L, int R, bool kUnitC2, int J>
[[gnu::always_inline]] inline void ChunkStep(const V& x, V& acc, V (&v)[R], V (&s1)[R], V (&s2)[R],
                                             const V (&c1)[R], const V (&c2)[R], const V (&a1)[R],
                                             const V (&a2)[R]) noexcept {
  V u0;
  FirstInput<V, L, J>(x, v[R - 1], u0);
  WaveCore<V, VI, R, kUnitC2, false>(u0, v, s1, s2, c1, c2, a1, a2, nullptr);
  acc = __builtin_shufflevector(acc, v[R - 1], 2, 3, 4, 5, 6, 7, 14, 15);
}

// Steps J... in order (no lambda: a lambda's body would be compiled for the
// baseline instruction set, not the caller's target).
template <class V, class VI, int L, int R, bool kUnitC2, int... J>
[[gnu::always_inline]] inline void ChunkSteps(std::integer_sequence<int, J...>, const V& x, V& acc,
                                              V (&v)[R], V (&s1)[R], V (&s2)[R], const V (&c1)[R],
                                              const V (&c2)[R], const V (&a1)[R],
                                              const V (&a2)[R]) noexcept {
  (ChunkStep<V, VI, L, R, kUnitC2, J>(x, acc, v, s1, s2, c1, c2, a1, a2), ...);
}

// Four unmasked steps t .. t + 3 (AVX-512, L = 8) with whole-vector input and output:
// the inputs of both channels are loaded, converted and interleaved once
// ({in0[t], in1[t], in0[t + 1], ...}), each step takes its pair from there,
// the output pairs collect in one register (shifted in two lanes a step) and
// leave scaled, deinterleaved and converted once. Out of the step loop's
// way: per step one shuffle in and one out instead of scalar conversions,
// inserts, extracts and stores.
template <class V, class VI, int L, int R, bool kUnitC2, class T>
[[gnu::always_inline]] inline void WaveChunk(const T* in0, const T* in1, T* out0, T* out1,
                                             double gain, V (&v)[R], V (&s1)[R], V (&s2)[R],
                                             const V (&c1)[R], const V (&c2)[R], const V (&a1)[R],
                                             const V (&a2)[R]) noexcept {
  static_assert(L == 8, "AVX2 measured slower in chunks; it keeps one step at a time");
  using TH = typename QuadOf<T>::type;
  using VH = typename QuadOf<double>::type;
  TH t0, t1;
  std::memcpy(&t0, in0, sizeof(TH));
  std::memcpy(&t1, in1, sizeof(TH));
  const VH h0 = __builtin_convertvector(t0, VH);
  const VH h1 = __builtin_convertvector(t1, VH);
  const V x = __builtin_shufflevector(h0, h1, 0, 4, 1, 5, 2, 6, 3, 7);
  V acc{};
  ChunkSteps<V, VI, L, R, kUnitC2>(std::make_integer_sequence<int, 4>{}, x, acc, v, s1, s2, c1, c2,
                                   a1, a2);
  const V y = acc * gain;
  const VH y0 = __builtin_shufflevector(y, y, 0, 2, 4, 6);
  const VH y1 = __builtin_shufflevector(y, y, 1, 3, 5, 7);
  const TH o0 = __builtin_convertvector(y0, TH);
  const TH o1 = __builtin_convertvector(y1, TH);
  std::memcpy(out0, &o0, sizeof(TH));
  std::memcpy(out1, &o1, sizeof(TH));
}

// A fill or drain step t of a block of `frames` (any length): positions
// outside the block keep their state, input past the block is 0, output
// before it is not written. Blocks of at least P - 1 frames take the
// fill and drain loops of WaveBody instead, with masks from EdgeMasks.
template <class V, class VI, int L, int R, bool kUnitC2, class T>
[[gnu::always_inline]] inline void WaveEdgeStep(uint32_t t, uint32_t frames, const T* in0,
                                                const T* in1, T* out0, T* out1, double gain,
                                                V (&v)[R], V (&s1)[R], V (&s2)[R], const V (&c1)[R],
                                                const V (&c2)[R], const V (&a1)[R],
                                                const V (&a2)[R]) noexcept {
  constexpr int S = L / 2;
  constexpr int P = R * S;
  static constexpr LaneMasks<S> kMasks;
  V x{};
  if (t < frames) {
    x[L - 2] = static_cast<double>(in0[t]);
    x[L - 1] = static_cast<double>(in1[t]);
  }
  const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(t) - frames + 1);
  const int64_t hi = std::min<int64_t>(P - 1, t);
  const uint32_t bits = lo > hi ? 0u : ((2u << hi) - 1u) & ~((1u << lo) - 1u);
  VI mask[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    uint32_t slots = 0;  // the bits of positions r, r + R, r + 2R, ...
    for (int j = 0; j < S; ++j) slots |= ((bits >> (j * R + r)) & 1u) << j;
    std::memcpy(&mask[r], kMasks.m[slots], sizeof(VI));
  }
  double o[2];
  WaveStep<V, VI, L, R, kUnitC2, true>(x, v, s1, s2, c1, c2, a1, a2, mask, o);
  if (t >= static_cast<uint32_t>(P - 1)) {
    out0[t - (P - 1)] = static_cast<T>(o[0] * gain);
    out1[t - (P - 1)] = static_cast<T>(o[1] * gain);
  }
}

// The kernel body, inlined into the target-specific entry points below so it
// is compiled for their instruction set. V: L doubles; VI: L int64s.
template <class V, class VI, int L, int R, bool kUnitC2, class T>
[[gnu::always_inline]] inline void WaveBody(WaveGroup& g, const T* in0, const T* in1, T* out0,
                                            T* out1, uint32_t frames) noexcept {
  constexpr int S = L / 2;
  constexpr int P = R * S;
  V c1[R], c2[R], a1[R], a2[R], s1[R], s2[R], v[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    std::memcpy(&c1[r], g.c1 + r * L, sizeof(V));
    std::memcpy(&c2[r], g.c2 + r * L, sizeof(V));
    std::memcpy(&a1[r], g.a1 + r * L, sizeof(V));
    std::memcpy(&a2[r], g.a2 + r * L, sizeof(V));
    std::memcpy(&s1[r], g.s1 + r * L, sizeof(V));
    std::memcpy(&s2[r], g.s2 + r * L, sizeof(V));
    v[r] = V{};
  }
  const double gain = g.gain;
  // Step t works on sample t - p at position p, reads input sample t and
  // outputs sample t - (P - 1); all positions are inside the block for t in
  // [P - 1, frames). Conversions are done in the step loop, where they
  // overlap the recursion's latency.
  const uint32_t total = frames + P - 1;
  double o[2];
  if (frames < static_cast<uint32_t>(P - 1)) {
    // Fill and drain overlap: every step masked, the masks built per step.
    for (uint32_t t = 0; t < total; ++t) {
      WaveEdgeStep<V, VI, L, R, kUnitC2, T>(t, frames, in0, in1, out0, out1, gain, v, s1, s2, c1,
                                            c2, a1, a2);
    }
  } else {
    static constexpr EdgeMasks<S, R> kEdges;
    VI mask[R];
    uint32_t t = 0;
    // Fill: positions 0..t run; nothing leaves the last position yet.
    for (; t < static_cast<uint32_t>(P - 1); ++t) {
      V x{};
      x[L - 2] = static_cast<double>(in0[t]);
      x[L - 1] = static_cast<double>(in1[t]);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) std::memcpy(&mask[r], kEdges.fill[t][r], sizeof(VI));
      WaveStep<V, VI, L, R, kUnitC2, true>(x, v, s1, s2, c1, c2, a1, a2, mask, o);
    }
    // AVX-512: whole chunks of four steps (chain R at period 1024: 3.6x
    // the fused loop, was 3.45x). Outputs trail the inputs by P - 1 frames,
    // so in == out (the double scratch) reads each sample before it is
    // written. AVX2 keeps the step at a time: its two-step chunks measured
    // slower (561 ns against 480 ns at period 128, BENCHMARKS.md).
    if constexpr (L == 8) {
      for (; t + 4 <= frames; t += 4) {
        WaveChunk<V, VI, L, R, kUnitC2, T>(in0 + t, in1 + t, out0 + t - (P - 1), out1 + t - (P - 1),
                                           gain, v, s1, s2, c1, c2, a1, a2);
      }
    }
    for (; t < frames; ++t) {
      V x{};
      x[L - 2] = static_cast<double>(in0[t]);
      x[L - 1] = static_cast<double>(in1[t]);
      WaveStep<V, VI, L, R, kUnitC2, false>(x, v, s1, s2, c1, c2, a1, a2, nullptr, o);
      out0[t - (P - 1)] = static_cast<T>(o[0] * gain);
      out1[t - (P - 1)] = static_cast<T>(o[1] * gain);
    }
    // Drain: positions d..P - 1 run on the block's last samples; no input.
    for (int d = 1; d < P; ++d, ++t) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) std::memcpy(&mask[r], kEdges.drain[d][r], sizeof(VI));
      WaveStep<V, VI, L, R, kUnitC2, true>(V{}, v, s1, s2, c1, c2, a1, a2, mask, o);
      out0[t - (P - 1)] = static_cast<T>(o[0] * gain);
      out1[t - (P - 1)] = static_cast<T>(o[1] * gain);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    std::memcpy(g.s1 + r * L, &s1[r], sizeof(V));
    std::memcpy(g.s2 + r * L, &s2[r], sizeof(V));
  }
}

template <class T>
using WaveFn = void (*)(WaveGroup&, const T*, const T*, T*, T*, uint32_t) noexcept;

using V8 = double __attribute__((vector_size(64)));
using VI8 = long long __attribute__((vector_size(64)));
using V4 = double __attribute__((vector_size(32)));
using VI4 = long long __attribute__((vector_size(32)));

// T: float on the block's buffers, double on the scratch between groups
// of stages (a long cascade is never rounded to float inside).
template <int R, bool kUnitC2, class T>
__attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"))) void Wave512(
    WaveGroup& g, const T* in0, const T* in1, T* out0, T* out1, uint32_t frames) noexcept {
  WaveBody<V8, VI8, 8, R, kUnitC2>(g, in0, in1, out0, out1, frames);
}

template <int R, bool kUnitC2, class T>
__attribute__((target("avx2,fma"))) void Wave256(WaveGroup& g, const T* in0, const T* in1, T* out0,
                                                 T* out1, uint32_t frames) noexcept {
  WaveBody<V4, VI4, 4, R, kUnitC2>(g, in0, in1, out0, out1, frames);
}

// [R - 1][unit_c2]
template <class T>
constexpr WaveFn<T> kWave512[4][2] = {
    {Wave512<1, false, T>, Wave512<1, true, T>},
    {Wave512<2, false, T>, Wave512<2, true, T>},
    {Wave512<3, false, T>, Wave512<3, true, T>},
    {Wave512<4, false, T>, Wave512<4, true, T>},
};
template <class T>
constexpr WaveFn<T> kWave256[4][2] = {
    {Wave256<1, false, T>, Wave256<1, true, T>},
    {Wave256<2, false, T>, Wave256<2, true, T>},
    {Wave256<3, false, T>, Wave256<3, true, T>},
    {Wave256<4, false, T>, Wave256<4, true, T>},
};

// The wavefront layout of one cascade: its groups of stages and their
// coefficients (WaveGroup's state fields are filled per channel pair).
struct WavePlan {
  int lanes = 0;  // 0: not prepared
  int count = 0;
  int groups = 0;
  bool ok = false;  // false: a stage has no gain form, run the pair kernel
  // The rest is written by PrepareWavePlan before anything reads it.
  int first[(kMaxCascade + 7) / 8 + 1];
  WaveGroup g[(kMaxCascade + 7) / 8];
  // What it was derived from.
  BiquadSection* sections[kMaxCascade];
  uint64_t generation[kMaxCascade];
};

bool WavePlanCurrent(const WavePlan& w, int lanes, BiquadSection* const* sections,
                     int count) noexcept {
  if (w.lanes != lanes || w.count != count) return false;
  for (int k = 0; k < count; ++k) {
    if (w.sections[k] != sections[k] || w.generation[k] != sections[k]->coeff_generation()) {
      return false;
    }
  }
  return true;
}

// Up to four registers' worth of stages run as one group over the block;
// longer cascades run as near-equal groups. False (w->ok) if a stage has no
// gain form. count >= 2 and at most 4 groups.
void PrepareWavePlan(int lanes, BiquadSection* const* sections, int count, WavePlan* w) noexcept {
  const int per_reg = lanes / 2;
  const int max_stages = 4 * per_reg;
  w->lanes = lanes;
  w->count = count;
  w->groups = (count + max_stages - 1) / max_stages;
  w->ok = true;
  for (int k = 0; k < count; ++k) {
    w->sections[k] = sections[k];
    w->generation[k] = sections[k]->coeff_generation();
  }
  w->first[0] = 0;
  for (int gi = 0; gi < w->groups; ++gi) {
    const int k = (count - w->first[gi] + (w->groups - gi) - 1) / (w->groups - gi);
    w->first[gi + 1] = w->first[gi] + k;
    const int regs = (k + per_reg - 1) / per_reg;
    if (!PrepareWave(sections + w->first[gi], k, regs * per_reg, regs, &w->g[gi])) {
      w->ok = false;
      return;
    }
  }
}

// All channels through `count` stages with a wavefront kernel of `lanes`
// doubles per register, in channel pairs (the last channel of an odd count
// paired with itself), with the layout in `w` (derived again when it was
// made for other sections, coefficients or lanes). Longer cascades run as
// groups over chunks of the block, handing the signal on in double. A
// cascade with a stage the gain form cannot take, or a lone stage, runs on
// the pair kernel.
void WaveAllChannels(int lanes, BiquadSection* const* sections, int count, int channels,
                     const float* const* in, float* const* out, uint32_t offset, uint32_t frames,
                     WavePlan* w) noexcept {
  constexpr int kMaxGroups = (kMaxCascade + 7) / 8;
  const int per_reg = lanes / 2;
  if (count < 2 || (count + 4 * per_reg - 1) / (4 * per_reg) > kMaxGroups) {
    CascadeAllChannels(sections, count, channels, in, out, offset, frames);
    return;
  }
  if (!WavePlanCurrent(*w, lanes, sections, count)) PrepareWavePlan(lanes, sections, count, w);
  if (!w->ok) {
    CascadeAllChannels(sections, count, channels, in, out, offset, frames);
    return;
  }
  const int groups = w->groups;
  const int* first = w->first;
  WaveGroup* g = w->g;
  auto pick = [&](const WaveGroup& wg, auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    const int r = wg.positions / per_reg - 1;
    const int u = wg.unit_c2 ? 1 : 0;
    return lanes == 8 ? kWave512<T>[r][u] : kWave256<T>[r][u];
  };
  for (int ch = 0; ch < channels; ch += 2) {
    const int ch1 = ch + 1 < channels ? ch + 1 : ch;
    const float* src0 = in[ch] + offset;
    const float* src1 = in[ch1] + offset;
    float* dst0 = out[ch] + offset;
    float* dst1 = out[ch1] + offset;
    for (int gi = 0; gi < groups; ++gi) LoadWaveState(sections + first[gi], ch, ch1, &g[gi]);
    if (groups == 1) {
      pick(g[0], static_cast<float*>(nullptr))(g[0], src0, src1, dst0, dst1, frames);
    } else {
      double x0[kScratchFrames], x1[kScratchFrames];
      for (uint32_t c0 = 0; c0 < frames; c0 += kScratchFrames) {
        const uint32_t n = std::min(kScratchFrames, frames - c0);
        for (uint32_t i = 0; i < n; ++i) {
          x0[i] = static_cast<double>(src0[c0 + i]);
          x1[i] = static_cast<double>(src1[c0 + i]);
        }
        for (int gi = 0; gi < groups; ++gi) {
          pick(g[gi], static_cast<double*>(nullptr))(g[gi], x0, x1, x0, x1, n);
        }
        for (uint32_t i = 0; i < n; ++i) {
          dst0[c0 + i] = static_cast<float>(x0[i]);
          dst1[c0 + i] = static_cast<float>(x1[i]);
        }
      }
    }
    for (int gi = 0; gi < groups; ++gi) StoreWaveState(g[gi], sections + first[gi], ch, ch1);
  }
}

CascadeVariant DetectVariant() noexcept {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma")) {
    return CascadeVariant::kAvx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return CascadeVariant::kAvx2;
  }
  return CascadeVariant::kPair;
}

// The loop-carried chain of a wavefront kernel alone (WavefrontChainAlone):
// the unmasked step of WaveBody on R registers of L lanes (eight stereo
// sections, b2 == b0 as in the reference chain's Butterworth sections), no
// input, output, conversion or state load or store. A stable section
// (poles at radius sqrt(0.3)) driven by a constant keeps the values far
// from denormals.
template <class V, class VI, int L, int R>
[[gnu::always_inline]] inline double WaveChainAloneBody(uint32_t steps) noexcept {
  V c1[R], c2[R], a1[R], a2[R], s1[R], s2[R], v[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    c1[r] = V{} + 2.0;
    c2[r] = V{} + 1.0;
    a1[r] = V{} - 1.0;
    a2[r] = V{} + 0.3;
    s1[r] = s2[r] = v[r] = V{};
  }
  V x{};
  x[L - 2] = x[L - 1] = 1e-3;
  double o[2];
  for (uint32_t t = 0; t < steps; ++t) {
    WaveStep<V, VI, L, R, /*kUnitC2=*/true, false>(x, v, s1, s2, c1, c2, a1, a2, nullptr, o);
  }
  return v[R - 1][L - 1] + s1[0][0];
}

__attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"))) double WaveChainAlone512(
    uint32_t steps) noexcept {
  return WaveChainAloneBody<V8, VI8, 8, 2>(steps);
}

__attribute__((target("avx2,fma"))) double WaveChainAlone256(uint32_t steps) noexcept {
  return WaveChainAloneBody<V4, VI4, 4, 4>(steps);
}

#else

CascadeVariant DetectVariant() noexcept {
  return CascadeVariant::kPair;
}

#endif  // AERS_WAVEFRONT

// -1 until detected; detection is idempotent, so racing threads agree.
std::atomic<int> g_variant{-1};

}  // namespace

#ifdef AERS_WAVEFRONT
static_assert(sizeof(WavePlan) <= kCascadeCacheBytes && alignof(WavePlan) <= 64,
              "CascadeCache's storage must hold a WavePlan");
static_assert(std::is_trivially_copyable_v<WavePlan> && std::is_trivially_destructible_v<WavePlan>);

CascadeCache::CascadeCache() noexcept {
  new (storage()) WavePlan();
}
#else
CascadeCache::CascadeCache() noexcept : storage_{} {}
#endif

namespace {

#ifdef AERS_WAVEFRONT
WavePlan* WavePlanOf(CascadeCache* cache) noexcept {
  return cache != nullptr ? std::launder(static_cast<WavePlan*>(cache->storage())) : nullptr;
}
#endif

void RunVariant(CascadeVariant v, BiquadSection* const* sections, int count, int channels,
                const float* const* in, float* const* out, uint32_t offset, uint32_t frames,
                CascadeCache* cache) noexcept {
#ifdef AERS_WAVEFRONT
  if (v != CascadeVariant::kPair) {
    const int lanes = v == CascadeVariant::kAvx512 ? 8 : 4;
    if (cache != nullptr) {
      WaveAllChannels(lanes, sections, count, channels, in, out, offset, frames, WavePlanOf(cache));
    } else {
      WavePlan local;  // prepared for this call only
      WaveAllChannels(lanes, sections, count, channels, in, out, offset, frames, &local);
    }
    return;
  }
#else
  (void)v;
  (void)cache;
#endif
  CascadeAllChannels(sections, count, channels, in, out, offset, frames);
}

}  // namespace

bool CascadeVariantAvailable(CascadeVariant v) noexcept {
  switch (v) {
    case CascadeVariant::kPair:
      return true;
    case CascadeVariant::kAvx2:
      return SelectedCascadeVariant() != CascadeVariant::kPair;
    case CascadeVariant::kAvx512:
      return SelectedCascadeVariant() == CascadeVariant::kAvx512;
  }
  return false;
}

CascadeVariant SelectedCascadeVariant() noexcept {
  int v = g_variant.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(DetectVariant());
    g_variant.store(v, std::memory_order_relaxed);
  }
  return static_cast<CascadeVariant>(v);
}

const char* CascadeVariantName(CascadeVariant v) noexcept {
  switch (v) {
    case CascadeVariant::kPair:
      return "pair";
    case CascadeVariant::kAvx2:
      return "avx2";
    case CascadeVariant::kAvx512:
      return "avx512";
  }
  return "?";
}

double WavefrontChainAlone(CascadeVariant v, uint32_t steps) noexcept {
  if (v == CascadeVariant::kPair || !CascadeVariantAvailable(v)) return 0.0;
#ifdef AERS_WAVEFRONT
  return v == CascadeVariant::kAvx512 ? WaveChainAlone512(steps) : WaveChainAlone256(steps);
#else
  (void)steps;
  return 0.0;
#endif
}

void RunCascadeWith(CascadeVariant v, BiquadSection* const* sections, int count, int channels,
                    const float* const* in, float* const* out, uint32_t frames,
                    CascadeCache* cache) noexcept {
  if (!CascadeVariantAvailable(v)) v = CascadeVariant::kPair;
  bool gliding = false;
  for (int k = 0; k < count; ++k) gliding |= sections[k]->Gliding();
  if (frames == 0) {
    // Nothing to filter.
  } else if (!gliding) {
    RunVariant(v, sections, count, channels, in, out, 0, frames, cache);
  } else {
    for (uint32_t offset = 0; offset < frames; offset += BiquadSection::kSubBlock) {
      const uint32_t n = std::min(BiquadSection::kSubBlock, frames - offset);
      for (int k = 0; k < count; ++k) sections[k]->Advance(n);
      RunVariant(v, sections, count, channels, in, out, offset, n, cache);
    }
  }
  // Non-finite state would latch for ever (rt/signal.h): a few compares per
  // section and channel per period.
  for (int k = 0; k < count; ++k) sections[k]->ResetNonFiniteState();
}

void RunCascade(BiquadSection* const* sections, int count, int channels, const float* const* in,
                float* const* out, uint32_t frames, CascadeCache* cache) noexcept {
  RunCascadeWith(SelectedCascadeVariant(), sections, count, channels, in, out, frames, cache);
}

}  // namespace aers::rt
