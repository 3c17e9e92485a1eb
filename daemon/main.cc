// aersd: wiring only. Flags, the choice of mode, exit codes.
//
//   aersd render --config FILE --input IN.wav --output OUT.wav
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "backend/offline.h"
#include "config/config.h"
#include "dsp/builtins.h"

ABSL_FLAG(std::string, config, "",
          "Graph/config YAML file (env AERS_CONFIG_PATH; the flag wins).");
ABSL_FLAG(std::string, input, "", "render: input audio file (any format libsndfile reads).");
ABSL_FLAG(std::string, output, "", "render: output file (.wav float, .flac, .w64, .caf).");
ABSL_FLAG(uint32_t, period_frames, 1024, "render: frames per processing period.");
ABSL_FLAG(double, duration_s, 0.0, "render: length in seconds when there is no --input.");
ABSL_FLAG(double, sample_rate_hz, 48000.0, "render: sample rate when there is no --input.");

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitConfig = 3;
constexpr int kExitRender = 4;

std::string ConfigPath() {
  std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) {
    if (const char* env = std::getenv("AERS_CONFIG_PATH")) path = env;
  }
  return path;
}

int RunRender() {
  const std::string config_path = ConfigPath();
  if (config_path.empty()) {
    std::fprintf(stderr, "aersd render: --config FILE is required\n");
    return kExitUsage;
  }
  if (absl::GetFlag(FLAGS_output).empty()) {
    std::fprintf(stderr, "aersd render: --output FILE is required\n");
    return kExitUsage;
  }
  auto kinds = aers::dsp::MakeBuiltinRegistry();
  auto config = aers::config::LoadConfigFile(config_path, *kinds);
  if (!config.ok()) {
    std::fprintf(stderr, "aersd render: invalid config:\n%s\n",
                 std::string(config.status().message()).c_str());
    return kExitConfig;
  }
  aers::backend::RenderOptions opts;
  opts.input_path = absl::GetFlag(FLAGS_input);
  opts.output_path = absl::GetFlag(FLAGS_output);
  opts.period_frames = absl::GetFlag(FLAGS_period_frames);
  opts.duration_s = absl::GetFlag(FLAGS_duration_s);
  opts.sample_rate_hz = absl::GetFlag(FLAGS_sample_rate_hz);
  opts.crossfade_ms = config->engine.crossfade_ms;
  auto stats = aers::backend::RenderFile(config->graph, *kinds, opts);
  if (!stats.ok()) {
    std::fprintf(stderr, "aersd render: %s\n", std::string(stats.status().message()).c_str());
    return kExitRender;
  }
  const double audio_s = static_cast<double>(stats->frames) / stats->sample_rate_hz;
  std::fprintf(stderr,
               "aersd render: %llu frames (%.2f s of audio, %d -> %d channels, %.0f Hz) in "
               "%.3f s (%.1fx real time)\n",
               static_cast<unsigned long long>(stats->frames), audio_s, stats->input_channels,
               stats->output_channels, stats->sample_rate_hz, stats->seconds,
               stats->seconds > 0 ? audio_s / stats->seconds : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "AERS real-time audio routing daemon.\n\n"
      "  aersd render --config FILE --input IN.wav --output OUT.wav\n"
      "      Render audio files through the graph offline, as fast as the CPU allows.\n");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() >= 2 && std::string(args[1]) == "render") return RunRender();
  std::fprintf(stderr, "aersd: unknown command; see aersd --help\n");
  return kExitUsage;
}
