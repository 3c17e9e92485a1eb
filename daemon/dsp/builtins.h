// Built-in node kinds: gain, mixer, delay, biquad, meter, tone, crossover,
// volume, compressor, limiter, gate, dither, convolver, peq.
//
// Thread: registration is non-real-time; each kind's Process() is documented
// on its class in the .cc.
#pragma once

#include "dsp/data_files.h"
#include "model/kind.h"

namespace aers::dsp {

/// Registers every built-in kind. Kinds that read data files (convolver)
/// find them through `data`. Fails only if one is already registered.
absl::Status RegisterBuiltins(model::KindRegistry& registry, const DataDirs& data = {});

/// A registry with the built-ins. The daemon passes the config file's
/// directory and --data_dir; tests and tools may leave `data` open.
std::unique_ptr<model::KindRegistry> MakeBuiltinRegistry(const DataDirs& data = {});

}  // namespace aers::dsp
