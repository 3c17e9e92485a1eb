#include "backend/backend.h"

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace aers::backend {

void EnableFlushToZero() noexcept {
#if defined(__SSE__)
  // FTZ (bit 15) and DAZ (bit 6) of MXCSR.
  _mm_setcsr(_mm_getcsr() | 0x8040u);
#endif
}

}  // namespace aers::backend
