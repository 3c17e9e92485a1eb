#include "common/alloc_counter.h"

#include <cstddef>
#include <cstdlib>
#include <new>

namespace {
thread_local bool g_armed = false;
thread_local uint64_t g_count = 0;

void* Allocate(std::size_t size, std::size_t align) {
  if (g_armed) ++g_count;
  if (size == 0) size = 1;
  void* p = nullptr;
  if (align > alignof(std::max_align_t)) {
    if (posix_memalign(&p, align, size) != 0) p = nullptr;
  } else {
    p = std::malloc(size);
  }
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void Free(void* p) {
  if (p != nullptr && g_armed) ++g_count;
  std::free(p);
}
}  // namespace

namespace aers::test {
void ArmAllocCounter() {
  g_count = 0;
  g_armed = true;
}
uint64_t DisarmAllocCounter() {
  g_armed = false;
  return g_count;
}
}  // namespace aers::test

void* operator new(std::size_t size) {
  return Allocate(size, 0);
}
void* operator new[](std::size_t size) {
  return Allocate(size, 0);
}
void* operator new(std::size_t size, std::align_val_t a) {
  return Allocate(size, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t size, std::align_val_t a) {
  return Allocate(size, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept {
  Free(p);
}
void operator delete[](void* p) noexcept {
  Free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  Free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  Free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  Free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  Free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  Free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  Free(p);
}
