#include "backend/alsa.h"

#include <alsa/asoundlib.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rt/denormals.h"
#include "rt/hooks.h"
#include "rt/thread_role.h"
#include "spdlog/spdlog.h"

namespace aers::backend {

namespace {

constexpr int kWaitSliceMs = 50;    // longest snd_pcm_wait: Stop() is seen this fast
constexpr int kMinStallMs = 1000;   // a device silent this long (or 8 buffers) is lost
constexpr int kFirstRetryMs = 100;  // reopen back-off: 100 ms doubling to 2 s
constexpr int kLastRetryMs = 2000;
constexpr uint32_t kDelayEvery = 16;  // periods between snd_pcm_delay readings
constexpr int kStalled = -ETIMEDOUT;  // the loop's code for a device that went silent
constexpr int kStopped = 1;           // the loop's code for Stop()

constexpr std::array<SampleFormat, 5> kPreference = {SampleFormat::kFloat, SampleFormat::kS32,
                                                     SampleFormat::kS24, SampleFormat::kS24_3,
                                                     SampleFormat::kS16};

snd_pcm_format_t ToAlsa(SampleFormat f) {
  switch (f) {
    case SampleFormat::kFloat:
      return SND_PCM_FORMAT_FLOAT_LE;
    case SampleFormat::kS32:
      return SND_PCM_FORMAT_S32_LE;
    case SampleFormat::kS24:
      return SND_PCM_FORMAT_S24_LE;
    case SampleFormat::kS24_3:
      return SND_PCM_FORMAT_S24_3LE;
    case SampleFormat::kS16:
      return SND_PCM_FORMAT_S16_LE;
  }
  return SND_PCM_FORMAT_UNKNOWN;
}

// alsa-lib prints its own diagnostics to stderr; they go to the debug log
// instead, and never from the audio thread.
__attribute__((format(printf, 5, 6))) void AlsaLibError(const char* file, int line,
                                                        const char* function, int err,
                                                        const char* fmt, ...) {
  if (rt::OnAudioThread() || !spdlog::should_log(spdlog::level::debug)) return;
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  spdlog::debug("alsa-lib {}:{} {}: {}{}{}", file != nullptr ? file : "?", line,
                function != nullptr ? function : "?", text, err != 0 ? ": " : "",
                err != 0 ? snd_strerror(err) : "");
}

// absl::StrCat takes no std::string_view here (Debian's abseil).
std::string FormatText(SampleFormat f) {
  return std::string(AlsaFormatName(f));
}

uint64_t NowNs() {
  return DspTimer::NowNs();
}

void SleepMs(int ms) {
  timespec ts{ms / 1000, static_cast<long>(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

}  // namespace

// One direction of an open device: its PCM, format and buffers.
struct AlsaDir {
  snd_pcm_t* pcm = nullptr;
  std::string name;
  bool playback = false;
  SampleFormat format = SampleFormat::kFloat;
  bool interleaved = true;
  uint32_t channels = 0;                        // device channels
  unsigned min_channels = 0, max_channels = 0;  // what the device takes
  std::vector<int> dev_of;                      // graph channel -> device channel
  std::vector<char> in_use;                     // device channel -> some graph channel uses it
  std::vector<std::byte> buf;
  size_t bps = 0;             // bytes per sample
  size_t stride = 0;          // bytes between two samples of one channel
  size_t plane = 0;           // bytes of one channel's buffer (non-interleaved)
  std::vector<void*> planes;  // scratch for readn/writen at an offset

  std::byte* Channel(uint32_t dev_ch) {
    return interleaved ? buf.data() + dev_ch * bps : buf.data() + dev_ch * plane;
  }
  // Transfers frames [offset, offset + n) of the period.
  snd_pcm_sframes_t Transfer(size_t offset, size_t n) {
    if (interleaved) {
      std::byte* p = buf.data() + offset * stride;
      return playback ? snd_pcm_writei(pcm, p, n) : snd_pcm_readi(pcm, p, n);
    }
    for (uint32_t c = 0; c < channels; ++c) planes[c] = buf.data() + c * plane + offset * bps;
    return playback ? snd_pcm_writen(pcm, planes.data(), n) : snd_pcm_readn(pcm, planes.data(), n);
  }
};

struct AlsaBackend::Session {
  AlsaDir play, cap;
  bool linked = false;
  uint32_t rate = 0;
  uint32_t period = 0;
  uint32_t buffer = 0;  // playback's, else capture's
  int stall_ms = kMinStallMs;
  std::vector<std::vector<float>> in_data, out_data;
  std::vector<const float*> in;
  std::vector<float*> out;
  TpdfDither dither;
  bool use_dither = true;

  ~Session() {
    if (linked && cap.pcm != nullptr) snd_pcm_unlink(cap.pcm);
    if (play.pcm != nullptr) snd_pcm_close(play.pcm);
    if (cap.pcm != nullptr) snd_pcm_close(cap.pcm);
  }
};

namespace {

// The device channel count for a graph with `graph_channels` channels in
// one direction, and (if `dev_of` is not null) the device channel of each
// graph channel: the explicit map, else channel i -> device channel i.
// Needs no device.
absl::StatusOr<uint32_t> PlanChannels(bool playback, const std::string& name, size_t graph_channels,
                                      uint32_t want_dev, const std::vector<int>& map,
                                      std::vector<int>* dev_of) {
  const char* dir = playback ? "playback" : "capture";
  const char* io = playback ? "output" : "input";
  const std::string where = absl::StrCat("ALSA ", dir, " device '", name, "'");
  const uint32_t dev_channels = want_dev != 0 ? want_dev : static_cast<uint32_t>(graph_channels);
  if (dev_channels == 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": the graph has no ", io,
                                                   " channels; remove backend.alsa.", dir,
                                                   " or give the graph ", io, " ports"));
  }
  std::vector<int> plan;
  if (!map.empty()) {
    if (map.size() != graph_channels) {
      return absl::InvalidArgumentError(absl::StrCat(
          "backend.alsa.", dir, "_map lists ", map.size(), " channels but the graph has ",
          graph_channels, " ", io, " channels; list one device channel per graph channel"));
    }
    for (size_t i = 0; i < map.size(); ++i) {
      if (map[i] < 0 || static_cast<uint32_t>(map[i]) >= dev_channels) {
        return absl::InvalidArgumentError(
            absl::StrCat("backend.alsa.", dir, "_map[", i, "]: device channel ", map[i],
                         " does not exist; the device has ", dev_channels, " channels (0 to ",
                         dev_channels - 1, ")"));
      }
      plan.push_back(map[i]);
    }
  } else {
    if (graph_channels > dev_channels) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": the graph has ", graph_channels, " ", io, " channels but backend.alsa.", dir,
          "_channels is ", dev_channels, "; set backend.alsa.", dir,
          "_map to choose the device channel of each graph channel"));
    }
    for (size_t i = 0; i < graph_channels; ++i) plan.push_back(static_cast<int>(i));
  }
  if (dev_of != nullptr) *dev_of = std::move(plan);
  return dev_channels;
}

