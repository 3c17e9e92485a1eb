// Strong definitions of the audio-thread hooks for the instrumented daemon
// (aersd-rtcheck): count allocations and frees inside every period.
#include <atomic>

#include "common/alloc_counter.h"
#include "rt/hooks.h"

namespace aers::rt {

namespace {
std::atomic<uint64_t> g_total{0};
}  // namespace

void EnterAudioPeriod() noexcept {
  test::ArmAllocCounter();
}

void LeaveAudioPeriod() noexcept {
  g_total.fetch_add(test::DisarmAllocCounter(), std::memory_order_relaxed);
}

std::optional<uint64_t> AudioThreadAllocations() noexcept {
  return g_total.load(std::memory_order_relaxed);
}

}  // namespace aers::rt
