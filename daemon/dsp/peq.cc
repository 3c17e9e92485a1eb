// peq: a parametric EQ read from the text REW and AutoEQ export in
// Equalizer APO's format (dsp/eq_apo.h: `Preamp: -6 dB`, `Filter 1: ON PK Fc
// 100 Hz Gain -3.0 dB Q 1.41`, ...). The file's filters run in series as
// biquad sections (the fused cascade kernel), its preamp and the node's own
// `gain_db` as one smoothed gain after them.
//
// The file is read and designed when the node is built, off the audio
// thread; a new `file` rebuilds the node, crossfaded like any rebuild.
// Errors in the file are reported as EQFILE:LINE:COLUMN, all at once.
#include "dsp/builtins.h"
#include "dsp/data_files.h"
#include "dsp/eq_apo.h"
#include "dsp/kind_base.h"
#include "dsp/smooth.h"
#include "rt/biquad.h"

namespace aers::dsp {
namespace {

enum PeqParam : uint32_t { kFile = 0, kGainDb = 1 };

class PeqProcessor final : public rt::Processor {
 public:
  PeqProcessor(const std::vector<rt::BiquadParams>& sections, double preamp_db, double gain_db,
               double rate, int channels)
      : channels_(channels),
        preamp_db_(preamp_db),
        gain_(static_cast<float>(DbToGain(preamp_db + gain_db)), rate) {
    for (const auto& p : sections) {
      sections_.push_back(std::make_unique<rt::BiquadSection>(p, rate, channels));
    }
    for (const auto& s : sections_) raw_.push_back(s.get());
    caches_.resize((raw_.size() + rt::kMaxCascade - 1) / rt::kMaxCascade);
  }

  /// Audio thread. Wait-free, no allocation.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    const float* const* from = in;
    for (size_t at = 0; at < raw_.size(); at += rt::kMaxCascade) {
      const int count = static_cast<int>(std::min<size_t>(rt::kMaxCascade, raw_.size() - at));
      rt::RunCascade(raw_.data() + at, count, channels_, from, out, frames,
                     &caches_[at / rt::kMaxCascade]);
      from = out;
    }
    // `from` is `in` when the file has no filters (a Preamp alone).
    ApplySmoothedGain(gain_, from, out, channels_, frames);
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t, double value) noexcept override {
    if (param == kGainDb) gain_.Set(static_cast<float>(DbToGain(preamp_db_ + value)));
  }

 private:
  int channels_;
  double preamp_db_;
  SmoothedGain gain_;
  std::vector<std::unique_ptr<rt::BiquadSection>> sections_;
  std::vector<rt::BiquadSection*> raw_;
  std::vector<rt::CascadeCache> caches_;  // one per run of up to kMaxCascade sections
};

// Reads and parses the file a `file` parameter names. Errors carry the
// file's own LINE:COLUMN.
absl::StatusOr<EqApoProgram> ReadProgram(const DataDirs& dirs, const std::string& value) {
  auto resolved = ResolveDataFile(dirs, value, kEqApoMaxBytes);
  if (!resolved.ok()) return resolved.status();
  auto text = ReadDataFile(*resolved, value, kEqApoMaxBytes);
  if (!text.ok()) return text.status();
  return ParseEqApo(*text, value);
}

}  // namespace

std::shared_ptr<model::NodeKind> MakePeqKind(DataDirs dirs) {
  const model::ParamDesc file = FileParam(
      "file",
      "parametric EQ in Equalizer APO's text format (REW, AutoEQ exports), relative to the config "
      "file's directory");
  auto shared_dirs = std::make_shared<const DataDirs>(std::move(dirs));
  return std::make_shared<TableKind>(
      "peq",
      "Parametric EQ from an Equalizer APO text file (REW, AutoEQ): its Preamp and Filter lines "
      "as biquad sections in series.",
      std::vector<model::ParamDesc>{
          file, NumberParam("gain_db", -120, 24, 0, "dB",
                            "gain on top of the file's Preamp, smoothed (-120 dB: silence)")},
      InOutLayout,
      [shared_dirs](
          const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
          const rt::StreamFormat& format) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        const auto& value = std::get<std::string>(p.at("file"));
        auto program = ReadProgram(*shared_dirs, value);
        if (!program.ok()) {
          return absl::Status(program.status().code(),
                              absl::StrCat("params.file: ", program.status().message()));
        }
        auto sections = EqApoBiquadParams(*program, format.sample_rate_hz);
        if (!sections.ok()) {
          return absl::Status(sections.status().code(),
                              absl::StrCat("params.file: ", sections.status().message()));
        }
        return std::make_unique<PeqProcessor>(*sections, program->preamp_db,
                                              GetNumber(p, "gain_db"), format.sample_rate_hz,
                                              spec.channels);
      },
      [shared_dirs](const model::NodeSpec& spec, const std::string& prefix,
                    std::vector<model::Issue>& issues) {
        const std::string path = prefix + ".params.file";
        const auto it = spec.params.find("file");
        if (it == spec.params.end()) {
          issues.push_back({path, "a peq node needs file, the Equalizer APO text to apply",
                            model::IssueCode::kMissingField});
          return;
        }
        auto program = ReadProgram(*shared_dirs, std::get<std::string>(it->second));
        if (!program.ok()) {
          issues.push_back(
              {path, std::string(program.status().message()), model::IssueCode::kBadValue});
        }
      });
}

}  // namespace aers::dsp
