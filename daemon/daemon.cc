#include "daemon.h"

#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "backend/backend.h"
#include "backend/null.h"
#include "config/config.h"
#include "control/audit.h"
#include "control/events.h"
#include "control/grpc/server.h"
#include "control/paths.h"
#include "control/service.h"
#include "dsp/builtins.h"
#include "engine/engine.h"
#include "housekeeping.h"
#include "notify.h"
#include "path_collision.h"
#include "plugin/audit.h"
#include "plugin/loader.h"
#include "plugins.h"
#include "spdlog/spdlog.h"
#include "stall_watch.h"
#include "state/initial_graph.h"
#include "state/state_store.h"

#if defined(AERS_HAVE_JACK)
#include "backend/jack.h"
#endif
#if defined(AERS_HAVE_ALSA)
#include "backend/alsa.h"
#endif

namespace aers::daemon {

namespace {

constexpr int kLoopMs = 50;
constexpr auto kDrainEvery = std::chrono::milliseconds(250);
constexpr auto kStatusEvery = std::chrono::seconds(2);
constexpr auto kTrimEvery = std::chrono::seconds(10);

void LogLines(spdlog::level::level_enum level, const std::string& head, absl::string_view body) {
  spdlog::log(level, "{}", head);
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    spdlog::log(level, "  {}", std::string(line));
  }
}

// JSON has no NaN or infinity: such a reading is written as 0.
double JsonNumber(double v) {
  return std::isfinite(v) ? v : 0.0;
}

// A level in dB (LUFS, dBTP): -inf (silence) becomes null, never 0.
nlohmann::ordered_json JsonDb(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}

// Many TCP clients must not exhaust the descriptors the local socket, JACK
// and the state file need: take the hard limit (the unit sets it).
void RaiseDescriptorLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  const rlim_t want = std::min<rlim_t>(rl.rlim_max, 65536);
  if (rl.rlim_cur >= want) return;
  const rlim_t before = rl.rlim_cur;
  rl.rlim_cur = want;
  if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
    spdlog::debug("descriptor limit raised from {} to {}", before, want);
  }
}

// The name limits every graph is held to: JACK's when this aersd has JACK,
// whichever backend runs, so a config stays valid when `auto` picks JACK at
// the next start (model/naming.h). `client_name` may be empty (then the
// config's client name is used).
model::NamingLimits BackendNamingLimits(const std::string& client_name) {
  model::NamingLimits n;
  n.client_name = client_name;
#if defined(AERS_HAVE_JACK)
  n.max_client_name_bytes = static_cast<size_t>(jack_client_name_size() - 1);
  n.max_port_name_bytes = static_cast<size_t>(jack_port_name_size() - 1);
#endif
  return n;
}

class Daemon {
 public:
  Daemon(const DaemonOptions& options, int signal_fd) : options_(options), signal_fd_(signal_fd) {}

  int Run();

 private:
  absl::Status StartBackend();
  void Reload();
  void DrainEvents();
  std::string StatusLine() const;
  /// The backend's status with a stall applied (StallWatch): a backend
  /// that says it runs but ran no period for a while is reported not
  /// running, its detail saying for how long. Any thread.
  backend::BackendStatus Status() const { return WithStall(backend_->status()); }
  backend::BackendStatus WithStall(backend::BackendStatus st) const;
  void WriteStatsFile();
  void LogDspStats(std::string_view why);
  // The audit log shows edits applied beyond what the state held at start
  // (the daemon was killed between an edit's audit record and its journal
  // record, or a power cut took the unflushed tail): logs it and writes a
  // follow-up record, so that the log does not claim changes that are not
  // in effect.
  void AuditLostEdits(std::optional<uint64_t> saved_graph_revision);

  const DaemonOptions& options_;
  const int signal_fd_;
  std::unique_ptr<model::KindRegistry> kinds_;
  config::Config config_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<backend::AudioBackend> backend_;
  std::unique_ptr<state::StateStore> state_;
  std::unique_ptr<control::AuditLog> audit_;
  control::EventBus events_;
  std::unique_ptr<control::GraphService> service_;
  std::unique_ptr<control::ControlServer> control_;
  uint64_t last_silent_cycles_ = 0;
  bool backend_running_ = false;
  std::string stats_error_;  // the last failure to write the stats file, "" if none
  std::chrono::steady_clock::time_point stats_error_logged_{};
  StallWatch stall_;
  bool state_diverged_ = false;  // service_->state_diverged() as last seen

  absl::Status StartControl();
  void WatchBackend();
  absl::Status LoadPlugins(const std::string& config_text);
  absl::StatusOr<std::string> ReadConfigText() const;
  /// What the persisted state is derived from: a hash of the config text.
  static std::string Baseline(const std::string& config_text);
  std::string baseline_;  // of the config file the live graph derives from

  ConfiguredPlugins plugins_;
  std::vector<PathUse> own_files_;  // the files this run uses (PathCollision)
  model::NamingLimits names_;       // of the backend the graph runs on
};

absl::StatusOr<std::string> Daemon::ReadConfigText() const {
  return config::ReadConfigText(options_.config_path);
}

std::string Daemon::Baseline(const std::string& text) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return absl::StrCat("config-sha256:", hex);
}

