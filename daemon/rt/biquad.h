// Biquad sections (RBJ Audio EQ Cookbook) with smoothed parameters, and the
// cascade kernel the plan compiler uses to run chains of biquads fused.
//
// Thread: SetTarget*() from any thread (atomics); everything else on the
// audio thread unless said otherwise.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "rt/signal.h"

namespace aers::rt {

enum class BiquadType : uint8_t {
  kLowpass,
  kHighpass,
  kBandpass,  ///< constant 0 dB peak gain
  kNotch,
  kPeaking,
  kLowshelf,
  kHighshelf,
  kAllpass,
  // First-order sections (b2 = a2 = 0; q and gain_db unused): the bilinear
  // transform of 1/(1+s), s/(1+s) and (1-s)/(1+s) with s prewarped so that
  // the -3 dB point (lowpass1, highpass1) or the -90 degree point
  // (allpass1) is exactly freq_hz.
  kLowpass1,
  kHighpass1,
  kAllpass1,
};
inline constexpr int kBiquadTypeCount = 11;

/// Normalized coefficients (a0 == 1), transposed direct form II.
struct BiquadCoeffs {
  double b0 = 1.0, b1 = 0.0, b2 = 0.0, a1 = 0.0, a2 = 0.0;
};

/// The same section with b0 factored out, for the wavefront kernels:
/// H(z) = b0 (1 + c1 z^-1 + c2 z^-2) / (1 + a1 z^-1 + a2 z^-2). Valid only if
/// b0 is finite and not tiny (`ok`); inv_b0 = 1 / b0.
struct BiquadGainForm {
  double inv_b0 = 1.0, c1 = 0.0, c2 = 0.0;
  bool ok = true;
};

struct BiquadParams {
  BiquadType type = BiquadType::kLowpass;
  double freq_hz = 1000.0;
  double q = 0.7071;
  double gain_db = 0.0;
  friend bool operator==(const BiquadParams&, const BiquadParams&) = default;
};

/// Any thread. No allocation. The cookbook formulas (R. Bristow-Johnson,
/// "Audio EQ Cookbook") for the second-order types, the prewarped bilinear
/// transform for the first-order ones; freq_hz is clamped below Nyquist.
BiquadCoeffs DesignBiquad(const BiquadParams& p, double sample_rate_hz) noexcept;

/// Any thread. |H(e^jw)| in dB at freq_hz (tests, tools).
double BiquadMagnitudeDb(const BiquadCoeffs& c, double freq_hz, double sample_rate_hz) noexcept;

/// One biquad applied to up to kMaxChannels channels, with its own state per
/// channel and smoothed parameters.
class BiquadSection {
 public:
  static constexpr int kMaxChannels = 64;
  /// Frames between coefficient updates while parameters glide.
  static constexpr uint32_t kSubBlock = 32;

  /// Non-RT. Starts settled at `initial` (no glide).
  BiquadSection(const BiquadParams& initial, double sample_rate_hz, int channels);

  /// Any thread. Wait-free. The section glides to the target values.
  void SetType(BiquadType type) noexcept;
  void SetFreqHz(double freq_hz) noexcept;
  void SetQ(double q) noexcept;
  void SetGainDb(double gain_db) noexcept;

  /// Audio thread. Wait-free. Moves the parameters one step of `frames`
  /// toward their targets and recomputes coefficients if they moved.
  /// Returns true while still gliding (caller should use sub-blocks).
  bool Advance(uint32_t frames) noexcept;
  /// Audio thread. True if a target differs from the current parameters.
  /// Inline: a fused cascade asks every section every period.
  bool Gliding() const noexcept {
    return static_cast<uint8_t>(current_.type) != target_type_.load(std::memory_order_relaxed) ||
           current_.freq_hz != target_freq_hz_.load(std::memory_order_relaxed) ||
           current_.q != target_q_.load(std::memory_order_relaxed) ||
           current_.gain_db != target_gain_db_.load(std::memory_order_relaxed);
  }

  /// Audio thread. Filters one channel (in and out may alias).
  void Run(int channel, const float* in, float* out, uint32_t frames) noexcept;

  int channels() const noexcept { return channels_; }
  const BiquadCoeffs& coeffs() const noexcept { return c_; }
  /// coeffs() with b0 factored out (kept in step with coeffs()).
  const BiquadGainForm& gain_form() const noexcept { return g_; }
  /// Audio thread. Changes whenever coeffs() does (a step of a glide).
  /// Drawn from one process-wide count, so two sections (a new one built
  /// where a freed one was) never share a value.
  uint64_t coeff_generation() const noexcept { return generation_; }

  /// Audio thread. Resets the state of every channel whose state is NaN or
  /// Inf (rt/signal.h) and counts each reset in `counters` (if set). The
  /// check is inline (every section, every period); the reset is not.
  void ResetNonFiniteState() noexcept {
    bool bad = false;
    for (int ch = 0; ch < channels_; ++ch) {
      if (IsNonFinite(z1[ch]) || IsNonFinite(z2[ch])) bad = true;
    }
    if (bad) ResetState();
  }

