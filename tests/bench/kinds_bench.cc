// CPU cost of the built-in DSP kinds per channel, against the biquad from
// the same run (BENCHMARKS.md, "Node kinds"): each kind's processor alone
// (no engine), stereo, 48 kHz, 64-frame periods, noise at -12 dBFS with
// bursts to 0 dBFS so the dynamics work. Prints, per kind, ns per frame per
// channel, the ratio to one biquad section, and the share of a 64-frame
// period (1333 us) one channel takes. Best of 7 runs of 3 s of audio each.
//
//   build-release/tests/bench/kinds_bench
#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dsp/builtins.h"
#include "model/kind.h"
#include "rt/denormals.h"

namespace {

constexpr double kRate = 48000.0;
constexpr uint32_t kPeriod = 64;
constexpr int kChannels = 2;
constexpr uint32_t kFrames = 48000 * 3;

struct Case {
  std::string label;
  std::string kind;
  std::map<std::string, aers::model::ParamValue> params;
};

// Also sets *worst_us to the longest single period of the best run (us):
// kinds that do block work now and then (the meter every 100 ms, the
// convolver every partition) show it there.
double NsPerFrameChannel(const aers::model::KindRegistry& kinds, const Case& c,
                         const std::vector<std::vector<float>>& input, double* worst_us) {
  const aers::model::NodeKind* kind = kinds.Find(c.kind);
  aers::model::NodeSpec spec;
  spec.name = "n";
  spec.kind = c.kind;
  spec.channels = kChannels;
  spec.params = c.params;
  auto proc = kind->Instantiate(spec, kind->ResolveParams(spec, kRate), {kRate, kPeriod});
  if (!proc.ok()) {
    std::fprintf(stderr, "%s: %s\n", c.label.c_str(), std::string(proc.status().message()).c_str());
    std::exit(1);
  }
  const size_t outputs = kind->Layout(spec).outputs.size() * kChannels;
  std::vector<std::vector<float>> out(outputs, std::vector<float>(kPeriod));
  std::vector<float*> op;
  for (auto& o : out) op.push_back(o.data());
  double best = 1e30;
  for (int run = 0; run < 7; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    double worst = 0.0;
    for (uint32_t f = 0; f < kFrames; f += kPeriod) {
      const float* ip[kChannels] = {input[0].data() + f, input[1].data() + f};
      const auto p0 = std::chrono::steady_clock::now();
      (*proc)->Process(ip, op.data(), kPeriod);
      worst = std::max(
          worst,
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - p0).count());
    }
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    if (ns < best) *worst_us = worst;
    best = std::min(best, ns);
  }
  return best / (static_cast<double>(kFrames) * kChannels);
}

// A decaying noise response of `taps` taps written as a float WAV; the path.
std::string WriteImpulse(size_t taps) {
  const std::string path =
      "/tmp/aers-kinds-bench-" + std::to_string(::getpid()) + "-" + std::to_string(taps) + ".wav";
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::vector<float> h(taps);
  for (size_t t = 0; t < taps; ++t) h[t] = d(rng) * std::exp(-4.0f * static_cast<float>(t) / taps);
  SF_INFO info{};
  info.samplerate = 48000;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (f == nullptr) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), sf_strerror(nullptr));
    std::exit(1);
  }
  sf_writef_float(f, h.data(), static_cast<sf_count_t>(taps));
  sf_close(f);
  return path;
}

}  // namespace

int main() {
  aers::rt::EnableFlushToZero();  // like every audio thread
  auto kinds = aers::dsp::MakeBuiltinRegistry();
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.0f, 0.25f);
  std::vector<std::vector<float>> input(kChannels, std::vector<float>(kFrames));
  for (auto& ch : input) {
    for (uint32_t n = 0; n < kFrames; ++n) {
      ch[n] = noise(rng) * ((n / 4800) % 4 == 0 ? 4.0f : 1.0f);
    }
  }
  const std::vector<Case> cases = {
      {"biquad (peaking)", "biquad", {{"type", std::string("peaking")}, {"gain_db", 3.0}}},
      {"gain", "gain", {{"gain_db", -6.0}}},
      {"volume (loudness on)", "volume", {{"volume_db", -30.0}, {"loudness", true}}},
      {"crossover LR4, 2 bands", "crossover", {{"freqs_hz", std::vector<double>{2000.0}}}},
      {"crossover LR4, 3 bands", "crossover", {{"freqs_hz", std::vector<double>{120.0, 2500.0}}}},
      {"crossover LR8, 3 bands",
       "crossover",
       {{"freqs_hz", std::vector<double>{120.0, 2500.0}}, {"order", 8.0}}},
      {"compressor", "compressor", {{"threshold_db", -20.0}}},
      {"limiter (5 ms lookahead)", "limiter", {{"ceiling_db", -3.0}}},
      {"gate", "gate", {{"threshold_db", -30.0}}},
      {"dither (16 bits, shaped)", "dither", {{"shaping", std::string("first_order")}}},
      {"meter (peak, RMS)", "meter", {}},
      {"meter (peak, RMS, EBU R128)", "meter", {{"loudness", true}}},
      {"peq (AutoEQ file, 10 filters)",
       "peq",
       {{"file", std::string(AERS_SOURCE_ROOT) + "/tests/data/eq_apo/autoeq_headphone.txt"}}},
  };
  // The convolver is held to no period target; shown for scale.
  const std::string ir4k = WriteImpulse(4096), ir64k = WriteImpulse(65536);
  const std::vector<Case> convolvers = {
      {"convolver, 4096 taps", "convolver", {{"ir_file", ir4k}}},
      {"convolver, 65536 taps", "convolver", {{"ir_file", ir64k}}},
  };
  const double period_ns = kPeriod / kRate * 1e9;
  std::printf("stereo, %g Hz, %u-frame periods; per channel; best of 7 x %u frames\n", kRate,
              kPeriod, kFrames);
  std::printf("%-30s %12s %10s %16s %10s\n", "kind", "ns/frame/ch", "x biquad", "% of a period/ch",
              "worst us");
  double biquad = 0.0;
  for (const auto& c : cases) {
    double worst_us = 0.0;
    const double ns = NsPerFrameChannel(*kinds, c, input, &worst_us);
    if (biquad == 0.0) biquad = ns;
    std::printf("%-30s %12.2f %10.2f %15.3f%% %10.1f\n", c.label.c_str(), ns, ns / biquad,
                100.0 * ns * kPeriod / period_ns, worst_us);
  }
  for (const auto& c : convolvers) {
    double worst_us = 0.0;
    const double ns = NsPerFrameChannel(*kinds, c, input, &worst_us);
    std::printf("%-30s %12.2f %10.2f %15.3f%% %10.1f\n", c.label.c_str(), ns, ns / biquad,
                100.0 * ns * kPeriod / period_ns, worst_us);
  }
  ::unlink(ir4k.c_str());
  ::unlink(ir64k.c_str());
  return 0;
}
