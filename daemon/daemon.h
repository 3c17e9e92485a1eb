// The daemon's lifecycle: load the config, run the graph on a backend, reload
// on SIGHUP, stop on SIGTERM/SIGINT, talk to the service manager.
//
// Thread: RunDaemon() runs on the main thread, which it turns into the
// housekeeping thread (signals, reloads, reclaiming retired plans, logging
// what the audio side reported, sd_notify, the stats file).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "dsp/data_files.h"

namespace aers::daemon {

struct DaemonOptions {
  std::string config_path;
  /// "auto", "jack", "alsa" or "null"; empty: the config's backend.type.
  std::string backend;
  /// JACK server name; empty: the config's backend.jack.server_name.
  std::string jack_server;
  /// JACK client name; empty: the config's backend.jack.client_name.
  std::string jack_client_name;
  /// --alsa_* flags and AERS_ALSA_* variables, as given (empty: the config's
  /// backend.alsa value); checked like the config (daemon.cc).
  struct AlsaOverrides {
    std::string playback, capture, period_frames, periods, sample_rate_hz, format, priority;
  } alsa;
  /// Where to write a small JSON snapshot (status, DSP time, meters)
  /// atomically every `stats_interval`; empty: none. For monitoring that
  /// reads files (the gRPC status API gives the same and more).
  std::string stats_file;
  std::chrono::milliseconds stats_interval{1000};
  /// mlockall(MCL_CURRENT | MCL_FUTURE) at start (logged if not permitted).
  bool mlock = true;

  // --- control plane ------------------------------------------------------
  /// Unix socket of the gRPC control API; empty: the default path under the
  /// runtime directory; "none": no Unix socket.
  std::string socket;
  /// More listeners: "unix:/path" or "tcp:HOST:PORT" (TCP needs TLS or a
  /// token file).
  std::vector<std::string> listen;
  std::string token_file;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  /// Bearer tokens over plaintext TCP on a non-loopback address.
  bool allow_plaintext_tokens = false;
  /// Open connections per TCP listener (more are refused).
  int max_tcp_connections = 256;
  /// JSON lines of every attempted control-plane mutation, reload and
  /// plugin decision; empty: only the log.
  std::string audit_log;
  /// Set: the audit log is created 0640 for this group (else 0600).
  std::string audit_log_group;
  /// Overrides the config's plugins.root; empty: the config's.
  std::string plugin_root;
  /// Directories beside the config file's own that node data files
  /// (convolver ir_file) may come from (absolute).
  std::vector<std::string> data_dirs;
  /// Where the live graph is persisted; empty: the default state path.
  std::string state_file;
  /// Ignore (and remove) the persisted state: start from the config's graph.
  bool reset_state = false;
  std::string version = "dev";
};

/// Exit codes of the daemon.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitConfig = 3;
inline constexpr int kExitRender = 4;  ///< `aersd render` failed
inline constexpr int kExitBackend = 5;
inline constexpr int kExitControl = 6;
/// The `aersd` command could not exec the daemon program (libexecdir/aers/aersd).
inline constexpr int kExitDaemonProgram = 7;

/// Runs until SIGTERM or SIGINT; returns the process exit code. Must be
/// called before any other thread exists (it blocks the signals it handles,
/// and the threads it starts inherit that mask). Logging must be set up.
int RunDaemon(const DaemonOptions& options);

}  // namespace aers::daemon
