// Built-in node kinds: gain, mixer, delay, biquad, meter, tone.
//
// Thread: registration is non-real-time; each kind's Process() is documented
// on its class in the .cc.
#pragma once

#include "model/kind.h"

namespace aers::dsp {

/// Registers every built-in kind. Fails only if one is already registered.
absl::Status RegisterBuiltins(model::KindRegistry& registry);

/// A registry with the built-ins (tests and tools).
std::unique_ptr<model::KindRegistry> MakeBuiltinRegistry();

}  // namespace aers::dsp
