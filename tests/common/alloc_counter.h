// Counts heap allocations made by the current thread while armed. Linking
// tests/common/alloc_counter.cc replaces the global operator new/delete.
#pragma once

#include <cstdint>

namespace aers::test {

/// Arms counting for the calling thread.
void ArmAllocCounter();
/// Disarms and returns the allocations + frees counted since arming.
uint64_t DisarmAllocCounter();

/// RAII: counts allocations in a scope on this thread.
class AllocScope {
 public:
  AllocScope() { ArmAllocCounter(); }
  ~AllocScope() { (void)DisarmAllocCounter(); }
  uint64_t Finish() { return DisarmAllocCounter(); }
};

}  // namespace aers::test
