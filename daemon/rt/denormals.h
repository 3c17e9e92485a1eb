// Flush-to-zero / denormals-are-zero for threads that run DSP.
//
// Subnormal floats (|x| < 1.2e-38 for float, 2.2e-308 for double) take a
// micro-coded slow path on many CPUs (reported at 40-200x for decaying
// filter tails) and leak into outputs as subnormal samples. Every
// thread that runs a plan or a plugin (JACK process thread, null and ALSA
// audio threads, offline render, test rigs) sets these modes once:
//   x86-64:  MXCSR.FTZ (bit 15) and MXCSR.DAZ (bit 6), SSE float and double.
//   aarch64: FPCR.FZ (bit 24), which flushes subnormal inputs and outputs.
// Other architectures: a no-op (SupportsFlushToZero() is false).
//
// Thread: affects the calling thread only. Wait-free, no syscalls.
#pragma once

#include <cstdint>

namespace aers::rt {

/// True when this build can set flush-to-zero on this architecture.
bool SupportsFlushToZero() noexcept;

/// Sets FTZ/DAZ for the calling thread for the rest of its life.
void EnableFlushToZero() noexcept;

/// True if the calling thread currently flushes subnormals (tests, asserts).
bool FlushToZeroEnabled() noexcept;

/// Sets FTZ/DAZ for a scope and restores the previous mode at its end: for
/// library code that runs DSP on a caller's thread (offline render, tests).
class ScopedFlushToZero {
 public:
  ScopedFlushToZero() noexcept;
  ~ScopedFlushToZero();
  ScopedFlushToZero(const ScopedFlushToZero&) = delete;
  ScopedFlushToZero& operator=(const ScopedFlushToZero&) = delete;

 private:
  uint64_t saved_;
};

}  // namespace aers::rt