// Opens one direction and negotiates its hw and sw params. `period` is the
// period to ask for; with `period_exact` anything else is an error, else the
// nearest the device offers is taken and written back.
absl::Status OpenDir(const AlsaOptions& o, AlsaDir& d, size_t graph_channels, uint32_t want_dev,
                     const std::vector<int>& map, uint32_t rate, uint32_t& period,
                     bool period_exact, uint32_t& buffer) {
  const char* dir = d.playback ? "playback" : "capture";
  const char* io = d.playback ? "output" : "input";
  const std::string where = absl::StrCat("ALSA ", dir, " device '", d.name, "'");
  auto planned = PlanChannels(d.playback, d.name, graph_channels, want_dev, map, &d.dev_of);
  if (!planned.ok()) return planned.status();
  const uint32_t dev_channels = *planned;

  const snd_pcm_stream_t stream = d.playback ? SND_PCM_STREAM_PLAYBACK : SND_PCM_STREAM_CAPTURE;
  if (int err = snd_pcm_open(&d.pcm, d.name.c_str(), stream, SND_PCM_NONBLOCK); err < 0) {
    d.pcm = nullptr;
    if (err == -EBUSY) {
      const auto holders = AlsaBackend::DeviceHolders(d.name, d.playback);
      return absl::FailedPreconditionError(absl::StrCat(
          where, " is busy: ",
          holders.empty() ? "another program holds it open (`fuser -v /dev/snd/*` names it)"
                          : absl::StrCat("held open by ", absl::StrJoin(holders, ", ")),
          "; stop it, or share the card through dmix/dsnoop (docs/running.md)"));
    }
    if (err == -ENOENT || err == -ENODEV || err == -ENXIO) {
      return absl::NotFoundError(absl::StrCat(where, " cannot be opened: ", snd_strerror(err),
                                              " (`aplay -L` and `aplay -l` list the devices)"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        where, " cannot be opened: ", snd_strerror(err),
        err == -EINVAL ? absl::StrCat(" (a PCM without a ", dir, " stream?)") : std::string()));
  }
  snd_pcm_hw_params_t* hw = nullptr;
  snd_pcm_hw_params_alloca(&hw);
  if (int err = snd_pcm_hw_params_any(d.pcm, hw); err < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": no hardware configuration: ", snd_strerror(err)));
  }
  // Access.
  if (snd_pcm_hw_params_test_access(d.pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED) == 0) {
    d.interleaved = true;
    snd_pcm_hw_params_set_access(d.pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED);
  } else if (snd_pcm_hw_params_test_access(d.pcm, hw, SND_PCM_ACCESS_RW_NONINTERLEAVED) == 0) {
    d.interleaved = false;
    snd_pcm_hw_params_set_access(d.pcm, hw, SND_PCM_ACCESS_RW_NONINTERLEAVED);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(where,
                     " offers neither read/write interleaved nor non-interleaved access; use its "
                     "plughw: name"));
  }
  // Sample format.
  std::vector<std::string> takes;
  for (SampleFormat f : kPreference) {
    if (snd_pcm_hw_params_test_format(d.pcm, hw, ToAlsa(f)) == 0) {
      takes.push_back(std::string(AlsaFormatName(f)));
    }
  }
  std::optional<SampleFormat> chosen;
  if (o.format) {
    if (snd_pcm_hw_params_test_format(d.pcm, hw, ToAlsa(*o.format)) == 0) chosen = o.format;
  } else {
    for (SampleFormat f : kPreference) {
      if (snd_pcm_hw_params_test_format(d.pcm, hw, ToAlsa(f)) == 0) {
        chosen = f;
        break;
      }
    }
  }
  if (!chosen) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " does not take ",
                     o.format ? absl::StrCat("format ", FormatText(*o.format))
                              : std::string("any of FLOAT_LE, S32_LE, S24_LE, S24_3LE, S16_LE"),
                     takes.empty() ? std::string("; its plughw: name converts")
                                   : absl::StrCat("; it takes ", absl::StrJoin(takes, ", "),
                                                  " (backend.alsa.format: auto picks one)")));
  }
  d.format = *chosen;
  snd_pcm_hw_params_set_format(d.pcm, hw, ToAlsa(d.format));
  // Channels (the range is kept: edits are checked against it later).
  snd_pcm_hw_params_get_channels_min(hw, &d.min_channels);
  snd_pcm_hw_params_get_channels_max(hw, &d.max_channels);
  if (snd_pcm_hw_params_set_channels(d.pcm, hw, dev_channels) < 0) {
    const unsigned lo = d.min_channels, hi = d.max_channels;
    return absl::InvalidArgumentError(
        absl::StrCat(where, " does not take ", dev_channels, " channels (it takes ", lo, " to ", hi,
                     "); set backend.alsa.", dir, "_channels to one it takes and backend.alsa.",
                     dir, "_map to place the graph's ", graph_channels, " ", io, " channels"));
  }
  d.channels = dev_channels;
  // Rate: exactly the engine's (a near rate would change the pitch).
  if (snd_pcm_hw_params_set_rate(d.pcm, hw, rate, 0) < 0) {
    unsigned lo = 0, hi = 0;
    int sub = 0;
    snd_pcm_hw_params_get_rate_min(hw, &lo, &sub);
    snd_pcm_hw_params_get_rate_max(hw, &hi, &sub);
    return absl::InvalidArgumentError(
        absl::StrCat(where, " does not take ", rate, " Hz (it takes ", lo, " to ", hi,
                     " Hz); set backend.alsa.sample_rate_hz, or use its plughw: name to "
                     "resample"));
  }
  // Period and buffer.
  snd_pcm_uframes_t ps = period;
  if (period_exact) {
    if (snd_pcm_hw_params_set_period_size(d.pcm, hw, ps, 0) < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " does not take the playback device's period of ", period,
                       " frames; choose backend.alsa.period_frames both take"));
    }
  } else {
    int sub = 0;
    if (int err = snd_pcm_hw_params_set_period_size_near(d.pcm, hw, &ps, &sub); err < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " takes no period near ", period, " frames: ", snd_strerror(err)));
    }
  }
  snd_pcm_uframes_t bs = ps * o.periods;
  if (int err = snd_pcm_hw_params_set_buffer_size_near(d.pcm, hw, &bs); err < 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, " takes no buffer near ", ps * o.periods,
                                                   " frames: ", snd_strerror(err)));
  }
  if (int err = snd_pcm_hw_params(d.pcm, hw); err < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, " refused its hardware parameters (", FormatText(d.format), ", ", dev_channels,
        " channels, ", rate, " Hz, period ", ps, ", buffer ", bs, " frames): ", snd_strerror(err)));
  }
  int sub = 0;
  snd_pcm_hw_params_get_period_size(hw, &ps, &sub);
  snd_pcm_hw_params_get_buffer_size(hw, &bs);
  if (ps != period) {
    spdlog::info("{}: period of {} frames asked, {} granted", where, period, ps);
  }
  if (bs != ps * o.periods) {
    spdlog::info("{}: buffer of {} frames ({} periods) asked, {} granted", where, ps * o.periods,
                 o.periods, bs);
  }
  if (bs < 2 * ps) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " granted a buffer of ", bs, " frames, less than two periods of ", ps,
                     "; choose a smaller backend.alsa.period_frames"));
  }
  period = static_cast<uint32_t>(ps);
  buffer = static_cast<uint32_t>(bs);
  // Software parameters: started explicitly, stopped (xrun) when the
  // buffer runs empty (playback) or full (capture), woken per period.
  snd_pcm_sw_params_t* sw = nullptr;
  snd_pcm_sw_params_alloca(&sw);
  snd_pcm_uframes_t boundary = 0;
  if (snd_pcm_sw_params_current(d.pcm, sw) < 0 ||
      snd_pcm_sw_params_get_boundary(sw, &boundary) < 0 ||
      snd_pcm_sw_params_set_start_threshold(d.pcm, sw, boundary) < 0 ||
      snd_pcm_sw_params_set_stop_threshold(d.pcm, sw, bs) < 0 ||
      snd_pcm_sw_params_set_avail_min(d.pcm, sw, ps) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, " refused its software parameters"));
  }
  if (int err = snd_pcm_sw_params(d.pcm, sw); err < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " refused its software parameters: ", snd_strerror(err)));
  }
  // Buffers for one period, allocated here, never on the audio thread.
  d.bps = BytesPerSample(d.format);
  d.stride = d.interleaved ? d.bps * d.channels : d.bps;
  d.plane = d.bps * ps;
  d.buf.assign(d.bps * d.channels * ps, std::byte{0});
  d.planes.assign(d.channels, nullptr);
  d.in_use.assign(d.channels, 0);
  for (int c : d.dev_of) d.in_use[static_cast<size_t>(c)] = 1;
  return absl::OkStatus();
}

}  // namespace

