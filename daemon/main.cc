// aersd: wiring only. Flags, environment, logging sinks, the choice of mode,
// exit codes.
//
//   aersd --config FILE [--backend auto|jack|alsa|null] ...    the daemon (daemon.h)
//   aersd render --config FILE --input IN.wav --output OUT.wav
//
// Built twice (daemon/meson.build): with AERS_LAUNCHER as the `aersd`
// command, which renders, parses and checks the command line, answers --help
// and --version, and links neither the control plane nor the live audio
// backends nor systemd, so it starts without loading gRPC, protobuf, JACK or
// libsystemd (about 11 ms of CPU instead of 31 ms here; BENCHMARKS.md,
// "Render start-up"); and without it as the daemon program in
// libexecdir/aers, which the command execs for daemon mode: same process,
// argv and environment (systemd's MAINPID and sd_notify see no difference).
#include <poll.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "backend/offline.h"
#include "config/config.h"
#include "daemon.h"
#include "dsp/builtins.h"
#include "dsp/data_files.h"
#include "logging.h"
#include "path_collision.h"
#include "plugins.h"

ABSL_FLAG(std::string, config, "", "Graph/config YAML file (env AERS_CONFIG_PATH; the flag wins).");
ABSL_FLAG(std::string, input, "", "render: input audio file (any format libsndfile reads).");
ABSL_FLAG(std::string, output, "", "render: output file (.wav float, .flac, .w64, .caf).");
ABSL_FLAG(std::string, backend, "",
          "daemon: audio backend, auto | jack | alsa | null (env AERS_BACKEND; default: the "
          "config's backend.type). auto uses JACK if a server answers, else ALSA if "
          "backend.alsa names a device that opens, else null.");
ABSL_FLAG(std::string, alsa_playback, "",
          "daemon: ALSA playback PCM, e.g. hw:0 or plughw:CARD=PCH,DEV=0 (env "
          "AERS_ALSA_PLAYBACK; default: the config's backend.alsa.playback).");
ABSL_FLAG(std::string, alsa_capture, "",
          "daemon: ALSA capture PCM (env AERS_ALSA_CAPTURE; default: backend.alsa.capture).");
ABSL_FLAG(std::string, alsa_period_frames, "",
          "daemon: ALSA frames per period, 16 to 8192 (env AERS_ALSA_PERIOD_FRAMES; default: "
          "backend.alsa.period_frames, then engine.period_frames).");
ABSL_FLAG(std::string, alsa_periods, "",
          "daemon: ALSA periods per device buffer, 2 to 64 (env AERS_ALSA_PERIODS; default: "
          "backend.alsa.periods, 3).");
ABSL_FLAG(std::string, alsa_sample_rate_hz, "",
          "daemon: ALSA sample rate in Hz (env AERS_ALSA_SAMPLE_RATE_HZ; default: "
          "backend.alsa.sample_rate_hz, then engine.sample_rate_hz).");
ABSL_FLAG(std::string, alsa_format, "",
          "daemon: ALSA sample format, auto | float | s32 | s24 | s24_3 | s16 (env "
          "AERS_ALSA_FORMAT; default: backend.alsa.format, auto).");
ABSL_FLAG(std::string, alsa_priority, "",
          "daemon: SCHED_FIFO priority of the ALSA audio thread, 0 (default policy) to 99 "
          "(env AERS_ALSA_PRIORITY; default: backend.alsa.priority, 70).");
ABSL_FLAG(std::string, jack_server, "",
          "daemon: JACK server name (env AERS_JACK_SERVER, then the config's "
          "backend.jack.server_name, then $JACK_DEFAULT_SERVER, then \"default\").");
ABSL_FLAG(std::string, jack_client_name, "",
          "daemon: JACK client name (env AERS_JACK_CLIENT_NAME; default: the config's "
          "backend.jack.client_name, \"aersd\").");
ABSL_FLAG(std::string, log_level, "",
          "Log level: trace, debug, info, warn, error, critical, off (env AERS_LOG_LEVEL; "
          "default info).");
