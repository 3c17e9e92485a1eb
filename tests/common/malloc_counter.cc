#include "common/malloc_counter.h"

#include <cstddef>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define AERS_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define AERS_SANITIZED 1
#endif

namespace {
thread_local bool g_armed = false;
thread_local uint64_t g_count = 0;
}  // namespace

#if !defined(AERS_SANITIZED)
extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* p, size_t size);
void* __libc_memalign(size_t align, size_t size);
void __libc_free(void* p);

void* malloc(size_t size) {
  if (g_armed) ++g_count;
  return __libc_malloc(size);
}
void* calloc(size_t n, size_t size) {
  if (g_armed) ++g_count;
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t size) {
  if (g_armed) ++g_count;
  return __libc_realloc(p, size);
}
void* memalign(size_t align, size_t size) {
  if (g_armed) ++g_count;
  return __libc_memalign(align, size);
}
void* aligned_alloc(size_t align, size_t size) {
  if (g_armed) ++g_count;
  return __libc_memalign(align, size);
}
int posix_memalign(void** out, size_t align, size_t size) {
  if (g_armed) ++g_count;
  void* p = __libc_memalign(align, size);
  if (p == nullptr) return 12;  // ENOMEM
  *out = p;
  return 0;
}
void free(void* p) {
  if (p != nullptr && g_armed) ++g_count;
  __libc_free(p);
}
}  // extern "C"
#endif

namespace aers::test {
bool MallocCounterAvailable() {
#if defined(AERS_SANITIZED)
  return false;
#else
  return true;
#endif
}
void ArmMallocCounter() {
  g_count = 0;
  g_armed = true;
}
uint64_t DisarmMallocCounter() {
  g_armed = false;
  return g_count;
}
}  // namespace aers::test
