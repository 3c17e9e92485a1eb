#include "backend/null.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <optional>

#include "rt/denormals.h"
#include "rt/hooks.h"
#include "rt/thread_role.h"
#include "spdlog/spdlog.h"

namespace aers::backend {

namespace {

timespec ToTimespec(uint64_t ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1000000000ull);
  ts.tv_nsec = static_cast<long>(ns % 1000000000ull);
  return ts;
}

}  // namespace

NullBackend::NullBackend(engine::Engine& engine, NullOptions options)
    : engine_(engine),
      options_(options),
      period_ns_(static_cast<uint64_t>(std::llround(static_cast<double>(options.period_frames) *
                                                    1e9 / options.sample_rate_hz))) {}

NullBackend::~NullBackend() {
  Stop();
}

absl::Status NullBackend::Start() {
  engine_.SetPortHost(this);  // before mu_: an edit takes the engine's lock first
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return absl::OkStatus();
  if (auto st = engine_.SetFormat({options_.sample_rate_hz, options_.period_frames}); !st.ok()) {
    engine_.ClearPortHost(this);
    return st;
  }
  const auto spec = engine_.spec();
  StartThreadLocked(static_cast<size_t>(spec.TotalInputChannels()),
                    static_cast<size_t>(spec.TotalOutputChannels()));
  spdlog::info(
      "null backend: running the graph at {} Hz, {} frames per period ({:.2f} ms), "
      "no audio device",
      options_.sample_rate_hz, options_.period_frames, static_cast<double>(period_ns_) / 1e6);
  return absl::OkStatus();
}

void NullBackend::Stop() {
  engine_.ClearPortHost(this);
  absl::MutexLock lock(&mu_);
  StopThreadLocked();
  running_.store(false, std::memory_order_release);
}

void NullBackend::StartThreadLocked(size_t nin, size_t nout) {
  // Allocated and touched here, never on the audio thread.
  rt_.in_data.assign(nin, std::vector<float>(options_.period_frames, 0.0f));
  rt_.out_data.assign(nout, std::vector<float>(options_.period_frames, 0.0f));
  rt_.in.clear();
  rt_.out.clear();
  for (auto& b : rt_.in_data) rt_.in.push_back(b.data());
  for (auto& b : rt_.out_data) rt_.out.push_back(b.data());
  stop_.store(false);
  // Running from here until Stop(): a pause for a port change (a few
  // periods at most) is not an outage for status, health or events.
  running_.store(true, std::memory_order_release);
  thread_ = std::thread([this] { Run(); });
  pthread_setname_np(thread_.native_handle(), "aers-null-rt");
  if (options_.rt_priority > 0) {
    sched_param sp{};
    sp.sched_priority = options_.rt_priority;
    if (int err = pthread_setschedparam(thread_.native_handle(), SCHED_FIFO, &sp); err != 0) {
      spdlog::debug("null backend: SCHED_FIFO {} not permitted ({}); using the default policy",
                    options_.rt_priority, std::strerror(err));
    }
  }
}

void NullBackend::StopThreadLocked() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  thread_.join();
}

// Holds mu_ from ChangePorts() until Finish(), with the audio thread stopped
// when the channel counts change.
class NullBackend::PortChange final : public engine::PortHost::Change {
 public:
  PortChange(NullBackend& backend, size_t inputs, size_t outputs) ABSL_NO_THREAD_SAFETY_ANALYSIS
      : b_(backend),
        inputs_(inputs),
        outputs_(outputs) {
    b_.mu_.Lock();
  }
  ~PortChange() override ABSL_NO_THREAD_SAFETY_ANALYSIS { b_.mu_.Unlock(); }
  void Finish(bool published) override {
    b_.mu_.AssertHeld();
    if (!paused) return;
    if (!published) {  // the old graph goes on with its buffers
      const auto spec = b_.engine_.spec();
      b_.StartThreadLocked(static_cast<size_t>(spec.TotalInputChannels()),
                           static_cast<size_t>(spec.TotalOutputChannels()));
    } else {
      b_.StartThreadLocked(inputs_, outputs_);
    }
  }

  bool paused = false;  // the audio thread was stopped for the swap

 private:
  NullBackend& b_;
  const size_t inputs_, outputs_;
};

absl::StatusOr<std::unique_ptr<engine::PortHost::Change>> NullBackend::ChangePorts(
    const model::GraphSpec& next) {
  const auto nin = static_cast<size_t>(next.TotalInputChannels());
  const auto nout = static_cast<size_t>(next.TotalOutputChannels());
  auto change = std::make_unique<PortChange>(*this, nin, nout);
  mu_.AssertHeld();
  if (thread_.joinable() && (nin != rt_.in.size() || nout != rt_.out.size())) {
    // The audio thread's buffers change size: pause it for the swap.
    StopThreadLocked();
    change->paused = true;
  }
  return change;
}

void NullBackend::Run() noexcept {
  rt::MarkAudioThread();
  rt::EnableFlushToZero();
  uint64_t next = DspTimer::NowNs();
  auto& runner = engine_.runner();
  const auto nin = static_cast<uint32_t>(rt_.in.size());
  const auto nout = static_cast<uint32_t>(rt_.out.size());
  uint64_t last_start = 0;
  while (!stop_.load(std::memory_order_acquire)) {
    const uint64_t t0 = DspTimer::NowNs();
    if (last_start != 0) {
      jitter_.RecordStartDeviation(t0 - last_start, period_ns_);
    }
    last_start = t0;
    rt::EnterAudioPeriod();
    runner.Process(rt_.in.data(), nin, rt_.out.data(), nout, options_.period_frames);
    rt::LeaveAudioPeriod();
    const uint64_t t1 = DspTimer::NowNs();
    if (timer_.Record(t1 - t0, period_ns_)) {
      events_.TryPush({BackendEvent::Type::kOverrun, static_cast<double>(t1 - t0) / 1e3, 1});
    }
    next += period_ns_;
    if (t1 > next + period_ns_) {
      // More than a whole period late: a real device would have dropped out.
      xruns_.store(xruns_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      events_.TryPush({BackendEvent::Type::kXrun, static_cast<double>(t1 - next) / 1e3, 1});
      next = t1;
    }
    const timespec ts = ToTimespec(next);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
  }
}

BackendStatus NullBackend::status() const {
  BackendStatus s;
  s.name = "null";
  s.running = running_.load(std::memory_order_acquire);
  s.sample_rate_hz = options_.sample_rate_hz;
  s.period_frames = options_.period_frames;
  s.xruns = xruns_.load(std::memory_order_relaxed);
  s.dsp = timer_.Read();
  s.wake_jitter = jitter_.Read();
  s.dsp_load_percent = 100.0 * s.dsp.mean_us * 1e3 / static_cast<double>(period_ns_);
  s.detail = "clock-driven, no audio device";
  return s;
}

void NullBackend::DrainEvents(const std::function<void(const BackendEvent&)>& sink) {
  DrainFolded(events_, sink);
}

}  // namespace aers::backend
