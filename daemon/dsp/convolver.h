// FIR filtering by uniformly partitioned overlap-save convolution (UPOLS),
// the engine of the `convolver` node kind.
//
// An impulse response h of any length is cut into P partitions of B taps
// (B: the block, a period or a multiple of it); each partition's spectrum
// H_j is the real FFT (size 2B) of its taps padded with B zeros. The input's
// spectra S_m = FFT([x_{m-1}, x_m]) of the last P blocks wait in a
// frequency-domain delay line, and the output of block k is the second half
// of IFFT(sum_j S_{k-j} H_j). References: A. Torger, A. Farina, "Real-time
// partitioned convolution for Ambiophonics surround sound", WASPAA 2001
// (the scheme BruteFIR uses); F. Wefers, "Partitioned convolution algorithms
// for real-time auralization", Logos 2015, ch. 5.
//
// No added latency: the current block's term S_k H_0 is recomputed from the
// samples received so far on every Process() call (zeros stand for the rest
// of the block, which no output sample so far depends on), so a call's output
// depends only on input up to its last sample, as in direct convolution. The
// sum over older blocks (j >= 1) is accumulated for the next block while the
// current one fills, spread evenly over its calls, so no call carries a whole
// block's delay-line work.
//
// FFT: kissfft (BSD-3-Clause, Debian libkissfft-float131), single precision;
// spectra and sums in float. Why kissfft and how it compares: BENCHMARKS.md
// "Convolver".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"

namespace aers::dsp {

/// One FIR filter from input channel `input` to output channel `output`.
/// Several filters may share an output (they are summed: a matrix) or taps.
struct FirPath {
  int input = 0;
  int output = 0;
  std::shared_ptr<const std::vector<float>> taps;  ///< the impulse response, >= 1 tap
};

/// The block B (frames) that costs least per sample for `taps` taps when
/// Process() is called with `period_frames` frames: a multiple period * 2^k
/// (k >= 0, B in [16, 16384]) minimising FFT work per call plus delay-line
/// work per block, under a cost model of kissfft's real FFT (~2.5 N log2 N
/// flops) and 8 flops per complex multiply-add.
uint32_t ChooseBlockFrames(uint32_t period_frames, size_t taps);

/// Estimated work of a convolver, in flops per frame, under the cost model
/// of ChooseBlockFrames: per call, one FFT per input, one inverse FFT per
/// output and the current block's products for every path; per block, the
/// delay-line products of every path. `taps`: the longest path.
double ConvolverFlopsPerFrame(uint32_t period_frames, uint32_t block_frames, size_t taps,
                              int inputs, int outputs, size_t paths);

/// The most work one convolver node may take: 4e9 flops per second of
/// audio under that model (about a third of one core of the benchmark
/// host, BENCHMARKS.md "Convolver"). More is refused when the node is
/// built: it would not keep up with real time beside anything else.
inline constexpr double kMaxConvolverFlopsPerSecond = 4e9;

class PartitionedConvolver {
 public:
  /// Non-RT: builds spectra and buffers (allocates; FFT plans). Errors:
  /// InvalidArgument for a path with no taps or channels out of range, a
  /// block outside [16, 16384], or more than `max_bytes` of spectra.
  static absl::StatusOr<std::unique_ptr<PartitionedConvolver>> Make(
      int inputs, int outputs, uint32_t block_frames, const std::vector<FirPath>& paths,
      size_t max_bytes = size_t{1} << 30);
  ~PartitionedConvolver();
  PartitionedConvolver(const PartitionedConvolver&) = delete;
  PartitionedConvolver& operator=(const PartitionedConvolver&) = delete;

  /// Audio thread. Wait-free, no allocation. `in`: `inputs` channels, `out`:
  /// `outputs` channels of `frames` frames each (any count; calls may cross
  /// block boundaries). out[o][n] = sum over paths to o of
  /// sum_t taps[t] * in[input][n - t], with the inputs before the first call
  /// taken as silence.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept;

  /// Back to silence (clears the delay line). Non-RT or between Process calls.
  void Reset() noexcept;

  uint32_t block_frames() const { return block_; }
  size_t partitions() const { return partitions_; }
  /// Bytes held in spectra and buffers.
  size_t memory_bytes() const { return memory_bytes_; }

 private:
  struct Plans;
  struct Filter {
    int input;
    int output;
    const float* re;  ///< partitions_ x bins_, scaled by 1 / (2B)
    const float* im;
  };
  PartitionedConvolver() = default;

  void Segment(const float* const* in, float* const* out, uint32_t offset, uint32_t len) noexcept;
  void SpreadWork(size_t until) noexcept;
  void EndBlock() noexcept;
  const float* FdlRe(int input, size_t age) const noexcept;  ///< S_{k-age}, age >= 1
  const float* FdlIm(int input, size_t age) const noexcept;

  int inputs_ = 0;
  int outputs_ = 0;
  uint32_t block_ = 0;     ///< B
  uint32_t bins_ = 0;      ///< B + 1
  size_t partitions_ = 0;  ///< P
  size_t slots_ = 0;       ///< delay-line slots, max(P - 1, 1)
  size_t memory_bytes_ = 0;

  std::unique_ptr<Plans> plans_;
  std::vector<std::vector<float>> spectra_;  ///< owned H re/im per distinct taps
  std::vector<Filter> filters_;

  std::vector<float> xbuf_;    ///< inputs x 2B: [x_{k-1}, x_k so far, zeros]
  std::vector<float> fdl_re_;  ///< inputs x slots x bins
  std::vector<float> fdl_im_;
  std::vector<float> cur_re_;  ///< inputs x bins: S_k of the samples so far
  std::vector<float> cur_im_;
  std::vector<float> acc_re_;  ///< outputs x bins: sum_{j>=1} S_{k-j} H_j
  std::vector<float> acc_im_;
  std::vector<float> next_re_;  ///< outputs x bins: the same for block k+1, growing
  std::vector<float> next_im_;
  std::vector<float> sum_re_;  ///< bins: one output's spectrum this call
  std::vector<float> sum_im_;
  std::vector<float> time_;  ///< 2B
  std::vector<float> cpx_;   ///< 2 x bins (kiss_fft_cpx)
  size_t head_ = 0;          ///< slot of S_{k-1}
  uint32_t fill_ = 0;        ///< frames of block k received
  size_t work_done_ = 0;     ///< spread items done this block
  size_t work_total_ = 0;    ///< (P - 2) x filters
};

}  // namespace aers::dsp