AlsaBackend::AlsaBackend(engine::Engine& engine, AlsaOptions options)
    : engine_(engine), options_(std::move(options)) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  static std::once_flag once;
  std::call_once(once, [] { snd_lib_error_set_handler(&AlsaLibError); });
}

AlsaBackend::~AlsaBackend() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void AlsaBackend::Wake() noexcept {
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
}

void AlsaBackend::Sleep(int ms) {
  pollfd p{wake_fd_, POLLIN, 0};
  if (poll(&p, 1, ms) > 0) {
    uint64_t v = 0;
    (void)!read(wake_fd_, &v, sizeof v);
  }
}

absl::StatusOr<std::unique_ptr<AlsaBackend::Session>> AlsaBackend::Open(size_t inputs,
                                                                        size_t outputs) const {
  auto s = std::make_unique<Session>();
  s->rate = static_cast<uint32_t>(std::lround(options_.sample_rate_hz));
  s->use_dither = options_.dither;
  uint32_t period = options_.period_frames;
  bool exact = false;
  if (!options_.playback.empty()) {
    s->play.name = options_.playback;
    s->play.playback = true;
    if (auto st = OpenDir(options_, s->play, outputs, options_.playback_channels,
                          options_.playback_map, s->rate, period, false, s->buffer);
        !st.ok()) {
      return st;
    }
    exact = true;  // capture must run on the playback's period
  } else if (outputs > 0) {
    spdlog::debug("ALSA: no playback device; the graph's {} output channels are discarded",
                  outputs);
  }
  if (!options_.capture.empty()) {
    s->cap.name = options_.capture;
    uint32_t cap_buffer = 0;
    if (auto st = OpenDir(options_, s->cap, inputs, options_.capture_channels, options_.capture_map,
                          s->rate, period, exact, cap_buffer);
        !st.ok()) {
      return st;
    }
    if (s->play.pcm == nullptr) s->buffer = cap_buffer;
  }
  s->period = period;
  if (s->play.pcm != nullptr && s->cap.pcm != nullptr) {
    if (int err = snd_pcm_link(s->cap.pcm, s->play.pcm); err == 0) {
      s->linked = true;
    } else {
      spdlog::info(
          "ALSA: capture and playback cannot be linked ({}); they are started one after the "
          "other",
          snd_strerror(err));
    }
  }
  const double buffer_ms = 1000.0 * s->buffer / s->rate;
  s->stall_ms = std::max(kMinStallMs, static_cast<int>(8.0 * buffer_ms));
  s->in_data.assign(inputs, std::vector<float>(period, 0.0f));
  s->out_data.assign(outputs, std::vector<float>(period, 0.0f));
  for (auto& b : s->in_data) s->in.push_back(b.data());
  for (auto& b : s->out_data) s->out.push_back(b.data());
  return s;
}

