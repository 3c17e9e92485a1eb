#include "backend/offline.h"

#include <sndfile.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "rt/denormals.h"
#include "rt/thread_role.h"

namespace aers::backend {

namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

absl::StatusOr<int> OutputFormat(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (absl::EqualsIgnoreCase(ext, ".wav")) return SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  if (absl::EqualsIgnoreCase(ext, ".flac")) return SF_FORMAT_FLAC | SF_FORMAT_PCM_24;
  if (absl::EqualsIgnoreCase(ext, ".w64")) return SF_FORMAT_W64 | SF_FORMAT_FLOAT;
  if (absl::EqualsIgnoreCase(ext, ".caf")) return SF_FORMAT_CAF | SF_FORMAT_FLOAT;
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": unsupported output extension '", ext,
                   "'; use .wav (32-bit float), .flac, .w64 or .caf"));
}

// Removes a temporary file unless released.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

// A block of frames on its way through the pipeline (planar channels).
struct Block {
  Block(size_t in_channels, size_t out_channels, size_t frames_capacity)
      : in(in_channels, std::vector<float>(frames_capacity)),
        out(out_channels, std::vector<float>(frames_capacity)) {}
  std::vector<std::vector<float>> in;
  std::vector<std::vector<float>> out;
  size_t frames = 0;
};

// Unbounded in principle, bounded in practice: only the pool's blocks (and
// one nullptr end marker) ever travel through it.
class BlockQueue {
 public:
  void Push(Block* b) {
    {
      std::lock_guard lock(mu_);
      q_.push_back(b);
    }
    cv_.notify_one();
  }
  /// Blocks until an item arrives; nullptr: end of stream or aborted.
  Block* Pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return aborted_ || !q_.empty(); });
    if (aborted_ && q_.empty()) return nullptr;
    Block* b = q_.front();
    q_.pop_front();
    return b;
  }
  void Abort() {
    {
      std::lock_guard lock(mu_);
      aborted_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Block*> q_;
  bool aborted_ = false;
};

}  // namespace

