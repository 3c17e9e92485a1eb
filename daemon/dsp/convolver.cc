#include "dsp/convolver.h"

#include <kiss_fftr.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "rt/clones.h"

namespace aers::dsp {
namespace {

constexpr uint32_t kMinBlock = 16;
constexpr uint32_t kMaxBlock = 16384;

struct KissDeleter {
  void operator()(kiss_fftr_cfg cfg) const { kiss_fftr_free(cfg); }
};
using KissPlan = std::unique_ptr<std::remove_pointer_t<kiss_fftr_cfg>, KissDeleter>;

// acc += a * b over `n` complex bins held as split re/im arrays. On x86-64
// a second copy for AVX2 + FMA is picked at load time (rt/clones.h).
AERS_CLONES_V3
void MultiplyAdd(float* __restrict acc_re, float* __restrict acc_im, const float* __restrict a_re,
                 const float* __restrict a_im, const float* __restrict b_re,
                 const float* __restrict b_im, uint32_t n) noexcept {
  for (uint32_t k = 0; k < n; ++k) {
    acc_re[k] += a_re[k] * b_re[k] - a_im[k] * b_im[k];
    acc_im[k] += a_re[k] * b_im[k] + a_im[k] * b_re[k];
  }
}

}  // namespace

struct PartitionedConvolver::Plans {
  KissPlan forward;
  KissPlan inverse;
};

double ConvolverFlopsPerFrame(uint32_t period_frames, uint32_t block_frames, size_t taps,
                              int inputs, int outputs, size_t paths) {
  const double period = std::max<uint32_t>(period_frames, 1);
  const double b = std::max<uint32_t>(block_frames, 1);
  const double n = 2.0 * b;
  const double fft = 2.5 * n * std::log2(n);  // one real FFT of 2B points
  const double bins = b + 1.0;
  const double parts = std::ceil(static_cast<double>(taps) / b);
  const double calls = std::max(1.0, b / period);
  const double per_call = (inputs + outputs) * fft + static_cast<double>(paths) * 8.0 * bins;
  const double per_block = static_cast<double>(paths) * (parts - 1.0) * 8.0 * bins;
  return (calls * per_call + per_block) / b;
}

uint32_t ChooseBlockFrames(uint32_t period_frames, size_t taps) {
  const double period = std::max<uint32_t>(period_frames, 1);
  uint32_t best = 0;
  double best_cost = 0.0;
  for (double b = period; b <= kMaxBlock; b *= 2) {
    if (b < kMinBlock) continue;
    const double cost =
        ConvolverFlopsPerFrame(period_frames, static_cast<uint32_t>(b), taps, 1, 1, 1);
    if (best == 0 || cost < best_cost) {
      best = static_cast<uint32_t>(b);
      best_cost = cost;
    }
  }
  if (best == 0) {
    // A period above kMaxBlock: split calls into blocks of kMaxBlock; one
    // below kMinBlock: the smallest power-of-two multiple.
    best = period > kMaxBlock ? kMaxBlock : kMinBlock;
  }
  return best;
}

absl::StatusOr<std::unique_ptr<PartitionedConvolver>> PartitionedConvolver::Make(
    int inputs, int outputs, uint32_t block_frames, const std::vector<FirPath>& paths,
    size_t max_bytes) {
  if (inputs < 1 || outputs < 1) return absl::InvalidArgumentError("no channels");
  if (block_frames < kMinBlock || block_frames > kMaxBlock) {
    return absl::InvalidArgumentError(
        absl::StrCat("block of ", block_frames, " frames; allowed ", kMinBlock, " to ", kMaxBlock));
  }
  if (paths.empty()) return absl::InvalidArgumentError("no filters");
  size_t longest = 0;
  for (const auto& p : paths) {
    if (p.input < 0 || p.input >= inputs || p.output < 0 || p.output >= outputs) {
      return absl::InvalidArgumentError(
          absl::StrCat("filter ", p.input, " -> ", p.output, " names a channel out of range"));
    }
    if (!p.taps || p.taps->empty()) return absl::InvalidArgumentError("a filter has no taps");
    longest = std::max(longest, p.taps->size());
  }
  std::unique_ptr<PartitionedConvolver> c(new PartitionedConvolver());
  c->inputs_ = inputs;
  c->outputs_ = outputs;
  c->block_ = block_frames;
  c->bins_ = block_frames + 1;
  c->partitions_ = (longest + block_frames - 1) / block_frames;
  c->slots_ = std::max<size_t>(c->partitions_ - 1, 1);
  const size_t bins = c->bins_;
  const size_t n = 2 * size_t{block_frames};

  // Memory before allocating: spectra of distinct taps, delay lines, sums.
  std::map<const std::vector<float>*, size_t> distinct;
  for (const auto& p : paths) distinct.emplace(p.taps.get(), 0);
  const size_t floats = distinct.size() * 2 * c->partitions_ * bins +
                        size_t(inputs) * (n + 2 * c->slots_ * bins + 2 * bins) +
                        size_t(outputs) * 4 * bins + 2 * bins + n + 2 * bins;
  c->memory_bytes_ = floats * sizeof(float);
  if (c->memory_bytes_ > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the filters need ", c->memory_bytes_ >> 20, " MiB at a block of ", block_frames,
        " frames (", c->partitions_, " partitions); at most ", max_bytes >> 20, " MiB"));
  }

  c->plans_ = std::make_unique<Plans>();
  c->plans_->forward.reset(kiss_fftr_alloc(static_cast<int>(n), 0, nullptr, nullptr));
  c->plans_->inverse.reset(kiss_fftr_alloc(static_cast<int>(n), 1, nullptr, nullptr));
  if (!c->plans_->forward || !c->plans_->inverse) {
    return absl::ResourceExhaustedError("cannot allocate FFT plans");
  }
  c->time_.assign(n, 0.0f);
  c->cpx_.assign(2 * bins, 0.0f);
  auto* cpx = reinterpret_cast<kiss_fft_cpx*>(c->cpx_.data());

  // Partition spectra, scaled by 1/(2B): kissfft's inverse is unnormalised.
  const float scale = 1.0f / static_cast<float>(n);
  for (auto& [taps, index] : distinct) {
    index = c->spectra_.size();
    std::vector<float> spec(2 * c->partitions_ * bins, 0.0f);
    for (size_t j = 0; j < c->partitions_; ++j) {
      std::fill(c->time_.begin(), c->time_.end(), 0.0f);
      const size_t from = j * block_frames;
      const size_t count =
          from < taps->size() ? std::min<size_t>(block_frames, taps->size() - from) : 0;
      for (size_t t = 0; t < count; ++t) c->time_[t] = (*taps)[from + t] * scale;
      kiss_fftr(c->plans_->forward.get(), c->time_.data(), cpx);
      float* re = spec.data() + j * bins;
      float* im = spec.data() + c->partitions_ * bins + j * bins;
      for (size_t k = 0; k < bins; ++k) {
        re[k] = cpx[k].r;
        im[k] = cpx[k].i;
      }
    }
    c->spectra_.push_back(std::move(spec));
  }
  for (const auto& p : paths) {
    const auto& spec = c->spectra_[distinct.at(p.taps.get())];
    c->filters_.push_back({p.input, p.output, spec.data(), spec.data() + c->partitions_ * bins});
  }
  // Delay-line work items: (age m in 1..P-2) x filters.
  c->work_total_ = c->partitions_ >= 3 ? (c->partitions_ - 2) * c->filters_.size() : 0;

  c->xbuf_.assign(size_t(inputs) * n, 0.0f);
  c->fdl_re_.assign(size_t(inputs) * c->slots_ * bins, 0.0f);
  c->fdl_im_.assign(size_t(inputs) * c->slots_ * bins, 0.0f);
  c->cur_re_.assign(size_t(inputs) * bins, 0.0f);
  c->cur_im_.assign(size_t(inputs) * bins, 0.0f);
  c->acc_re_.assign(size_t(outputs) * bins, 0.0f);
  c->acc_im_.assign(size_t(outputs) * bins, 0.0f);
  c->next_re_.assign(size_t(outputs) * bins, 0.0f);
  c->next_im_.assign(size_t(outputs) * bins, 0.0f);
  c->sum_re_.assign(bins, 0.0f);
  c->sum_im_.assign(bins, 0.0f);
  return c;
}

