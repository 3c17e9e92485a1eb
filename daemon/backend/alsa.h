// ALSA backend: the engine on a sound card through alsa-lib, with no audio
// server, on a real-time thread of its own (docs/running.md, "ALSA").
//
// - Playback and/or capture PCMs (the same card or two), opened non-blocking
//   and driven by snd_pcm_wait(): capture paces the loop when present, else
//   playback. Access RW interleaved, else RW non-interleaved; the sample
//   format in the order float, S32, S24, S24_3, S16 (or the one configured);
//   the rate exactly; period and buffer (periods x period) as asked or the
//   nearest the device offers, the choice logged and given to the engine.
// - Duplex: capture and playback are linked (snd_pcm_link) so they start
//   together, and the playback buffer is filled with silence first.
// - Channels: the device gets as many channels as the graph has unless
//   configured; explicit maps say which device channel each graph channel
//   uses. A graph that does not fit the device is a clear error.
// - The loop only waits, converts (backend/alsa_format.h) and runs
//   engine.runner().Process(): no allocation, no locks, no logging. Xruns
//   (EPIPE) are counted, reported as events and recovered (drop, prepare,
//   refill, start); a suspended device (ESTRPIPE) is resumed. A device that
//   fails otherwise (ENODEV on unplug, EBADFD, EIO) or stays silent for
//   longer than its stall timeout is lost: the supervisor thread closes it
//   and reopens it with back-off (100 ms doubling to 2 s), like a JACK
//   server restart; the daemon and its control plane go on meanwhile.
// - Port changes (engine::PortHost) that change the graph's channel counts
//   pause the audio thread, reopen the device when its channel count
//   follows the graph, and resume; one the device cannot take is refused and
//   the running graph goes on.
//
// Thread: public methods are non-real-time. Locks: an engine edit's lock,
// then mu_, then the engine's state lock; the audio thread takes none.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "backend/alsa_format.h"
#include "backend/backend.h"
#include "engine/engine.h"
#include "rt/ring.h"

namespace aers::backend {

struct AlsaOptions {
  std::string playback;  ///< ALSA PCM name; empty: no playback
  std::string capture;   ///< ALSA PCM name; empty: no capture
  double sample_rate_hz = 48000.0;
  uint32_t period_frames = 256;
  uint32_t periods = 3;
  /// nullopt: the first of float, S32, S24, S24_3, S16 the device takes.
  std::optional<SampleFormat> format;
  int rt_priority = 70;            ///< SCHED_FIFO priority; 0: the default policy
  bool dither = true;              ///< TPDF dither when writing S16
  uint32_t playback_channels = 0;  ///< 0: the graph's output channel count
  uint32_t capture_channels = 0;   ///< 0: the graph's input channel count
  /// Device channel of each graph channel (see config::AlsaSettings); empty:
  /// channel i <-> device channel i.
  std::vector<int> playback_map;
  std::vector<int> capture_map;
  /// Start(): true keeps retrying in the background when a device that
  /// opened before is lost; Start() itself always fails on a device that
  /// does not open (a clear error naming it).
  bool retry = true;
};

class AlsaBackend final : public AudioBackend, public engine::PortHost {
 public:
  /// `engine` must outlive the backend. Start() sets the engine's format
  /// (the period the device granted) and makes the backend its port host
  /// until Stop().
  AlsaBackend(engine::Engine& engine, AlsaOptions options);
  ~AlsaBackend() override;

  /// Opens the devices and starts the audio thread. Errors name the device
  /// and what it refused (FAILED_PRECONDITION: busy, with the programs
  /// holding it where they can be found; NOT_FOUND: no such device;
  /// INVALID_ARGUMENT: a rate, format or channel count it does not take).
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

  /// The programs that hold the kernel PCM device behind ALSA name `pcm`
  /// open ("aplay (pid 123)"), for `hw:`/`plughw:` names; empty if none is
  /// found or the name is not a card's. For error messages; reads /proc.
  static std::vector<std::string> DeviceHolders(const std::string& pcm, bool playback);

  /// The open PCMs and the audio thread's buffers (public for alsa.cc's
  /// helpers; opaque elsewhere).
  struct Session;

 private:
  class PortChange;
  struct Range {
    unsigned min = 0, max = 0;  // max 0: not known yet
  };

  /// Opens the devices for a graph with `inputs`/`outputs` channels.
  absl::StatusOr<std::unique_ptr<Session>> Open(size_t inputs, size_t outputs) const;
  /// Starts the audio thread on session_.
  void StartThreadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Stops the audio thread (if running); the session stays open.
  void StopThreadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Opens for the engine's current graph and runs it; logs why not.
  bool ReopenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Runs `s` (the engine follows its rate and period); false if the engine
  /// cannot run at them.
  bool InstallLocked(std::unique_ptr<Session> s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Status detail and a log line (once per distinct reason) while waiting.
  void ReportWaitingLocked(const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Whether a graph with these channel counts fits the channel settings
  /// and the channel range the device reported when it last opened.
  absl::Status CheckFitLocked(size_t inputs, size_t outputs) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Hands a session that could not be reopened to the supervisor.
  void LoseLocked(int err) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string DescribeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetDetail(std::string detail) ABSL_LOCKS_EXCLUDED(detail_mu_);
  void Supervise() ABSL_LOCKS_EXCLUDED(mu_);
  /// Audio thread: runs periods until stop_ is set or the device is lost.
  void Run(Session& s) noexcept;

  engine::Engine& engine_;
  const AlsaOptions options_;

  // The session's lifecycle and the audio thread; never taken by it.
  mutable absl::Mutex mu_;
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  std::thread thread_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  Range known_play_ ABSL_GUARDED_BY(mu_);  // channels the devices took when last open
  Range known_cap_ ABSL_GUARDED_BY(mu_);
  std::thread supervisor_;  // started and joined by Start()/Stop() (one caller)

  mutable absl::Mutex detail_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::string detail_ ABSL_GUARDED_BY(detail_mu_);
  std::string format_ ABSL_GUARDED_BY(detail_mu_);

  // Set by the audio thread or Stop(), read anywhere.
  std::atomic<bool> stop_{false};     // the audio thread should return
  std::atomic<bool> quit_{false};     // the supervisor should return
  std::atomic<bool> lost_{false};     // the audio thread gave up on the device
  std::atomic<int> lost_error_{0};    // -errno that lost it (0: stalled)
  std::atomic<bool> running_{false};  // a session runs the graph
  std::atomic<double> sample_rate_hz_{0.0};
  std::atomic<uint32_t> period_frames_{0};
  std::atomic<uint32_t> periods_{0};
  std::atomic<int64_t> delay_frames_{-1};  // snd_pcm_delay of playback (else capture)
  std::atomic<uint64_t> xruns_{0};
  std::atomic<uint64_t> restarts_{0};
  std::atomic<uint64_t> clipped_{0};
  std::atomic<uint32_t> buffer_frames_{0};
  int wake_fd_ = -1;  // eventfd: the audio thread and Stop() wake the supervisor
  void Wake() noexcept;
  /// Waits up to `ms` for Wake(); clears it.
  void Sleep(int ms);

  DspTimer timer_;
  DspTimer jitter_;                         // |time between period starts - nominal period|
  rt::SpscRing<BackendEvent, 256> events_;  // audio thread -> DrainEvents
};

}  // namespace aers::backend
