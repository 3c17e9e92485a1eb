#include "backend/offline.h"

#include <fcntl.h>
#include <sndfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backend/render_io.h"
#include "engine/engine.h"
#include "rt/denormals.h"
#include "rt/thread_role.h"

namespace aers::backend {

namespace {

// "SIGTERM" (glibc's abbreviation), or "signal N".
std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig);
}

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

// The most sample data a RIFF WAV file holds: its sizes are 32-bit, and the
// RIFF size also counts the header's chunks (a few hundred bytes at most).
constexpr uint64_t kWavMaxDataBytes = 0xFFFFFFFFull - 4096;

// The output format for the file name's extension. `data_bytes`: the most
// sample data the render can write (its frames are known before it starts).
// A .wav with more than a RIFF WAV holds is written as RF64 (EBU Tech 3306,
// WAV with 64-bit sizes), which libsndfile, sox and ffmpeg read; otherwise
// libsndfile would close it with sizes that wrapped around.
absl::StatusOr<int> OutputFormat(const std::string& path, uint64_t data_bytes) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (absl::EqualsIgnoreCase(ext, ".wav")) {
    return (data_bytes > kWavMaxDataBytes ? SF_FORMAT_RF64 : SF_FORMAT_WAV) | SF_FORMAT_FLOAT;
  }
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

