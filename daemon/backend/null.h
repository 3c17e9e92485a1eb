// Null backend: runs the graph on a thread of its own, paced by the monotonic
// clock (clock_nanosleep TIMER_ABSTIME) at sample_rate_hz / period_frames.
// Inputs are silence and outputs are discarded, so the daemon, its meters and
// its control plane run on any machine, without an audio server.
//
// A graph whose external channel counts change pauses the audio thread for
// the swap (engine::PortHost): its buffers are sized while it is stopped.
//
// Thread: public methods are non-real-time. The audio thread (SCHED_FIFO
// where permitted) only runs engine.runner().Process().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "backend/backend.h"
#include "engine/engine.h"
#include "rt/ring.h"

namespace aers::backend {

struct NullOptions {
  double sample_rate_hz = 48000.0;
  uint32_t period_frames = 256;
  /// SCHED_FIFO priority of the audio thread; 0: leave the default policy.
  int rt_priority = 10;
};

class NullBackend final : public AudioBackend, public engine::PortHost {
 public:
  /// `engine` must outlive the backend. Start() sets the engine's format
  /// and makes the backend its port host until Stop().
  NullBackend(engine::Engine& engine, NullOptions options);
  ~NullBackend() override;

  absl::Status Start() override ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::unique_ptr<engine::PortHost::Change>> ChangePorts(
      const model::GraphSpec& next) override ABSL_LOCKS_EXCLUDED(mu_);
  void GraphChanged(const model::GraphSpec&) override {}
  BackendStatus status() const override;
  void DrainEvents(const std::function<void(const BackendEvent&)>& sink) override;
  void ResetDspStats() override {
    timer_.RequestReset();
    jitter_.RequestReset();
  }

 private:
  class PortChange;
  /// Sizes the buffers for `inputs`/`outputs` channels and starts the thread.
  void StartThreadLocked(size_t inputs, size_t outputs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopThreadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Audio thread. Paces periods until stop_ is set.
  void Run() noexcept;

  engine::Engine& engine_;
  const NullOptions options_;
  const uint64_t period_ns_;
  // Start/Stop/port changes; never taken by the audio thread. Taken before
  // the engine's state lock, after its edit lock.
  mutable absl::Mutex mu_;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> xruns_{0};  // periods that started late by more than a period
  DspTimer timer_;
  DspTimer jitter_;                         // |time between period starts - period|
  rt::SpscRing<BackendEvent, 256> events_;  // audio thread -> DrainEvents
  // Buffers the audio thread uses; resized only while it is stopped.
  struct {
    std::vector<std::vector<float>> in_data, out_data;
    std::vector<const float*> in;
    std::vector<float*> out;
  } rt_;
};

}  // namespace aers::backend
