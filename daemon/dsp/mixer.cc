// mixer: N inputs summed with a smoothed gain per input.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "dsp/kind_base.h"
#include "dsp/smooth.h"

namespace aers::dsp {
namespace {

enum MixerParam : uint32_t { kInputs = 0, kGainsDb = 1 };

class MixerProcessor final : public rt::Processor {
 public:
  MixerProcessor(int channels, const std::vector<double>& gains_db, double sample_rate_hz)
      : channels_(channels) {
    gains_.reserve(gains_db.size());
    for (double db : gains_db) {
      gains_.push_back(
          std::make_unique<SmoothedGain>(static_cast<float>(DbToGain(db)), sample_rate_hz));
    }
  }

  /// Audio thread. Wait-free. in[i * channels + ch] is input i, channel ch.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    for (int ch = 0; ch < channels_; ++ch) std::memset(out[ch], 0, frames * sizeof(float));
    const int inputs = static_cast<int>(gains_.size());
    for (int i = 0; i < inputs; ++i) {
      SmoothedGain& g = *gains_[static_cast<size_t>(i)];
      const float* const* x = in + static_cast<ptrdiff_t>(i) * channels_;
      if (!g.Moving()) {
        const float v = g.value();
        if (v == 0.0f) continue;
        for (int ch = 0; ch < channels_; ++ch) {
          for (uint32_t n = 0; n < frames; ++n) out[ch][n] += x[ch][n] * v;
        }
        continue;
      }
      for (uint32_t n = 0; n < frames; ++n) {
        const float v = g.Next();
        for (int ch = 0; ch < channels_; ++ch) out[ch][n] += x[ch][n] * v;
      }
    }
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t element, double value) noexcept override {
    if (param == kGainsDb && element < gains_.size()) {
      gains_[element]->Set(static_cast<float>(DbToGain(value)));
    }
  }

 private:
  int channels_;
  std::vector<std::unique_ptr<SmoothedGain>> gains_;
};

int Inputs(const model::NodeSpec& spec) {
  auto it = spec.params.find("inputs");
  if (it == spec.params.end()) return 2;
  const auto* d = std::get_if<double>(&it->second);
  return d ? static_cast<int>(*d) : 2;
}

}  // namespace

std::shared_ptr<model::NodeKind> MakeMixerKind() {
  model::ParamDesc inputs = NumberParam("inputs", 1, 32, 2, "", "number of input ports in1..inN",
                                        /*live=*/false);
  inputs.type = model::ParamType::kInteger;
  model::ParamDesc gains = NumberParam("gains_db", -120.0, 24.0, 0.0, "dB",
                                       "gain per input, in port order; empty: all 0 dB");
  gains.type = model::ParamType::kNumberList;
  gains.default_value = std::vector<double>{};
  return std::make_shared<TableKind>(
      "mixer", "Sums N inputs (in1..inN), each with its own gain in dB.",
      std::vector<model::ParamDesc>{inputs, gains},
      [](const model::NodeSpec& spec) {
        model::NodeLayout l;
        const int n = Inputs(spec);
        for (int i = 1; i <= n; ++i) l.inputs.push_back({absl::StrCat("in", i), spec.channels});
        l.outputs.push_back({"out", spec.channels});
        return l;
      },
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        std::vector<double> gains_db = std::get<std::vector<double>>(p.at("gains_db"));
        gains_db.resize(static_cast<size_t>(GetNumber(p, "inputs")), 0.0);
        return std::make_unique<MixerProcessor>(spec.channels, gains_db, f.sample_rate_hz);
      },
      [](const model::NodeSpec& spec, const std::string& prefix,
         std::vector<model::Issue>& issues) {
        auto it = spec.params.find("gains_db");
        if (it == spec.params.end()) return;
        const auto& list = std::get<std::vector<double>>(it->second);
        const int n = Inputs(spec);
        if (!list.empty() && static_cast<int>(list.size()) != n) {
          issues.push_back({prefix + ".params.gains_db",
                            absl::StrCat("has ", list.size(), " entries but the mixer has ", n,
                                         " inputs; give one gain per input (or none)")});
        }
      });
}

}  // namespace aers::dsp
