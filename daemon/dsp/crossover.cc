// crossover: splits `in` into N bands (outputs band1 = lowest .. bandN) at
// N - 1 ascending frequencies. Each band is one cascade of biquad sections
// run by the fused kernel (rt::RunCascade); lower bands carry the all-pass
// of every crossover above them, so the bands stay in phase and
// Linkwitz-Riley bands sum to an all-pass (flat magnitude).
#include "dsp/crossover.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "dsp/kind_base.h"

namespace aers::dsp {

std::vector<double> ButterworthQs(int order) {
  // The poles sit on the unit circle at pi (2k - 1) / (2 order) from the
  // imaginary axis; a pair at angle phi from it has Q = 1 / (2 sin phi).
  std::vector<double> qs;
  for (int k = 1; k <= order / 2; ++k) {
    qs.push_back(1.0 / (2.0 * std::sin((2.0 * k - 1.0) * std::numbers::pi / (2.0 * order))));
  }
  std::sort(qs.begin(), qs.end());
  return qs;
}

namespace {

// The Butterworth order whose sections make one filter of the crossover.
int BaseOrder(CrossoverAlignment alignment, int order) {
  return alignment == CrossoverAlignment::kLinkwitzRiley ? order / 2 : order;
}

void AppendButterworth(int order, bool highpass, double freq_hz,
                       std::vector<rt::BiquadParams>& out) {
  for (double q : ButterworthQs(order)) {
    out.push_back(
        {highpass ? rt::BiquadType::kHighpass : rt::BiquadType::kLowpass, freq_hz, q, 0.0});
  }
  if (order % 2 == 1) {
    out.push_back(
        {highpass ? rt::BiquadType::kHighpass1 : rt::BiquadType::kLowpass1, freq_hz, 0.7071, 0.0});
  }
}

}  // namespace

std::vector<rt::BiquadParams> CrossoverFilter(CrossoverAlignment alignment, int order,
                                              bool highpass, double freq_hz) {
  std::vector<rt::BiquadParams> out;
  const int m = BaseOrder(alignment, order);
  AppendButterworth(m, highpass, freq_hz, out);
  if (alignment == CrossoverAlignment::kLinkwitzRiley) AppendButterworth(m, highpass, freq_hz, out);
  return out;
}

std::vector<rt::BiquadParams> CrossoverAllpass(CrossoverAlignment alignment, int order,
                                               double freq_hz) {
  std::vector<rt::BiquadParams> out;
  if (alignment == CrossoverAlignment::kButterworth) {
    if (order % 2 == 0) return out;
    // LP + HP = (1 + s^N) / D_N(s). The roots of 1 + s^N in the left half
    // plane are the Butterworth pole pairs at k pi / N (k even) from the
    // negative real axis and cancel; those in the right half plane mirror
    // the pairs at k pi / N, k odd: (s^2 - s/Q + 1)/(s^2 + s/Q + 1) with
    // Q = 1 / (2 cos(k pi / N)).
    for (int k = 1; 2 * k < order; k += 2) {
      const double q = 1.0 / (2.0 * std::cos(k * std::numbers::pi / order));
      out.push_back({rt::BiquadType::kAllpass, freq_hz, q, 0.0});
    }
    return out;
  }
  // Linkwitz-Riley 2M: D_M(-s) / D_M(s), one (s^2 - s/Q + 1)/(s^2 + s/Q + 1)
  // per Butterworth(M) pole pair, and (1 - s)/(1 + s) for the real pole of
  // an odd M.
  const int m = BaseOrder(alignment, order);
  for (double q : ButterworthQs(m)) out.push_back({rt::BiquadType::kAllpass, freq_hz, q, 0.0});
  if (m % 2 == 1) out.push_back({rt::BiquadType::kAllpass1, freq_hz, 0.7071, 0.0});
  return out;
}

int CrossoverHighpassSign(CrossoverAlignment alignment, int order) {
  return alignment == CrossoverAlignment::kLinkwitzRiley && (order / 2) % 2 == 1 ? -1 : 1;
}

std::vector<CrossoverBand> DesignCrossover(CrossoverAlignment alignment, int order,
                                           const std::vector<double>& freqs_hz) {
  const int crossovers = static_cast<int>(freqs_hz.size());
  const int sign = CrossoverHighpassSign(alignment, order);
  std::vector<CrossoverBand> bands(static_cast<size_t>(crossovers + 1));
  for (int b = 0; b <= crossovers; ++b) {
    CrossoverBand& band = bands[static_cast<size_t>(b)];
    auto add = [&](std::vector<rt::BiquadParams> sections, int index) {
      for (auto& s : sections) {
        band.sections.push_back(s);
        band.crossover_index.push_back(index);
      }
    };
    for (int j = 0; j < b; ++j) {
      add(CrossoverFilter(alignment, order, true, freqs_hz[static_cast<size_t>(j)]), j);
    }
    if (b < crossovers) {
      add(CrossoverFilter(alignment, order, false, freqs_hz[static_cast<size_t>(b)]), b);
    }
    for (int j = b + 1; j < crossovers; ++j) {
      add(CrossoverAllpass(alignment, order, freqs_hz[static_cast<size_t>(j)]), j);
    }
    band.sign = b % 2 == 1 ? sign : 1;
  }
  return bands;
}

namespace {

enum CrossoverParam : uint32_t { kFreqsHz = 0, kAlignment = 1, kOrder = 2 };

const std::vector<std::string>& AlignmentNames() {
  static const std::vector<std::string> names = {"linkwitz_riley", "butterworth"};
  return names;
}

// The longest band (the top one: every crossover's highpass) must fit one
// fused cascade: at most 4 sections per filter (order 8).
static_assert(kMaxCrossovers * 4 <= rt::kMaxCascade);

class CrossoverProcessor final : public rt::Processor {
 public:
  CrossoverProcessor(const std::vector<CrossoverBand>& bands, const std::vector<double>& freqs_hz,
                     double sample_rate_hz, int channels)
      : channels_(channels), crossovers_(static_cast<int>(freqs_hz.size())) {
    for (int j = 0; j < crossovers_; ++j) {
      target_hz_[j].store(freqs_hz[static_cast<size_t>(j)]);
      pushed_hz_[j] = freqs_hz[static_cast<size_t>(j)];
    }
    for (const auto& design : bands) {
      Band band;
      band.sign = static_cast<float>(design.sign);
      for (size_t k = 0; k < design.sections.size(); ++k) {
        band.owned.push_back(
            std::make_unique<rt::BiquadSection>(design.sections[k], sample_rate_hz, channels));
        band.owned.back()->counters = &signal;
        band.sections.push_back(band.owned.back().get());
        band.crossover_index.push_back(design.crossover_index[k]);
      }
      bands_.push_back(std::move(band));
    }
  }