absl::Status AlsaBackend::CheckFitLocked(size_t inputs, size_t outputs) const {
  for (const bool playback : {true, false}) {
    const std::string& name = playback ? options_.playback : options_.capture;
    if (name.empty()) continue;
    auto dev = PlanChannels(playback, name, playback ? outputs : inputs,
                            playback ? options_.playback_channels : options_.capture_channels,
                            playback ? options_.playback_map : options_.capture_map, nullptr);
    if (!dev.ok()) return dev.status();
    const Range& r = playback ? known_play_ : known_cap_;
    if (r.max != 0 && (*dev < r.min || *dev > r.max)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ALSA ", playback ? "playback" : "capture", " device '", name, "' does not take ", *dev,
          " channels (it takes ", r.min, " to ", r.max, "); set backend.alsa.",
          playback ? "playback" : "capture", "_channels and _map to place the graph's channels"));
    }
  }
  return absl::OkStatus();
}

std::string AlsaBackend::DescribeLocked() const {
  if (session_ == nullptr) {
    return absl::StrCat("playback '", options_.playback, "', capture '", options_.capture, "'");
  }
  const Session& s = *session_;
  std::vector<std::string> parts;
  for (const AlsaDir* d : {&s.play, &s.cap}) {
    if (d->pcm == nullptr) continue;
    parts.push_back(absl::StrCat(d->playback ? "playback" : "capture", " '", d->name, "' (",
                                 FormatText(d->format), ", ", d->channels, " ch, ",
                                 d->interleaved ? "interleaved" : "non-interleaved", ")"));
  }
  return absl::StrCat(absl::StrJoin(parts, ", "), ", ", s.rate, " Hz, ", s.period, " frames x ",
                      s.buffer / std::max<uint32_t>(s.period, 1), " periods",
                      s.linked ? ", linked" : "");
}

void AlsaBackend::SetDetail(std::string detail) {
  absl::MutexLock lock(&detail_mu_);
  detail_ = std::move(detail);
}

