#include "rt/hooks.h"

namespace aers::rt {

// Weak: an instrumented build's strong definitions replace these.
__attribute__((weak)) void EnterAudioPeriod() noexcept {}
__attribute__((weak)) void LeaveAudioPeriod() noexcept {}
__attribute__((weak)) std::optional<uint64_t> AudioThreadAllocations() noexcept {
  return std::nullopt;
}

}  // namespace aers::rt
