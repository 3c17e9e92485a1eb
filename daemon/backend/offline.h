// Offline rendering: runs a graph over audio files as fast as the CPU allows,
// through the same engine and plans the live backends use.
//
// Thread: the caller's (non-real-time); Process() runs on that thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "model/graph.h"
#include "model/kind.h"

namespace aers::backend {

/// Largest period a render runs (frames).
inline constexpr uint32_t kMaxRenderPeriodFrames = 65536;

struct RenderOptions {
  std::string input_path;  ///< empty: the graph must have no inputs
  /// .wav (32-bit float), .flac (24-bit), .w64, .caf (float), all through
  /// libsndfile; float files carry no PEAK chunk.
  std::string output_path;
  uint32_t period_frames = 1024;
  /// Length when there is no input file (graphs of generators only).
  double duration_s = 0.0;
  /// Sample rate when there is no input file.
  double sample_rate_hz = 48000.0;
  double crossfade_ms = 5.0;
  /// Set (by a signal handler, on any thread) to the number of a signal
  /// that should stop the render: it stops within a chunk of about 64 KiB
  /// of input (or a chunk's wait for input from a pipe), fails with CANCELLED naming the signal,
  /// and leaves no output and no temporary file. Null: not interruptible.
  const std::atomic<int>* stop_signal = nullptr;
  /// Called with the temporary file's path once it exists, and with "" once
  /// it is in place (renamed to output_path). Empty: not called.
  std::function<void(const std::string&)> temp_file;
};

struct RenderStats {
  uint64_t frames = 0;
  double sample_rate_hz = 0.0;
  int input_channels = 0;
  int output_channels = 0;
  double seconds = 0.0;  ///< wall time of the render loop (I/O included)
};

/// Renders `graph` over the input file into the output file. The graph's
/// external inputs take the file's channels in order (input 1's channels
/// first), its outputs fill the output file's channels likewise. The output
/// appears only when the render succeeded (written to a temporary file in
/// the same directory, fsync'ed, then renamed). An input that ends before
/// the frames it declares, or fails to read, fails the render. Errors name
/// the file and what is wrong.
absl::StatusOr<RenderStats> RenderFile(const model::GraphSpec& graph,
                                       const model::KindRegistry& kinds,
                                       const RenderOptions& options);

}  // namespace aers::backend
