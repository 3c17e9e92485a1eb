// Audio-thread instrumentation hooks. Backends call them around every
// period's Process(). Shipped builds define them as empty functions (weak
// symbols); the test-only daemon build links strong definitions that arm an
// allocation counter, so integration tests can prove the audio thread never
// allocates while the control plane hammers the engine.
#pragma once

#include <cstdint>
#include <optional>

namespace aers::rt {

/// Audio thread, before Process(). Wait-free.
void EnterAudioPeriod() noexcept;
/// Audio thread, after Process(). Wait-free.
void LeaveAudioPeriod() noexcept;
/// Any thread. Allocations + frees counted on the audio thread inside
/// periods, or nullopt when this build is not instrumented.
std::optional<uint64_t> AudioThreadAllocations() noexcept;

}  // namespace aers::rt