  /// Audio thread. Wait-free. out[b * channels + ch] is band b + 1, channel ch.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    // A moved crossover reaches every section that follows it before any
    // band runs, so all of them glide in step (rt::BiquadSection).
    for (int x = 0; x < crossovers_; ++x) {
      const double hz = target_hz_[x].load(std::memory_order_relaxed);
      if (hz == pushed_hz_[x]) continue;
      pushed_hz_[x] = hz;
      for (Band& band : bands_) {
        for (size_t k = 0; k < band.sections.size(); ++k) {
          if (band.crossover_index[k] == x) band.sections[k]->SetFreqHz(hz);
        }
      }
    }
    for (size_t b = 0; b < bands_.size(); ++b) {
      Band& band = bands_[b];
      float* const* dst = out + static_cast<ptrdiff_t>(b) * channels_;
      rt::RunCascade(band.sections.data(), static_cast<int>(band.sections.size()), channels_, in,
                     dst, frames, &band.cache);
      if (band.sign < 0.0f) {
        for (int ch = 0; ch < channels_; ++ch) {
          for (uint32_t n = 0; n < frames; ++n) dst[ch][n] = -dst[ch][n];
        }
      }
    }
  }

  /// Any thread. Wait-free. Moves crossover `element` to `value` Hz; the
  /// next Process() hands it to every section that follows it.
  void SetParam(uint32_t param, uint32_t element, double value) noexcept override {
    if (param != kFreqsHz || element >= static_cast<uint32_t>(crossovers_)) return;
    target_hz_[element].store(value, std::memory_order_relaxed);
  }

 private:
  struct Band {
    std::vector<std::unique_ptr<rt::BiquadSection>> owned;
    std::vector<rt::BiquadSection*> sections;
    std::vector<int> crossover_index;
    float sign = 1.0f;
    rt::CascadeCache cache;
  };
  int channels_;
  int crossovers_;
  std::vector<Band> bands_;
  std::atomic<double> target_hz_[kMaxCrossovers];
  double pushed_hz_[kMaxCrossovers] = {};  // audio thread
};

std::vector<double> Frequencies(const model::NodeSpec& spec) {
  auto it = spec.params.find("freqs_hz");
  if (it == spec.params.end()) return {1000.0};
  const auto* list = std::get_if<std::vector<double>>(&it->second);
  return list != nullptr && !list->empty() ? *list : std::vector<double>{1000.0};
}

CrossoverAlignment Alignment(const std::string& name) {
  return name == "butterworth" ? CrossoverAlignment::kButterworth
                               : CrossoverAlignment::kLinkwitzRiley;
}

}  // namespace