absl::Status AlsaBackend::Start() {
  if (options_.playback.empty() && options_.capture.empty()) {
    return absl::InvalidArgumentError(
        "the ALSA backend needs a device: set backend.alsa.playback and/or backend.alsa.capture "
        "(or --alsa_playback/--alsa_capture)");
  }
  if (options_.sample_rate_hz != std::round(options_.sample_rate_hz)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ALSA backend runs at a whole number of Hz; ", options_.sample_rate_hz,
                     " Hz is not (backend.alsa.sample_rate_hz, engine.sample_rate_hz)"));
  }
  engine_.SetPortHost(this);  // before mu_: an edit takes the engine's lock first
  absl::MutexLock lock(&mu_);
  if (started_) return absl::OkStatus();
  const auto spec = engine_.spec();
  auto s = Open(static_cast<size_t>(spec.TotalInputChannels()),
                static_cast<size_t>(spec.TotalOutputChannels()));
  if (!s.ok()) {
    engine_.ClearPortHost(this);
    return s.status();
  }
  if (auto st = engine_.SetFormat({static_cast<double>((*s)->rate), (*s)->period}); !st.ok()) {
    engine_.ClearPortHost(this);
    return st;
  }
  session_ = std::move(*s);
  started_ = true;
  stop_.store(false);
  quit_.store(false);
  lost_.store(false);
  StartThreadLocked();
  spdlog::info("ALSA backend: {}", DescribeLocked());
  supervisor_ = std::thread([this] { Supervise(); });
  pthread_setname_np(supervisor_.native_handle(), "aers-alsa-sup");
  return absl::OkStatus();
}

void AlsaBackend::Stop() {
  engine_.ClearPortHost(this);
  quit_.store(true);
  Wake();
  if (supervisor_.joinable()) supervisor_.join();
  absl::MutexLock lock(&mu_);
  StopThreadLocked();
  session_.reset();
  started_ = false;
  running_.store(false, std::memory_order_release);
}

void AlsaBackend::StartThreadLocked() {
  Session& s = *session_;
  if (s.play.pcm != nullptr) known_play_ = {s.play.min_channels, s.play.max_channels};
  if (s.cap.pcm != nullptr) known_cap_ = {s.cap.min_channels, s.cap.max_channels};
  sample_rate_hz_.store(s.rate);
  period_frames_.store(s.period);
  buffer_frames_.store(s.buffer);
  periods_.store(s.buffer / std::max<uint32_t>(s.period, 1));
  {
    absl::MutexLock lock(&detail_mu_);
    detail_ = DescribeLocked();
    std::vector<std::string> formats;
    for (const AlsaDir* d : {&s.play, &s.cap}) {
      if (d->pcm == nullptr) continue;
      const std::string f(AlsaFormatName(d->format));
      if (std::find(formats.begin(), formats.end(), f) == formats.end()) formats.push_back(f);
    }
    format_ = absl::StrJoin(formats, "/");
  }
  stop_.store(false);
  running_.store(true, std::memory_order_release);
  thread_ = std::thread([this, &s] { Run(s); });
  pthread_setname_np(thread_.native_handle(), "aers-alsa-rt");
  if (options_.rt_priority > 0) {
    sched_param sp{};
    sp.sched_priority = options_.rt_priority;
    if (int err = pthread_setschedparam(thread_.native_handle(), SCHED_FIFO, &sp); err != 0) {
      spdlog::warn(
          "ALSA backend: SCHED_FIFO priority {} not permitted ({}); the audio thread runs "
          "with the default policy (LimitRTPRIO= in the unit, or rtprio in limits.conf)",
          options_.rt_priority, std::strerror(err));
    }
  }
}

void AlsaBackend::StopThreadLocked() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  thread_.join();
}

void AlsaBackend::ReportWaitingLocked(const absl::Status& why) {
  bool changed = false;
  {
    absl::MutexLock lock(&detail_mu_);
    const std::string detail =
        absl::StrCat("waiting for the ALSA device: ", std::string(why.message()));
    changed = detail != detail_;
    detail_ = detail;
  }
  if (changed) spdlog::warn("ALSA backend: {}; retrying", std::string(why.message()));
}

bool AlsaBackend::InstallLocked(std::unique_ptr<Session> s) {
  const auto fmt = engine_.format();
  if (fmt.sample_rate_hz != s->rate || fmt.max_period_frames != s->period) {
    if (auto st = engine_.SetFormat({static_cast<double>(s->rate), s->period}); !st.ok()) {
      ReportWaitingLocked(st);
      return false;
    }
  }
  session_ = std::move(s);
  StartThreadLocked();
  return true;
}

bool AlsaBackend::ReopenLocked() {
  const auto spec = engine_.spec();
  auto s = Open(static_cast<size_t>(spec.TotalInputChannels()),
                static_cast<size_t>(spec.TotalOutputChannels()));
  if (!s.ok()) {
    ReportWaitingLocked(s.status());
    return false;
  }
  return InstallLocked(std::move(*s));
}

void AlsaBackend::LoseLocked(int err) {
  lost_error_.store(err);
  lost_.store(true);  // the supervisor retries
  Wake();
}

namespace {

// Closes a session that lost its device on a thread of its own, waiting at
// most 2 s: snd_pcm_close() of a plugin PCM whose server froze (the jack
// PCM under a stopped jackd) blocks until the server answers, and neither
// the supervisor nor Stop() may hang on it.
void CloseDetached(std::unique_ptr<AlsaBackend::Session> session) {
  if (session == nullptr) return;
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread([s = std::move(session), done]() mutable {
    s.reset();
    done->store(true);
  }).detach();
  for (int i = 0; i < 200 && !done->load(); ++i) SleepMs(10);
  if (!done->load()) spdlog::warn("ALSA backend: closing the lost device still waits; going on");
}

}  // namespace