ABSL_FLAG(std::string, stats_file, "",
          "daemon: write a small JSON status snapshot (backend, DSP time per period, xruns, "
          "meter readings) to this file atomically, every --stats_interval_ms (env "
          "AERS_STATS_FILE), for monitoring that reads files; `aersctl status` gives the same.");
ABSL_FLAG(int32_t, stats_interval_ms, 1000, "daemon: how often to rewrite --stats_file.");
ABSL_FLAG(bool, mlock, true,
          "daemon: lock all memory (mlockall MCL_CURRENT|MCL_FUTURE) so the audio path "
          "never page-faults; logged and skipped if not permitted.");
ABSL_FLAG(std::string, socket, "",
          "daemon: Unix socket of the gRPC control API (mode 0660); default "
          "$RUNTIME_DIRECTORY/aersd.sock, /run/aers/aersd.sock as root, else "
          "$XDG_RUNTIME_DIR/aers/aersd.sock; 'none' for no socket. Env AERS_SOCKET.");
ABSL_FLAG(std::vector<std::string>, listen, {},
          "daemon: more control listeners, comma-separated: unix:/path or tcp:HOST:PORT "
          "(TCP needs --tls_cert/--tls_key or --token_file). AERS_HOST + AERS_PORT add "
          "tcp:AERS_HOST:AERS_PORT.");
ABSL_FLAG(int32_t, max_tcp_connections, 256,
          "daemon: open connections per TCP control listener; more are closed at once (and "
          "aersd keeps 128 descriptors free for its Unix socket and files).");
ABSL_FLAG(bool, allow_plaintext_tokens, false,
          "daemon: allow bearer tokens over plaintext TCP on a non-loopback address (they "
          "travel in clear text; use TLS instead where you can).");
ABSL_FLAG(std::string, token_file, "",
          "daemon: bearer tokens for TCP listeners, one 'viewer|operator TOKEN [NAME]' per "
          "line; owned by root or the daemon's user, mode 0600. Env AERS_TOKEN_FILE.");
