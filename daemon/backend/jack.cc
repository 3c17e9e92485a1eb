#include "backend/jack.h"

#include <jack/statistics.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/naming.h"
#include "rt/denormals.h"
#include "rt/hooks.h"
#include "rt/thread_role.h"
#include "spdlog/spdlog.h"

namespace aers::backend {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);
// How long a shut-down client's notification thread is given to end
// before the client is closed (AwaitNotificationThreadExit).
constexpr auto kNotificationExitWait = std::chrono::milliseconds(3000);
constexpr int kPollMs = 250;  // supervisor tick while connected (cpu load sampling)

// libjack's error and info hooks must not log from JACK's process thread
// (marked in its first period).
void JackErrorHook(const char* msg) {
  if (rt::OnAudioThread()) return;  // never log on the audio thread
  spdlog::debug("libjack: {}", msg);
}

void JackInfoHook(const char* msg) {
  if (rt::OnAudioThread()) return;
  spdlog::trace("libjack: {}", msg);
}

std::string StatusText(jack_status_t s) {
  std::string out;
  auto add = [&](jack_status_t bit, const char* text) {
    if (s & bit) absl::StrAppend(&out, out.empty() ? "" : ", ", text);
  };
  add(JackFailure, "failure");
  add(JackInvalidOption, "invalid option");
  add(JackNameNotUnique, "name not unique");
  add(JackServerFailed, "no server answered");
  add(JackServerError, "server error");
  add(JackNoSuchClient, "no such client");
  add(JackLoadFailure, "load failure");
  add(JackInitFailure, "init failure");
  add(JackShmFailure, "shared memory failure");
  add(JackVersionError, "protocol version mismatch");
  add(JackBackendError, "backend error");
  add(JackClientZombie, "client zombified");
  return out.empty() ? "unknown" : out;
}

std::string ServerLabel(const std::string& name) {
  if (!name.empty()) return name;
  if (const char* env = std::getenv("JACK_DEFAULT_SERVER"); env && *env) return env;
  return "default";
}

}  // namespace

/// Our ports and the graph's latency between port groups, as the latency
/// callback needs them (a copy: it runs on JACK's notification thread).
struct JackBackend::LatencyView {
  std::vector<std::pair<jack_port_t*, size_t>> inputs;       // port, input group
  std::vector<std::pair<jack_port_t*, size_t>> outputs;      // port, output group
  std::vector<std::vector<std::optional<uint32_t>>> frames;  // [input group][output group]
  bool operator==(const LatencyView&) const = default;
};

JackBackend::JackBackend(engine::Engine& engine, JackOptions options)
    : engine_(engine), options_(std::move(options)) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  jack_set_error_function(JackErrorHook);
  jack_set_info_function(JackInfoHook);
  SetDetail(absl::StrCat("waiting for JACK server '", ServerLabel(options_.server_name), "'"));
}