void AlsaBackend::Supervise() {
  int backoff = kFirstRetryMs;
  uint64_t opened_at = 0;  // when the supervisor last reopened the device (0: never)
  while (!quit_.load()) {
    Sleep(250);
    if (quit_.load() || !lost_.load()) continue;
    const int err = lost_error_.load();
    // A device that keeps failing right after it opens (a plugin PCM whose
    // file cannot be written) is retried ever more slowly, and logged once.
    const bool fresh = NowNs() - opened_at > 5'000'000'000ull;
    if (fresh) backoff = kFirstRetryMs;
    std::unique_ptr<Session> dead;
    {
      absl::MutexLock lock(&mu_);
      StopThreadLocked();
      const auto level = fresh ? spdlog::level::warn : spdlog::level::debug;
      spdlog::log(level, "ALSA backend: lost the device ({}): {}; audio stops, retrying",
                  DescribeLocked(), err == kStalled ? "it stopped moving" : snd_strerror(err));
      dead = std::move(session_);
      running_.store(false, std::memory_order_release);
      SetDetail(absl::StrCat("device lost (", err == kStalled ? "stalled" : snd_strerror(err),
                             "); retrying"));
      lost_.store(false);
    }
    CloseDetached(std::move(dead));
    while (!quit_.load()) {
      Sleep(backoff);
      if (quit_.load()) break;
      backoff = std::min(backoff * 2, kLastRetryMs);
      // Opened outside mu_: a frozen server may make snd_pcm_open wait, and
      // edits and status must not wait with it.
      const auto spec = engine_.spec();
      const auto nin = static_cast<size_t>(spec.TotalInputChannels());
      const auto nout = static_cast<size_t>(spec.TotalOutputChannels());
      auto s = Open(nin, nout);
      absl::MutexLock lock(&mu_);
      if (session_ != nullptr || !started_) break;
      const auto now = engine_.spec();
      if (s.ok() && (static_cast<size_t>(now.TotalInputChannels()) != nin ||
                     static_cast<size_t>(now.TotalOutputChannels()) != nout)) {
        backoff = kFirstRetryMs;  // an edit changed the channels meanwhile: again, now
        continue;
      }
      if (!s.ok()) {
        ReportWaitingLocked(s.status());
        continue;
      }
      if (!InstallLocked(std::move(*s))) continue;
      restarts_.fetch_add(1);
      opened_at = NowNs();
      spdlog::log(fresh ? spdlog::level::info : spdlog::level::debug,
                  "ALSA backend: device back: {}", DescribeLocked());
      break;
    }
  }
}

// Holds mu_ from ChangePorts() until Finish(), with the audio thread stopped
// (and the device reopened) when the graph's channel counts change.
class AlsaBackend::PortChange final : public engine::PortHost::Change {
 public:
  explicit PortChange(AlsaBackend& backend) ABSL_NO_THREAD_SAFETY_ANALYSIS : b_(backend) {
    b_.mu_.Lock();
  }
  ~PortChange() override ABSL_NO_THREAD_SAFETY_ANALYSIS { b_.mu_.Unlock(); }
  void Finish(bool published) override {
    b_.mu_.AssertHeld();
    if (!paused) return;
    if (published) {
      b_.session_ = std::move(next);
      b_.StartThreadLocked();
      return;
    }
    next.reset();  // the old graph goes on: the device opened for it again
    if (!b_.ReopenLocked()) b_.LoseLocked(kStalled);
  }

  bool paused = false;
  std::unique_ptr<Session> next;

 private:
  AlsaBackend& b_;
};

absl::StatusOr<std::unique_ptr<engine::PortHost::Change>> AlsaBackend::ChangePorts(
    const model::GraphSpec& next) {
  const auto nin = static_cast<size_t>(next.TotalInputChannels());
  const auto nout = static_cast<size_t>(next.TotalOutputChannels());
  auto change = std::make_unique<PortChange>(*this);
  mu_.AssertHeld();
  // What the device is known to take is checked first, with the audio
  // running and whether or not the device is there right now: a graph it
  // cannot take is refused without a gap, and not accepted while it is lost.
  if (auto st = CheckFitLocked(nin, nout); !st.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the ALSA device cannot take the new graph: ", st.message()));
  }
  if (session_ == nullptr) return change;  // lost or stopped: opened for the graph later
  if (nin == session_->in.size() && nout == session_->out.size()) return change;
  // The channel counts change: the audio thread's buffers (and, where the
  // device's channel count follows the graph, the device) with them.
  StopThreadLocked();
  session_.reset();  // the device must be free to open it again
  auto s = Open(nin, nout);
  if (!s.ok()) {
    if (!ReopenLocked()) LoseLocked(kStalled);  // for the running graph
    return absl::FailedPreconditionError(
        absl::StrCat("the ALSA device cannot take the new graph: ", s.status().message()));
  }
  // A reopened device may grant another period: the engine follows it
  // before the new graph is compiled.
  const auto fmt = engine_.format();
  if (fmt.sample_rate_hz != (*s)->rate || fmt.max_period_frames != (*s)->period) {
    if (auto st = engine_.SetFormat({static_cast<double>((*s)->rate), (*s)->period}); !st.ok()) {
      s->reset();
      if (!ReopenLocked()) LoseLocked(kStalled);
      return st;
    }
  }
  change->next = std::move(*s);
  change->paused = true;
  return change;
}