PartitionedConvolver::~PartitionedConvolver() = default;

void PartitionedConvolver::Reset() noexcept {
  for (auto* v :
       {&xbuf_, &fdl_re_, &fdl_im_, &cur_re_, &cur_im_, &acc_re_, &acc_im_, &next_re_, &next_im_}) {
    std::fill(v->begin(), v->end(), 0.0f);
  }
  head_ = 0;
  fill_ = 0;
  work_done_ = 0;
}

const float* PartitionedConvolver::FdlRe(int input, size_t age) const noexcept {
  const size_t slot = (head_ + slots_ - (age - 1)) % slots_;
  return fdl_re_.data() + (size_t(input) * slots_ + slot) * bins_;
}

const float* PartitionedConvolver::FdlIm(int input, size_t age) const noexcept {
  const size_t slot = (head_ + slots_ - (age - 1)) % slots_;
  return fdl_im_.data() + (size_t(input) * slots_ + slot) * bins_;
}

void PartitionedConvolver::Process(const float* const* in, float* const* out,
                                   uint32_t frames) noexcept {
  uint32_t done = 0;
  while (done < frames) {
    const uint32_t len = std::min(frames - done, block_ - fill_);
    Segment(in, out, done, len);
    done += len;
  }
}

void PartitionedConvolver::Segment(const float* const* in, float* const* out, uint32_t offset,
                                   uint32_t len) noexcept {
  const size_t n = 2 * size_t{block_};
  auto* cpx = reinterpret_cast<kiss_fft_cpx*>(cpx_.data());
  // The current block's spectrum from what has arrived of it.
  for (int i = 0; i < inputs_; ++i) {
    float* x = xbuf_.data() + size_t(i) * n;
    std::memcpy(x + block_ + fill_, in[i] + offset, len * sizeof(float));
    kiss_fftr(plans_->forward.get(), x, cpx);
    float* re = cur_re_.data() + size_t(i) * bins_;
    float* im = cur_im_.data() + size_t(i) * bins_;
    for (uint32_t k = 0; k < bins_; ++k) {
      re[k] = cpx[k].r;
      im[k] = cpx[k].i;
    }
  }
  // Each output: older blocks' sum plus the current block through H_0.
  for (int o = 0; o < outputs_; ++o) {
    std::memcpy(sum_re_.data(), acc_re_.data() + size_t(o) * bins_, bins_ * sizeof(float));
    std::memcpy(sum_im_.data(), acc_im_.data() + size_t(o) * bins_, bins_ * sizeof(float));
    for (const auto& f : filters_) {
      if (f.output != o) continue;
      MultiplyAdd(sum_re_.data(), sum_im_.data(), cur_re_.data() + size_t(f.input) * bins_,
                  cur_im_.data() + size_t(f.input) * bins_, f.re, f.im, bins_);
    }
    for (uint32_t k = 0; k < bins_; ++k) {
      cpx[k].r = sum_re_[k];
      cpx[k].i = sum_im_[k];
    }
    kiss_fftri(plans_->inverse.get(), cpx, time_.data());
    std::memcpy(out[o] + offset, time_.data() + block_ + fill_, len * sizeof(float));
  }
  fill_ += len;
  // The delay-line share of this call, in proportion to the block filled.
  SpreadWork((work_total_ * fill_ + block_ - 1) / block_);
  if (fill_ == block_) EndBlock();
}