// Plugin kinds must be registered before the graph is validated, but both
// are in the same file: read the `plugins:` section first, load what it
// allows, then parse the whole config against the full registry. A refused
// plugin is logged (and audited) and the daemon goes on without it.
absl::Status Daemon::LoadPlugins(const std::string& text) {
  return LoadConfiguredPlugins(text, options_.config_path, *kinds_, plugins_,
                               PluginOverrides{options_.plugin_root, audit_.get(), own_files_});
}

absl::Status Daemon::StartControl() {
  service_ = std::make_unique<control::GraphService>(
      *engine_, state_.get(), events_, [this]() -> absl::StatusOr<model::GraphSpec> {
        auto c = config::LoadConfigFile(options_.config_path, *kinds_, nullptr, &names_);
        if (!c.ok()) return c.status();
        return std::move(c->graph);
      });
  control::ListenerOptions lo;
  if (options_.socket != "none") {
    lo.unix_socket = options_.socket.empty() ? control::DefaultSocketPath() : options_.socket;
  }
  lo.listen = options_.listen;
  lo.token_file = options_.token_file;
  lo.tls_cert = options_.tls_cert;
  lo.tls_key = options_.tls_key;
  lo.tls_client_ca = options_.tls_client_ca;
  lo.allow_plaintext_tokens = options_.allow_plaintext_tokens;
  lo.max_connections = options_.max_tcp_connections;
  control_ = std::make_unique<control::ControlServer>(
      *service_, [this] { return Status(); }, options_.version,
      state_ ? state_->path() : std::string(),
      [this] {
        std::vector<control::PluginSummary> out;
        for (const auto& p : plugins_.loaded) {
          const auto& m = p.plugin->manifest();
          out.push_back({m.name, m.version, plugin::ModuleFormatName(m.format),
                         plugin::HashAlgorithmName(m.hash_algorithm), m.hash_hex,
                         p.plugin->signer_key_id(), p.plugin->module_path(), m.serial, p.kinds});
        }
        return out;
      },
      audit_.get());
  return control_->Start(lo);
}

// Backend lost / restored: events for watchers, health for probes.
void Daemon::WatchBackend() {
  const auto raw = backend_->status();
  const auto now = StallWatch::Clock::now();
  const double period_s = raw.sample_rate_hz > 0 ? raw.period_frames / raw.sample_rate_hz : 0.0;
  if (const auto change = stall_.Observe(now, raw.running, engine_->runner().cycles(), period_s)) {
    const double secs = std::chrono::duration<double>(change->since).count();
    if (change->stalled) {
      spdlog::warn("{}: no period for {:.1f} s although the backend runs ({}): audio stopped",
                   raw.name, secs, raw.detail);
    } else if (raw.running) {
      spdlog::info("{}: periods run again after {:.1f} s without one", raw.name, secs);
    }
  }
  const auto st = WithStall(raw);
  const bool running = st.running;
  const bool diverged = service_ && service_->state_diverged();
  if (running == backend_running_ && diverged == state_diverged_) return;
  if (running != backend_running_) {
    backend_running_ = running;
    control::Event e;
    e.type = running ? control::Event::Type::kBackendRestored : control::Event::Type::kBackendLost;
    e.text = running ? st.name : st.detail;
    events_.Publish(std::move(e));
  }
  state_diverged_ = diverged;
  if (control_) control_->SetServing(running && !diverged);
}

// backend.alsa with the --alsa_* flags (AERS_ALSA_*) applied, checked like
// the config: a bad value is INVALID_ARGUMENT naming the flag or field.
absl::StatusOr<config::AlsaSettings> MergeAlsa(config::AlsaSettings a,
                                               const DaemonOptions::AlsaOverrides& o,
                                               bool selected) {
  std::vector<std::string> errors;
  const auto integer = [&](const std::string& text, const char* flag, auto& out) {
    if (text.empty()) return;
    int v = 0;
    if (!absl::SimpleAtoi(text, &v)) {
      errors.push_back(
          absl::StrCat("--", flag, " '", text, "' is not an integer (or is beyond 32 bits)"));
      return;
    }
    out = v;
  };
  if (!o.playback.empty()) a.playback = o.playback;
  if (!o.capture.empty()) a.capture = o.capture;
  if (!o.format.empty()) a.format = o.format;
  integer(o.period_frames, "alsa_period_frames", a.period_frames);
  integer(o.periods, "alsa_periods", a.periods);
  integer(o.priority, "alsa_priority", a.priority);
  if (!o.sample_rate_hz.empty()) {
    double v = 0;
    if (!absl::SimpleAtod(o.sample_rate_hz, &v)) {
      errors.push_back(
          absl::StrCat("--alsa_sample_rate_hz '", o.sample_rate_hz, "' is not a number"));
    } else {
      a.sample_rate_hz = v;
    }
  }
  for (const model::Issue& i : config::ValidateAlsa(a, selected)) {
    errors.push_back(absl::StrCat(i.path, ": ", i.message));
  }
  if (!errors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid ALSA settings (backend.alsa or the --alsa_* flags): ",
                     absl::StrJoin(errors, "; ")));
  }
  return a;
}