ABSL_FLAG(std::string, tls_cert, "", "daemon: TLS certificate (PEM) for TCP listeners.");
ABSL_FLAG(std::string, tls_key, "",
          "daemon: TLS private key (PEM, unencrypted) for TCP listeners; owned by root or the "
          "daemon's user, mode 0600.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "daemon: CA (PEM) whose client certificates are required (mutual TLS).");
ABSL_FLAG(std::string, audit_log, "",
          "daemon: append a JSON line per attempted control-plane change, reload and plugin "
          "decision to this file (mode 0600); changes are refused while it cannot be "
          "written. Env AERS_AUDIT_LOG.");
ABSL_FLAG(std::string, audit_log_group, "",
          "daemon: create the audit log 0640 for this group (default 0600).");
ABSL_FLAG(std::string, plugin_root, "",
          "daemon and render: plugin directory, replacing the config's plugins.root "
          "(absolute path). Env AERS_PLUGIN_ROOT.");
ABSL_FLAG(std::vector<std::string>, data_dir, {},
          "daemon and render: more directories node data files (convolver ir_file) may be read "
          "from, comma-separated absolute paths; the config file's directory is always one.");
ABSL_FLAG(std::string, state_file, "",
          "daemon: where every accepted edit is persisted (default $STATE_DIRECTORY/graph.yaml, "
          "/var/lib/aers/graph.yaml as root). At start it wins over the config's graph. "
          "Env AERS_STATE_FILE.");
ABSL_FLAG(bool, reset_state, false,
          "daemon: discard the persisted graph and start from the config file's graph.");
ABSL_FLAG(uint32_t, period_frames, 1024, "render: frames per processing period.");
ABSL_FLAG(double, duration_s, 0.0, "render: length in seconds when there is no --input.");
ABSL_FLAG(double, sample_rate_hz, 48000.0, "render: sample rate when there is no --input.");

namespace {

using aers::daemon::kExitConfig;
using aers::daemon::kExitRender;
using aers::daemon::kExitUsage;

constexpr char kUsage[] =
    "AERS real-time audio routing daemon.\n"
    "\n"
    "  aersd --config FILE [--backend auto|jack|alsa|null] [flags]\n"
    "      Run the graph of FILE live: as a JACK client, on an ALSA device, or on a\n"
    "      clock-driven thread with no audio device (null backend). Runs until SIGTERM\n"
    "      or SIGINT.\n"
    "  aersd render --config FILE --input IN.wav --output OUT.wav\n"
    "      Render audio files through the graph offline, as fast as the CPU allows.\n"
    "\n"
    "Environment (a flag given on the command line wins over its variable):\n"
    "  AERS_CONFIG_PATH       --config\n"
    "  AERS_BACKEND           --backend\n"
    "  AERS_JACK_SERVER       --jack_server\n"
    "  AERS_JACK_CLIENT_NAME  --jack_client_name\n"
    "  AERS_ALSA_PLAYBACK, AERS_ALSA_CAPTURE, AERS_ALSA_PERIOD_FRAMES, AERS_ALSA_PERIODS,\n"
    "  AERS_ALSA_SAMPLE_RATE_HZ, AERS_ALSA_FORMAT, AERS_ALSA_PRIORITY   the --alsa_* flags\n"
    "  AERS_LOG_LEVEL         --log_level\n"
    "  AERS_STATS_FILE        --stats_file\n"
    "  AERS_SOCKET            --socket\n"
    "  AERS_STATE_FILE        --state_file\n"
    "  AERS_TOKEN_FILE        --token_file\n"
    "  AERS_AUDIT_LOG         --audit_log\n"
    "  AERS_PLUGIN_ROOT       --plugin_root\n"
    "  AERS_HOST, AERS_PORT   together: one more listener, tcp:AERS_HOST:AERS_PORT (under\n"
    "                         the rules of --listen: TLS or a token file)\n"
    "  JACK_DEFAULT_SERVER    JACK server when neither --jack_server nor the config names one\n"
    "  NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID   set by systemd: sd_notify READY=1,\n"
    "                         RELOADING=1, STOPPING=1, STATUS=, WATCHDOG=1\n"
    "  JOURNAL_STREAM         set by systemd: logs become \"<N>message\" lines\n"
    "\n"
    "Signals: SIGHUP reloads the config (an invalid file is logged and the running\n"
    "graph kept); SIGTERM/SIGINT stop cleanly (exit 0); SIGUSR1 logs DSP time\n"
    "statistics and restarts them.\n"
    "\n"
    "Graph precedence: the persisted state (every accepted edit, --state_file) wins over\n"
    "the config file's graph unless the config file changed since the state was saved;\n"
    "--reset_state or `aersctl reset` returns to the file.\n"
    "\n"
    "Exit codes: 0 stopped by a signal, 2 usage, 3 invalid config, 4 render failed,\n"
    "5 audio backend failed, 6 control plane failed to start, 7 the daemon program\n"
    "could not be run (127 from the dynamic loader when a library it needs is\n"
    "missing); a render stopped by a signal (SIGINT, SIGTERM, SIGHUP, SIGALRM,\n"
    "SIGUSR1, SIGUSR2, SIGXCPU) exits 128 + its number (130, 143, 129, ...) and\n"
    "leaves no output.";

// Flags given on the command line that cannot mean what was asked: a file
// or socket given as "" (which would select the system-wide default path,
// the production daemon's), or a flag of the other mode (render flags in
// daemon mode and the daemon's in render, which would be ignored). Empty
// environment variables are taken as unset. "" when none.
std::string FlagProblem(bool render, int argc, char** argv) {
  const std::vector<absl::string_view> kPathFlags = {
      "config",   "input",   "output",        "stats_file", "socket",      "token_file",
      "tls_cert", "tls_key", "tls_client_ca", "audit_log",  "plugin_root", "state_file"};
  // The flags on the command line before a "--": -name, --name,
  // --name=..., --noname (a boolean), by name.
  std::vector<absl::string_view> names;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") break;
    if (!absl::ConsumePrefix(&a, "--") && !absl::ConsumePrefix(&a, "-")) continue;
    a = a.substr(0, a.find('='));
    if (absl::FindCommandLineFlag(a) == nullptr) absl::ConsumePrefix(&a, "no");
    names.push_back(a);
  }
  const auto given = [&](absl::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  for (const absl::string_view name : kPathFlags) {
    const absl::CommandLineFlag* f = absl::FindCommandLineFlag(name);
    if (f != nullptr && given(name) && f->CurrentValue().empty()) {
      return absl::StrCat(
          "--", name, ": empty path",
          name == "config" || name == "output" ? "" : " (leave the flag out for its default)");
    }
  }
  // Each flag's help says whose it is ("daemon: ...", "render: ..."; the
  // others are both's): one given to the other mode would be ignored.
  const absl::string_view other = render ? "daemon:" : "render:";
  for (const absl::string_view name : names) {
    const absl::CommandLineFlag* f = absl::FindCommandLineFlag(name);
    if (f != nullptr && absl::StartsWith(f->Help(), other)) {
      return absl::StrCat("--", name,
                          render ? " is a daemon flag, not one of render"
                                 : " is a flag of `aersd render`, not of the daemon");
    }
  }
  return "";
}

// A flag given on the command line, else the environment variable.
std::string FlagOrEnv(const absl::Flag<std::string>& flag, const char* env) {
  std::string value = absl::GetFlag(flag);
  if (value.empty()) {
    if (const char* v = std::getenv(env)) value = v;
  }
  return value;
}

std::string ConfigPath() {
  return FlagOrEnv(FLAGS_config, "AERS_CONFIG_PATH");
}

// --data_dir: absolute paths.
bool DataDirFlags(std::vector<std::string>* dirs, const char* who) {
  *dirs = absl::GetFlag(FLAGS_data_dir);
  for (const auto& d : *dirs) {
    if (d.empty() || d.front() != '/') {
      std::fprintf(stderr, "%s: --data_dir '%s' must be an absolute path\n", who, d.c_str());
      return false;
    }
  }
  return true;
}

// --plugin_root / AERS_PLUGIN_ROOT: must be absolute, like plugins.root.
bool PluginRoot(std::string* root, const char* who) {
  *root = FlagOrEnv(FLAGS_plugin_root, "AERS_PLUGIN_ROOT");
  if (!root->empty() && root->front() != '/') {
    std::fprintf(stderr, "%s: --plugin_root / AERS_PLUGIN_ROOT '%s' must be an absolute path\n",
                 who, root->c_str());
    return false;
  }
  return true;
}

#ifndef AERS_LAUNCHER
// AERS_HOST + AERS_PORT: one TCP listener. Both or neither.
bool EnvListener(std::vector<std::string>* listen) {
  const char* host = std::getenv("AERS_HOST");
  const char* port = std::getenv("AERS_PORT");
  const bool has_host = host != nullptr && *host != '\0';
  const bool has_port = port != nullptr && *port != '\0';
  if (!has_host && !has_port) return true;
  if (!has_host || !has_port) {
    std::fprintf(stderr, "aersd: AERS_HOST and AERS_PORT go together (only %s is set)\n",
                 has_host ? "AERS_HOST" : "AERS_PORT");
    return false;
  }
  char* end = nullptr;
  const long p = std::strtol(port, &end, 10);
  if (*end != '\0' || p < 1 || p > 65535) {
    std::fprintf(stderr, "aersd: AERS_PORT '%s' is not a port number (1-65535)\n", port);
    return false;
  }
  const std::string h(host);
  if (h.find_first_of(" ,/") != std::string::npos) {
    std::fprintf(stderr, "aersd: AERS_HOST '%s' is not a host name or address\n", host);
    return false;
  }
  // An IPv6 literal needs brackets before the port.
  const bool v6 = h.find(':') != std::string::npos && h.front() != '[';
  listen->push_back(absl::StrCat("tcp:", v6 ? "[" : "", h, v6 ? "]" : "", ":", p));
  return true;
}
#endif

#ifndef AERS_LAUNCHER
int RunDaemonMode() {
  aers::daemon::DaemonOptions opts;
  opts.config_path = ConfigPath();
  opts.backend = FlagOrEnv(FLAGS_backend, "AERS_BACKEND");
  opts.jack_server = FlagOrEnv(FLAGS_jack_server, "AERS_JACK_SERVER");
  opts.jack_client_name = FlagOrEnv(FLAGS_jack_client_name, "AERS_JACK_CLIENT_NAME");
  opts.alsa.playback = FlagOrEnv(FLAGS_alsa_playback, "AERS_ALSA_PLAYBACK");
  opts.alsa.capture = FlagOrEnv(FLAGS_alsa_capture, "AERS_ALSA_CAPTURE");
  opts.alsa.period_frames = FlagOrEnv(FLAGS_alsa_period_frames, "AERS_ALSA_PERIOD_FRAMES");
  opts.alsa.periods = FlagOrEnv(FLAGS_alsa_periods, "AERS_ALSA_PERIODS");
  opts.alsa.sample_rate_hz = FlagOrEnv(FLAGS_alsa_sample_rate_hz, "AERS_ALSA_SAMPLE_RATE_HZ");
  opts.alsa.format = FlagOrEnv(FLAGS_alsa_format, "AERS_ALSA_FORMAT");
  opts.alsa.priority = FlagOrEnv(FLAGS_alsa_priority, "AERS_ALSA_PRIORITY");
  opts.stats_file = FlagOrEnv(FLAGS_stats_file, "AERS_STATS_FILE");
  opts.stats_interval =
      std::chrono::milliseconds(std::max(10, absl::GetFlag(FLAGS_stats_interval_ms)));
  opts.mlock = absl::GetFlag(FLAGS_mlock);
  opts.socket = FlagOrEnv(FLAGS_socket, "AERS_SOCKET");
  opts.listen = absl::GetFlag(FLAGS_listen);
  if (!EnvListener(&opts.listen)) return kExitUsage;
  opts.allow_plaintext_tokens = absl::GetFlag(FLAGS_allow_plaintext_tokens);
  opts.max_tcp_connections = absl::GetFlag(FLAGS_max_tcp_connections);
  if (opts.max_tcp_connections < 1 || opts.max_tcp_connections > 65536) {
    std::fprintf(stderr, "aersd: --max_tcp_connections %d is out of range; allowed 1 to 65536\n",
                 opts.max_tcp_connections);
    return kExitUsage;
  }
  opts.audit_log_group = absl::GetFlag(FLAGS_audit_log_group);
  if (!PluginRoot(&opts.plugin_root, "aersd")) return kExitUsage;
  if (!DataDirFlags(&opts.data_dirs, "aersd")) return kExitUsage;
  opts.token_file = FlagOrEnv(FLAGS_token_file, "AERS_TOKEN_FILE");
  opts.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  opts.tls_key = absl::GetFlag(FLAGS_tls_key);
  opts.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  opts.audit_log = FlagOrEnv(FLAGS_audit_log, "AERS_AUDIT_LOG");
  opts.state_file = FlagOrEnv(FLAGS_state_file, "AERS_STATE_FILE");
  opts.reset_state = absl::GetFlag(FLAGS_reset_state);
  opts.version = AERS_VERSION;
  if (opts.config_path.empty()) {
    std::fprintf(stderr, "aersd: --config FILE (or AERS_CONFIG_PATH) is required; see --help\n");
    return kExitUsage;
  }
  if (!opts.backend.empty() && !aers::config::ParseBackendType(opts.backend)) {
    std::fprintf(stderr, "aersd: unknown backend '%s' (expected one of: %s)\n",
                 opts.backend.c_str(), aers::config::BackendTypeList().c_str());
    return kExitUsage;
  }
  return aers::daemon::RunDaemon(opts);
}
#endif

#ifdef AERS_LAUNCHER
// Where the daemon program may be, in order: beside this program as
// installed (bindir/AERS_DAEMON_RELATIVE, e.g. ../libexec/aers/aersd, which
// also holds for a staged or moved install), beside it as built
// (libexec/aersd in the build tree), and the configured absolute path. Found
// from this program's own file (/proc/self/exe), never from PATH, argv[0]
// or the environment; only the configured path when the exec raised the
// process's privileges (AT_SECURE: set-user-ID, file capabilities), or when
// /proc cannot tell.
std::vector<std::string> DaemonProgramCandidates() {
  std::vector<std::string> out;
  char self[4096];
  const ssize_t n = getauxval(AT_SECURE) != 0 ? -1 : readlink("/proc/self/exe", self, sizeof self);
  if (n > 0 && static_cast<size_t>(n) < sizeof self) {
    std::string dir(self, static_cast<size_t>(n));
    dir.resize(dir.rfind('/') + 1);  // an absolute path: there is a '/'
    if (std::strlen(AERS_DAEMON_RELATIVE) != 0) out.push_back(dir + AERS_DAEMON_RELATIVE);
    out.push_back(dir + "libexec/aersd");
  }
  out.emplace_back(AERS_DAEMON_PROGRAM);
  return out;
}

// Daemon mode from the command: the daemon program replaces this process
// (same PID, argv and environment), the first candidate that exists.
int ExecDaemon(char** argv) {
  const std::vector<std::string> candidates = DaemonProgramCandidates();
  for (const std::string& program : candidates) {
    if (access(program.c_str(), F_OK) != 0) continue;
    execv(program.c_str(), argv);
    const int err = errno;
    std::fprintf(stderr, "aersd: cannot run the daemon program %s: %s\n", program.c_str(),
                 std::strerror(err));
    return aers::daemon::kExitDaemonProgram;
  }
  std::fprintf(stderr, "aersd: the daemon program is missing (looked for %s)\n",
               absl::StrJoin(candidates, ", ").c_str());
  return aers::daemon::kExitDaemonProgram;
}

// --flagfile, --fromenv and --tryfromenv are read while the command line is
// parsed: a flag file from a pipe would be empty by the time the daemon
// program read it again. Such a command line goes to the daemon program
// unparsed (it renders too).
bool ReadsFlagsFromElsewhere(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") break;  // the rest is positional
    if (!absl::ConsumePrefix(&a, "--")) {
      if (!absl::ConsumePrefix(&a, "-")) continue;
    }
    a = a.substr(0, a.find('='));
    if (a == "flagfile" || a == "fromenv" || a == "tryfromenv") return true;
  }
  return false;
}
#endif

// Stopping a render on a signal. The handler keeps the first signal and
// wakes the watch thread; the render sees the signal at its next chunk of
// input and removes its temporary file itself. A render that does not
// return within kRenderStopGrace (blocked reading a pipe or FIFO: libsndfile
// retries interrupted reads) or gets a second signal is ended by the watch
// thread, which removes the temporary file first.
constexpr int kRenderStopSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGALRM, SIGUSR1, SIGUSR2, SIGXCPU};
constexpr auto kRenderStopGrace = std::chrono::seconds(1);
std::atomic<int> render_stop_signal{0};  // the first signal (0: none)
static_assert(std::atomic<int>::is_always_lock_free);
int render_wake_fd = -1;  // eventfd: the handler wakes the watch thread
absl::Mutex render_temp_mu;
std::string render_temp_path ABSL_GUARDED_BY(render_temp_mu);  // "" when none