JackBackend::~JackBackend() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void JackBackend::Wake() {
  const uint64_t one = 1;
  // Async-signal-safe; a full counter (cannot happen) would only drop a wake-up.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

absl::Status JackBackend::Start() {
  engine_.SetPortHost(this);  // before mu_: an edit takes the engine's lock first
  absl::MutexLock lock(&mu_);
  if (supervisor_.joinable()) return absl::OkStatus();
  stop_.store(false);
  absl::Status st = OpenLocked();
  if (!st.ok()) {
    if (!options_.wait_for_server) {
      engine_.ClearPortHost(this);
      return st;
    }
    spdlog::warn("JACK: {}; retrying in the background", std::string(st.message()));
  }
  supervisor_ = std::thread([this] { Supervise(); });
  pthread_setname_np(supervisor_.native_handle(), "aers-jack-sup");
  return absl::OkStatus();
}

void JackBackend::Stop() {
  engine_.ClearPortHost(this);
  if (supervisor_.joinable()) {
    stop_.store(true);
    Wake();
    supervisor_.join();
  }
  for (;;) {
    if (lost_.load()) AwaitNotificationThreadExit();
    absl::MutexLock lock(&mu_);
    // Lost after the check above: wait for that thread first, too.
    if (lost_.load() && client_ != nullptr && !notify_awaited_.load()) continue;
    CloseLocked(lost_.exchange(false));
    return;
  }
}

absl::Status JackBackend::OpenLocked() {
  if (client_ != nullptr) return absl::OkStatus();
  notify_tid_.store(0);
  notify_awaited_.store(false);
  jack_status_t status{};
  const auto flags = static_cast<jack_options_t>(
      JackNoStartServer | (options_.server_name.empty() ? 0 : JackServerName));
  jack_client_t* c = options_.server_name.empty()
                         ? jack_client_open(options_.client_name.c_str(), flags, &status)
                         : jack_client_open(options_.client_name.c_str(), flags, &status,
                                            options_.server_name.c_str());
  if (c == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot connect to JACK server '",
                                               ServerLabel(options_.server_name), "' (",
                                               StatusText(status), ")"));
  }
  client_ = c;
  SetDetail(absl::StrCat("server '", ServerLabel(options_.server_name), "', client '",
                         jack_get_client_name(c), "'"));
  lost_.store(false);
  client_name_ = jack_get_client_name(c);
  if (client_name_ != options_.client_name) {
    spdlog::warn("JACK: client name '{}' is taken; registered as '{}'", options_.client_name,
                 client_name_);
  }
  // Before the callbacks: jack2 calls the sample-rate callback at once.
  const double rate = jack_get_sample_rate(c);
  const uint32_t period = jack_get_buffer_size(c);
  sample_rate_hz_.store(rate);
  period_frames_.store(period);
  ns_per_frame_.store(1e9 / rate);
  callback_client_.store(c, std::memory_order_release);
  jack_set_process_callback(c, &JackBackend::OnProcess, this);
  jack_set_xrun_callback(c, &JackBackend::OnXrun, this);
  jack_set_buffer_size_callback(c, &JackBackend::OnBufferSize, this);
  jack_set_sample_rate_callback(c, &JackBackend::OnSampleRate, this);
  jack_set_latency_callback(c, &JackBackend::OnLatency, this);
  jack_set_port_registration_callback(c, &JackBackend::OnPortRegistration, this);
  jack_set_graph_order_callback(c, &JackBackend::OnGraphOrder, this);
  jack_on_info_shutdown(c, &JackBackend::OnShutdown, this);

  absl::Status st = engine_.SetFormat({rate, period});
  const model::GraphSpec spec = engine_.spec();
  if (st.ok()) {
    std::vector<jack_port_t*> added;
    auto table = MakePortTableLocked(spec, added);
    if (table.ok()) {
      table_ = std::move(*table);
      rt_.table = table_.get();  // inactive: the audio thread is not running
    } else {
      st = table.status();
    }
  }
  if (st.ok() && jack_activate(c) != 0) st = absl::InternalError("jack_activate failed");
  if (!st.ok()) {
    CloseLocked(false);
    return st;
  }
  running_.store(true);
  desired_ = DesiredConnectionsLocked(spec);
  waiting_logged_.clear();
  EnsureConnectionsLocked();
  UpdateLatencyLocked(spec);
  if (ever_opened_) restarts_.fetch_add(1);
  ever_opened_ = true;
  spdlog::info(
      "JACK: client '{}' on server '{}' at {} Hz, {} frames per period; {} input and "
      "{} output ports",
      client_name_, ServerLabel(options_.server_name), rate, period, table_->in.size(),
      table_->out.size());
  return absl::OkStatus();
}

void JackBackend::CloseLocked(bool server_dead) {
  if (client_ == nullptr) return;
  running_.store(false);
  {
    absl::MutexLock lock(&latency_mu_);
    latency_.reset();
  }
  if (!server_dead) jack_deactivate(client_);
  // After a shutdown the client is a zombie: closing frees its side only.
  jack_client_close(client_);  // no callback runs after this returns
  callback_client_.store(nullptr, std::memory_order_release);
  client_ = nullptr;
  SetDetail(absl::StrCat("waiting for JACK server '", ServerLabel(options_.server_name), "'"));
  // No process callback runs any more: every table is ours again.
  delete pending_table_.exchange(nullptr);
  delete retired_table_.exchange(nullptr);
  rt_.table = nullptr;
  table_.reset();
}