absl::StatusOr<RenderStats> RenderFile(const model::GraphSpec& graph,
                                       const model::KindRegistry& kinds,
                                       const RenderOptions& options) {
  RenderStats stats;
  stats.input_channels = graph.TotalInputChannels();
  stats.output_channels = graph.TotalOutputChannels();
  if (options.period_frames == 0 || options.period_frames > kMaxRenderPeriodFrames) {
    return absl::InvalidArgumentError(absl::StrCat("period_frames ", options.period_frames,
                                                   " is outside 1..", kMaxRenderPeriodFrames));
  }
  if (stats.output_channels == 0) {
    return absl::InvalidArgumentError("the graph has no outputs: nothing to write");
  }

  SndfilePtr in;
  SF_INFO in_info{};
  int64_t total_frames = 0;
  if (options.input_path.empty()) {
    if (stats.input_channels != 0) {
      return absl::InvalidArgumentError(absl::StrCat("the graph has ", stats.input_channels,
                                                     " input channel(s); give an input file"));
    }
    if (!(options.duration_s > 0.0)) {
      return absl::InvalidArgumentError(
          "without an input file, give a duration (the graph only generates sound)");
    }
    stats.sample_rate_hz = options.sample_rate_hz;
    total_frames = std::llround(options.duration_s * options.sample_rate_hz);
  } else {
    in.reset(sf_open(options.input_path.c_str(), SFM_READ, &in_info));
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat(options.input_path, ": cannot read audio: ", sf_strerror(nullptr)));
    }
    if (in_info.channels != stats.input_channels) {
      return absl::InvalidArgumentError(
          absl::StrCat(options.input_path, ": has ", in_info.channels,
                       " channel(s) but the graph's inputs "
                       "take ",
                       stats.input_channels, "; the file's channels map to the inputs in order"));
    }
    stats.sample_rate_hz = in_info.samplerate;
    total_frames = in_info.frames;
  }

  auto format = OutputFormat(options.output_path);
  if (!format.ok()) return format.status();

  engine::EngineOptions eopts;
  eopts.format = {stats.sample_rate_hz, options.period_frames};
  eopts.crossfade_ms = options.crossfade_ms;
  engine::Engine engine(kinds, eopts);
  if (auto st = engine.Apply(graph); !st.ok()) return st.status();

  const std::filesystem::path out_path(options.output_path);
  const std::filesystem::path dir = out_path.has_parent_path() ? out_path.parent_path() : ".";
  TempFile tmp(
      (dir / absl::StrCat(".", out_path.filename().string(), ".tmp.", ::getpid())).string());
  SF_INFO out_info{};
  out_info.samplerate = static_cast<int>(std::lround(stats.sample_rate_hz));
  out_info.channels = stats.output_channels;
  out_info.format = *format;
  SndfilePtr out(sf_open(tmp.path().c_str(), SFM_WRITE, &out_info));
  if (!out) {
    return absl::PermissionDeniedError(
        absl::StrCat(options.output_path, ": cannot write: ", sf_strerror(nullptr)));
  }

  // Three stages on three threads, so file I/O overlaps the DSP: a reader
  // (read + deinterleave), this thread (the engine, period by period) and a
  // writer (interleave + write). Blocks of many periods travel between them
  // through two small bounded queues; buffers are recycled, not reallocated.
  const uint32_t period = options.period_frames;
  const auto in_ch = static_cast<size_t>(stats.input_channels);
  const auto out_ch = static_cast<size_t>(stats.output_channels);
  const size_t block_frames = static_cast<size_t>(period) * std::max<uint32_t>(1, 16384 / period);
  constexpr size_t kBlocks = 4;
  std::vector<std::unique_ptr<Block>> pool;
  for (size_t i = 0; i < kBlocks; ++i) {
    pool.push_back(std::make_unique<Block>(in_ch, out_ch, block_frames));
  }
  BlockQueue free_q, full_q, done_q;
  for (auto& b : pool) free_q.Push(b.get());

  const auto start = std::chrono::steady_clock::now();
  absl::Status writer_status;
  std::thread reader([&] {
    std::vector<float> inter(block_frames * std::max<size_t>(in_ch, 1));
    int64_t remaining = total_frames;
    while (remaining > 0) {
      Block* b = free_q.Pop();
      if (b == nullptr) break;  // aborted
      const auto want =
          static_cast<sf_count_t>(std::min<int64_t>(static_cast<int64_t>(block_frames), remaining));
      sf_count_t got = want;
      if (in) {
        got = sf_readf_float(in.get(), inter.data(), want);
        if (got < 0) got = 0;
        for (size_t c = 0; c < in_ch; ++c) {
          float* dst = b->in[c].data();
          for (sf_count_t n = 0; n < got; ++n) {
            dst[n] = inter[static_cast<size_t>(n) * in_ch + c];
          }
        }
      }
      b->frames = static_cast<size_t>(got);
      full_q.Push(b);
      if (got < want) break;  // end of file (or a read error, checked below)
      remaining -= got;
    }
    full_q.Push(nullptr);
  });
  std::thread writer([&] {
    std::vector<float> inter(block_frames * out_ch);
    while (Block* b = done_q.Pop()) {
      for (size_t c = 0; c < out_ch; ++c) {
        const float* src = b->out[c].data();
        for (size_t n = 0; n < b->frames; ++n) inter[n * out_ch + c] = src[n];
      }
      const auto frames = static_cast<sf_count_t>(b->frames);
      if (writer_status.ok() && sf_writef_float(out.get(), inter.data(), frames) != frames) {
        writer_status = absl::ResourceExhaustedError(
            absl::StrCat(options.output_path, ": write failed: ", sf_strerror(out.get())));
        free_q.Abort();
      }
      free_q.Push(b);
    }
  });

  // This thread runs the plan: flush subnormals like every audio thread
  // (rt/denormals.h), and give the caller's mode back afterwards.
  rt::ScopedFlushToZero flush_to_zero;
  std::vector<const float*> in_ptrs(in_ch);
  std::vector<float*> out_ptrs(out_ch);
  int64_t done = 0;
  while (Block* b = full_q.Pop()) {
    for (size_t off = 0; off < b->frames; off += period) {
      const auto n = static_cast<uint32_t>(std::min<size_t>(period, b->frames - off));
      for (size_t c = 0; c < in_ch; ++c) in_ptrs[c] = b->in[c].data() + off;
      for (size_t c = 0; c < out_ch; ++c) out_ptrs[c] = b->out[c].data() + off;
      rt::AudioThreadScope audio;  // this thread also edits the engine around the loop
      engine.runner().Process(in_ptrs.data(), static_cast<uint32_t>(in_ch), out_ptrs.data(),
                              static_cast<uint32_t>(out_ch), n);
    }
    done += static_cast<int64_t>(b->frames);
    done_q.Push(b);
  }
  done_q.Push(nullptr);
  reader.join();
  writer.join();
  if (!writer_status.ok()) return writer_status;
  if (in && sf_error(in.get()) != SF_ERR_NO_ERROR) {
    return absl::DataLossError(
        absl::StrCat(options.input_path, ": read failed: ", sf_strerror(in.get())));
  }
  sf_write_sync(out.get());
  out.reset();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats.frames = static_cast<uint64_t>(done);
  std::error_code ec;
  std::filesystem::rename(tmp.path(), out_path, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(
        options.output_path, ": cannot move the rendered file in place: ", ec.message()));
  }
  tmp.Release();
  return stats;
}

}  // namespace aers::backend
