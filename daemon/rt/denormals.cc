#include "rt/denormals.h"

#if defined(__x86_64__) || defined(__SSE2__)
#include <xmmintrin.h>
#endif

namespace aers::rt {
namespace {

#if defined(__x86_64__) || defined(__SSE2__)
constexpr uint64_t kFlushBits = 0x8040u;  // MXCSR: FTZ (bit 15) | DAZ (bit 6)
uint64_t ReadMode() noexcept {
  return _mm_getcsr();
}
void WriteMode(uint64_t mode) noexcept {
  _mm_setcsr(static_cast<unsigned int>(mode));
}
constexpr bool kSupported = true;
#elif defined(__aarch64__)
constexpr uint64_t kFlushBits = uint64_t{1} << 24;  // FPCR.FZ
uint64_t ReadMode() noexcept {
  uint64_t v;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
  return v;
}
void WriteMode(uint64_t mode) noexcept {
  __asm__ __volatile__("msr fpcr, %0" : : "r"(mode));
}
constexpr bool kSupported = true;
#else
constexpr uint64_t kFlushBits = 0;
uint64_t ReadMode() noexcept {
  return 0;
}
void WriteMode(uint64_t) noexcept {}
constexpr bool kSupported = false;
#endif

}  // namespace

bool SupportsFlushToZero() noexcept {
  return kSupported;
}

void EnableFlushToZero() noexcept {
  WriteMode(ReadMode() | kFlushBits);
}

bool FlushToZeroEnabled() noexcept {
  return kSupported && (ReadMode() & kFlushBits) == kFlushBits;
}

ScopedFlushToZero::ScopedFlushToZero() noexcept : saved_(ReadMode()) {
  WriteMode(saved_ | kFlushBits);
}

ScopedFlushToZero::~ScopedFlushToZero() {
  WriteMode(saved_);
}

}  // namespace aers::rt