// Audio thread. Everything below runs with no allocation, locks or logging.
void AlsaBackend::Run(Session& s) noexcept {
  rt::MarkAudioThread();
  rt::EnableFlushToZero();
  auto& runner = engine_.runner();
  const uint64_t period_ns = static_cast<uint64_t>(1e9 * s.period / s.rate);
  const auto nin = static_cast<uint32_t>(s.in.size());
  const auto nout = static_cast<uint32_t>(s.out.size());
  AlsaDir* const play = s.play.pcm != nullptr ? &s.play : nullptr;
  AlsaDir* const cap = s.cap.pcm != nullptr ? &s.cap : nullptr;

  // Waits until `d` can transfer, at most the stall timeout; kStopped on Stop().
  const auto wait = [&](AlsaDir& d) -> int {
    int waited = 0;
    while (!stop_.load(std::memory_order_acquire)) {
      const int r = snd_pcm_wait(d.pcm, kWaitSliceMs);
      if (r != 0) return r < 0 ? r : 0;
      waited += kWaitSliceMs;
      if (waited >= s.stall_ms) return kStalled;
    }
    return kStopped;
  };
  // Moves one whole period through `d`.
  const auto transfer = [&](AlsaDir& d) -> int {
    size_t done = 0;
    while (done < s.period) {
      const snd_pcm_sframes_t r = d.Transfer(done, s.period - done);
      if (r == -EAGAIN || r == 0) {
        if (int w = wait(d); w != 0) return w;
        continue;
      }
      if (r < 0) return static_cast<int>(r);
      done += static_cast<size_t>(r);
    }
    return 0;
  };
  // Prepared -> running: the playback buffer full of silence, then start.
  const auto start = [&]() -> int {
    if (play != nullptr) {
      for (uint32_t c = 0; c < play->channels; ++c) {
        SilenceSamples(play->Channel(c), play->stride, s.period, play->format);
      }
      snd_pcm_sframes_t room = snd_pcm_avail_update(play->pcm);
      if (room < 0) return static_cast<int>(room);
      while (room >= static_cast<snd_pcm_sframes_t>(s.period)) {
        const snd_pcm_sframes_t r = play->Transfer(0, s.period);
        if (r < 0) return r == -EAGAIN ? 0 : static_cast<int>(r);
        room -= r;
      }
      if (int err = snd_pcm_start(play->pcm); err < 0) return err;
    }
    if (cap != nullptr && !(s.linked && play != nullptr)) {
      if (int err = snd_pcm_start(cap->pcm); err < 0) return err;
    }
    return 0;
  };
  // After an xrun or a suspend: back to running, or an error that loses the device.
  const auto recover = [&](int err, uint64_t late_ns) -> int {
    xruns_.store(xruns_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    events_.TryPush({BackendEvent::Type::kXrun, static_cast<double>(late_ns) / 1e3, 1});
    for (AlsaDir* d : {play, cap}) {
      if (d == nullptr) continue;
      if (err == -ESTRPIPE) {
        int r = 0;
        for (int i = 0; i < 100 && (r = snd_pcm_resume(d->pcm)) == -EAGAIN; ++i) SleepMs(10);
        if (r == 0) continue;  // resumed where it was
      }
      snd_pcm_drop(d->pcm);
      if (int r = snd_pcm_prepare(d->pcm); r < 0 && r != -EBADFD) return r;
    }
    return start();
  };

  int err = start();
  uint64_t last_start = 0;
  uint32_t n = 0;
  uint32_t unpaced = 0;  // consecutive periods that came far faster than real time
  while (err == 0 && !stop_.load(std::memory_order_acquire)) {
    // 1. Input (capture paces the loop), else room for a period of output.
    if (cap != nullptr) {
      err = transfer(*cap);
    } else {
      const snd_pcm_sframes_t room = snd_pcm_avail_update(play->pcm);
      if (room < 0) {
        err = static_cast<int>(room);
      } else if (room < static_cast<snd_pcm_sframes_t>(s.period)) {
        err = wait(*play);
        if (err == 0) continue;
      }
    }
    if (err == 0) {
      uint64_t t0 = NowNs();
      if (last_start != 0 && t0 - last_start < period_ns / 4) {
        // A PCM that never blocks (null, file) would make this a busy loop
        // (at SCHED_FIFO): after a run of such periods, the clock paces it.
        if (++unpaced > 32) {
          const uint64_t next = last_start + period_ns;
          const timespec ts{static_cast<time_t>(next / 1000000000ull),
                            static_cast<long>(next % 1000000000ull)};
          while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
          }
          t0 = NowNs();
        }
      } else {
        unpaced = 0;
      }
      if (last_start != 0) {
        jitter_.RecordStartDeviation(t0 - last_start, period_ns);
      }
      last_start = t0;
      // 2. Convert in, run the graph, convert out.
      rt::EnterAudioPeriod();
      if (cap != nullptr) {
        for (uint32_t i = 0; i < nin; ++i) {
          DecodeSamples(cap->Channel(static_cast<uint32_t>(cap->dev_of[i])), cap->stride, s.period,
                        cap->format, s.in_data[i].data());
        }
      }
      runner.Process(s.in.data(), nin, s.out.data(), nout, s.period);
      if (play != nullptr) {
        uint64_t clipped = 0;
        TpdfDither* dither = s.use_dither ? &s.dither : nullptr;
        for (uint32_t i = 0; i < nout; ++i) {
          clipped += EncodeSamples(s.out_data[i].data(), s.period, play->format,
                                   play->Channel(static_cast<uint32_t>(play->dev_of[i])),
                                   play->stride, dither);
        }
        for (uint32_t c = 0; c < play->channels; ++c) {
          if (!play->in_use[c])
            SilenceSamples(play->Channel(c), play->stride, s.period, play->format);
        }
        if (clipped != 0) {
          clipped_.store(clipped_.load(std::memory_order_relaxed) + clipped,
                         std::memory_order_relaxed);
        }
      }
      const uint64_t t1 = NowNs();
      if (timer_.Record(t1 - t0, period_ns)) {
        events_.TryPush({BackendEvent::Type::kOverrun, static_cast<double>(t1 - t0) / 1e3, 1});
      }
      // 3. Output (counted too: a plugin PCM that allocates per write is
      // not fit for this thread).
      if (play != nullptr) err = transfer(*play);
      rt::LeaveAudioPeriod();
      if (err == 0 && ++n % kDelayEvery == 0) {
        snd_pcm_sframes_t delay = 0;
        if (snd_pcm_delay(play != nullptr ? play->pcm : cap->pcm, &delay) == 0) {
          delay_frames_.store(delay, std::memory_order_relaxed);
        }
      }
    }
    if (err == -EPIPE || err == -ESTRPIPE) {
      const uint64_t now = NowNs();
      err = recover(err, last_start != 0 && now > last_start ? now - last_start : 0);
      last_start = 0;
    }
  }
  if (err != 0 && err != kStopped) {
    // Lost: the supervisor closes the device and reopens it.
    for (AlsaDir* d : {play, cap}) {
      if (d != nullptr) snd_pcm_drop(d->pcm);
    }
    running_.store(false, std::memory_order_release);  // status tells at once
    lost_error_.store(err);
    lost_.store(true);
    Wake();
  }
}

