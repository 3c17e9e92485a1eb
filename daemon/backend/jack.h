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
// - Sample-rate and buffer-size changes recompile the plan in JACK's
//   callbacks (engine.SetFormat; JACK2 runs the buffer-size one on the
//   process thread between periods), and the audio thread adopts it at its
//   next period.
// - Latency callback: our ports report the graph's latency (delay nodes).
// - Server shutdown: the client is closed and a supervisor thread reopens it
//   with back-off (100 ms doubling to 2 s); when the server is back the ports
//   and connections are restored and audio flows again.
//
// - Port changes come from the engine (engine::PortHost): new ports are
//   registered before the plan that needs them is published, and ports that
//   went away are unregistered once the audio thread has let go of them.
//
// Thread: public methods are non-real-time and may be called from any thread.
// Locks: mu_ (client, ports, connections), then the engine's state lock, then
// latency_mu_; an engine edit takes its edit lock before mu_.
#pragma once

#include <jack/jack.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
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

class JackBackend final : public AudioBackend, public engine::PortHost {
 public:
  /// `engine` must outlive the backend; the backend is its port host until
  /// destroyed.
  JackBackend(engine::Engine& engine, JackOptions options);
  ~JackBackend() override;

  absl::Status Start() override ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::unique_ptr<engine::PortHost::Change>> ChangePorts(
      const model::GraphSpec& next) override ABSL_LOCKS_EXCLUDED(mu_);
  void GraphChanged(const model::GraphSpec& current) override ABSL_LOCKS_EXCLUDED(mu_);
  BackendStatus status() const override;
  void DrainEvents(const std::function<void(const BackendEvent&)>& sink) override;
  void ResetDspStats() override { timer_.RequestReset(); }

 private:
  struct LatencyView;
  class PortChange;
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

  absl::Status OpenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseLocked(bool server_dead) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// A table for `spec`: ports whose name exists are reused, the others are
  /// registered (appended to `added`). On error the ones it registered are
  /// unregistered again.
  absl::StatusOr<std::unique_ptr<PortTable>> MakePortTableLocked(const model::GraphSpec& spec,
                                                                 std::vector<jack_port_t*>& added)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// The engine published (or dropped) the plan of a port change.
  void FinishPortChangeLocked(PortChange& change, bool published)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// `next` is pending_table_: waits for the audio thread to adopt it with
  /// the plan of its layout, then unregisters only the ports that went away.
  /// Unchanged ports are never unregistered: their connections and audio
  /// go on.
  void SwapTableLocked(PortTable* next, size_t added) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<Connection> DesiredConnectionsLocked(const model::GraphSpec& spec) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnsureConnectionsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateLatencyLocked(const model::GraphSpec& spec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Supervise() ABSL_LOCKS_EXCLUDED(mu_);
  /// After a shutdown, before jack_client_close(): waits (at most
  /// kNotificationExitWait) for libjack's notification thread to end. jack2
  /// closes a client by cancelling that thread (asynchronous
  /// pthread_cancel); cancelled while it handles one of the server's last
  /// notifications, it leaves libjack's synchronisation-table lock taken,
  /// and jack_client_close() and every later jack_client_open() wait for
  /// it forever. After the server is gone the thread ends by itself, on
  /// the end of its socket.
  void AwaitNotificationThreadExit() ABSL_LOCKS_EXCLUDED(mu_);
  void Wake();  // not noexcept: called from JACK callbacks (see below)

  // JACK callbacks (static trampolines; `arg` is this). Not noexcept, on
  // purpose: jack_client_close() cancels libjack's threads (asynchronous
  // pthread_cancel) when they do not stop, e.g. after the server died, and
  // the forced unwind of a thread cancelled inside one of these must pass
  // through them; through a noexcept frame it would terminate the daemon.
  // None of them throws.
  static int OnProcess(jack_nframes_t frames, void* arg);
  static int OnXrun(void* arg);
  static int OnBufferSize(jack_nframes_t frames, void* arg);
  static int OnSampleRate(jack_nframes_t rate, void* arg);
  static void OnLatency(jack_latency_callback_mode_t mode, void* arg);
  static void OnPortRegistration(jack_port_id_t port, int registered, void* arg);
  static void OnShutdown(jack_status_t code, const char* reason, void* arg);
  static int OnGraphOrder(void* arg);
  /// Notes the calling thread as the client's notification thread: in
  /// jack2 every callback runs there but the process callback, the
  /// buffer-size callback before the first period and the shutdown
  /// callback when the process thread saw the server stop.
  static void NoteNotificationThread(JackBackend* self);

  engine::Engine& engine_;
  const JackOptions options_;
  int wake_fd_ = -1;  // eventfd: callbacks and Stop() wake the supervisor

  mutable absl::Mutex mu_;  // the client's lifecycle, ports and connections; never RT
  jack_client_t* client_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string client_name_ ABSL_GUARDED_BY(mu_);           // as JACK granted it
  std::unique_ptr<PortTable> table_ ABSL_GUARDED_BY(mu_);  // the ports in use (owner)
  std::vector<Connection> desired_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> waiting_logged_ ABSL_GUARDED_BY(mu_);  // peers we said we wait for
  bool ever_opened_ ABSL_GUARDED_BY(mu_) = false;
  std::thread supervisor_;  // started and joined by Start()/Stop() (one caller)
  // The client the callbacks were registered on, for callbacks that need it
  // without mu_ (xrun delay): set before activation, cleared after close.
  std::atomic<jack_client_t*> callback_client_{nullptr};

  // status().detail: one line naming the server and client or what we wait
  // for, so status never takes mu_. Taken after mu_.
  mutable absl::Mutex detail_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::string detail_ ABSL_GUARDED_BY(detail_mu_);
  void SetDetail(std::string detail) ABSL_LOCKS_EXCLUDED(detail_mu_);

  // Latency callback (notification thread); never RT. Taken after mu_.
  mutable absl::Mutex latency_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::unique_ptr<LatencyView> latency_ ABSL_GUARDED_BY(latency_mu_);

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
  std::atomic<pid_t> notify_tid_{0};  // the client's notification thread, once a callback ran there
  std::atomic<bool> notify_awaited_{false};  // AwaitNotificationThreadExit ran since the open

  DspTimer timer_;
  rt::SpscRing<BackendEvent, 256> rt_events_;    // audio thread -> DrainEvents
  rt::SpscRing<BackendEvent, 256> xrun_events_;  // notification thread -> DrainEvents
  absl::Mutex drain_mu_;                         // one consumer at a time

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
