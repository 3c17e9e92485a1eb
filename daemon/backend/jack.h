// JACK backend: the engine as a JACK client.
//
// - One JACK port per external channel: "<port>_<n>" (1-based), or "<port>"
//   for a mono port; inputs of the graph are JACK input ports.
// - `connect:` lists of the graph are auto-connected, and kept: when a peer
//   port (re)appears (port registration callback) a normal thread connects it
//   again.
// - The process callback only runs engine.runner().Process() (timed with
//   CLOCK_MONOTONIC for the DSP statistics): no locks, no allocation, no
//   logging. Xruns and overruns leave it through SPSC rings.
// - Sample-rate and buffer-size changes recompile the plan on JACK's
//   notification thread (engine.SetFormat), which the audio thread adopts at
//   its next period.
// - Latency callback: our ports report the graph's latency (delay nodes).
// - Server shutdown: the client is closed and a supervisor thread reopens it
//   with back-off (100 ms doubling to 2 s); when the server is back the ports
//   and connections are restored and audio flows again.
//
// Thread: public methods are non-real-time and may be called from any thread.
#pragma once

#include <jack/jack.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "engine/engine.h"
#include "rt/ring.h"

namespace aers::backend {

struct JackOptions {
  std::string client_name = "aersd";
  std::string server_name;  ///< empty: $JACK_DEFAULT_SERVER or "default"
  /// Start(): true keeps retrying in the background when no server answers;
  /// false makes Start() fail with UNAVAILABLE instead (backend "auto").
  bool wait_for_server = true;
};

class JackBackend final : public AudioBackend {
 public:
  /// `engine` must outlive the backend.
  JackBackend(engine::Engine& engine, JackOptions options);
  ~JackBackend() override;

  absl::Status Start() override;
  void Stop() override;
  absl::Status ApplyGraph(model::GraphSpec spec) override;
  BackendStatus status() const override;
  void DrainEvents(const std::function<void(const BackendEvent&)>& sink) override;
  void ResetDspStats() override { timer_.RequestReset(); }

 private:
  struct LatencyView;
  using Connection = std::pair<std::string, std::string>;  // source, destination

  /// The JACK ports that serve one plan layout (model::IoLayoutId), in the
  /// graph's channel order, with the audio thread's buffer-pointer scratch.
  /// Made off the audio thread; once published only the audio thread writes
  /// the scratch.
  struct PortTable {
    uint64_t layout = 0;
    std::vector<jack_port_t*> in, out;
    std::vector<const float*> in_buf;
    std::vector<float*> out_buf;
  };

  // All *Locked methods run with mu_ held.
  absl::Status OpenLocked();
  void CloseLocked(bool server_dead);
  /// A table for `spec`: ports whose name exists are reused, the others are
  /// registered (appended to `added`). On error the ones it registered are
  /// unregistered again.
  absl::StatusOr<std::unique_ptr<PortTable>> MakePortTableLocked(const model::GraphSpec& spec,
                                                                 std::vector<jack_port_t*>& added);
  /// Applies a graph whose external ports differ: registers new ports while
  /// audio runs, hands the audio thread the new table together with the new
  /// plan, and unregisters only ports that went away. Unchanged ports are
  /// never unregistered: their connections and audio go on.
  absl::Status ApplyNewPortsLocked(model::GraphSpec spec);
  std::vector<Connection> DesiredConnectionsLocked(const model::GraphSpec& spec) const;
  void EnsureConnectionsLocked();
  void UpdateLatencyLocked();
  void Supervise();
  void Wake() noexcept;

  // JACK callbacks (static trampolines; `arg` is this).
  static int OnProcess(jack_nframes_t frames, void* arg) noexcept;
  static void OnThreadInit(void* arg) noexcept;
  static int OnXrun(void* arg) noexcept;
  static int OnBufferSize(jack_nframes_t frames, void* arg) noexcept;
  static int OnSampleRate(jack_nframes_t rate, void* arg) noexcept;
  static void OnLatency(jack_latency_callback_mode_t mode, void* arg) noexcept;
  static void OnPortRegistration(jack_port_id_t port, int registered, void* arg) noexcept;
  static void OnShutdown(jack_status_t code, const char* reason, void* arg) noexcept;

  engine::Engine& engine_;
  const JackOptions options_;
  int wake_fd_ = -1;  // eventfd: callbacks and Stop() wake the supervisor

  mutable std::mutex mu_;  // the client's lifecycle, ports and connections; never RT
  jack_client_t* client_ = nullptr;
  std::string client_name_;           // as JACK granted it
  std::unique_ptr<PortTable> table_;  // the ports in use (owner; mu_)
  std::vector<Connection> desired_;
  std::set<std::string> waiting_logged_;  // peers we said we wait for
  bool ever_opened_ = false;
  std::thread supervisor_;

  std::unique_ptr<LatencyView> latency_;  // guarded by latency_mu_
  mutable std::mutex latency_mu_;         // latency callback (notification thread); never RT

  // Set by callbacks, read anywhere.
  std::atomic<bool> stop_{false};
  std::atomic<bool> lost_{false};
  std::atomic<bool> reconnect_{false};
  std::atomic<bool> running_{false};
  std::atomic<double> sample_rate_hz_{0.0};
  std::atomic<uint32_t> period_frames_{0};
  std::atomic<double> ns_per_frame_{0.0};
  std::atomic<uint64_t> xruns_{0};
  std::atomic<uint64_t> restarts_{0};
  std::atomic<float> cpu_load_{0.0f};  // jack_cpu_load, sampled by the supervisor
  char shutdown_reason_[256] = {};     // written by OnShutdown before lost_ is set

  DspTimer timer_;
  rt::SpscRing<BackendEvent, 256> rt_events_;    // audio thread -> DrainEvents
  rt::SpscRing<BackendEvent, 256> xrun_events_;  // notification thread -> DrainEvents
  std::mutex drain_mu_;                          // one consumer at a time

  // Port table handoff (like plans): a normal thread publishes the next
  // table in pending_table_ before the engine publishes the plan that needs
  // it; the audio thread adopts it in the first period whose plan has its
  // layout and hands the old one back through retired_table_.
  std::atomic<PortTable*> pending_table_{nullptr};
  std::atomic<PortTable*> retired_table_{nullptr};

  // Data only accessed from the audio thread (and, while the client is
  // inactive, by the thread that (re)registers ports).
  struct {
    PortTable* table = nullptr;
  } rt_;
};

}  // namespace aers::backend