void PartitionedConvolver::SpreadWork(size_t until) noexcept {
  const size_t per_age = filters_.size();
  while (work_done_ < until) {
    const size_t m = 1 + work_done_ / per_age;  // S_{k-m} meets H_{m+1}
    const Filter& f = filters_[work_done_ % per_age];
    MultiplyAdd(next_re_.data() + size_t(f.output) * bins_,
                next_im_.data() + size_t(f.output) * bins_, FdlRe(f.input, m), FdlIm(f.input, m),
                f.re + (m + 1) * bins_, f.im + (m + 1) * bins_, bins_);
    ++work_done_;
  }
}

void PartitionedConvolver::EndBlock() noexcept {
  SpreadWork(work_total_);
  const size_t n = 2 * size_t{block_};
  if (partitions_ >= 2) {
    // The block just completed meets H_1 in the next block's sum.
    for (const auto& f : filters_) {
      MultiplyAdd(next_re_.data() + size_t(f.output) * bins_,
                  next_im_.data() + size_t(f.output) * bins_,
                  cur_re_.data() + size_t(f.input) * bins_,
                  cur_im_.data() + size_t(f.input) * bins_, f.re + bins_, f.im + bins_, bins_);
    }
    head_ = (head_ + 1) % slots_;
    for (int i = 0; i < inputs_; ++i) {
      const size_t at = (size_t(i) * slots_ + head_) * bins_;
      std::memcpy(fdl_re_.data() + at, cur_re_.data() + size_t(i) * bins_, bins_ * sizeof(float));
      std::memcpy(fdl_im_.data() + at, cur_im_.data() + size_t(i) * bins_, bins_ * sizeof(float));
    }
  }
  acc_re_.swap(next_re_);
  acc_im_.swap(next_im_);
  std::fill(next_re_.begin(), next_re_.end(), 0.0f);
  std::fill(next_im_.begin(), next_im_.end(), 0.0f);
  for (int i = 0; i < inputs_; ++i) {
    float* x = xbuf_.data() + size_t(i) * n;
    std::memcpy(x, x + block_, block_ * sizeof(float));
    std::fill(x + block_, x + n, 0.0f);
  }
  fill_ = 0;
  work_done_ = 0;
}

}  // namespace aers::dsp
