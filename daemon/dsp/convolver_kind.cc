// convolver: FIR filtering with impulse responses from an audio file
// (dsp/convolver.h for the algorithm, dsp/impulse_response.h for loading).
//
// The file's channel count says how it maps onto the node's `channels` (N):
//   1      the same filter on every channel;
//   N      channel c of the file filters channel c;
//   N x N  a matrix: file channel o * N + i filters input i into output o,
//          and each output sums its N filters.
// Loading, resampling and the FFT of the partitions happen when the node is
// instantiated, off the audio thread; a new file or normalisation is a new
// instance, crossfaded in like any edit that rebuilds a node.
#include <algorithm>
#include <atomic>
#include <cmath>

#include "absl/strings/str_format.h"
#include "dsp/builtins.h"
#include "dsp/convolver.h"
#include "dsp/data_files.h"
#include "dsp/impulse_response.h"
#include "dsp/kind_base.h"
#include "dsp/smooth.h"

namespace aers::dsp {
namespace {

enum ConvolverParam : uint32_t { kIrFile = 0, kGainDb = 1, kNormalize = 2, kPartitionFrames = 3 };

class ConvolverProcessor final : public rt::Processor {
 public:
  ConvolverProcessor(std::unique_ptr<PartitionedConvolver> conv, int channels, double gain_db,
                     double rate)
      : conv_(std::move(conv)),
        channels_(channels),
        gain_(static_cast<float>(DbToGain(gain_db)), rate) {}

  /// Audio thread. Wait-free, no allocation.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    conv_->Process(in, out, frames);
    ApplySmoothedGain(gain_, out, out, channels_, frames);
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t, double value) noexcept override {
    if (param == kGainDb) gain_.Set(static_cast<float>(DbToGain(value)));
  }

 private:
  std::unique_ptr<PartitionedConvolver> conv_;
  int channels_;
  SmoothedGain gain_;
};

IrNormalize NormalizeOf(const std::string& name) {
  if (name == "dc_gain") return IrNormalize::kDcGain;
  if (name == "peak_response") return IrNormalize::kPeakResponse;
  return IrNormalize::kNone;
}

// How an impulse file of `file_channels` maps onto `channels`; "" if it fits.
std::string MappingProblem(int file_channels, int channels) {
  if (file_channels == 1 || file_channels == channels || file_channels == channels * channels) {
    return {};
  }
  return absl::StrCat("has ", file_channels, " channels; a ", channels,
                      "-channel convolver takes 1 (one filter for all), ", channels,
                      " (one per channel) or ", channels * channels, " (an input x output matrix)");
}

}  // namespace