absl::StatusOr<std::unique_ptr<JackBackend::PortTable>> JackBackend::MakePortTableLocked(
    const model::GraphSpec& spec, std::vector<jack_port_t*>& added) {
  auto table = std::make_unique<PortTable>();
  table->layout = model::IoLayoutId(spec);
  // Read under mu_ here: the lambdas below are not checked as holding it.
  jack_client_t* const client = client_;
  const PortTable* const current = table_.get();
  const std::string client_name = client_name_;
  auto fail = [&](absl::Status st) {
    for (jack_port_t* p : added) jack_port_unregister(client, p);
    added.clear();
    return st;
  };
  auto take = [&](const model::ExternalPort& p, unsigned long flags,
                  std::vector<jack_port_t*>& into) -> absl::Status {
    for (int ch = 0; ch < p.channels; ++ch) {
      const std::string name = model::BackendPortName(p, ch);
      jack_port_t* port = nullptr;
      if (current != nullptr) {
        const auto& mine = (flags & JackPortIsInput) ? current->in : current->out;
        for (jack_port_t* q : mine) {
          if (jack_port_short_name(q) == name) port = q;
        }
      }
      if (port == nullptr) {
        port = jack_port_register(client, name.c_str(), JACK_DEFAULT_AUDIO_TYPE, flags, 0);
        if (port == nullptr) {
          return absl::InternalError(
              absl::StrCat("cannot register JACK port '", client_name, ":", name, "'"));
        }
        added.push_back(port);
      }
      into.push_back(port);
    }
    return absl::OkStatus();
  };
  for (const auto& p : spec.inputs) {
    if (auto st = take(p, JackPortIsInput, table->in); !st.ok()) return fail(st);
  }
  for (const auto& p : spec.outputs) {
    if (auto st = take(p, JackPortIsOutput, table->out); !st.ok()) return fail(st);
  }
  // Sized here: the audio thread only fills them.
  table->in_buf.assign(table->in.size(), nullptr);
  table->out_buf.assign(table->out.size(), nullptr);
  return table;
}

std::vector<JackBackend::Connection> JackBackend::DesiredConnectionsLocked(
    const model::GraphSpec& spec) const {
  std::vector<Connection> out;
  for (const auto& p : spec.inputs) {
    for (size_t ch = 0; ch < p.connect.size() && ch < static_cast<size_t>(p.channels); ++ch) {
      if (p.connect[ch].empty()) continue;
      out.emplace_back(
          p.connect[ch],
          absl::StrCat(client_name_, ":", model::BackendPortName(p, static_cast<int>(ch))));
    }
  }
  for (const auto& p : spec.outputs) {
    for (size_t ch = 0; ch < p.connect.size() && ch < static_cast<size_t>(p.channels); ++ch) {
      if (p.connect[ch].empty()) continue;
      out.emplace_back(
          absl::StrCat(client_name_, ":", model::BackendPortName(p, static_cast<int>(ch))),
          p.connect[ch]);
    }
  }
  return out;
}

void JackBackend::EnsureConnectionsLocked() {
  if (client_ == nullptr || lost_.load()) return;
  for (const auto& [src, dst] : desired_) {
    jack_port_t* s = jack_port_by_name(client_, src.c_str());
    jack_port_t* d = jack_port_by_name(client_, dst.c_str());
    if (s == nullptr || d == nullptr) {
      const std::string& missing = s == nullptr ? src : dst;
      if (waiting_logged_.insert(missing).second) {
        spdlog::info(
            "JACK: port '{}' does not exist (yet); will connect {} -> {} when it "
            "appears",
            missing, src, dst);
      }
      continue;
    }
    if (jack_port_connected_to(s, dst.c_str())) continue;
    const int err = jack_connect(client_, src.c_str(), dst.c_str());
    if (err == 0 || err == EEXIST) {
      spdlog::info("JACK: connected {} -> {}", src, dst);
      waiting_logged_.erase(src);
      waiting_logged_.erase(dst);
    } else {
      spdlog::warn("JACK: cannot connect {} -> {} (error {})", src, dst, err);
    }
  }
}