  // State, public for the fused cascade kernel (audio thread only).
  double z1[kMaxChannels] = {};
  double z2[kMaxChannels] = {};
  /// Where state resets are counted (the owning node's counters); set
  /// before the section runs.
  SignalCounters* counters = nullptr;

 private:
  void ResetState() noexcept;
  double sample_rate_hz_;
  int channels_;
  BiquadParams current_;  // audio thread
  BiquadCoeffs c_;        // audio thread
  BiquadGainForm g_;      // audio thread, derived from c_
  uint64_t generation_;   // audio thread, renewed with c_
  std::atomic<uint8_t> target_type_;
  std::atomic<double> target_freq_hz_;
  std::atomic<double> target_q_;
  std::atomic<double> target_gain_db_;
};

/// Most sections RunCascade takes.
inline constexpr int kMaxCascade = 32;

/// Bytes of a CascadeCache: the wavefront kernels' layout of up to
/// kMaxCascade sections (checked against it in rt/biquad.cc); nothing to
/// keep where there are no such kernels.
#if defined(__x86_64__)
inline constexpr size_t kCascadeCacheBytes = 8256;
#else
inline constexpr size_t kCascadeCacheBytes = 64;
#endif

/// What the wavefront kernels derive from a cascade's coefficients (their
/// lane layout, the products of the b0s), kept between calls on the same
/// sections so that a period pays for it only after a coefficient changed
/// (a glide step), or a kernel of another register width ran with it. One
/// per call site that runs again and again (a plan's fused cascade step, a
/// node's cascade); used by one thread at a time. Plain storage, no
/// allocation, trivially copyable and destructible: whoever holds it makes
/// the room (the plan compiler, a node's constructor).
class CascadeCache {
 public:
  /// Any thread. Empty: the first RunCascade with it fills it.
  CascadeCache() noexcept;
  /// The kernels' view of the storage (rt/biquad.cc only).
  void* storage() noexcept { return storage_; }

 private:
  alignas(64) unsigned char storage_[kCascadeCacheBytes];
};

/// Audio thread. Wait-free. Runs `count` sections in series over `channels`
/// channels, interleaving sections and channels per sample so the CPU
/// overlaps their recursions. Advances each section's glide. in and out may
/// alias. count <= kMaxCascade. A section whose state became non-finite
/// is reset at the end of the call (rt/signal.h). `cache` (may be null:
/// derived again on every call) must not be shared by call sites that run
/// at the same time.
void RunCascade(BiquadSection* const* sections, int count, int channels, const float* const* in,
                float* const* out, uint32_t frames, CascadeCache* cache = nullptr) noexcept;

/// The cascade kernels RunCascade can use. kPair packs two channels in one
/// 128-bit register, one stage after the other (SSE2, its x86-64-v3 clone
/// with FMA where GCC builds ifunc clones, NEON on arm64, plain vector
/// extensions elsewhere). The wavefront kernels (x86-64 only) put stages of
/// a cascade across the lanes of 256-bit (AVX2 + FMA) or 512-bit (AVX-512)
/// registers, {ch, ch + 1} in each pair of lanes, stage k one sample behind
/// stage k - 1, with b0 factored out of every section (four multiplies per
/// section and sample, three if b2 == b0). Shapes they do not cover
/// (a single stage, a section whose b0 is 0 or extreme) run on kPair.
enum class CascadeVariant : uint8_t { kPair, kAvx2, kAvx512 };

/// Any thread. Whether this build and CPU can run `v` (kPair always).
bool CascadeVariantAvailable(CascadeVariant v) noexcept;
/// Any thread. The variant RunCascade uses: the widest available, detected
/// once (cpuid) and cached.
CascadeVariant SelectedCascadeVariant() noexcept;
/// Any thread. "pair", "avx2" or "avx512".
const char* CascadeVariantName(CascadeVariant v) noexcept;
/// Benchmarks only (any thread). `steps` steps of wavefront kernel `v`
/// (kAvx2, kAvx512) over a cascade of eight stereo sections with no input,
/// output, conversion or state load or store: the recursion's loop-carried
/// chain alone, the least time a step of that kernel takes on this CPU.
/// A block of N frames takes N + 7 steps (the wavefront fills and
/// drains). Returns a value of the final state, so the work is kept; 0 for
/// kPair or a variant this CPU or build cannot run.
double WavefrontChainAlone(CascadeVariant v, uint32_t steps) noexcept;
/// Audio thread. RunCascade with a given variant (tests, benchmarks); an
/// unavailable variant runs kPair.
void RunCascadeWith(CascadeVariant v, BiquadSection* const* sections, int count, int channels,
                    const float* const* in, float* const* out, uint32_t frames,
                    CascadeCache* cache = nullptr) noexcept;

}  // namespace aers::rt