void OnRenderStopSignal(int sig) {
  int none = 0;
  render_stop_signal.compare_exchange_strong(none, sig, std::memory_order_relaxed);
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(render_wake_fd, &one, sizeof one);
}

[[noreturn]] void EndInterruptedRender(const std::string& output, bool second_signal) {
  const int sig = render_stop_signal.load();
  {
    absl::MutexLock lock(&render_temp_mu);
    if (!render_temp_path.empty()) ::unlink(render_temp_path.c_str());
  }
  std::fprintf(stderr, "aersd render: %s: render interrupted by SIG%s (%s); no output written\n",
               output.c_str(), sigabbrev_np(sig),
               second_signal ? "a second signal ended it at once"
                             : "it did not stop within a second: blocked reading its input?");
  std::fflush(stderr);
  ::_exit(128 + sig);
}

// Installs the handlers and starts the watch thread (detached: it ends with
// the process). SIGPIPE and SIGXFSZ are ignored: a write past a file size
// limit then fails with EFBIG, and the render reports it and cleans up.
void StopRenderOnSignals(const std::string& output) {
  render_wake_fd = ::eventfd(0, EFD_CLOEXEC);
  if (render_wake_fd < 0) return;  // not interruptible: the default actions stay
  std::thread([output] {
    uint64_t n = 0;
    while (::read(render_wake_fd, &n, sizeof n) < 0 && errno == EINTR) {
    }
    pollfd pfd{render_wake_fd, POLLIN, 0};
    const auto grace = std::chrono::duration_cast<std::chrono::milliseconds>(kRenderStopGrace);
    // A second signal, or the grace period over: the render is ended here.
    int ready = 0;
    while ((ready = ::poll(&pfd, 1, static_cast<int>(grace.count()))) < 0 && errno == EINTR) {
    }
    EndInterruptedRender(output, ready > 0);
  }).detach();
  struct sigaction sa {};
  sa.sa_handler = OnRenderStopSignal;
  sigfillset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : kRenderStopSignals) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGXFSZ, SIG_IGN);
}