#if defined(AERS_HAVE_ALSA)
backend::AlsaOptions ToAlsaOptions(const config::AlsaSettings& a,
                                   const config::EngineSettings& engine) {
  backend::AlsaOptions o;
  o.playback = a.playback;
  o.capture = a.capture;
  o.sample_rate_hz = a.sample_rate_hz != 0.0 ? a.sample_rate_hz : engine.sample_rate_hz;
  o.period_frames =
      static_cast<uint32_t>(a.period_frames != 0 ? a.period_frames : engine.period_frames);
  o.periods = static_cast<uint32_t>(a.periods);
  switch (config::ParseAlsaFormat(a.format).value_or(config::AlsaFormat::kAuto)) {
    case config::AlsaFormat::kAuto:
      break;
    case config::AlsaFormat::kFloat:
      o.format = backend::SampleFormat::kFloat;
      break;
    case config::AlsaFormat::kS32:
      o.format = backend::SampleFormat::kS32;
      break;
    case config::AlsaFormat::kS24:
      o.format = backend::SampleFormat::kS24;
      break;
    case config::AlsaFormat::kS24_3:
      o.format = backend::SampleFormat::kS24_3;
      break;
    case config::AlsaFormat::kS16:
      o.format = backend::SampleFormat::kS16;
      break;
  }
  o.rt_priority = a.priority;
  o.dither = a.dither;
  o.playback_channels = static_cast<uint32_t>(a.playback_channels);
  o.capture_channels = static_cast<uint32_t>(a.capture_channels);
  o.playback_map = a.playback_map;
  o.capture_map = a.capture_map;
  return o;
}
#endif

absl::Status Daemon::StartBackend() {
  const std::string name = options_.backend.empty() ? config_.backend.type : options_.backend;
  const std::string server =
      options_.jack_server.empty() ? config_.backend.jack_server_name : options_.jack_server;
  const std::string client = options_.jack_client_name.empty() ? config_.backend.jack_client_name
                                                               : options_.jack_client_name;
  const auto type = config::ParseBackendType(name);
  if (!type) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown backend '", name, "' (expected one of: ", config::BackendTypeList(), ")"));
  }
  using config::BackendType;
  // The ALSA settings count only where ALSA may run.
  absl::StatusOr<config::AlsaSettings> alsa = config_.backend.alsa;
  if (*type == BackendType::kAlsa || *type == BackendType::kAuto) {
    alsa = MergeAlsa(config_.backend.alsa, options_.alsa, *type == BackendType::kAlsa);
    if (!alsa.ok()) return alsa.status();
  }
  const bool alsa_named = !alsa->playback.empty() || !alsa->capture.empty();
#if defined(AERS_HAVE_JACK)
  if (*type == BackendType::kJack || *type == BackendType::kAuto) {
    backend::JackOptions jo;
    jo.client_name = client;
    jo.server_name = server;
    jo.wait_for_server = *type == BackendType::kJack;
    auto jack = std::make_unique<backend::JackBackend>(*engine_, jo);
    absl::Status st = jack->Start();
    if (st.ok()) {
      if (*type == BackendType::kAuto)
        spdlog::info("backend auto: a JACK server answered; using JACK");
      backend_ = std::move(jack);
      return st;
    }
    if (*type == BackendType::kJack || !absl::IsUnavailable(st)) return st;
    spdlog::info("backend auto: {}", std::string(st.message()));
  }
#else
  if (*type == BackendType::kJack) {
    return absl::FailedPreconditionError("this aersd was built without JACK support");
  }
  if (*type == BackendType::kAuto) spdlog::info("backend auto: built without JACK");
#endif
#if defined(AERS_HAVE_ALSA)
  if (*type == BackendType::kAlsa || (*type == BackendType::kAuto && alsa_named)) {
    auto be =
        std::make_unique<backend::AlsaBackend>(*engine_, ToAlsaOptions(*alsa, config_.engine));
    absl::Status st = be->Start();
    if (st.ok()) {
      if (*type == BackendType::kAuto)
        spdlog::info("backend auto: the ALSA device opened; using ALSA");
      backend_ = std::move(be);
      return st;
    }
    if (*type == BackendType::kAlsa) return st;
    spdlog::info("backend auto: {}", std::string(st.message()));
  } else if (*type == BackendType::kAuto) {
    spdlog::info("backend auto: no ALSA device configured (backend.alsa.playback/capture)");
  }
#else
  if (*type == BackendType::kAlsa) {
    return absl::FailedPreconditionError("this aersd was built without ALSA support");
  }
  (void)alsa_named;
#endif
  if (*type == BackendType::kAuto) {
    spdlog::info("backend auto: using the null backend (no audio device, clock-driven)");
  }
  backend::NullOptions no;
  no.sample_rate_hz = config_.engine.sample_rate_hz;
  no.period_frames = static_cast<uint32_t>(config_.engine.period_frames);
  backend_ = std::make_unique<backend::NullBackend>(*engine_, no);
  return backend_->Start();
}

}  // namespace

