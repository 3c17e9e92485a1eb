// AudioBackend: what drives the engine's audio thread in the daemon (JACK,
// or the clock-driven null backend), as the daemon sees it.
//
// Thread: every method is for non-real-time threads. Each backend runs
// engine.runner().Process() on its own audio thread and nothing else there.
// Edits never go through a backend: clients edit the engine, and the engine
// tells the running backend about port changes (engine::PortHost).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "backend/dsp_timer.h"
#include "model/graph.h"

namespace aers::backend {

/// A snapshot of a backend, for logs, sd_notify STATUS and the stats file.
struct BackendStatus {
  std::string name;      ///< "jack", "alsa" or "null"
  bool running = false;  ///< the audio thread is running the engine
  double sample_rate_hz = 0.0;
  uint32_t period_frames = 0;
  uint64_t xruns = 0;             ///< since start (JACK: reported by the server)
  double dsp_load_percent = 0.0;  ///< JACK: jack_cpu_load(); null: mean DSP time / period
  DspTimeSummary dsp;             ///< DSP time per period measured around Process()
  uint64_t restarts = 0;          ///< times the backend came back after losing its server
  std::string detail;             ///< one line: server and client name, or what it waits for
  /// Time between the starts of consecutive periods minus the nominal
  /// period, absolute, in the DspTimeSummary's microseconds (ALSA, null;
  /// empty under JACK, whose thread is the server's).
  DspTimeSummary wake_jitter;
  // ALSA only (zero/empty elsewhere):
  std::string playback_device;   ///< PCM name; empty: none
  std::string capture_device;    ///< PCM name; empty: none
  std::string format;            ///< the device's sample format, e.g. "S32_LE"
  uint32_t periods = 0;          ///< periods per device buffer
  uint32_t buffer_frames = 0;    ///< device buffer (playback, else capture)
  int64_t delay_frames = -1;     ///< snd_pcm_delay (playback, else capture); -1: unknown
  uint64_t clipped_samples = 0;  ///< samples clipped converting to the device format
};

/// Something the audio side reported, drained by a normal thread.
struct BackendEvent {
  enum class Type : uint8_t {
    kXrun,     ///< the server reported an xrun; `value` = delay in microseconds
    kOverrun,  ///< Process() took longer than the period; `value` = microseconds
  };
  Type type = Type::kXrun;
  double value = 0.0;
  uint64_t count = 1;  ///< events of this type folded into this one (drops included)
};

/// Pops every event of `ring` (an rt::SpscRing of BackendEvent) and hands
/// them to `sink`, consecutive events of one type folded into one (counts
/// added, the largest value kept). Thread: the ring's one consumer.
template <typename Ring>
void DrainFolded(Ring& ring, const std::function<void(const BackendEvent&)>& sink) {
  BackendEvent e;
  std::optional<BackendEvent> pending;
  while (ring.TryPop(e)) {
    if (pending && pending->type == e.type) {
      pending->count += e.count;
      pending->value = std::max(pending->value, e.value);
      continue;
    }
    if (pending) sink(*pending);
    pending = e;
  }
  if (pending) sink(*pending);
}

class AudioBackend {
 public:
  virtual ~AudioBackend() = default;

  /// Starts the audio thread. The engine must hold a graph already.
  virtual absl::Status Start() = 0;

  /// Stops the audio thread and releases the server connection. Idempotent.
  virtual void Stop() = 0;

  virtual BackendStatus status() const = 0;

  /// Drains what the audio side reported since the last call (consecutive
  /// events of one type are folded together). One caller at a time.
  virtual void DrainEvents(const std::function<void(const BackendEvent&)>& sink) = 0;

  /// Asks the audio thread to restart its DSP time statistics.
  virtual void ResetDspStats() = 0;
};

}  // namespace aers::backend
