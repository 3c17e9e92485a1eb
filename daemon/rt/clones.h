// Run-time dispatch of hot loops to a wider instruction set (x86-64).
//
// AERS_CLONES_V3 before a function: GCC builds it twice, for the baseline
// x86-64 of shipped builds and for x86-64-v3 (AVX2, FMA), and the dynamic
// loader picks one for the CPU (ifunc). Empty with clang, on other
// architectures and under the sanitizers: an ifunc resolver runs during
// relocation, before their runtimes start, and TSan's instrumented resolver
// crashes there.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define AERS_CLONES_V3 __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define AERS_CLONES_V3
#endif
