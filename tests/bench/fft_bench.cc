// Real FFT speed of the convolver's library (kissfft, BSD-3-Clause) against
// FFTW (GPL-2+, which is why aersd does not link it), at the sizes the
// convolver uses (2 x partition). Prints ns per forward+inverse pair and the
// ratio kissfft / FFTW, same run. BENCHMARKS.md "Convolver".
//
//   build/tests/bench/fft_bench
#include <kiss_fftr.h>

#include <chrono>
#include <cstdio>
#include <vector>

#ifdef AERS_BENCH_FFTW
#include <fftw3.h>
#endif

namespace {

template <typename F>
double NsPerCall(F&& f) {
  using Clock = std::chrono::steady_clock;
  // Repeat until 0.3 s have passed; best of 3 such rounds.
  double best = 1e30;
  for (int round = 0; round < 3; ++round) {
    long calls = 0;
    const auto start = Clock::now();
    auto now = start;
    do {
      for (int i = 0; i < 64; ++i) f();
      calls += 64;
      now = Clock::now();
    } while (now - start < std::chrono::milliseconds(300));
    best = std::min(best, std::chrono::duration<double, std::nano>(now - start).count() /
                              static_cast<double>(calls));
  }
  return best;
}

}  // namespace

int main() {
  std::printf("%-8s %14s %14s %8s\n", "size", "kissfft ns", "fftw ns", "ratio");
  for (int n : {128, 512, 2048, 8192, 32768}) {
    std::vector<float> time(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i)
      time[static_cast<size_t>(i)] = static_cast<float>((i * 7919) % 97) / 97.0f;
    std::vector<kiss_fft_cpx> spec(static_cast<size_t>(n / 2 + 1));
    kiss_fftr_cfg fwd = kiss_fftr_alloc(n, 0, nullptr, nullptr);
    kiss_fftr_cfg inv = kiss_fftr_alloc(n, 1, nullptr, nullptr);
    const double kiss = NsPerCall([&] {
      kiss_fftr(fwd, time.data(), spec.data());
      kiss_fftri(inv, spec.data(), time.data());
    });
    kiss_fftr_free(fwd);
    kiss_fftr_free(inv);
    double fftw = 0.0;
#ifdef AERS_BENCH_FFTW
    float* t = fftwf_alloc_real(static_cast<size_t>(n));
    fftwf_complex* c = fftwf_alloc_complex(static_cast<size_t>(n / 2 + 1));
    fftwf_plan pf = fftwf_plan_dft_r2c_1d(n, t, c, FFTW_MEASURE);
    fftwf_plan pi = fftwf_plan_dft_c2r_1d(n, c, t, FFTW_MEASURE);
    for (int i = 0; i < n; ++i) t[i] = time[static_cast<size_t>(i)];
    fftw = NsPerCall([&] {
      fftwf_execute(pf);
      fftwf_execute(pi);
    });
    fftwf_destroy_plan(pf);
    fftwf_destroy_plan(pi);
    fftwf_free(t);
    fftwf_free(c);
#endif
    if (fftw > 0.0) {
      std::printf("%-8d %14.0f %14.0f %8.2f\n", n, kiss, fftw, kiss / fftw);
    } else {
      std::printf("%-8d %14.0f %14s %8s\n", n, kiss, "-", "-");
    }
  }
  return 0;
}