void JackBackend::UpdateLatencyLocked(const model::GraphSpec& spec) {
  if (client_ == nullptr || !table_) return;
  auto view = std::make_unique<LatencyView>();
  size_t i = 0;
  for (size_t g = 0; g < spec.inputs.size(); ++g) {
    for (int ch = 0; ch < spec.inputs[g].channels && i < table_->in.size(); ++ch) {
      view->inputs.emplace_back(table_->in[i++], g);
    }
  }
  i = 0;
  for (size_t g = 0; g < spec.outputs.size(); ++g) {
    for (int ch = 0; ch < spec.outputs[g].channels && i < table_->out.size(); ++ch) {
      view->outputs.emplace_back(table_->out[i++], g);
    }
  }
  view->frames.resize(spec.inputs.size());
  for (size_t a = 0; a < spec.inputs.size(); ++a) {
    for (const auto& out : spec.outputs) {
      view->frames[a].push_back(engine_.LatencyFrames(spec.inputs[a].name, out.name));
    }
  }
  {
    absl::MutexLock lock(&latency_mu_);
    // Most edits (a parameter, a route inside the graph) leave every port's
    // latency as it was: the server is not asked to recompute (a round trip
    // to jackd, 0.3 to 2 ms, that every SetParameter paid).
    if (latency_ != nullptr && *latency_ == *view) return;
    latency_ = std::move(view);
  }
  jack_recompute_total_latencies(client_);
}

// Holds mu_ from ChangePorts() until the engine has published the plan and
// called Finish(): the supervisor cannot reopen or close the client in
// between, so the table made for the new ports is the one the plan gets.
class JackBackend::PortChange final : public engine::PortHost::Change {
 public:
  explicit PortChange(JackBackend& backend) ABSL_NO_THREAD_SAFETY_ANALYSIS : b_(backend) {
    b_.mu_.Lock();
  }
  ~PortChange() override ABSL_NO_THREAD_SAFETY_ANALYSIS { b_.mu_.Unlock(); }
  void Finish(bool published) override {
    b_.mu_.AssertHeld();
    b_.FinishPortChangeLocked(*this, published);
  }

  PortTable* next = nullptr;        // published as pending_table_; null: no client now
  std::vector<jack_port_t*> added;  // registered for `next`

 private:
  JackBackend& b_;
};

absl::StatusOr<std::unique_ptr<engine::PortHost::Change>> JackBackend::ChangePorts(
    const model::GraphSpec& next) {
  auto change = std::make_unique<PortChange>(*this);
  mu_.AssertHeld();
  // No server (or it just went away): the supervisor registers the graph's
  // ports when it (re)opens the client.
  if (client_ == nullptr || lost_.load() || !table_) return change;
  auto made = MakePortTableLocked(next, change->added);
  if (!made.ok()) return made.status();
  change->next = made->release();
  // Published before the plan that needs it, so both switch in one period.
  pending_table_.store(change->next, std::memory_order_release);
  return change;
}

void JackBackend::FinishPortChangeLocked(PortChange& change, bool published) {
  if (change.next == nullptr) return;
  if (!published) {
    // No plan with the new layout was published: the audio thread cannot
    // have adopted the table.
    delete pending_table_.exchange(nullptr, std::memory_order_acq_rel);
    for (jack_port_t* p : change.added) jack_port_unregister(client_, p);
    return;
  }
  SwapTableLocked(change.next, change.added.size());
}