std::shared_ptr<model::NodeKind> MakeCrossoverKind() {
  // Bounds scale with the rate: 0.00002 of it (0.96 Hz at 48 kHz, 7.7 Hz at
  // 384 kHz: any subsonic crossover fits) to 0.49, below Nyquist where the
  // bilinear design holds.
  model::ParamDesc freqs = NumberParam(
      "freqs_hz", 0.00002, 0.49, 0.0, "Hz",
      "crossover frequencies, ascending: N of them make N + 1 bands (at most 8); changes glide");
  freqs.per_sample_rate = true;
  freqs.type = model::ParamType::kNumberList;
  freqs.default_value = std::vector<double>{1000.0};
  model::ParamDesc alignment_desc;
  alignment_desc.name = "alignment";
  alignment_desc.type = model::ParamType::kEnum;
  alignment_desc.choices = AlignmentNames();
  alignment_desc.default_value = std::string("linkwitz_riley");
  alignment_desc.live = false;
  alignment_desc.help =
      "linkwitz_riley (orders 2, 4, 8; bands sum flat, -6 dB at the crossover) or butterworth "
      "(orders 1-8; -3 dB at the crossover)";
  model::ParamDesc order_desc =
      NumberParam("order", 1, 8, 4, "", "filter order: slope 6 dB/octave per order", false);
  order_desc.type = model::ParamType::kInteger;
  return std::make_shared<TableKind>(
      "crossover",
      "Splits the input into bands band1 (lowest) .. bandN at N - 1 frequencies with "
      "Linkwitz-Riley or Butterworth filters; Linkwitz-Riley and odd Butterworth bands are "
      "all-pass compensated and sum flat.",
      std::vector<model::ParamDesc>{freqs, alignment_desc, order_desc},
      [](const model::NodeSpec& spec) {
        model::NodeLayout l;
        l.inputs.push_back({"in", spec.channels});
        const size_t bands = Frequencies(spec).size() + 1;
        for (size_t b = 1; b <= bands; ++b) {
          l.outputs.push_back({absl::StrCat("band", b), spec.channels});
        }
        return l;
      },
      [](const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
         const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        const auto& freqs_hz = std::get<std::vector<double>>(p.at("freqs_hz"));
        const auto bands = DesignCrossover(Alignment(std::get<std::string>(p.at("alignment"))),
                                           static_cast<int>(GetNumber(p, "order")), freqs_hz);
        return std::make_unique<CrossoverProcessor>(bands, freqs_hz, f.sample_rate_hz,
                                                    spec.channels);
      },
      [](const model::NodeSpec& spec, const std::string& prefix,
         std::vector<model::Issue>& issues) {
        if (auto it = spec.params.find("freqs_hz"); it != spec.params.end()) {
          const auto& list = std::get<std::vector<double>>(it->second);
          if (list.empty()) {
            issues.push_back(
                {prefix + ".params.freqs_hz", "is empty; give at least one crossover frequency"});
          } else if (static_cast<int>(list.size()) > kMaxCrossovers) {
            issues.push_back({prefix + ".params.freqs_hz",
                              absl::StrCat("has ", list.size(), " frequencies; at most ",
                                           kMaxCrossovers, " (", kMaxCrossovers + 1, " bands)")});
          }
          for (size_t i = 1; i < list.size(); ++i) {
            if (!(list[i] > list[i - 1])) {
              issues.push_back(
                  {absl::StrCat(prefix, ".params.freqs_hz[", i, "]"),
                   absl::StrCat(list[i], " Hz is not above the one before it (", list[i - 1],
                                " Hz); crossover frequencies must ascend")});
            }
          }
        }
        std::string alignment = "linkwitz_riley";
        if (auto it = spec.params.find("alignment"); it != spec.params.end()) {
          alignment = std::get<std::string>(it->second);
        }
        int order = 4;
        if (auto it = spec.params.find("order"); it != spec.params.end()) {
          order = static_cast<int>(std::get<double>(it->second));
        }
        if (alignment == "linkwitz_riley" && order != 2 && order != 4 && order != 8) {
          issues.push_back({prefix + ".params.order",
                            absl::StrCat("is ", order,
                                         "; a Linkwitz-Riley crossover has order 2, 4 or 8 "
                                         "(12, 24 or 48 dB/octave)")});
        }
      });
}

}  // namespace aers::dsp
