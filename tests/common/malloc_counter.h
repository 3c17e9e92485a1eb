// Counts C heap calls (malloc, calloc, realloc, free and friends) made by
// the current thread while armed: what C libraries linked into a node kind
// (libebur128) do, which the operator new counter (alloc_counter.h) cannot
// see. Linking tests/common/malloc_counter.cc replaces glibc's malloc
// family with counting wrappers over glibc's own (__libc_malloc...).
// Under AddressSanitizer or ThreadSanitizer the sanitizer owns malloc: the
// wrappers are left out and Available() is false.
#pragma once

#include <cstdint>

namespace aers::test {

/// True when the wrappers are linked in (not a sanitizer build).
bool MallocCounterAvailable();
/// Arms counting for the calling thread.
void ArmMallocCounter();
/// Disarms and returns the C heap calls counted since arming.
uint64_t DisarmMallocCounter();

}  // namespace aers::test