void JackBackend::SwapTableLocked(PortTable* next, size_t added) {
  // Wait for the audio thread to adopt the table with the plan. If it does
  // not run periods (server stalled), swap with the client deactivated.
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  uint64_t cycles = engine_.runner().cycles();
  auto last_progress = Clock::now();
  while (pending_table_.load(std::memory_order_acquire) != nullptr && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    const uint64_t c = engine_.runner().cycles();
    if (c != cycles) {
      cycles = c;
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > std::chrono::milliseconds(100)) {
      break;
    }
  }
  PortTable* old = nullptr;
  if (pending_table_.load(std::memory_order_acquire) == nullptr) {
    old = retired_table_.exchange(nullptr, std::memory_order_acq_rel);
  } else {
    spdlog::warn(
        "JACK: the process thread does not run; switching ports with the client "
        "deactivated");
    jack_deactivate(client_);
    running_.store(false);
    PortTable* p = pending_table_.exchange(nullptr, std::memory_order_acq_rel);
    if (p == nullptr) {  // adopted just now
      old = retired_table_.exchange(nullptr, std::memory_order_acq_rel);
    } else {
      old = rt_.table;
      rt_.table = p;
    }
    if (jack_activate(client_) == 0) running_.store(true);
  }
  // The audio thread handed back the table it used (table_) and no longer
  // touches it: unregister only the ports that went away.
  assert(old == table_.get());
  (void)old;
  {
    absl::MutexLock latency_lock(&latency_mu_);
    latency_.reset();  // it points at ports; rebuilt by UpdateLatencyLocked
  }
  std::unique_ptr<PortTable> previous = std::move(table_);
  table_.reset(next);
  size_t removed = 0;
  for (const auto* ports : {&previous->in, &previous->out}) {
    const auto& keep = (ports == &previous->in) ? next->in : next->out;
    for (jack_port_t* p : *ports) {
      if (std::find(keep.begin(), keep.end(), p) == keep.end()) {
        jack_port_unregister(client_, p);
        ++removed;
      }
    }
  }
  spdlog::info("JACK: external ports changed: {} registered, {} unregistered, the others kept",
               added, removed);
}

void JackBackend::GraphChanged(const model::GraphSpec& current) {
  absl::MutexLock lock(&mu_);
  if (client_ == nullptr || lost_.load() || !table_) return;
  if (table_->layout != model::IoLayoutId(current)) {
    // The client was (re)opened with the previous graph's ports while the
    // edit ran: the plan already has the new layout, so the audio thread
    // adopts a table made now at its next period (silence until then).
    std::vector<jack_port_t*> added;
    auto made = MakePortTableLocked(current, added);
    if (!made.ok()) {
      spdlog::error("JACK: cannot register the ports of the new graph: {}",
                    std::string(made.status().message()));
    } else {
      PortTable* next = made->release();
      pending_table_.store(next, std::memory_order_release);
      SwapTableLocked(next, added.size());
    }
  }
  // Connections follow the config: drop the ones it no longer lists.
  const auto next = DesiredConnectionsLocked(current);
  for (const auto& c : desired_) {
    if (std::find(next.begin(), next.end(), c) != next.end()) continue;
    if (jack_disconnect(client_, c.first.c_str(), c.second.c_str()) == 0) {
      spdlog::info("JACK: disconnected {} -> {} (no longer in the config)", c.first, c.second);
    }
  }
  // Ports still missing are logged once per change of the config's
  // connections, not once per edit.
  if (next != desired_) waiting_logged_.clear();
  desired_ = next;
  EnsureConnectionsLocked();
  UpdateLatencyLocked(current);
}

