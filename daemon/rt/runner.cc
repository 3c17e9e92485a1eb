#include "rt/runner.h"

#include <cstring>

#include "rt/thread_role.h"

namespace aers::rt {

void Runner::Adopt(Plan* plan) noexcept {
  if (rt_.current != nullptr) {
    // Space was checked by the caller; the push cannot fail.
    retired_.TryPush(rt_.current);
  }
  rt_.current = plan;
}

uint64_t Runner::PreparePeriod() noexcept {
  AERS_DCHECK_AUDIO_THREAD();
  cycles_.fetch_add(1, std::memory_order_relaxed);
  const uintptr_t pending = pending_.load(std::memory_order_relaxed);
  const Plan* running = rt_.current;
  const bool fading = running != nullptr && running->successor && !running->RampDone();
  if (pending != 0 && !((pending & kAfterFade) != 0 && fading)) {
    if (retired_.FreeSlots() > 0) {
      const uintptr_t next = pending_.exchange(0, std::memory_order_acq_rel);
      if (next != 0) Adopt(reinterpret_cast<Plan*>(next & ~kAfterFade));
    } else {
      deferred_swaps_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  Plan* plan = rt_.current;
  if (plan != nullptr && plan->successor && plan->RampDone()) {
    if (retired_.FreeSlots() > 0) {
      // release() hands over ownership without freeing anything.
      Plan* next = plan->successor.release();
      Adopt(next);
      plan = next;
    } else {
      deferred_swaps_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return plan != nullptr ? plan->io_layout : 0;
}

void Runner::RunPrepared(const float* const* in, uint32_t in_channels, float* const* out,
                         uint32_t out_channels, uint32_t frames) noexcept {
  AERS_DCHECK_AUDIO_THREAD();
  Plan* plan = rt_.current;
  if (plan == nullptr || frames > plan->format().max_period_frames ||
      in_channels != plan->input_channels() || out_channels != plan->output_channels()) {
    RunSilent(out, out_channels, frames);
    return;
  }
  plan->Process(in, out, frames);
  if (!plan->successor || plan->RampDone()) {
    if (settled_seq_.load(std::memory_order_relaxed) != plan->seq) {
      settled_seq_.store(plan->seq, std::memory_order_release);
    }
  }
}

void Runner::RunSilent(float* const* out, uint32_t out_channels, uint32_t frames) noexcept {
  for (uint32_t ch = 0; ch < out_channels; ++ch) std::memset(out[ch], 0, frames * sizeof(float));
  silent_cycles_.fetch_add(1, std::memory_order_relaxed);
}

Plan* Runner::Publish(Plan* plan, bool after_fade) noexcept {
  AERS_DCHECK_NOT_AUDIO_THREAD();
  uintptr_t value = reinterpret_cast<uintptr_t>(plan);
  if (plan != nullptr && after_fade) value |= kAfterFade;
  return reinterpret_cast<Plan*>(pending_.exchange(value, std::memory_order_acq_rel) & ~kAfterFade);
}

Plan* Runner::DetachCurrent() noexcept {
  AERS_DCHECK_NOT_AUDIO_THREAD();
  Plan* p = rt_.current;
  rt_.current = nullptr;
  return p;
}

Plan* Runner::PopRetired() noexcept {
  AERS_DCHECK_NOT_AUDIO_THREAD();
  Plan* p = nullptr;
  return retired_.TryPop(p) ? p : nullptr;
}

}  // namespace aers::rt
