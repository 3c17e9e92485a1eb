// Runs one node kind's processor by itself, outside any engine, and counts
// the heap allocations its Process() makes (tests/common/alloc_counter.h):
// the real-time rule every built-in kind is held to.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/alloc_counter.h"
#include "common/rig.h"
#include "model/kind.h"

namespace aers::test {

/// Instantiates `kind_name` with `params` on `channels` channels at 48 kHz,
/// calls `before` on the processor (e.g. SetParam to start a glide), then
/// counts allocations and frees over `periods` Process() calls of 256
/// frames of a 440 Hz sine at `amplitude`. Fails the test (and returns
/// UINT64_MAX) if the kind does not exist or cannot be instantiated.
inline uint64_t AllocationsWhileProcessing(
    const std::string& kind_name, int channels, std::map<std::string, model::ParamValue> params,
    const std::function<void(rt::Processor&)>& before = nullptr, float amplitude = 0.5f,
    int periods = 50) {
  constexpr double kRate = 48000.0;
  constexpr uint32_t kPeriod = 256;
  auto kinds = dsp::MakeBuiltinRegistry();
  const model::NodeKind* kind = kinds->Find(kind_name);
  EXPECT_NE(kind, nullptr) << kind_name;
  if (kind == nullptr) return UINT64_MAX;
  model::NodeSpec spec;
  spec.name = "n";
  spec.kind = kind_name;
  spec.channels = channels;
  spec.params = std::move(params);
  auto proc = kind->Instantiate(spec, kind->ResolveParams(spec, kRate), {kRate, kPeriod});
  EXPECT_TRUE(proc.ok()) << kind_name << ": " << proc.status();
  if (!proc.ok()) return UINT64_MAX;
  const auto layout = kind->Layout(spec);
  std::vector<Signal> in(static_cast<size_t>(layout.TotalInputChannels()),
                         Sine(440.0, amplitude, kPeriod));
  std::vector<Signal> out(static_cast<size_t>(layout.TotalOutputChannels()), Signal(kPeriod));
  std::vector<const float*> ip;
  std::vector<float*> op;
  for (auto& s : in) ip.push_back(s.data());
  for (auto& s : out) op.push_back(s.data());
  if (before) before(**proc);
  ArmAllocCounter();
  for (int i = 0; i < periods; ++i) (*proc)->Process(ip.data(), op.data(), kPeriod);
  return DisarmAllocCounter();
}

}  // namespace aers::test