void JackBackend::Supervise() {
  auto backoff = kFirstBackoff;
  auto next_try = Clock::now() + backoff;
  bool waiting_logged = false;
  while (!stop_.load()) {
    int timeout_ms = kPollMs;
    {
      absl::MutexLock lock(&mu_);
      if (client_ == nullptr) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(next_try - Clock::now());
        timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, kPollMs));
      }
    }
    pollfd pfd{wake_fd_, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) > 0) {
      uint64_t n = 0;
      [[maybe_unused]] ssize_t r = read(wake_fd_, &n, sizeof(n));
    }
    if (stop_.load()) break;
    if (lost_.load()) AwaitNotificationThreadExit();

    absl::MutexLock lock(&mu_);
    if (lost_.load() && client_ != nullptr && !notify_awaited_.load()) {
      // Lost while this thread waited for mu_ (an edit held it): the wait
      // for the notification thread comes first, without mu_.
      Wake();
      continue;
    }
    if (lost_.exchange(false)) {
      if (client_ != nullptr) {
        spdlog::warn(
            "JACK: server '{}' shut our client down ({}); audio stopped, will "
            "reconnect when it is back",
            ServerLabel(options_.server_name),
            shutdown_reason_[0] ? shutdown_reason_ : "no reason given");
        CloseLocked(true);
      }
      backoff = kFirstBackoff;
      next_try = Clock::now() + backoff;
      waiting_logged = false;
      continue;
    }
    if (client_ == nullptr) {
      if (Clock::now() < next_try) continue;
      absl::Status st = OpenLocked();
      if (st.ok()) {
        backoff = kFirstBackoff;
        waiting_logged = false;
        if (restarts_.load() > 0) spdlog::info("JACK: reconnected; audio flows again");
      } else {
        if (!waiting_logged) {
          spdlog::info("JACK: {}; retrying every {} ms at most", std::string(st.message()),
                       kMaxBackoff.count());
          waiting_logged = true;
        } else {
          spdlog::debug("JACK: {}; next try in {} ms", std::string(st.message()), backoff.count());
        }
        next_try = Clock::now() + backoff;
        backoff = std::min(backoff * 2, kMaxBackoff);
      }
      continue;
    }
    if (reconnect_.exchange(false)) EnsureConnectionsLocked();
    cpu_load_.store(jack_cpu_load(client_));
  }
}

void JackBackend::SetDetail(std::string detail) {
  absl::MutexLock lock(&detail_mu_);
  detail_ = std::move(detail);
}

BackendStatus JackBackend::status() const {
  BackendStatus s;
  s.name = "jack";
  s.running = running_.load();
  s.sample_rate_hz = sample_rate_hz_.load();
  s.period_frames = period_frames_.load();
  s.xruns = xruns_.load();
  s.dsp_load_percent = static_cast<double>(cpu_load_.load());
  s.dsp = timer_.Read();
  s.restarts = restarts_.load();
  // Not under mu_: status (health, the watchdog ping, GetStatus) never
  // waits for a port change or a call to the server.
  absl::MutexLock lock(&detail_mu_);
  s.detail = detail_;
  return s;
}

void JackBackend::DrainEvents(const std::function<void(const BackendEvent&)>& sink) {
  absl::MutexLock lock(&drain_mu_);
  for (auto* ring : {&xrun_events_, &rt_events_}) {
    DrainFolded(*ring, sink);
  }
}

// --- JACK callbacks ---------------------------------------------------------

/// Audio thread. Wait-free: port buffer lookups, two clock reads (vDSO),
/// Runner::Process, relaxed atomics and a ring push. No locks, no allocation.
int JackBackend::OnProcess(jack_nframes_t frames, void* arg) {
  auto* self = static_cast<JackBackend*>(arg);
  if (!rt::OnAudioThread()) [[unlikely]] {
    // The first period. Not in a thread-init callback: jack2 runs that on
    // its notification thread too (on the client's activation).
    rt::MarkAudioThread();
    rt::EnableFlushToZero();
  }
  auto& rt = self->rt_;
  const uint64_t t0 = DspTimer::NowNs();
  rt::EnterAudioPeriod();
  const uint64_t layout = self->engine_.runner().PreparePeriod();
  PortTable* t = rt.table;
  if (t == nullptr || t->layout != layout) {
    // The ports of a new layout come with its plan (ChangePorts, SwapTableLocked).
    PortTable* p = self->pending_table_.load(std::memory_order_acquire);
    if (p != nullptr && p->layout == layout &&
        self->retired_table_.load(std::memory_order_relaxed) == nullptr) {
      self->retired_table_.store(t, std::memory_order_release);
      self->pending_table_.store(nullptr, std::memory_order_release);
      rt.table = t = p;
    }
  }
  if (t != nullptr) {
    for (size_t i = 0; i < t->in.size(); ++i) {
      t->in_buf[i] = static_cast<const float*>(jack_port_get_buffer(t->in[i], frames));
    }
    for (size_t i = 0; i < t->out.size(); ++i) {
      t->out_buf[i] = static_cast<float*>(jack_port_get_buffer(t->out[i], frames));
    }
    if (t->layout == layout) {
      self->engine_.runner().RunPrepared(t->in_buf.data(), static_cast<uint32_t>(t->in.size()),
                                         t->out_buf.data(), static_cast<uint32_t>(t->out.size()),
                                         frames);
    } else {
      self->engine_.runner().RunSilent(t->out_buf.data(), static_cast<uint32_t>(t->out.size()),
                                       frames);
    }
  }
  rt::LeaveAudioPeriod();
  const uint64_t t1 = DspTimer::NowNs();
  const auto budget_ns = static_cast<uint64_t>(static_cast<double>(frames) *
                                               self->ns_per_frame_.load(std::memory_order_relaxed));
  if (self->timer_.Record(t1 - t0, budget_ns)) {
    self->rt_events_.TryPush({BackendEvent::Type::kOverrun, static_cast<double>(t1 - t0) / 1e3, 1});
  }
  return 0;
}