// A block of output frames on its way to the writer, interleaved as the
// file is: the engine thread interleaves one period at a time into it from
// buffers that stay in its cache, and the writer writes it as it is. Not
// zeroed: every frame is written before it is read, and the pages are first
// touched by the threads that use them, not at start-up.
struct Block {
  Block(size_t out_channels, size_t frames_capacity)
      : out(std::make_unique_for_overwrite<float[]>(out_channels * frames_capacity)) {}
  std::unique_ptr<float[]> out;
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

// An open file descriptor, closed unless released.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  /// Closes now; close()'s error (a late write error on some file systems).
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Where the rendered blocks go: libsndfile on our descriptor (kept open
// after sf_close, for the fsync) through virtual I/O, so that every write
// error is seen, including those of the writes sf_close makes itself
// (libsndfile's FLAC encoder flushes its last frames there and sf_close
// still returns success). Write() runs on the writer thread, the rest on
// the caller's, before and after it.
class SndfileSink {
 public:
  static absl::StatusOr<std::unique_ptr<SndfileSink>> Open(int fd, SF_INFO info) {
    std::unique_ptr<SndfileSink> sink(new SndfileSink(fd));
    SF_VIRTUAL_IO vio = kFdIo;  // libsndfile keeps a copy
    SNDFILE* f = sf_open_virtual(&vio, SFM_WRITE, &info, &sink->io_);
    if (f == nullptr) return absl::PermissionDeniedError(sf_strerror(nullptr));
    sink->file_.reset(f);
    // No PEAK chunk: libsndfile adds one to float and double WAV, WAVEX,
    // AIFF and CAF files by default and keeps it up to date with a scalar
    // loop over every sample in sf_writef_float (float32_peak_update), a
    // large share of a pass-through render's CPU. The chunk is optional and
    // aers reads none. Must come before the first write; the other formats
    // have no such chunk.
    const int codec = info.format & SF_FORMAT_SUBMASK;
    if (codec == SF_FORMAT_FLOAT || codec == SF_FORMAT_DOUBLE) {
      sf_command(f, SFC_SET_ADD_PEAK_CHUNK, nullptr, SF_FALSE);
      if (sf_error(f) != SF_ERR_NO_ERROR) return absl::InternalError(sf_strerror(f));
    }
    return sink;
  }
  /// Appends `frames` interleaved frames.
  absl::Status Write(const float* interleaved, size_t frames) {
    const auto n = static_cast<sf_count_t>(frames);
    if (sf_writef_float(file_.get(), interleaved, n) != n || io_.error != 0) {
      return absl::ResourceExhaustedError(io_.error != 0 ? std::strerror(io_.error)
                                                         : sf_strerror(file_.get()));
    }
    return absl::OkStatus();
  }
  /// Completes the file (final header, encoder flush); no fsync.
  absl::Status Finish() {
    const int err = sf_close(file_.release());
    if (io_.error != 0) return absl::DataLossError(std::strerror(io_.error));
    if (err != SF_ERR_NO_ERROR) return absl::DataLossError(sf_error_number(err));
    return absl::OkStatus();
  }

 private:
  // The descriptor and the first write error on it (errno).
  struct FdIo {
    int fd;
    int error = 0;
  };
  static sf_count_t Length(void* user) {
    struct stat st {};
    return ::fstat(static_cast<FdIo*>(user)->fd, &st) == 0 ? st.st_size : -1;
  }
  static sf_count_t Seek(sf_count_t offset, int whence, void* user) {
    return ::lseek(static_cast<FdIo*>(user)->fd, offset, whence);
  }
  static sf_count_t Read(void* ptr, sf_count_t count, void* user) {
    const ssize_t n = ::read(static_cast<FdIo*>(user)->fd, ptr, static_cast<size_t>(count));
    return n < 0 ? 0 : n;
  }
  static sf_count_t WriteAll(const void* ptr, sf_count_t count, void* user) {
    auto* io = static_cast<FdIo*>(user);
    const auto* p = static_cast<const char*>(ptr);
    sf_count_t done = 0;
    while (done < count) {
      const ssize_t n = ::write(io->fd, p + done, static_cast<size_t>(count - done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (io->error == 0) io->error = n < 0 ? errno : EIO;
        break;
      }
      done += n;
    }
    return done;
  }
  static sf_count_t Tell(void* user) { return ::lseek(static_cast<FdIo*>(user)->fd, 0, SEEK_CUR); }
  static constexpr SF_VIRTUAL_IO kFdIo = {&Length, &Seek, &Read, &WriteAll, &Tell};

  explicit SndfileSink(int fd) : io_{fd} {}
  FdIo io_;
  SndfilePtr file_;
};

// Starts writeback of what the writer has written so far every
// kSyncChunkBytes, so the fsync before the rename finds little left to do
// on a disk (sync_file_range(SYNC_FILE_RANGE_WRITE) does not wait).
class WritebackKicker {
 public:
  explicit WritebackKicker(int fd) : fd_(fd) {}
  void Wrote(uint64_t bytes) {
    written_ += bytes;
    if (written_ - kicked_ < kSyncChunkBytes) return;
    ::sync_file_range(fd_, static_cast<off_t>(kicked_), static_cast<off_t>(written_ - kicked_),
                      SYNC_FILE_RANGE_WRITE);
    kicked_ = written_;
  }

 private:
  static constexpr uint64_t kSyncChunkBytes = 16u << 20;
  int fd_;
  uint64_t written_ = 0;
  uint64_t kicked_ = 0;
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
  // Whether total_frames is what the file declares, so that fewer frames
  // read means the file ends early (a cut FLAC stream, a file shortened
  // while it is read) or a read error. libsndfile's frame count of MPEG
  // audio may be an estimate; a WAV cut before the render starts is already
  // reported with the frames it still holds.
  bool frames_declared = false;
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
    frames_declared = in_info.seekable != 0 && in_info.frames != SF_COUNT_MAX &&
                      (in_info.format & SF_FORMAT_TYPEMASK) != SF_FORMAT_MPEG;
  }

  // The render never writes more frames than total_frames (an unknown
  // length counts as the most there is).
  const uint64_t frame_bytes = static_cast<uint64_t>(stats.output_channels) * sizeof(float);
  const auto max_frames = static_cast<uint64_t>(std::max<int64_t>(0, total_frames));
  auto format =
      OutputFormat(options.output_path,
                   max_frames > UINT64_MAX / frame_bytes ? UINT64_MAX : max_frames * frame_bytes);
  if (!format.ok()) return format.status();

  engine::EngineOptions eopts;
  eopts.format = {stats.sample_rate_hz, options.period_frames};
  eopts.crossfade_ms = options.crossfade_ms;
  engine::Engine engine(kinds, eopts);
  if (auto st = engine.Apply(graph); !st.ok()) return st.status();

  // Blocks of whole periods, about kBlockBytes of interleaved samples on the
  // wider side: few hand-overs between the threads, large read() and
  // write() calls, and still a small working set.
  const uint32_t period = options.period_frames;
  const auto in_ch = static_cast<size_t>(stats.input_channels);
  const auto out_ch = static_cast<size_t>(stats.output_channels);
  constexpr size_t kBlockBytes = 512 * 1024;
  const size_t block_periods =
      std::max<size_t>(1, kBlockBytes / (sizeof(float) * std::max(in_ch, out_ch)) / period);
  const size_t block_frames = static_cast<size_t>(period) * block_periods;

  const std::filesystem::path out_path(options.output_path);
  const std::filesystem::path dir = out_path.has_parent_path() ? out_path.parent_path() : ".";
  // The finished file is renamed over the output: whatever else is there (a
  // FIFO, a device, a symbolic link, a directory) is kept, not replaced.
  if (struct stat st{}; ::lstat(options.output_path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    const char* kind = S_ISLNK(st.st_mode)    ? "a symbolic link"
                       : S_ISDIR(st.st_mode)  ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "a device";
    return absl::FailedPreconditionError(absl::StrCat(
        options.output_path, ": ", kind,
        " is there; the render writes a regular file and would replace it (give another path)"));
  }
  TempFile tmp(
      (dir / absl::StrCat(".", out_path.filename().string(), ".tmp.", ::getpid())).string());
  // Mode and flags as libsndfile opens a file for writing.
  // Created here and now (O_EXCL, O_NOFOLLOW): a file, symbolic link or
  // FIFO someone put at the temporary's name is neither followed, nor
  // written, nor waited on.
  UniqueFd out_fd(::open(tmp.path().c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666));
  if (options.temp_file && out_fd.get() >= 0) options.temp_file(tmp.path());
  if (out_fd.get() < 0) {
    const int err = errno;
    absl::Status st = absl::PermissionDeniedError(absl::StrCat(
        options.output_path, ": cannot write",
        err == EEXIST ? absl::StrCat(" (its temporary ", tmp.path(), " is there already)") : "",
        ": ", std::strerror(err)));
    if (err == EEXIST) tmp.Release();  // not ours: left alone
    return st;
  }
  const int out_rate = static_cast<int>(std::lround(stats.sample_rate_hz));
  SF_INFO out_info{};
  out_info.samplerate = out_rate;
  out_info.channels = stats.output_channels;
  out_info.format = *format;
  auto opened = SndfileSink::Open(out_fd.get(), out_info);
  if (!opened.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat(options.output_path, ": cannot write: ", opened.status().message()));
  }
  std::unique_ptr<SndfileSink> sink = std::move(*opened);

  // Two threads, so that writing overlaps the rest: this thread reads a
  // chunk of frames (libsndfile), deinterleaves it while it is still in its
  // cache, runs the engine period by period and interleaves the outputs into
  // a block; a writer writes the full blocks (libsndfile). Blocks travel
  // between them through two small queues of recycled buffers. (A third
  // thread for reading cost more CPU than it saved: the samples crossed
  // from its cache to this one's once more. The kernel's read-ahead
  // overlaps reading from a disk.)
  constexpr size_t kBlocks = 4;
  std::vector<std::unique_ptr<Block>> pool;
  for (size_t i = 0; i < kBlocks; ++i) {
    pool.push_back(std::make_unique<Block>(out_ch, block_frames));
  }
  BlockQueue free_q, done_q;
  for (auto& b : pool) free_q.Push(b.get());

  const auto start = std::chrono::steady_clock::now();
  absl::Status writer_status;
  // Set by the writer when a write failed: this thread stops reading and
  // processing (a full disk does not wait for the rest of the input).
  std::atomic<bool> write_failed{false};
  int64_t frames_read = 0;
  std::thread writer([&] {
    WritebackKicker kicker(out_fd.get());
    while (Block* b = done_q.Pop()) {
      if (writer_status.ok() && b->frames > 0) {
        writer_status = sink->Write(b->out.get(), b->frames);
        if (!writer_status.ok()) {
          write_failed.store(true, std::memory_order_relaxed);
          free_q.Abort();
        } else {
          kicker.Wrote(b->frames * frame_bytes);
        }
      }
      free_q.Push(b);
    }
  });

  // This thread reads and runs the plan.
  int64_t done = 0;
  {
    // Chunks of whole periods, about kChunkBytes of interleaved input: in
    // this thread's cache from the read to the deinterleave.
    constexpr size_t kChunkBytes = 64 * 1024;
    const size_t chunk_frames =
        std::min(block_frames,
                 static_cast<size_t>(period) *
                     std::max<size_t>(
                         1, kChunkBytes / (sizeof(float) * std::max<size_t>(1, in_ch)) / period));
    std::vector<float> chunk(in_ch * chunk_frames);
    // One period of planar channels; mono goes straight from the chunk and
    // to the block.
    std::vector<float> in_planar(in_ch > 1 ? in_ch * period : 0);
    std::vector<float> out_planar(out_ch > 1 ? out_ch * period : 0);
    std::vector<const float*> in_ptrs(in_ch);
    std::vector<float*> out_ptrs(out_ch);
    std::vector<float*> in_fill(in_ch);
    if (in_ch > 1) {
      for (size_t c = 0; c < in_ch; ++c) in_ptrs[c] = in_fill[c] = in_planar.data() + c * period;
    }
    if (out_ch > 1) {
      for (size_t c = 0; c < out_ch; ++c) out_ptrs[c] = out_planar.data() + c * period;
    }
    int64_t remaining = total_frames;
    bool at_end = false;
    const auto stopped = [&] {
      return options.stop_signal != nullptr &&
             options.stop_signal->load(std::memory_order_relaxed) != 0;
    };
    while (remaining > 0 && !at_end && !write_failed.load(std::memory_order_relaxed) &&
           !stopped()) {
      Block* b = free_q.Pop();
      if (b == nullptr) break;  // the writer failed
      b->frames = 0;
      while (b->frames < block_frames && remaining > 0 && !stopped()) {
        const auto want = static_cast<sf_count_t>(std::min<int64_t>(
            static_cast<int64_t>(std::min(chunk_frames, block_frames - b->frames)), remaining));
        sf_count_t got = want;
        if (in) got = std::max<sf_count_t>(0, sf_readf_float(in.get(), chunk.data(), want));
        frames_read += got;
        remaining -= got;
        {
          // The periods run like every audio thread's, subnormals flushed
          // (rt/denormals.h); the reads outside keep the caller's mode, so
          // libsndfile's conversions (a double file's subnormal samples)
          // are what they are in any program.
          rt::ScopedFlushToZero flush_to_zero;
          rt::AudioThreadScope audio;  // this thread also reads and edits the engine
          const auto frames = static_cast<size_t>(got);
          for (size_t off = 0; off < frames; off += period) {
            const auto n = static_cast<uint32_t>(std::min<size_t>(period, frames - off));
            const float* src = chunk.data() + off * in_ch;
            float* dst = b->out.get() + (b->frames + off) * out_ch;
            if (in_ch == 1) {
              in_ptrs[0] = src;
            } else if (in_ch > 1) {
              Deinterleave(src, in_ch, n, in_fill.data());
            }
            if (out_ch == 1) out_ptrs[0] = dst;
            engine.runner().Process(in_ptrs.data(), static_cast<uint32_t>(in_ch), out_ptrs.data(),
                                    static_cast<uint32_t>(out_ch), n);
            if (out_ch > 1) Interleave(out_ptrs.data(), out_ch, n, dst);
          }
        }
        b->frames += static_cast<size_t>(got);
        if (got < want) {
          at_end = true;  // end of file (or a read error, checked below)
          break;
        }
      }
      done += static_cast<int64_t>(b->frames);
      done_q.Push(b);
    }
  }
  done_q.Push(nullptr);
  writer.join();
  // Stopped by a signal: the temporary file goes (TempFile), nothing else
  // is touched. Checked again before the rename, after the flush.
  const auto interrupted = [&]() -> std::optional<absl::Status> {
    const int sig = options.stop_signal != nullptr ? options.stop_signal->load() : 0;
    if (sig == 0) return std::nullopt;
    return absl::CancelledError(absl::StrCat(options.output_path, ": render interrupted by ",
                                             SignalName(sig), " after ", done,
                                             " frames; no output written"));
  };
  if (auto st = interrupted()) return *st;
  if (!writer_status.ok()) {
    return absl::Status(
        writer_status.code(),
        absl::StrCat(options.output_path, ": write failed: ", writer_status.message()));
  }
  const bool read_error = in && sf_error(in.get()) != SF_ERR_NO_ERROR;
  if (read_error || (frames_declared && frames_read < total_frames)) {
    return absl::DataLossError(absl::StrCat(
        options.input_path, ": read failed after ", frames_read, " of ", total_frames,
        " frames: ", read_error ? sf_strerror(in.get()) : "the file ends early (truncated?)"));
  }
  // Durable before it gets its name: header written, then fsync, then rename.
  if (auto st = sink->Finish(); !st.ok()) {
    return absl::Status(st.code(),
                        absl::StrCat(options.output_path, ": write failed: ", st.message()));
  }
  if (::fsync(out_fd.get()) != 0 || out_fd.Close() != 0) {
    return absl::DataLossError(
        absl::StrCat(options.output_path, ": write failed: ", std::strerror(errno)));
  }
  if (auto st = interrupted()) return *st;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats.frames = static_cast<uint64_t>(done);
  std::error_code ec;
  std::filesystem::rename(tmp.path(), out_path, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(
        options.output_path, ": cannot move the rendered file in place: ", ec.message()));
  }
  tmp.Release();
  if (options.temp_file) options.temp_file("");
  return stats;
}

}  // namespace aers::backend