std::shared_ptr<model::NodeKind> MakeConvolverKind(DataDirs dirs) {
  const model::ParamDesc file = FileParam(
      "ir_file",
      "impulse response: an audio file libsndfile reads (WAV, FLAC, ...), relative to the config "
      "file's directory; 1, channels or channels^2 channels");
  model::ParamDesc normalize;
  normalize.name = "normalize";
  normalize.type = model::ParamType::kEnum;
  normalize.choices = {"none", "dc_gain", "peak_response"};
  normalize.default_value = std::string("none");
  normalize.live = false;
  normalize.help =
      "scale the filters once at load: none, dc_gain (largest DC gain 0 dB) or peak_response "
      "(largest gain over frequency 0 dB)";
  model::ParamDesc partition =
      NumberParam("partition_frames", 0, 16384, 0, "frames",
                  "partition (FFT block) size: 0 chooses the cheapest multiple of the period; "
                  "16 to 16384 fixes it (no added latency either way)",
                  false);
  partition.type = model::ParamType::kInteger;
  auto shared_dirs = std::make_shared<const DataDirs>(std::move(dirs));
  return std::make_shared<TableKind>(
      "convolver",
      "FIR filter (room correction, speaker EQ, reverb) by partitioned FFT convolution with "
      "impulse responses from an audio file, resampled to the stream's rate; no added latency.",
      std::vector<model::ParamDesc>{
          file,
          NumberParam("gain_db", -120, 24, 0, "dB", "output gain, smoothed (-120 dB: silence)"),
          normalize, partition},
      InOutLayout,
      [shared_dirs](
          const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& p,
          const rt::StreamFormat& format) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        const auto& value = std::get<std::string>(p.at("ir_file"));
        auto resolved = ResolveDataFile(*shared_dirs, value, kMaxImpulseFileBytes);
        if (!resolved.ok()) {
          return absl::Status(resolved.status().code(),
                              absl::StrCat("params.ir_file: ", resolved.status().message()));
        }
        auto ir = LoadImpulseResponse(*resolved, value, format.sample_rate_hz,
                                      NormalizeOf(std::get<std::string>(p.at("normalize"))));
        if (!ir.ok()) {
          return absl::Status(ir.status().code(),
                              absl::StrCat("params.ir_file: ", ir.status().message()));
        }
        const int n = spec.channels;
        const int file_channels = static_cast<int>(ir->taps.size());
        if (auto problem = MappingProblem(file_channels, n); !problem.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat("params.ir_file: '", value, "' ", problem));
        }
        std::vector<std::shared_ptr<const std::vector<float>>> taps;
        for (auto& t : ir->taps)
          taps.push_back(std::make_shared<const std::vector<float>>(std::move(t)));
        std::vector<FirPath> paths;
        for (int o = 0; o < n; ++o) {
          if (file_channels == n * n && n > 1) {
            for (int i = 0; i < n; ++i) paths.push_back({i, o, taps[size_t(o * n + i)]});
          } else {
            paths.push_back({o, o, taps[file_channels == 1 ? 0 : size_t(o)]});
          }
        }
        const auto fixed = static_cast<uint32_t>(GetNumber(p, "partition_frames"));
        size_t longest = 0;
        for (const auto& t : taps) longest = std::max(longest, t->size());
        const uint32_t block =
            fixed != 0 ? fixed : ChooseBlockFrames(format.max_period_frames, longest);
        const double flops =
            ConvolverFlopsPerFrame(format.max_period_frames, block, longest, n, n, paths.size()) *
            format.sample_rate_hz;
        if (flops > kMaxConvolverFlopsPerSecond) {
          return absl::InvalidArgumentError(absl::StrCat(
              fixed != 0 ? "params.partition_frames: " : "params.ir_file: ", "'", value, "' (",
              paths.size(), paths.size() == 1 ? " filter" : " filters", " of up to ", longest,
              " taps) at partitions of ", block, " frames and periods of ",
              format.max_period_frames, " frames would take about ",
              absl::StrFormat("%.1f", flops / 1e9), " GFLOP/s; a convolver node may take ",
              absl::StrFormat("%.0f", kMaxConvolverFlopsPerSecond / 1e9),
              fixed != 0 ? " (try partition_frames: 0, the cheapest for this period)"
                         : " (use a shorter response or fewer channels)"));
        }
        auto conv = PartitionedConvolver::Make(n, n, block, paths);
        if (!conv.ok()) {
          return absl::Status(conv.status().code(), absl::StrCat("params.ir_file: '", value,
                                                                 "': ", conv.status().message()));
        }
        return std::make_unique<ConvolverProcessor>(std::move(*conv), n, GetNumber(p, "gain_db"),
                                                    format.sample_rate_hz);
      },
      [shared_dirs](const model::NodeSpec& spec, const std::string& prefix,
                    std::vector<model::Issue>& issues) {
        if (const auto pf = spec.params.find("partition_frames"); pf != spec.params.end()) {
          const double v = std::get<double>(pf->second);
          if (v != 0.0 && v < 16.0) {
            issues.push_back({prefix + ".params.partition_frames",
                              absl::StrCat("partition_frames = ", v,
                                           " is out of range; use 0 (chosen for the period) or 16 "
                                           "to 16384 frames"),
                              model::IssueCode::kOutOfRange});
          }
        }
        const std::string path = prefix + ".params.ir_file";
        const auto it = spec.params.find("ir_file");
        if (it == spec.params.end()) {
          issues.push_back({path, "a convolver needs ir_file, the impulse response to apply",
                            model::IssueCode::kMissingField});
          return;
        }
        const auto& value = std::get<std::string>(it->second);
        auto resolved = ResolveDataFile(*shared_dirs, value, kMaxImpulseFileBytes);
        if (!resolved.ok()) {
          issues.push_back(
              {path, std::string(resolved.status().message()), model::IssueCode::kBadValue});
          return;
        }
        auto info = ReadImpulseInfo(*resolved, value, 0.0);
        if (info.ok()) {
          if (auto problem = MappingProblem(info->channels, spec.channels); !problem.empty()) {
            issues.push_back(
                {path, absl::StrCat("'", value, "' ", problem), model::IssueCode::kBadValue});
          }
          return;
        }
        issues.push_back({path, std::string(info.status().message()), model::IssueCode::kBadValue});
      });
}

}  // namespace aers::dsp