int RunRender() {
  const std::string config_path = ConfigPath();
  if (config_path.empty()) {
    std::fprintf(stderr, "aersd render: --config FILE is required\n");
    return kExitUsage;
  }
  if (absl::GetFlag(FLAGS_output).empty()) {
    std::fprintf(stderr, "aersd render: --output FILE is required\n");
    return kExitUsage;
  }
  if (const std::string clash =
          aers::daemon::PathCollision({{"--config", config_path, false},
                                       {"--input", absl::GetFlag(FLAGS_input), false},
                                       {"--output", absl::GetFlag(FLAGS_output)}});
      !clash.empty()) {
    std::fprintf(stderr, "aersd render: %s\n", clash.c_str());
    return kExitUsage;
  }
  // Flags first: a bad number is a usage error naming the flag, never
  // blamed on a file.
  const double rate = absl::GetFlag(FLAGS_sample_rate_hz);
  if (!(rate >= aers::config::kMinSampleRateHz && rate <= aers::config::kMaxSampleRateHz)) {
    std::fprintf(stderr, "aersd render: --sample_rate_hz %g is out of range; allowed %g to %g Hz\n",
                 rate, aers::config::kMinSampleRateHz, aers::config::kMaxSampleRateHz);
    return kExitUsage;
  }
  const uint32_t period = absl::GetFlag(FLAGS_period_frames);
  if (period < 1 || period > aers::backend::kMaxRenderPeriodFrames) {
    std::fprintf(stderr, "aersd render: --period_frames %u is out of range; allowed 1 to %u\n",
                 period, aers::backend::kMaxRenderPeriodFrames);
    return kExitUsage;
  }
  const double duration = absl::GetFlag(FLAGS_duration_s);
  if (!(duration >= 0.0 && duration <= 86400.0 * 7)) {
    std::fprintf(stderr,
                 "aersd render: --duration_s %g is out of range; allowed 0 to 604800 s (a week)\n",
                 duration);
    return kExitUsage;
  }
  // The same config, with the same plugins through the same gate, as the
  // daemon would run.
  std::string text;
  {
    auto read = aers::config::ReadConfigText(config_path);
    if (!read.ok()) {
      std::fprintf(stderr, "aersd render: %s\n", std::string(read.status().message()).c_str());
      return kExitConfig;
    }
    text = std::move(*read);
  }
  std::string plugin_root;
  if (!PluginRoot(&plugin_root, "aersd render")) return kExitUsage;
  std::vector<std::string> data_dirs;
  if (!DataDirFlags(&data_dirs, "aersd render")) return kExitUsage;
  auto kinds = aers::dsp::MakeBuiltinRegistry(aers::dsp::DataDirsFor(config_path, data_dirs));
  aers::daemon::ConfiguredPlugins plugins;
  if (auto st =
          aers::daemon::LoadConfiguredPlugins(text, config_path, *kinds, plugins,
                                              {plugin_root,
                                               nullptr,
                                               {{"--config", config_path, false},
                                                {"--input", absl::GetFlag(FLAGS_input), false},
                                                {"--output", absl::GetFlag(FLAGS_output)}}});
      !st.ok()) {
    std::fprintf(stderr, "aersd render: invalid config:\n%s\n", std::string(st.message()).c_str());
    return kExitConfig;
  }
  auto config = aers::config::ParseConfig(text, config_path, *kinds);
  if (!config.ok()) {
    std::fprintf(stderr, "aersd render: invalid config:\n%s\n",
                 std::string(config.status().message()).c_str());
    return kExitConfig;
  }
  aers::backend::RenderOptions opts;
  opts.input_path = absl::GetFlag(FLAGS_input);
  opts.output_path = absl::GetFlag(FLAGS_output);
  opts.period_frames = absl::GetFlag(FLAGS_period_frames);
  opts.duration_s = absl::GetFlag(FLAGS_duration_s);
  opts.sample_rate_hz = absl::GetFlag(FLAGS_sample_rate_hz);
  opts.crossfade_ms = config->engine.crossfade_ms;
  opts.stop_signal = &render_stop_signal;
  opts.temp_file = [](const std::string& path) {
    absl::MutexLock lock(&render_temp_mu);
    render_temp_path = path;
  };
  StopRenderOnSignals(opts.output_path);
  auto stats = aers::backend::RenderFile(config->graph, *kinds, opts);
  if (!stats.ok()) {
    std::fprintf(stderr, "aersd render: %s\n", std::string(stats.status().message()).c_str());
    const int sig = render_stop_signal.load();
    return stats.status().code() == absl::StatusCode::kCancelled && sig != 0 ? 128 + sig
                                                                             : kExitRender;
  }
  const double audio_s = static_cast<double>(stats->frames) / stats->sample_rate_hz;
  std::fprintf(stderr,
               "aersd render: %llu frames (%.2f s of audio, %d -> %d channels, %.0f Hz) in "
               "%.3f s (%.1fx real time)\n",
               static_cast<unsigned long long>(stats->frames), audio_s, stats->input_channels,
               stats->output_channels, stats->sample_rate_hz, stats->seconds,
               stats->seconds > 0 ? audio_s / stats->seconds : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef AERS_LAUNCHER
  if (ReadsFlagsFromElsewhere(argc, argv)) return ExecDaemon(argv);
#endif
  // A write past a file size limit (ulimit -f, systemd's LimitFSIZE=) fails
  // with EFBIG, which every writer reports (an audit record that cannot be
  // written refuses what it records), instead of killing the process, from
  // the first write on: plugins and their audit records come before any
  // mode's own set-up.
  ::signal(SIGXFSZ, SIG_IGN);
#ifdef NDEBUG
  // Debian builds absl with its lock-order graph on, so every absl::Mutex
  // lock (the control plane's and gRPC's own) updates a graph of who holds
  // what: about 2 % of the daemon's CPU under a stream of edits. Release
  // builds turn it off; debug and sanitizer builds, which the tests run,
  // keep it, so a lock-order inversion still aborts there.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  absl::SetProgramUsageMessage(kUsage);
  // --help lists the flags defined in this file (they are all of aersd's).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "daemon/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  usage.version_string = [] { return std::string("aersd ") + AERS_VERSION + "\n"; };
  absl::SetFlagsUsageConfig(usage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const bool render = args.size() >= 2 && std::string(args[1]) == "render";
  if (auto problem = FlagProblem(render, argc, argv); !problem.empty()) {
    std::fprintf(stderr, "aersd%s: %s\n", render ? " render" : "", problem.c_str());
    return kExitUsage;
  }
  if (render && args.size() > 2) {
    std::fprintf(stderr, "aersd render: unexpected argument '%s'; see aersd --help\n", args[2]);
    return kExitUsage;
  }

  const std::string level = FlagOrEnv(FLAGS_log_level, "AERS_LOG_LEVEL");
  if (auto st = aers::logging::Setup(level.empty() ? "info" : level); !st.ok()) {
    std::fprintf(stderr, "aersd: %s\n", std::string(st.message()).c_str());
    return kExitUsage;
  }
  if (args.size() >= 2 && std::string(args[1]) == "render") return RunRender();
  if (args.size() >= 2) {
    std::fprintf(stderr, "aersd: unknown command '%s'; see aersd --help\n", args[1]);
    return kExitUsage;
  }
#ifdef AERS_LAUNCHER
  return ExecDaemon(argv);
#else
  aers::logging::RouteLibraryLogs();
  return RunDaemonMode();
#endif
}