namespace {

int Daemon::Run() {
  spdlog::debug(
      "options: config '{}', backend '{}', jack server '{}', jack client '{}', "
      "stats file '{}' every {} ms (empty: from the config or unset)",
      options_.config_path, options_.backend, options_.jack_server, options_.jack_client_name,
      options_.stats_file, options_.stats_interval.count());
  if (options_.config_path.empty()) {
    spdlog::error("no config: pass --config FILE or set AERS_CONFIG_PATH");
    return kExitUsage;
  }
  {
    const std::string state =
        options_.state_file.empty() ? state::StateStore::DefaultPath() : options_.state_file;
    const std::string socket = options_.socket == "none" ? "" : options_.socket;
    own_files_ = {{"--config", options_.config_path, false},
                  {"--state_file", state},
                  {"the state file's journal", state.empty() ? "" : state + ".journal"},
                  {"the state file's lock", state.empty() ? "" : state + ".lock"},
                  {"--stats_file", options_.stats_file},
                  {"--audit_log", options_.audit_log},
                  {"--socket", socket},
                  {"the socket's lock", socket.empty() ? "" : socket + ".lock"},
                  {"--token_file", options_.token_file, false},
                  {"--tls_cert", options_.tls_cert, false},
                  {"--tls_key", options_.tls_key, false},
                  {"--tls_client_ca", options_.tls_client_ca, false}};
    for (const std::string& l : options_.listen) {
      if (l.rfind("unix:", 0) != 0 || l.size() <= 5) continue;
      own_files_.push_back({"--listen", l.substr(5)});
      own_files_.push_back({"the --listen socket's lock", l.substr(5) + ".lock"});
    }
    const std::string clash = PathCollision(own_files_);
    if (!clash.empty()) {
      spdlog::error("{}", clash);
      return kExitUsage;
    }
    // The stats file is replaced at every interval: what cannot be
    // replaced is refused now, not warned about for ever.
    if (struct stat st{}; !options_.stats_file.empty() &&
                          ::lstat(options_.stats_file.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      spdlog::error("--stats_file {}: exists and is not a regular file; refusing to replace it",
                    options_.stats_file);
      return kExitUsage;
    }
  }
  kinds_ = dsp::MakeBuiltinRegistry(dsp::DataDirsFor(options_.config_path, options_.data_dirs));
  RaiseDescriptorLimit();
  // The audit log first: plugin decisions are recorded in it.
  {
    auto audit = control::AuditLog::Open({options_.audit_log, options_.audit_log_group});
    if (!audit.ok()) {
      spdlog::error("{}", std::string(audit.status().message()));
      return kExitControl;
    }
    audit_ = std::move(*audit);
  }
  // The file is read once: plugins, the config and the state's baseline all
  // come from the same bytes.
  auto text = ReadConfigText();
  if (!text.ok()) {
    spdlog::error("{}", std::string(text.status().message()));
    return kExitConfig;
  }
  if (auto st = LoadPlugins(*text); !st.ok()) {
    LogLines(spdlog::level::err, absl::StrCat("invalid config ", options_.config_path, ":"),
             st.message());
    return kExitConfig;
  }
  baseline_ = Baseline(*text);
  names_ = BackendNamingLimits(options_.jack_client_name);
  if (!options_.jack_client_name.empty()) {
    // The flag bypasses the config's checks: hold it to the same rule (a
    // name JACK cannot hold would make every connection attempt fail).
    if (auto bad = model::CheckIdentifier(options_.jack_client_name, "--jack_client_name",
                                          names_.max_client_name_bytes)) {
      spdlog::error("{} (also settable as AERS_JACK_CLIENT_NAME)", *bad);
      return kExitUsage;
    }
  }
  auto loaded = config::ParseConfig(*text, options_.config_path, *kinds_, nullptr, &names_);
  if (!loaded.ok()) {
    LogLines(spdlog::level::err, absl::StrCat("invalid config ", options_.config_path, ":"),
             loaded.status().message());
    return kExitConfig;
  }
  config_ = std::move(*loaded);
  if (names_.client_name.empty()) names_.client_name = config_.backend.jack_client_name;

  engine::EngineOptions eo;
  eo.format.sample_rate_hz = config_.engine.sample_rate_hz;
  eo.format.max_period_frames = static_cast<uint32_t>(config_.engine.period_frames);
  eo.crossfade_ms = config_.engine.crossfade_ms;
  eo.names = names_;
  eo.limits = config::GraphLimitsOf(config_.engine);

  // The persisted state (every accepted edit) wins over the config file's
  // graph; --reset_state or `aersctl reset` goes back to the file. A
  // corrupt or no longer valid state is reported and the config used.
  state_ = std::make_unique<state::StateStore>(
      options_.state_file.empty() ? state::StateStore::DefaultPath() : options_.state_file);
  if (auto st = state_->CheckPath(); !st.ok()) {
    spdlog::error("state file: {}", std::string(st.message()));
    return kExitConfig;
  }
  if (auto st = state_->Lock(); absl::IsFailedPrecondition(st)) {
    spdlog::error("state file: {}", std::string(st.message()));
    return kExitConfig;
  } else if (!st.ok()) {
    spdlog::warn("state file: {} (a second daemon on this state would not be refused)",
                 std::string(st.message()));
  }
  if (const int n = state_->RemoveStaleTemporaries(); n > 0) {
    spdlog::info("removed {} temporary state files left by a crash", n);
  }
  // Revisions go on from the persisted one, whichever graph starts. A state
  // file whose revision cannot be read (corrupt, truncated) gives no floor:
  // the clock does (seconds since 1970 exceed any count of edits), so no
  // revision a client saw before repeats.
  // What the state holds, read before this start saves anything: audited
  // edits beyond it were lost (AuditLostEdits, below).
  std::optional<uint64_t> saved_graph_revision;
  if (const auto saved = state_->SavedRevision(&saved_graph_revision)) {
    eo.initial_revision = *saved;
  } else {
    eo.initial_revision =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    spdlog::warn("state file {}: no readable revision; revisions continue from {} (the clock)",
                 state_->path(), eo.initial_revision);
  }
  engine_ = std::make_unique<engine::Engine>(*kinds_, eo);
  auto choice = state::ChooseInitialGraph(
      *state_, *kinds_, config_.graph, baseline_, options_.reset_state,
      [this](const model::GraphSpec& g) { return engine_->Check(g); }, options_.config_path);
  {
    const auto nl = choice.reason.find('\n');
    LogLines(choice.state_problem ? spdlog::level::err : spdlog::level::info,
             choice.reason.substr(0, nl),
             nl == std::string::npos ? "" : absl::string_view(choice.reason).substr(nl + 1));
  }
  if (const std::string damage = state_->journal_damage(); !damage.empty()) {
    // The newest intact record was used; the damaged journal is kept aside
    // for inspection instead of being emptied by the next checkpoint.
    if (auto st = state_->SetAsideJournal(); !st.ok()) {
      spdlog::warn("state journal {}; it cannot be set aside: {}", damage,
                   std::string(st.message()));
    } else {
      spdlog::warn("state journal {}; kept as {}.damaged", damage, state_->journal_path());
    }
  }
  model::GraphSpec initial = std::move(choice.graph);
  const bool from_state = choice.source == state::InitialGraph::Source::kState;
  // Start-up limits (a master volume's startup_max_db), whichever graph starts.
  auto startup_limits = [this](model::GraphSpec& g) {
    for (const auto& change : model::ApplyStartupLimits(g, *kinds_)) {
      spdlog::warn("start-up limit: {}", change);
    }
  };
  startup_limits(initial);
  state_->set_baseline(baseline_);
  auto applied = engine_->Apply(initial);
  if (!applied.ok() && from_state) {
    LogLines(spdlog::level::err,
             "the saved state no longer applies; using the config:", applied.status().message());
    initial = config_.graph;
    startup_limits(initial);
    applied = engine_->Apply(initial);
  }
  if (!applied.ok()) {
    LogLines(spdlog::level::err, absl::StrCat("invalid graph in ", options_.config_path, ":"),
             applied.status().message());
    return kExitConfig;
  }
  spdlog::info("graph loaded: {} nodes, {} routes, {} -> {} channels, revision {}",
               initial.nodes.size(), initial.routes.size(), initial.TotalInputChannels(),
               initial.TotalOutputChannels(), engine_->revision());
  AuditLostEdits(saved_graph_revision);
  // Persist the start: the revision never repeats, even with no edit.
  // Written into the state file itself, so that it shows the running graph.
  if (auto st = state_->Save(initial, engine_->revision()); !st.ok()) {
    spdlog::warn("cannot save the state: {} (edits will be refused until it can be written)",
                 std::string(st.message()));
  } else if (auto cp = state_->Checkpoint(); !cp.ok()) {
    spdlog::warn("state checkpoint: {}", std::string(cp.message()));
  }

  if (auto st = StartBackend(); !st.ok()) {
    spdlog::error("cannot start the audio backend: {}", std::string(st.message()));
    return kExitBackend;
  }
  if (auto st = StartControl(); !st.ok()) {
    spdlog::error("cannot start the control plane: {}", std::string(st.message()));
    backend_->Stop();
    return kExitControl;
  }

  const auto watchdog = notify::WatchdogPingInterval();
  if (watchdog.count() > 0) {
    spdlog::info("systemd watchdog: pinging every {} ms", watchdog.count() / 1000);
  }
  bool ready = false;
  const uint64_t start_cycles = engine_->runner().cycles();
  Housekeeping house;
  house.Every("reclaim retired plans", Housekeeping::Clock::duration::zero(),
              [this](auto) { engine_->Reclaim(); });
  house.Every("audit flush", Housekeeping::Clock::duration::zero(),
              [this](auto now) { audit_->Flush(now); });
  // Memory freed after large requests goes back to the system rather than
  // staying in the allocator's arenas (gRPC threads each have one).
  house.Every("malloc trim", kTrimEvery, [](auto) { malloc_trim(0); });
  house.Every("readiness and health", Housekeeping::Clock::duration::zero(), [&](auto) {
    if (ready) {
      WatchBackend();
      return;
    }
    if (backend_->status().running && engine_->runner().cycles() > start_cycles) {
      ready = true;
      backend_running_ = true;
      control_->SetServing(!service_->state_diverged());
      spdlog::info("audio running: {}", StatusLine());
      notify::Send(absl::StrCat("READY=1\nSTATUS=", StatusLine()));
    }
  });
  house.Every("drain backend events", kDrainEvery, [this](auto) { DrainEvents(); });
  // The state file itself follows the journal once edits pause for a
  // second (state_store.h); the journal alone is as durable.
  house.Every(
      "state checkpoint", std::chrono::seconds(1),
      [this, last = uint64_t{0}, warned = Housekeeping::Clock::time_point{}](auto now) mutable {
        // What runs but could not be saved (a full disk): again.
        service_->ResaveIfDiverged();
        const uint64_t records = state_->journal_records();
        if (records != 0 && records == last) {
          if (auto st = state_->Checkpoint(); !st.ok() && now - warned > std::chrono::minutes(1)) {
            spdlog::warn("state checkpoint (retried every second, logged once a minute): {}",
                         std::string(st.message()));
            warned = now;
          }
        }
        last = state_->journal_records();
      });
  if (!options_.stats_file.empty()) {
    house.Every("stats file", options_.stats_interval, [this](auto) { WriteStatsFile(); });
  }
  house.Every("sd_notify STATUS", kStatusEvery, [&](auto) {
    if (ready) notify::Send(absl::StrCat("STATUS=", StatusLine()));
  });
  if (watchdog.count() > 0) {
    house.Every("sd_notify WATCHDOG", watchdog, [](auto) { notify::Send("WATCHDOG=1"); });
  }
  house.Run(signal_fd_, std::chrono::milliseconds(kLoopMs), [this](int signo) {
    switch (signo) {
      case SIGHUP:
        if (auto st = audit_->Reopen(); !st.ok()) spdlog::error("{}", std::string(st.message()));
        Reload();
        return true;
      case SIGTERM:
      case SIGINT:
        spdlog::info("{}: stopping", signo == SIGTERM ? "SIGTERM" : "SIGINT");
        return false;
      case SIGUSR1:
        LogDspStats("SIGUSR1");
        backend_->ResetDspStats();
        return true;
      default:
        return true;
    }
  });

  notify::Send("STOPPING=1\nSTATUS=stopping");
  LogDspStats("stopping");
  control_->Shutdown();
  backend_->Stop();
  engine_->Reclaim();
  DrainEvents();
  if (auto st = state_->Checkpoint(); !st.ok()) {
    spdlog::warn("state checkpoint: {}", std::string(st.message()));
  }
  if (!options_.stats_file.empty()) WriteStatsFile();
  spdlog::info("stopped");
  return kExitOk;
}

void Daemon::AuditLostEdits(std::optional<uint64_t> saved_graph_revision) {
  if (!saved_graph_revision) return;  // no state (or unreadable): nothing to compare
  const std::optional<uint64_t> audited = audit_->HighestAppliedRevision();
  if (!audited || *audited <= *saved_graph_revision) return;
  const std::string message = absl::StrCat(
      "the audit log shows changes applied up to revision ", *audited,
      ", but the state file held revision ", *saved_graph_revision,
      ": the daemon stopped after auditing them and before saving them; those changes are not "
      "in effect");
  spdlog::warn("{}", message);
  control::AuditRecord r;
  r.operation = "restart";
  r.target = state_->path();
  r.principal.kind = control::Principal::Kind::kInternal;
  r.principal.name = "aersd";
  r.result = absl::StatusCodeToString(absl::StatusCode::kDataLoss);
  r.message = message;
  r.revision_before = *audited;
  r.revision_after = engine_->revision();
  r.call_id = audit_->NextCallId();
  if (auto st = audit_->Write(std::move(r)); !st.ok()) {
    spdlog::error("{}", std::string(st.message()));
  }
}

void Daemon::Reload() {
  notify::Send(absl::StrCat("RELOADING=1\nMONOTONIC_USEC=", notify::MonotonicUsec(),
                            "\nSTATUS=reloading ", options_.config_path));
  spdlog::info("SIGHUP: reloading {}", options_.config_path);
  control::AuditRecord record;
  record.operation = "reload";
  record.target = options_.config_path;
  record.principal.kind = control::Principal::Kind::kInternal;
  record.principal.name = "SIGHUP";
  record.call_id = audit_->NextCallId();
  const uint64_t before = service_->revision();
  bool recorded = false;
  auto text = ReadConfigText();
  absl::StatusOr<config::Config> loaded =
      text.ok() ? config::ParseConfig(*text, options_.config_path, *kinds_, nullptr, &names_)
                : absl::StatusOr<config::Config>(text.status());
  absl::StatusOr<control::EditOutcome> applied =
      absl::FailedPreconditionError("not applied");  // replaced below
  if (!loaded.ok()) applied = loaded.status();
  if (loaded.ok()) {
    if (!(loaded->engine == config_.engine) || !(loaded->backend == config_.backend)) {
      spdlog::warn(
          "reload: the engine and backend sections changed; they take effect at the "
          "next start (the graph is reloaded now)");
    }
    // Through the control service: persisted, announced, serialized with
    // RPC edits, audited before anything changes. The reloaded file becomes
    // the live graph; edits persisted from now on derive from it.
    control::CallContext call;
    call.origin = "reload";
    call.before_commit = [&](const control::PendingCommit& p) {
      control::AuditRecord r = record;
      r.revision_before = p.revision_before;
      r.revision_after = p.revision_after;
      r.changes = p.changes;
      absl::Status st = audit_->Write(std::move(r));
      recorded = true;
      return st;
    };
    // Checked again after an edit ahead of it in the same batch could not
    // be built: the first record's follow-up (or, unwritable, the reload
    // is refused).
    call.before_retry = [&](const absl::Status& why) -> absl::Status {
      const uint64_t now = service_->revision();
      absl::Status st = audit_->Write(
          control::FollowUpRecord(record, why, /*recorded=*/true, std::nullopt, now, now));
      if (st.ok()) recorded = false;
      return st;
    };
    state_->set_baseline(Baseline(*text));
    // The config's graph taken up again, as at a start: start-up limits apply.
    for (const auto& change : model::ApplyStartupLimits(loaded->graph, *kinds_)) {
      spdlog::warn("start-up limit (reload): {}", change);
    }
    applied = service_->ApplyGraph(loaded->graph, false, std::nullopt, call);
    // Applied but not made durable (the state file diverged): it runs.
    const std::optional<uint64_t> runs =
        applied.ok() ? std::nullopt : control::AppliedRevision(applied.status());
    if (runs) {
      spdlog::error("reloaded: revision {}, but {}", *runs,
                    std::string(applied.status().message()));
      (void)audit_->WriteFollowUp(
          control::FollowUpRecord(record, applied.status(), recorded, runs, before, *runs));
      applied = control::EditOutcome{.revision = *runs, .applied = true};
    }
    if (applied.ok()) {
      baseline_ = Baseline(*text);
      config_.graph = std::move(loaded->graph);
      spdlog::info("reloaded: revision {}, {} nodes, {} routes", engine_->revision(),
                   config_.graph.nodes.size(), config_.graph.routes.size());
    } else {
      state_->set_baseline(baseline_);
    }
  }
  if (!applied.ok()) {
    LogLines(spdlog::level::err,
             absl::StrCat("reload rejected, the running graph is unchanged; ",
                          loaded.ok() ? "" : "invalid config ", options_.config_path, ":"),
             applied.status().message());
    // Refused before the write-ahead record, or after it (the engine or
    // the backend refused): either way a record says it did not happen.
    (void)audit_->WriteFollowUp(control::FollowUpRecord(record, applied.status(), recorded,
                                                        std::nullopt, before,
                                                        service_->revision()));  // nothing changed
  }
  control::Event e;
  e.type = control::Event::Type::kConfigReloaded;
  e.ok = applied.ok();
  if (!applied.ok()) e.text = std::string(applied.status().message());
  events_.Publish(std::move(e));
  notify::Send(absl::StrCat("READY=1\nSTATUS=", StatusLine()));
}

void Daemon::DrainEvents() {
  backend_->DrainEvents([this](const backend::BackendEvent& e) {
    switch (e.type) {
      case backend::BackendEvent::Type::kXrun: {
        spdlog::warn("xrun{} (worst delay {:.0f} us)",
                     e.count > 1 ? absl::StrCat(" x", e.count) : "", e.value);
        control::Event ev;
        ev.type = control::Event::Type::kXrun;
        ev.xruns_total = backend_->status().xruns;
        events_.Publish(std::move(ev));
        break;
      }
      case backend::BackendEvent::Type::kOverrun:
        spdlog::warn("DSP overran the period{} (worst {:.0f} us)",
                     e.count > 1 ? absl::StrCat(" x", e.count) : "", e.value);
        break;
    }
  });
  const uint64_t silent = engine_->runner().silent_cycles();
  if (silent != last_silent_cycles_) {
    spdlog::debug("{} periods of silence (no plan for this period size or channel count yet)",
                  silent - last_silent_cycles_);
    last_silent_cycles_ = silent;
  }
}

backend::BackendStatus Daemon::WithStall(backend::BackendStatus st) const {
  if (const auto stalled = stall_.stalled_for(StallWatch::Clock::now()); stalled && st.running) {
    st.running = false;
    st.detail = absl::StrFormat("stalled: no period for %.1f s (%s)",
                                std::chrono::duration<double>(*stalled).count(), st.detail);
  }
  return st;
}

std::string Daemon::StatusLine() const {
  const auto st = Status();
  const std::string graph =
      absl::StrCat(engine_->spec().nodes.size(), " nodes, revision ", engine_->revision());
  if (!st.running) return absl::StrCat(st.name, ": ", st.detail, "; ", graph);
  return absl::StrFormat("%s %.0f Hz, %u frames, %s, %u xruns, DSP %.1f%%", st.name,
                         st.sample_rate_hz, st.period_frames, graph, st.xruns, st.dsp_load_percent);
}

void Daemon::LogDspStats(std::string_view why) {
  const auto st = Status();
  spdlog::info(
      "{}: {}; DSP time per period over {} periods: mean {:.1f} us, p99 {:.1f} us, "
      "max {:.1f} us, {} over budget",
      why, StatusLine(), st.dsp.periods, st.dsp.mean_us, st.dsp.p99_us, st.dsp.max_us,
      st.dsp.over_budget);
}

void Daemon::WriteStatsFile() {
  const auto st = Status();
  nlohmann::ordered_json j;
  j["backend"] = st.name;
  j["running"] = st.running;
  j["detail"] = st.detail;
  j["sample_rate_hz"] = JsonNumber(st.sample_rate_hz);
  j["period_frames"] = st.period_frames;
  j["xruns"] = st.xruns;
  j["restarts"] = st.restarts;
  j["dsp_load_percent"] = JsonNumber(st.dsp_load_percent);
  if (st.name == "alsa") {
    j["alsa"] = {{"playback", st.playback_device},
                 {"capture", st.capture_device},
                 {"format", st.format},
                 {"periods", st.periods},
                 {"buffer_frames", st.buffer_frames},
                 {"delay_frames", st.delay_frames},
                 {"clipped_samples", st.clipped_samples}};
  }
  j["wake_jitter_us"] = {{"periods", st.wake_jitter.periods},
                         {"mean", JsonNumber(st.wake_jitter.mean_us)},
                         {"p99", JsonNumber(st.wake_jitter.p99_us)},
                         {"max", JsonNumber(st.wake_jitter.max_us)}};
  j["dsp_us"] = {{"periods", st.dsp.periods},
                 {"mean", JsonNumber(st.dsp.mean_us)},
                 {"p99", JsonNumber(st.dsp.p99_us)},
                 {"max", JsonNumber(st.dsp.max_us)},
                 {"over_budget", st.dsp.over_budget}};
  // When the counters below were read, so that a reader can compute rates
  // between two documents without caring when each was written.
  j["monotonic_s"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  j["graph"] = {{"revision", engine_->revision()},
                {"nodes", engine_->spec().nodes.size()},
                {"cycles", engine_->runner().cycles()},
                {"silent_cycles", engine_->runner().silent_cycles()}};
  auto& meters = j["meters"] = nlohmann::ordered_json::object();
  for (const std::string& name : engine_->MeterNodes()) {
    auto reading = engine_->ReadMeter(name);
    if (!reading.ok()) continue;
    auto& channels = meters[name] = nlohmann::ordered_json::array();
    for (const auto& ch : *reading) {
      channels.push_back(
          {{"peak", JsonNumber(static_cast<double>(ch.peak))},
           {"rms", JsonNumber(static_cast<double>(ch.rms))},
           {"true_peak_dbtp", JsonDb(20.0 * std::log10(static_cast<double>(ch.true_peak)))}});
    }
  }
  // EBU R128 per meter node; null for -inf (nothing measured).
  auto& loudness = j["loudness"] = nlohmann::ordered_json::object();
  for (const std::string& name : engine_->MeterNodes()) {
    auto l = engine_->ReadLoudness(name);
    if (!l.ok()) continue;
    loudness[name] = {{"momentary_lufs", JsonDb(static_cast<double>(l->momentary_lufs))},
                      {"short_term_lufs", JsonDb(static_cast<double>(l->short_term_lufs))},
                      {"integrated_lufs", JsonDb(static_cast<double>(l->integrated_lufs))},
                      {"loudness_range_lu", JsonNumber(static_cast<double>(l->range_lu))}};
  }
  const std::string text =
      j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  // A failure is logged when it starts, when its message changes and once
  // a minute while it lasts, not at every interval; and when it ends.
  const auto now = std::chrono::steady_clock::now();
  if (auto w = state::WriteFileAtomically(options_.stats_file, text, 0644); !w.ok()) {
    std::string message(w.message());
    if (message != stats_error_ || now - stats_error_logged_ >= std::chrono::minutes(1)) {
      spdlog::warn("cannot write stats file (logged once a minute while it lasts): {}", message);
      stats_error_ = std::move(message);
      stats_error_logged_ = now;
    }
  } else if (!stats_error_.empty()) {
    spdlog::info("stats file {} written again", options_.stats_file);
    stats_error_.clear();
  }
}

}  // namespace

int RunDaemon(const DaemonOptions& options) {
  // Signals are taken synchronously through a signalfd on this thread; the
  // mask is inherited by every thread started from here on (JACK's too).
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGUSR1);
  if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) {
    spdlog::error("cannot block signals");
    return 1;
  }
  // Two malloc arenas, not one per gRPC thread: with memory locked, pages an
  // arena touched stay resident, so many arenas would hold many copies of
  // the largest requests (measured: 32 concurrent 2-8 MiB requests left
  // 127 MiB resident with the default, 76 MiB with 2). The audio thread
  // never allocates, so contention costs nothing there.
  mallopt(M_ARENA_MAX, 2);
  // A write to a socket whose peer died (a JACK server gone) must fail with
  // EPIPE, not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  const int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    spdlog::error("signalfd: {}", std::strerror(errno));
    return 1;
  }