BackendStatus AlsaBackend::status() const {
  BackendStatus s;
  s.name = "alsa";
  s.running = running_.load(std::memory_order_acquire);
  s.sample_rate_hz = sample_rate_hz_.load();
  s.period_frames = period_frames_.load();
  s.periods = periods_.load();
  s.buffer_frames = buffer_frames_.load();
  s.xruns = xruns_.load(std::memory_order_relaxed);
  s.restarts = restarts_.load();
  s.dsp = timer_.Read();
  s.wake_jitter = jitter_.Read();
  const double period_ns = s.sample_rate_hz > 0 ? 1e9 * s.period_frames / s.sample_rate_hz : 0;
  s.dsp_load_percent = period_ns > 0 ? 100.0 * s.dsp.mean_us * 1e3 / period_ns : 0.0;
  s.playback_device = options_.playback;
  s.capture_device = options_.capture;
  s.delay_frames = s.running ? delay_frames_.load(std::memory_order_relaxed) : -1;
  s.clipped_samples = clipped_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&detail_mu_);
  s.detail = detail_;
  s.format = format_;
  return s;
}

void AlsaBackend::DrainEvents(const std::function<void(const BackendEvent&)>& sink) {
  DrainFolded(events_, sink);
}

std::vector<std::string> AlsaBackend::DeviceHolders(const std::string& pcm, bool playback) {
  // "hw:1", "hw:1,0", "plughw:CARD=PCH,DEV=0", "hw:PCH" -> card, device.
  std::string_view name(pcm);
  const size_t colon = name.find(':');
  if (colon == std::string_view::npos) return {};
  const std::string_view type = name.substr(0, colon);
  if (type != "hw" && type != "plughw") return {};
  std::string card_text, dev_text = "0";
  size_t field = 0;
  for (std::string_view rest = name.substr(colon + 1); !rest.empty(); ++field) {
    const size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (part.starts_with("CARD=")) {
      card_text = std::string(part.substr(5));
    } else if (part.starts_with("DEV=")) {
      dev_text = std::string(part.substr(4));
    } else if (field == 0) {
      card_text = std::string(part);
    } else if (field == 1) {
      dev_text = std::string(part);
    }
  }
  const int card = snd_card_get_index(card_text.c_str());
  if (card < 0) return {};
  const std::string node = absl::StrCat("/dev/snd/pcmC", card, "D", dev_text, playback ? "p" : "c");
  std::vector<std::string> holders;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return {};
  while (const dirent* e = readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const std::string fd_dir = absl::StrCat("/proc/", e->d_name, "/fd");
    DIR* fds = opendir(fd_dir.c_str());
    if (fds == nullptr) continue;
    bool holds = false;
    while (const dirent* f = readdir(fds)) {
      char target[256];
      const std::string link = absl::StrCat(fd_dir, "/", f->d_name);
      const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
      if (n > 0 && std::string_view(target, static_cast<size_t>(n)) == node) {
        holds = true;
        break;
      }
    }
    closedir(fds);
    if (!holds) continue;
    std::string comm;
    std::ifstream(absl::StrCat("/proc/", e->d_name, "/comm")) >> comm;
    holders.push_back(absl::StrCat(comm.empty() ? "?" : comm, " (pid ", e->d_name, ")"));
  }
  closedir(proc);
  return holders;
}

}  // namespace aers::backend