void JackBackend::AwaitNotificationThreadExit() {
  const pid_t tid = notify_tid_.load();
  // tid 0: no callback ran there yet, nothing known to wait for.
  const auto deadline = Clock::now() + kNotificationExitWait;
  while (tid != 0) {
    // Signal 0 to a thread of ours: ESRCH once it has ended.
    if (syscall(SYS_tgkill, getpid(), tid, 0) != 0 && errno == ESRCH) break;
    if (Clock::now() >= deadline) {
      // The server shut only our client down and still runs: the thread
      // waits on its socket, where a cancel leaves nothing locked.
      spdlog::debug("JACK: the notification thread still runs {} ms after the shutdown",
                    kNotificationExitWait.count());
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  notify_awaited_.store(true);
}

void JackBackend::NoteNotificationThread(JackBackend* self) {
  if (rt::OnAudioThread()) return;
  jack_client_t* client = self->callback_client_.load(std::memory_order_acquire);
  if (client != nullptr && pthread_equal(pthread_self(), jack_client_thread_id(client))) return;
  self->notify_tid_.store(gettid());
}

/// JACK's notification thread, after each change of the server's graph.
int JackBackend::OnGraphOrder(void* arg) {
  NoteNotificationThread(static_cast<JackBackend*>(arg));
  return 0;
}

/// JACK's notification thread (jack2: not the audio thread). Wait-free.
int JackBackend::OnXrun(void* arg) {
  auto* self = static_cast<JackBackend*>(arg);
  NoteNotificationThread(self);
  self->xruns_.fetch_add(1, std::memory_order_relaxed);
  // Not client_ (mu_ guards it): the client this callback was registered on.
  jack_client_t* client = self->callback_client_.load(std::memory_order_acquire);
  const float delay_us = client != nullptr ? jack_get_xrun_delayed_usecs(client) : 0.0f;
  self->xrun_events_.TryPush({BackendEvent::Type::kXrun, static_cast<double>(delay_us), 1});
  return 0;
}

/// JACK2 calls this on the process thread, between periods (no process
/// callback runs until it returns), or on the notification thread. Recompiles
/// the plan for the new period; the audio thread adopts it at its next
/// period (JACK waits for this callback before it runs a period of the new
/// size).
int JackBackend::OnBufferSize(jack_nframes_t frames, void* arg) {
  auto* self = static_cast<JackBackend*>(arg);
  rt::NotAudioThreadScope between_periods;
  if (frames == self->period_frames_.load()) return 0;
  self->period_frames_.store(frames);
  auto st = self->engine_.SetFormat({self->sample_rate_hz_.load(), frames});
  if (st.ok()) {
    spdlog::info("JACK: period is now {} frames", frames);
  } else {
    spdlog::error("JACK: cannot follow the new period of {} frames: {}", frames,
                  std::string(st.message()));
  }
  return st.ok() ? 0 : 1;
}

/// JACK's notification thread (or, like the buffer-size callback, the
/// process thread between periods).
int JackBackend::OnSampleRate(jack_nframes_t rate, void* arg) {
  auto* self = static_cast<JackBackend*>(arg);
  rt::NotAudioThreadScope between_periods;
  if (static_cast<double>(rate) == self->sample_rate_hz_.load()) return 0;
  self->sample_rate_hz_.store(rate);
  self->ns_per_frame_.store(1e9 / rate);
  auto st = self->engine_.SetFormat({static_cast<double>(rate), self->period_frames_.load()});
  if (st.ok()) {
    spdlog::info("JACK: sample rate is now {} Hz", rate);
  } else {
    spdlog::error("JACK: cannot follow the new sample rate of {} Hz: {}", rate,
                  std::string(st.message()));
  }
  return st.ok() ? 0 : 1;
}

/// JACK's notification thread. Capture latency of an output = its sources'
/// capture latency + the graph's; playback latency of an input = its
/// destinations' playback latency + the graph's.
void JackBackend::OnLatency(jack_latency_callback_mode_t mode, void* arg) {
  auto* self = static_cast<JackBackend*>(arg);
  absl::MutexLock lock(&self->latency_mu_);
  const LatencyView* v = self->latency_.get();
  if (v == nullptr) return;
  auto merge = [](std::optional<jack_latency_range_t>& acc, jack_latency_range_t r, uint32_t add) {
    r.min += add;
    r.max += add;
    if (!acc) {
      acc = r;
    } else {
      acc->min = std::min(acc->min, r.min);
      acc->max = std::max(acc->max, r.max);
    }
  };
  if (mode == JackCaptureLatency) {
    for (const auto& [out, og] : v->outputs) {
      std::optional<jack_latency_range_t> acc;
      for (const auto& [in, ig] : v->inputs) {
        const auto frames = v->frames[ig][og];
        if (!frames) continue;
        jack_latency_range_t r{};
        jack_port_get_latency_range(in, JackCaptureLatency, &r);
        merge(acc, r, *frames);
      }
      jack_latency_range_t r = acc.value_or(jack_latency_range_t{0, 0});
      jack_port_set_latency_range(out, JackCaptureLatency, &r);
    }
  } else {
    for (const auto& [in, ig] : v->inputs) {
      std::optional<jack_latency_range_t> acc;
      for (const auto& [out, og] : v->outputs) {
        const auto frames = v->frames[ig][og];
        if (!frames) continue;
        jack_latency_range_t r{};
        jack_port_get_latency_range(out, JackPlaybackLatency, &r);
        merge(acc, r, *frames);
      }
      jack_latency_range_t r = acc.value_or(jack_latency_range_t{0, 0});
      jack_port_set_latency_range(in, JackPlaybackLatency, &r);
    }
  }
}

/// JACK's notification thread. A port came or went: the supervisor
/// re-establishes configured connections (JACK forbids connecting from here).
void JackBackend::OnPortRegistration(jack_port_id_t, int registered, void* arg) {
  auto* self = static_cast<JackBackend*>(arg);
  NoteNotificationThread(self);
  if (!registered) return;
  self->reconnect_.store(true);
  self->Wake();
}

/// Any thread, like a signal handler: only async-signal-safe work.
void JackBackend::OnShutdown(jack_status_t, const char* reason, void* arg) {
  auto* self = static_cast<JackBackend*>(arg);
  // Called on the process thread (it saw the server stop) or on the
  // notification thread (it saw the socket end).
  NoteNotificationThread(self);
  size_t i = 0;
  for (; reason != nullptr && reason[i] != '\0' && i + 1 < sizeof(self->shutdown_reason_); ++i) {
    self->shutdown_reason_[i] = reason[i];
  }
  self->shutdown_reason_[i] = '\0';
  self->running_.store(false);
  self->lost_.store(true);
  self->Wake();
}

}  // namespace aers::backend