#if !defined(__has_feature)
#define AERS_HAS_FEATURE(x) 0
#else
#define AERS_HAS_FEATURE(x) __has_feature(x)
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
    AERS_HAS_FEATURE(address_sanitizer) || AERS_HAS_FEATURE(thread_sanitizer)
  // Sanitizer shadow memory is terabytes of reserved address space.
  const bool sanitized = true;
#else
  const bool sanitized = false;
#endif
  if (options.mlock && sanitized) {
    spdlog::info("sanitizer build: not locking memory (mlockall)");
  } else if (options.mlock) {
    // MCL_ONFAULT: lock pages as they are touched rather than populating
    // every mapping up front (gRPC's and JACK's thread stacks would otherwise
    // cost ~8 MiB of resident memory each). The audio path touches its memory
    // before use (plans zero their buffers when compiled), so nothing it
    // needs can be paged out.
#ifdef MCL_ONFAULT
    constexpr int kLockFlags = MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT;
#else
    constexpr int kLockFlags = MCL_CURRENT | MCL_FUTURE;
#endif
    if (mlockall(kLockFlags) == 0) {
      spdlog::debug("memory locked (mlockall)");
    } else {
      spdlog::warn(
          "mlockall not permitted ({}): pages may be swapped out; raise "
          "LimitMEMLOCK / memlock or run with CAP_IPC_LOCK",
          std::strerror(errno));
    }
  }
  int code = 0;
  {
    Daemon d(options, sfd);
    code = d.Run();
  }
  close(sfd);
  return code;
}

}  // namespace aers::daemon
