// LV2 hosting behind the gate: the manifest's plugin URIs become node kinds
// "<plugin>/<kind>", read by lilv from the verified store copy of the bundle
// only (plugin/loader.h, "LV2").
//
// Channels: as for LADSPA. A plugin with one audio input and one audio
// output runs one instance per channel of the node, all with the same control
// values; a plugin with k > 1 audio inputs and k outputs is one instance and
// the node is exactly k channels wide. Other audio layouts are refused.
//
// Ports: every port is connected. Control inputs become parameters (named
// after the port symbol, lowercase): range and default from the plugin,
// lv2:toggled -> flag, lv2:integer -> integer, lv2:enumeration with scale
// points -> a choice of the point labels, lv2:sampleRate -> bounds scaled by
// the stream's rate (model::ParamDesc::At), units:unit -> the unit. Control
// outputs are read by the plugin's own meters only; the one designated
// lv2:latency (or lv2:reportsLatency) is read after a priming run, as the
// instance's latency. CV ports get zeroed buffers of the largest period;
// atom ports get sequence buffers (an empty sequence in, capacity out, reset
// every period). A port of another type is refused unless it is
// lv2:connectionOptional (then connected to NULL).
//
// Features offered (a plugin requiring any other is refused with its URI):
// urid:map, urid:unmap, options (buf-size min/max/nominal block length,
// param:sampleRate), buf-size:boundedBlockLength, worker:schedule, log:log,
// state:loadDefaultState, lv2:inPlaceBroken (inputs and outputs never
// alias), lv2:isLive, lv2:hardRTCapable.
//
// Threads: Instantiate (lilv instantiate, state restore, activate) and the
// destructor (deactivate, cleanup) run on the caller's non-real-time thread;
// Process() on the audio thread; each instance set has one service thread
// "aers-lv2-svc" that runs worker requests, prints the plugin's log lines
// and saves its state (state:interface) every second when it changed. The
// lilv world is used under Lv2Host::mu_ only (lilv is not thread-safe).
#include "plugin/kinds.h"

#if defined(AERS_HAVE_LV2)
#include <fcntl.h>
#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/options/options.h>
#include <lv2/parameters/parameters.h>
#include <lv2/port-props/port-props.h>
#include <lv2/presets/presets.h>
#include <lv2/resize-port/resize-port.h>
#include <lv2/state/state.h>
#include <lv2/units/units.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "plugin/param_mailbox.h"
#include "rt/denormals.h"
#include "rt/ring.h"
#include "spdlog/spdlog.h"

namespace aers::plugin {
namespace {

constexpr uint32_t kAtomCapacity = 8192;  // bytes per atom port buffer (at least)
constexpr size_t kMaxScalePoints = 64;    // more become a plain number
constexpr size_t kWorkBytes = 240;        // largest worker message
constexpr auto kSavePeriod = std::chrono::seconds(1);
constexpr const char* kStateUri = "urn:aers:lv2-state";

// Whether the calling thread is inside an LV2 run() of ours (the audio
// thread). Worker and log calls made outside run() are handled at once.
thread_local bool t_in_run = false;

struct UniqueNode {
  LilvNode* n = nullptr;
  explicit UniqueNode(LilvNode* node = nullptr) : n(node) {}
  ~UniqueNode() {
    if (n != nullptr) lilv_node_free(n);
  }
  UniqueNode(const UniqueNode&) = delete;
  UniqueNode& operator=(const UniqueNode&) = delete;
  UniqueNode(UniqueNode&& o) noexcept : n(std::exchange(o.n, nullptr)) {}
};

std::string NodeString(const LilvNode* n) {
  if (n == nullptr) return "";
  const char* s = lilv_node_as_string(n);
  return s ? std::string(s) : "";
}

/// One loaded bundle: the lilv world that read it (from the store copy
/// only), the URID map every instance of its plugins shares, and the live
/// instances by node name (for state hand-over between instances).
class Lv2Host {
 public:
  Lv2Host(std::shared_ptr<const LoadedPlugin> lib, std::string bundle_dir, std::string state_dir)
      : lib_(std::move(lib)), bundle_dir_(std::move(bundle_dir)), state_dir_(std::move(state_dir)) {
    world_ = lilv_world_new();
    map_.handle = this;
    map_.map = [](LV2_URID_Map_Handle h, const char* uri) {
      return static_cast<Lv2Host*>(h)->Map(uri);
    };
    unmap_.handle = this;
    unmap_.unmap = [](LV2_URID_Unmap_Handle h, LV2_URID urid) {
      return static_cast<Lv2Host*>(h)->Unmap(urid);
    };
  }
  ~Lv2Host() {
    for (auto* n : nodes_) lilv_node_free(n);
    lilv_world_free(world_);
  }
  Lv2Host(const Lv2Host&) = delete;
  Lv2Host& operator=(const Lv2Host&) = delete;

  /// Any thread (locks). URIDs start at 1; the same URI maps to the same id.
  LV2_URID Map(const char* uri) {
    if (uri == nullptr) return 0;
    std::lock_guard lock(map_mu_);
    auto it = ids_.find(uri);
    if (it != ids_.end()) return it->second;
    uris_.push_back(std::make_unique<std::string>(uri));
    const auto id = static_cast<LV2_URID>(uris_.size());
    ids_.emplace(*uris_.back(), id);
    return id;
  }
  /// Any thread (locks). The string lives as long as the host.
  const char* Unmap(LV2_URID id) {
    std::lock_guard lock(map_mu_);
    return id >= 1 && id <= uris_.size() ? uris_[id - 1]->c_str() : nullptr;
  }

  /// A URI node owned by the host (freed with it). Call under mu().
  const LilvNode* Uri(const char* uri) {
    nodes_.push_back(lilv_new_uri(world_, uri));
    return nodes_.back();
  }

  std::mutex& mu() { return mu_; }
  LilvWorld* world() { return world_; }
  LV2_URID_Map* map() { return &map_; }
  LV2_URID_Unmap* unmap() { return &unmap_; }
  const std::string& bundle_dir() const { return bundle_dir_; }
  const std::string& state_dir() const { return state_dir_; }
  const std::string& plugin_name() const { return lib_->name(); }

 private:
  std::shared_ptr<const LoadedPlugin> lib_;  // keeps the gate's record alive
  std::string bundle_dir_;
  std::string state_dir_;
  std::mutex mu_;  // the lilv world (not thread-safe)
  LilvWorld* world_ = nullptr;
  std::vector<LilvNode*> nodes_;
  std::mutex map_mu_;
  std::unordered_map<std::string, LV2_URID> ids_;
  std::vector<std::unique_ptr<std::string>> uris_;
  LV2_URID_Map map_{};
  LV2_URID_Unmap unmap_{};
};

enum class PortRole { kAudioIn, kAudioOut, kControlIn, kControlOut, kCv, kAtomIn, kAtomOut, kNull };

struct PortInfo {
  uint32_t index = 0;
  PortRole role = PortRole::kNull;
  std::string symbol;
  uint32_t atom_capacity = kAtomCapacity;
};

/// What a kind knows about its plugin's ports.
struct PortPlan {
  std::vector<PortInfo> ports;  ///< every port, by index
  std::vector<uint32_t> audio_in, audio_out, control_in;
  std::vector<std::vector<double>> choice_values;  ///< per control_in: enum index -> value
  std::optional<uint32_t> latency_port;            ///< a control output
};

struct PresetDesc {
  std::string uri;
  std::string label;
};

class Lv2Processor;

/// Live processors by node name: the newest instance of a node is the one
/// that saves its state, and hands it to the next instance of the node.
class LiveRegistry {
 public:
  void Set(const std::string& node, Lv2Processor* p) {
    std::lock_guard lock(mu_);
    live_[node] = p;
  }
  void Drop(const std::string& node, Lv2Processor* p) {
    std::lock_guard lock(mu_);
    auto it = live_.find(node);
    if (it != live_.end() && it->second == p) live_.erase(it);
  }
  bool IsCurrent(const std::string& node, const Lv2Processor* p) {
    std::lock_guard lock(mu_);
    auto it = live_.find(node);
    return it != live_.end() && it->second == p;
  }
  /// Runs `f(current)` (or f(nullptr)) with the registry locked, so the
  /// current processor cannot be destroyed meanwhile.
  template <typename F>
  void WithCurrent(const std::string& node, F&& f) {
    std::lock_guard lock(mu_);
    auto it = live_.find(node);
    f(it == live_.end() ? nullptr : it->second);
  }
  std::mutex& mu() { return mu_; }

 private:
  std::mutex mu_;
  std::map<std::string, Lv2Processor*> live_;
};

struct WorkMsg {
  uint32_t instance = 0;
  uint32_t size = 0;
  uint8_t data[kWorkBytes] = {};
};
struct LogMsg {
  char text[256] = {};
};

/// The directory `name` beneath `parent_fd` (AT_FDCWD: a path), created
/// 0700 if missing and opened without following a link; refused unless the
/// directory opened is owned by aersd's user and has no group/world bits.
/// (Checked on the descriptor itself, so a swapped name gains nothing.)
absl::StatusOr<UniqueFd> OpenPrivateDirAt(int parent_fd, const std::string& name,
                                          const std::string& shown) {
  if (::mkdirat(parent_fd, name.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create ", shown, ": ", ErrnoText(errno)));
  }
  const int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", shown, ": ", ErrnoText(errno)));
  UniqueFd dir(fd);
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0) {
    return absl::InternalError(absl::StrCat("stat ", shown, ": ", ErrnoText(errno)));
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return absl::PermissionDeniedError(absl::StrCat(shown, " is owned by uid ", st.st_uid,
                                                    " with mode ", mode,
                                                    "; it must be aersd's own, mode 0700"));
  }
  return dir;
}

/// Writes `text` as `name` in the directory `dir_fd`, atomically: a new
/// temporary file (O_EXCL, never following a link), fsync, rename, fsync of
/// the directory.
absl::Status WriteFileAtomicAt(int dir_fd, const std::string& name, const std::string& text) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = absl::StrCat(name, ".tmp-", ::getpid(), "-", counter.fetch_add(1));
  const int fd =
      ::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("create ", tmp, ": ", ErrnoText(errno)));
  UniqueFd file(fd);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(file.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::unlinkat(dir_fd, tmp.c_str(), 0);
      return absl::InternalError(absl::StrCat("write ", tmp, ": ", ErrnoText(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(file.get()) != 0 || ::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    const int err = errno;
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return absl::InternalError(absl::StrCat("save ", name, ": ", ErrnoText(err)));
  }
  ::fsync(dir_fd);
  return absl::OkStatus();
}

class Lv2Processor;

/// One thread for every LV2 node of the process ("aers-lv2-svc"): worker
/// requests, log lines queued from run(), periodic state saves. It polls
/// (the audio thread never wakes it: no system call there) every 2 ms while
/// some node has a worker, else every 20 ms.
class Lv2Service {
 public:
  static Lv2Service& Get() {
    static Lv2Service service;
    return service;
  }
  ~Lv2Service() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  /// Non-RT.
  void Add(Lv2Processor* p, bool worker) {
    std::lock_guard lock(mu_);
    procs_.push_back({p, worker});
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
    cv_.notify_all();
  }
  /// Non-RT. Returns once `p` is not being serviced and never will be again.
  void Remove(Lv2Processor* p) {
    std::lock_guard lock(mu_);
    std::erase_if(procs_, [p](const auto& e) { return e.first == p; });
  }

 private:
  Lv2Service() = default;
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<Lv2Processor*, bool>> procs_;
  bool stop_ = false;
  std::thread thread_;
};

/// One node instance: one LV2 instance per channel (mono plugins) or one.
class Lv2Processor final : public rt::Processor {
 public:
  /// Non-RT.
  Lv2Processor(std::shared_ptr<Lv2Host> host, std::shared_ptr<LiveRegistry> live,
               const LilvPlugin* plugin, const PortPlan& plan, std::string node,
               std::vector<double> mins, std::vector<double> maxs)
      : host_(std::move(host)),
        live_(std::move(live)),
        plugin_(plugin),
        plan_(plan),
        node_(std::move(node)),
        mins_(std::move(mins)),
        maxs_(std::move(maxs)),
        controls_(std::max<size_t>(1, plan.ports.size()), 0.0f),
        mailbox_(static_cast<uint32_t>(plan.control_in.size())) {}

  /// Non-RT (Engine::Reclaim).
  ~Lv2Processor() override {
    const bool current = live_->IsCurrent(node_, this);
    if (serviced_) Lv2Service::Get().Remove(this);
    if (current) SaveState(/*force=*/false);
    live_->Drop(node_, this);
    std::lock_guard lock(host_->mu());
    for (auto& inst : instances_) {
      if (activated_) lilv_instance_deactivate(inst.lilv);
      lilv_instance_free(inst.lilv);
    }
  }

  /// Non-RT. Makes `count` instances, restores state (the node's live
  /// instance, else its saved state, else the plugin's default state), then
  /// the preset's and the node's control values, and activates.
  absl::Status Start(size_t count, const rt::StreamFormat& format,
                     const std::vector<double>& initial, const std::string& preset_uri) {
    format_ = format;
    const uint32_t max_frames = std::max<uint32_t>(1, format.max_period_frames);
    {
      std::lock_guard lock(host_->mu());
      options_ = {
          {LV2_OPTIONS_INSTANCE, 0, host_->Map(LV2_BUF_SIZE__minBlockLength), sizeof(int32_t),
           host_->Map(LV2_ATOM__Int), &min_block_},
          {LV2_OPTIONS_INSTANCE, 0, host_->Map(LV2_BUF_SIZE__maxBlockLength), sizeof(int32_t),
           host_->Map(LV2_ATOM__Int), &max_block_},
          {LV2_OPTIONS_INSTANCE, 0, host_->Map(LV2_BUF_SIZE__nominalBlockLength), sizeof(int32_t),
           host_->Map(LV2_ATOM__Int), &max_block_},
          {LV2_OPTIONS_INSTANCE, 0, host_->Map(LV2_PARAMETERS__sampleRate), sizeof(float),
           host_->Map(LV2_ATOM__Float), &sample_rate_},
          {LV2_OPTIONS_INSTANCE, 0, 0, 0, 0, nullptr},
      };
      max_block_ = static_cast<int32_t>(max_frames);
      sample_rate_ = static_cast<float>(format.sample_rate_hz);
      atom_sequence_ = host_->Map(LV2_ATOM__Sequence);
      atom_chunk_ = host_->Map(LV2_ATOM__Chunk);
      log_.handle = this;
      log_.printf = &LogPrintf;
      log_.vprintf = &LogVprintf;
      log_error_ = host_->Map(LV2_LOG__Error);
      log_warning_ = host_->Map(LV2_LOG__Warning);

      instances_.resize(count);
      for (size_t j = 0; j < count; ++j) {
        Instance& inst = instances_[j];
        inst.owner = this;
        inst.index = static_cast<uint32_t>(j);
        inst.schedule.handle = &inst;
        inst.schedule.schedule_work = [](LV2_Worker_Schedule_Handle h, uint32_t size,
                                         const void* data) {
          auto* i = static_cast<Instance*>(h);
          return i->owner->Schedule(*i, size, data);
        };
        inst.features_storage = {
            {LV2_URID__map, host_->map()},           {LV2_URID__unmap, host_->unmap()},
            {LV2_OPTIONS__options, options_.data()}, {LV2_BUF_SIZE__boundedBlockLength, nullptr},
            {LV2_WORKER__schedule, &inst.schedule},  {LV2_LOG__log, &log_},
            {LV2_STATE__loadDefaultState, nullptr},
        };
        for (auto& f : inst.features_storage) inst.features.push_back(&f);
        inst.features.push_back(nullptr);
        inst.lilv = lilv_plugin_instantiate(plugin_, format.sample_rate_hz, inst.features.data());
        if (inst.lilv == nullptr) {
          instances_.resize(j);
          return absl::InternalError("lilv_plugin_instantiate failed (the plugin refused)");
        }
        inst.worker = static_cast<const LV2_Worker_Interface*>(
            lilv_instance_get_extension_data(inst.lilv, LV2_WORKER__interface));
        if (inst.worker != nullptr && inst.worker->work == nullptr) inst.worker = nullptr;
        inst.state = static_cast<const LV2_State_Interface*>(
            lilv_instance_get_extension_data(inst.lilv, LV2_STATE__interface));
        inst.cv.assign(plan_.ports.size(), {});
        inst.atoms.assign(plan_.ports.size(), {});
        for (const PortInfo& p : plan_.ports) {
          switch (p.role) {
            case PortRole::kControlIn:
            case PortRole::kControlOut:
              lilv_instance_connect_port(inst.lilv, p.index, &controls_[p.index]);
              break;
            case PortRole::kCv:
              inst.cv[p.index].assign(max_frames, 0.0f);
              lilv_instance_connect_port(inst.lilv, p.index, inst.cv[p.index].data());
              break;
            case PortRole::kAtomIn:
            case PortRole::kAtomOut: {
              // 8-byte aligned storage for an LV2_Atom_Sequence.
              inst.atoms[p.index].assign((p.atom_capacity + 7) / 8, 0);
              lilv_instance_connect_port(inst.lilv, p.index, inst.atoms[p.index].data());
              break;
            }
            case PortRole::kNull:
              lilv_instance_connect_port(inst.lilv, p.index, nullptr);
              break;
            default:
              break;  // audio: connected in Process()
          }
        }
        ResetAtoms(inst);
      }
    }
    for (size_t i = 0; i < plan_.control_in.size(); ++i)
      controls_[plan_.control_in[i]] = static_cast<float>(initial[i]);
    if (auto s = RestoreState(preset_uri); !s.ok()) return s;
    {
      std::lock_guard lock(host_->mu());
      for (auto& inst : instances_) lilv_instance_activate(inst.lilv);
      activated_ = true;
    }
    live_->Set(node_, this);
    if (plan_.latency_port) Prime();
    bool worker = false;
    for (const auto& inst : instances_) {
      worker = worker || inst.worker != nullptr;
      has_state_ = has_state_ || inst.state != nullptr;
    }
    next_save_ = std::chrono::steady_clock::now() + kSavePeriod;
    Lv2Service::Get().Add(this, worker);
    serviced_ = true;
    return absl::OkStatus();
  }

  uint32_t LatencyFrames() const noexcept override { return latency_frames_; }
  bool ExternalCode() const noexcept override { return true; }

  /// Audio thread. Wait-free apart from the plugin's own run(): control
  /// values from the mailbox, worker responses, then run() per instance.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    mailbox_.Drain([this](uint32_t i, double v) {
      controls_[plan_.control_in[i]] = static_cast<float>(ToPortValue(i, v));
    });
    t_in_run = true;
    WorkMsg msg;
    while (responses_.TryPop(msg)) {
      if (msg.instance < instances_.size()) {
        Instance& inst = instances_[msg.instance];
        if (inst.worker != nullptr && inst.worker->work_response != nullptr) {
          inst.worker->work_response(lilv_instance_get_handle(inst.lilv), msg.size, msg.data);
        }
      }
    }
    const size_t k = plan_.audio_in.size();
    for (size_t j = 0; j < instances_.size(); ++j) {
      Instance& inst = instances_[j];
      for (size_t a = 0; a < k; ++a) {
        lilv_instance_connect_port(inst.lilv, plan_.audio_in[a], const_cast<float*>(in[j * k + a]));
        lilv_instance_connect_port(inst.lilv, plan_.audio_out[a], out[j * k + a]);
      }
      ResetAtoms(inst);
      lilv_instance_run(inst.lilv, frames);
      if (inst.worker != nullptr && inst.worker->end_run != nullptr) {
        inst.worker->end_run(lilv_instance_get_handle(inst.lilv));
      }
    }
    t_in_run = false;
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t element, double value) noexcept override {
    (void)element;
    if (param >= mins_.size() || !std::isfinite(value)) return;
    mailbox_.Post(param, std::clamp(value, mins_[param], maxs_[param]));
  }

  /// Non-RT (under the live registry's lock). The current state of
  /// instance `j` as Turtle, or "" if the plugin has no state interface.
  std::string CaptureState(size_t j) {
    if (j >= instances_.size() || instances_[j].state == nullptr) return "";
    std::lock_guard lock(host_->mu());
    LilvState* st = lilv_state_new_from_instance(plugin_, instances_[j].lilv, host_->map(), nullptr,
                                                 nullptr, nullptr, nullptr, nullptr, nullptr,
                                                 LV2_STATE_IS_POD, FeaturesOf(j));
    if (st == nullptr) return "";
    char* text =
        lilv_state_to_string(host_->world(), host_->map(), host_->unmap(), st, kStateUri, nullptr);
    lilv_state_free(st);
    std::string out = text ? text : "";
    lilv_free(text);
    return out;
  }

 private:
  struct Instance {
    Lv2Processor* owner = nullptr;
    uint32_t index = 0;
    LilvInstance* lilv = nullptr;
    const LV2_Worker_Interface* worker = nullptr;
    const LV2_State_Interface* state = nullptr;
    LV2_Worker_Schedule schedule{};
    std::vector<LV2_Feature> features_storage;
    std::vector<const LV2_Feature*> features;
    std::vector<std::vector<float>> cv;        // by port index
    std::vector<std::vector<uint64_t>> atoms;  // by port index
    std::string saved;                         // last state text written
  };

  const LV2_Feature* const* FeaturesOf(size_t j) const { return instances_[j].features.data(); }

  double ToPortValue(size_t i, double v) const {
    const auto& choices = plan_.choice_values[i];
    if (choices.empty()) return v;
    const auto idx =
        static_cast<size_t>(std::clamp(std::lround(v), 0L, static_cast<long>(choices.size()) - 1));
    return choices[idx];
  }

  // Audio thread or non-RT. Empty input sequences, full-capacity outputs.
  void ResetAtoms(Instance& inst) noexcept {
    for (const PortInfo& p : plan_.ports) {
      if (p.role != PortRole::kAtomIn && p.role != PortRole::kAtomOut) continue;
      auto* seq = reinterpret_cast<LV2_Atom_Sequence*>(inst.atoms[p.index].data());
      if (p.role == PortRole::kAtomIn) {
        seq->atom.size = sizeof(LV2_Atom_Sequence_Body);
        seq->atom.type = atom_sequence_;
        seq->body.unit = 0;
        seq->body.pad = 0;
      } else {
        seq->atom.size = p.atom_capacity - static_cast<uint32_t>(sizeof(LV2_Atom));
        seq->atom.type = atom_chunk_;
      }
    }
  }

  // worker:schedule. In run(): queued for the service thread (wait-free);
  // elsewhere (restore, instantiate): run at once on the calling thread.
  LV2_Worker_Status Schedule(Instance& inst, uint32_t size, const void* data) {
    if (inst.worker == nullptr) return LV2_WORKER_ERR_UNKNOWN;
    if (size > kWorkBytes) return LV2_WORKER_ERR_NO_SPACE;
    if (!t_in_run) {
      return inst.worker->work(lilv_instance_get_handle(inst.lilv), &Respond, &inst, size, data);
    }
    WorkMsg msg;
    msg.instance = inst.index;
    msg.size = size;
    std::memcpy(msg.data, data, size);
    return requests_.TryPush(msg) ? LV2_WORKER_SUCCESS : LV2_WORKER_ERR_NO_SPACE;
  }

  // worker respond(): from work() on the service thread (or at once).
  static LV2_Worker_Status Respond(LV2_Worker_Respond_Handle h, uint32_t size, const void* data) {
    auto* inst = static_cast<Instance*>(h);
    if (size > kWorkBytes) return LV2_WORKER_ERR_NO_SPACE;
    WorkMsg msg;
    msg.instance = inst->index;
    msg.size = size;
    std::memcpy(msg.data, data, size);
    return inst->owner->responses_.TryPush(msg) ? LV2_WORKER_SUCCESS : LV2_WORKER_ERR_NO_SPACE;
  }

  static int LogPrintf(LV2_Log_Handle h, LV2_URID type, const char* fmt, ...)
      __attribute__((format(printf, 3, 4))) {
    va_list ap;
    va_start(ap, fmt);
    const int r = static_cast<Lv2Processor*>(h)->Log(type, fmt, ap);
    va_end(ap);
    return r;
  }
  __attribute__((format(printf, 3, 0))) static int LogVprintf(LV2_Log_Handle h, LV2_URID type,
                                                              const char* fmt, va_list ap) {
    return static_cast<Lv2Processor*>(h)->Log(type, fmt, ap);
  }

  // log:log. Formatted into a fixed buffer; from run() queued for the
  // service thread (dropped when full), elsewhere logged at once.
  __attribute__((format(printf, 3, 0))) int Log(LV2_URID type, const char* fmt, va_list ap) {
    LogMsg msg;
    const int n = std::vsnprintf(msg.text, sizeof msg.text, fmt, ap);
    size_t len = std::strlen(msg.text);
    while (len > 0 && msg.text[len - 1] == '\n') msg.text[--len] = '\0';
    if (t_in_run) {
      if (!logs_.TryPush(msg)) log_dropped_.fetch_add(1, std::memory_order_relaxed);
      return n;
    }
    if (type == log_error_) {
      spdlog::error("lv2 node '{}': {}", node_, msg.text);
    } else if (type == log_warning_) {
      spdlog::warn("lv2 node '{}': {}", node_, msg.text);
    } else {
      spdlog::info("lv2 node '{}': {}", node_, msg.text);
    }
    return n;
  }

  // Non-RT. Restores, in order: the preset (its state and port values), the
  // node's state (from its live instance, else its saved file, else the
  // plugin's default state). Control values of the node itself were set
  // before and are re-applied after, so they win over the preset's.
  absl::Status RestoreState(const std::string& preset_uri) {
    std::vector<float> own(controls_);
    if (!preset_uri.empty()) {
      std::lock_guard lock(host_->mu());
      // The preset's files were loaded (and checked) when the kind was made.
      UniqueNode preset(lilv_new_uri(host_->world(), preset_uri.c_str()));
      LilvState* st = lilv_state_new_from_world(host_->world(), host_->map(), preset.n);
      if (st == nullptr) {
        return absl::NotFoundError(absl::StrCat("preset <", preset_uri, "> has no state"));
      }
      for (size_t j = 0; j < instances_.size(); ++j) {
        lilv_state_restore(st, instances_[j].lilv, &SetPortValue, this, 0, FeaturesOf(j));
      }
      lilv_state_free(st);
    }
    for (size_t j = 0; j < instances_.size(); ++j) {
      if (instances_[j].state == nullptr) continue;
      std::string text;
      live_->WithCurrent(node_, [&](Lv2Processor* prev) {
        if (prev != nullptr) text = prev->CaptureState(j);
      });
      if (text.empty()) text = ReadSavedState(j);
      std::lock_guard lock(host_->mu());
      LilvState* st = nullptr;
      if (!text.empty()) {
        st = lilv_state_new_from_string(host_->world(), host_->map(), text.c_str());
        if (st == nullptr) {
          spdlog::warn("lv2 node '{}': saved state {} is not readable state; not restored", node_,
                       StatePath(j));
        }
        const LilvNode* uri = st ? lilv_state_get_plugin_uri(st) : nullptr;
        if (st != nullptr &&
            (uri == nullptr || !lilv_node_equals(uri, lilv_plugin_get_uri(plugin_)))) {
          spdlog::warn("lv2 node '{}': saved state is for another plugin; not restored", node_);
          lilv_state_free(st);
          st = nullptr;
        }
      } else if (preset_uri.empty()) {
        st = lilv_state_new_from_world(host_->world(), host_->map(), lilv_plugin_get_uri(plugin_));
      }
      if (st != nullptr) {
        lilv_state_restore(st, instances_[j].lilv, nullptr, nullptr, 0, FeaturesOf(j));
        lilv_state_free(st);
        instances_[j].saved = text;
      }
    }
    // The preset set every port it names; the node's explicit values win.
    for (size_t i = 0; i < plan_.control_in.size(); ++i) {
      const uint32_t port = plan_.control_in[i];
      if (explicit_.count(static_cast<uint32_t>(i))) controls_[port] = own[port];
    }
    return absl::OkStatus();
  }

  static void SetPortValue(const char* symbol, void* user, const void* value, uint32_t size,
                           uint32_t type) {
    auto* self = static_cast<Lv2Processor*>(user);
    if (value == nullptr || size != sizeof(float)) return;
    (void)type;
    for (const PortInfo& p : self->plan_.ports) {
      if (p.role == PortRole::kControlIn && p.symbol == symbol) {
        float v;
        std::memcpy(&v, value, sizeof v);
        if (std::isfinite(v)) self->controls_[p.index] = v;
      }
    }
  }

 public:
  /// Non-RT, before Start(): which control inputs the node sets itself.
  void SetExplicit(std::set<uint32_t> indices) { explicit_ = std::move(indices); }

 private:
  std::string StatePath(size_t j) const {
    return absl::StrCat(host_->state_dir(), "/lv2-state/", node_, "/", j, ".ttl");
  }

  // The node's state directory, <state_dir>/lv2-state/<node>, both levels
  // aersd's own and 0700 (created so); an error says why not.
  absl::StatusOr<UniqueFd> StateDir() const {
    const std::string base = absl::StrCat(host_->state_dir(), "/lv2-state");
    std::error_code ec;
    std::filesystem::create_directories(host_->state_dir(), ec);
    auto b = OpenPrivateDirAt(AT_FDCWD, base, base);
    if (!b.ok()) return b.status();
    return OpenPrivateDirAt(b->get(), node_, absl::StrCat(base, "/", node_));
  }

  // Non-RT. The saved state text of instance `j`, or "" (none, or not
  // trustworthy: logged).
  std::string ReadSavedState(size_t j) const {
    if (host_->state_dir().empty()) return "";
    auto dir = StateDir();
    if (!dir.ok()) {
      spdlog::warn("lv2 node '{}': state not restored: {}", node_,
                   std::string(dir.status().message()));
      return "";
    }
    const std::string name = absl::StrCat(j, ".ttl");
    const int fd =
        ::openat(dir->get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) {
        spdlog::warn("lv2 node '{}': state not restored: {}: {}", node_, StatePath(j),
                     ErrnoText(errno));
      }
      return "";
    }
    UniqueFd f(fd);
    struct stat st {};
    if (::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      spdlog::warn("lv2 node '{}': state not restored: {} is not a regular file", node_,
                   StatePath(j));
      return "";
    }
    auto text = ReadSmallFile(f.get(), size_t{4} << 20, StatePath(j));
    if (!text.ok()) {
      spdlog::warn("lv2 node '{}': state not restored: {}", node_,
                   std::string(text.status().message()));
      return "";
    }
    return *text;
  }

  // Non-RT (service thread, destructor). Writes each instance's state when
  // it changed since the last write; only the node's current instance does.
  void SaveState(bool force) {
    if (host_->state_dir().empty()) return;
    for (size_t j = 0; j < instances_.size(); ++j) {
      if (instances_[j].state == nullptr) continue;
      std::string text;
      live_->WithCurrent(node_, [&](Lv2Processor* cur) {
        if (cur == this) text = CaptureState(j);
      });
      if (text.empty() || (!force && text == instances_[j].saved)) continue;
      auto dir = StateDir();
      absl::Status s =
          dir.ok() ? WriteFileAtomicAt(dir->get(), absl::StrCat(j, ".ttl"), text) : dir.status();
      if (!s.ok()) {
        if (!save_failed_) {
          spdlog::warn("lv2 node '{}': cannot save state to {}: {}", node_, StatePath(j),
                       std::string(s.message()));
        }
        save_failed_ = true;
        continue;
      }
      save_failed_ = false;
      instances_[j].saved = std::move(text);
    }
  }

  // Non-RT. One period of silence so the plugin fills its latency port;
  // then the instances are reset (deactivate + activate).
  void Prime() {
    rt::ScopedFlushToZero flush_to_zero;
    const uint32_t frames =
        std::min<uint32_t>(64, std::max<uint32_t>(1, format_.max_period_frames));
    std::vector<float> in(frames, 0.0f), out(frames, 0.0f);
    const size_t k = plan_.audio_in.size();
    for (auto& inst : instances_) {
      for (size_t a = 0; a < k; ++a) {
        lilv_instance_connect_port(inst.lilv, plan_.audio_in[a], in.data());
        lilv_instance_connect_port(inst.lilv, plan_.audio_out[a], out.data());
      }
      lilv_instance_run(inst.lilv, frames);
    }
    const double reported = static_cast<double>(controls_[*plan_.latency_port]);
    const double limit = 10.0 * format_.sample_rate_hz;
    latency_frames_ = std::isfinite(reported) && reported > 0.0
                          ? static_cast<uint32_t>(std::lround(std::min(reported, limit)))
                          : 0;
    std::lock_guard lock(host_->mu());
    for (auto& inst : instances_) {
      lilv_instance_deactivate(inst.lilv);
      lilv_instance_activate(inst.lilv);
    }
  }

  friend class Lv2Service;

  // Service thread: worker requests, queued log lines, the periodic save.
  void Service(std::chrono::steady_clock::time_point now) {
    WorkMsg msg;
    while (requests_.TryPop(msg)) {
      if (msg.instance >= instances_.size()) continue;
      Instance& inst = instances_[msg.instance];
      inst.worker->work(lilv_instance_get_handle(inst.lilv), &Respond, &inst, msg.size, msg.data);
    }
    LogMsg log;
    while (logs_.TryPop(log)) spdlog::info("lv2 node '{}': {}", node_, log.text);
    if (const uint64_t d = log_dropped_.exchange(0); d > 0) {
      spdlog::warn("lv2 node '{}': {} log lines dropped (queue full)", node_, d);
    }
    if (has_state_ && now >= next_save_) {
      SaveState(false);
      next_save_ = now + kSavePeriod;
    }
  }

  std::shared_ptr<Lv2Host> host_;
  std::shared_ptr<LiveRegistry> live_;
  const LilvPlugin* plugin_;
  PortPlan plan_;
  std::string node_;
  std::vector<double> mins_, maxs_;
  std::vector<float> controls_;  // by port index; shared by every instance
  ParamMailbox mailbox_;
  std::set<uint32_t> explicit_;
  rt::StreamFormat format_;
  std::vector<Instance> instances_;
  bool activated_ = false;
  uint32_t latency_frames_ = 0;
  int32_t min_block_ = 1;
  int32_t max_block_ = 1024;
  float sample_rate_ = 48000.0f;
  std::vector<LV2_Options_Option> options_;
  LV2_Log_Log log_{};
  LV2_URID log_error_ = 0, log_warning_ = 0, atom_sequence_ = 0, atom_chunk_ = 0;
  rt::SpscRing<WorkMsg, 64> requests_;   // audio thread -> service thread
  rt::SpscRing<WorkMsg, 64> responses_;  // service thread -> audio thread
  rt::SpscRing<LogMsg, 32> logs_;        // audio thread -> service thread
  std::atomic<uint64_t> log_dropped_{0};
  bool serviced_ = false;     // registered with Lv2Service
  bool save_failed_ = false;  // the last save failed (warned once per failure run)
  bool has_state_ = false;
  std::chrono::steady_clock::time_point next_save_;
};

void Lv2Service::Loop() {
  pthread_setname_np(pthread_self(), "aers-lv2-svc");
  std::unique_lock lock(mu_);
  while (!stop_) {
    const bool worker =
        std::any_of(procs_.begin(), procs_.end(), [](const auto& e) { return e.second; });
    cv_.wait_for(lock, worker ? std::chrono::milliseconds(2) : std::chrono::milliseconds(20),
                 [this] { return stop_; });
    if (stop_) break;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [p, w] : procs_) p->Service(now);
  }
}

class Lv2Kind final : public model::NodeKind {
 public:
  Lv2Kind(std::shared_ptr<Lv2Host> host, const LilvPlugin* plugin, std::string name,
          std::string description, PortPlan plan, std::vector<model::ParamDesc> params,
          std::vector<PresetDesc> presets)
      : host_(std::move(host)),
        live_(std::make_shared<LiveRegistry>()),
        plugin_(plugin),
        name_(std::move(name)),
        description_(std::move(description)),
        plan_(std::move(plan)),
        params_(std::move(params)),
        presets_(std::move(presets)) {}

  const std::string& name() const override { return name_; }
  std::string_view description() const override { return description_; }
  const std::vector<model::ParamDesc>& params() const override { return params_; }
  int max_channels() const override {
    return mono() ? model::kMaxChannels : static_cast<int>(plan_.audio_in.size());
  }
  bool mono() const { return plan_.audio_in.size() == 1; }
  std::vector<model::PresetInfo> presets() const override {
    std::vector<model::PresetInfo> out;
    for (const auto& p : presets_) out.push_back({p.uri, p.label});
    return out;
  }

  void CheckSpec(const model::NodeSpec& spec, const std::string& prefix,
                 std::vector<model::Issue>& issues) const override {
    if (!mono() && spec.channels != static_cast<int>(plan_.audio_in.size())) {
      issues.push_back(
          {prefix + ".channels",
           absl::StrCat("LV2 plugin '", name_, "' has ", plan_.audio_in.size(),
                        " audio channels; the node must have channels = ", plan_.audio_in.size())});
    }
  }

  model::NodeLayout Layout(const model::NodeSpec& spec) const override {
    return {{{"in", spec.channels}}, {{"out", spec.channels}}};
  }

  /// Non-RT.
  absl::StatusOr<std::unique_ptr<rt::Processor>> Instantiate(
      const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& params,
      const rt::StreamFormat& format) const override {
    std::vector<double> initial, mins, maxs;
    std::set<uint32_t> explicit_set;
    for (size_t i = 0; i < params_.size(); ++i) {
      const model::ParamDesc p = params_[i].At(format.sample_rate_hz);
      auto it = params.find(p.name);
      const model::ParamValue& v = it != params.end() ? it->second : p.default_value;
      if (spec.params.count(p.name)) explicit_set.insert(static_cast<uint32_t>(i));
      double num = NumericValue(p, v);
      const auto& choices = plan_.choice_values[i];
      if (!choices.empty()) {
        num =
            choices[std::min<size_t>(static_cast<size_t>(std::max(0.0, num)), choices.size() - 1)];
        mins.push_back(0.0);
        maxs.push_back(static_cast<double>(choices.size() - 1));
      } else {
        mins.push_back(p.type == model::ParamType::kBool ? 0.0 : p.min);
        maxs.push_back(p.type == model::ParamType::kBool ? 1.0 : p.max);
      }
      initial.push_back(num);
    }
    auto proc = std::make_unique<Lv2Processor>(host_, live_, plugin_, plan_, spec.name, mins, maxs);
    proc->SetExplicit(std::move(explicit_set));
    const size_t count = mono() ? static_cast<size_t>(spec.channels) : 1;
    if (auto s = proc->Start(count, format, initial, spec.preset); !s.ok()) {
      return absl::InternalError(absl::StrCat("LV2 kind '", name_, "': ", s.message()));
    }
    return proc;
  }

 private:
  std::shared_ptr<Lv2Host> host_;
  std::shared_ptr<LiveRegistry> live_;
  const LilvPlugin* plugin_;
  std::string name_;
  std::string description_;
  PortPlan plan_;
  std::vector<model::ParamDesc> params_;
  std::vector<PresetDesc> presets_;
};

std::string UnitName(const std::string& uri) {
  static const std::map<std::string, std::string> kUnits = {
      {"hz", "Hz"},
      {"khz", "kHz"},
      {"mhz", "MHz"},
      {"db", "dB"},
      {"ms", "ms"},
      {"s", "s"},
      {"min", "min"},
      {"pc", "%"},
      {"bpm", "BPM"},
      {"cent", "cent"},
      {"semitone12TET", "semitones"},
      {"frame", "frames"},
      {"oct", "octaves"},
      {"degree", "degrees"},
      {"midiNote", "MIDI note"},
  };
  const std::string prefix = LV2_UNITS_PREFIX;
  if (uri.rfind(prefix, 0) != 0) return "";
  auto it = kUnits.find(uri.substr(prefix.size()));
  return it == kUnits.end() ? "" : it->second;
}

// Whether `n` is a file: URI of a file inside the store copy.
bool InStore(const Lv2Host& host, const LilvNode* n) {
  if (n == nullptr || !lilv_node_is_uri(n)) return false;
  char* path = lilv_file_uri_parse(lilv_node_as_uri(n), nullptr);
  const std::string p = path ? path : "";
  lilv_free(path);
  return p.rfind(absl::StrCat(host.bundle_dir(), "/"), 0) == 0 &&
         p.find("/../") == std::string::npos && p.find("/./") == std::string::npos;
}

// Every file lilv would read for `plugin` (its library and data files) lies
// in the store copy; checked before anything loads the plugin's data.
std::optional<Refusal> OutsideStore(const Lv2Host& host, const LilvPlugin* plugin,
                                    const std::string& uri) {
  // The data files first: lilv_plugin_get_data_uris reads nothing, while
  // asking for the library makes lilv read every data file.
  const LilvNodes* data = lilv_plugin_get_data_uris(plugin);
  LILV_FOREACH(nodes, i, data) {
    if (!InStore(host, lilv_nodes_get(data, i))) {
      return Refusal{RefusalCode::kModuleOutsideAllowedDirs,
                     absl::StrCat("LV2 plugin <", uri, ">: its data file <",
                                  NodeString(lilv_nodes_get(data, i)),
                                  "> is not a file of the verified bundle"),
                     "", ""};
    }
  }
  if (!InStore(host, lilv_plugin_get_library_uri(plugin))) {
    return Refusal{RefusalCode::kModuleOutsideAllowedDirs,
                   absl::StrCat("LV2 plugin <", uri, ">: its library <",
                                NodeString(lilv_plugin_get_library_uri(plugin)),
                                "> is not a file of the verified bundle"),
                   "", ""};
  }
  return std::nullopt;
}

// lilv sizes its port array by the largest lv2:index it reads: every index
// must be a whole number in [0, kMaxPorts) before lilv is asked about ports.
// Call after OutsideStore (the plugin's data is loaded by then).
constexpr int kMaxPorts = 512;
std::optional<Refusal> BadPortIndex(Lv2Host& host, const LilvPlugin* plugin,
                                    const std::string& uri) {
  LilvWorld* w = host.world();
  LilvNodes* ports =
      lilv_world_find_nodes(w, lilv_plugin_get_uri(plugin), host.Uri(LV2_CORE__port), nullptr);
  std::optional<Refusal> out;
  LILV_FOREACH(nodes, i, ports) {
    LilvNode* index =
        lilv_world_get(w, lilv_nodes_get(ports, i), host.Uri(LV2_CORE__index), nullptr);
    const bool ok = index != nullptr && lilv_node_is_int(index) && lilv_node_as_int(index) >= 0 &&
                    lilv_node_as_int(index) < kMaxPorts &&
                    NodeString(index).find_first_not_of("0123456789") == std::string::npos;
    const std::string shown = index ? NodeString(index) : "(none)";
    if (index) lilv_node_free(index);
    if (!ok) {
      out = Refusal{RefusalCode::kLv2Unsupported,
                    absl::StrCat("LV2 plugin <", uri, ">: a port has lv2:index ", shown,
                                 "; indices must be whole numbers from 0 to ", kMaxPorts - 1),
                    "", ""};
      break;
    }
  }
  if (ports) lilv_nodes_free(ports);
  return out;
}

// Everything lilv says about one plugin, under host->mu(). Refuses what the
// host cannot run.
std::optional<std::shared_ptr<Lv2Kind>> DescribePlugin(const std::shared_ptr<Lv2Host>& host,
                                                       const LilvPlugin* plugin,
                                                       const Lv2Entry& entry,
                                                       const std::string& kind_name,
                                                       Refusal& refusal) {
  LilvWorld* w = host->world();
  auto bad = [&](RefusalCode code, const std::string& what) {
    refusal = {code, absl::StrCat("LV2 plugin <", entry.uri, ">: ", what), "", ""};
    return std::nullopt;
  };
  static const std::set<std::string> kSupported = {
      LV2_URID__map,
      LV2_URID__unmap,
      LV2_OPTIONS__options,
      LV2_BUF_SIZE__boundedBlockLength,
      LV2_WORKER__schedule,
      LV2_LOG__log,
      LV2_STATE__loadDefaultState,
      LV2_CORE__inPlaceBroken,
      LV2_CORE__isLive,
      LV2_CORE__hardRTCapable,
  };
  LilvNodes* required = lilv_plugin_get_required_features(plugin);
  std::vector<std::string> missing;
  LILV_FOREACH(nodes, i, required) {
    const std::string f = NodeString(lilv_nodes_get(required, i));
    if (!kSupported.count(f)) missing.push_back(f);
  }
  lilv_nodes_free(required);
  if (!missing.empty()) {
    refusal = {RefusalCode::kLv2Unsupported,
               absl::StrCat("LV2 plugin <", entry.uri, "> requires ",
                            missing.size() == 1 ? "a feature" : "features",
                            " this host does not provide: ", absl::StrJoin(missing, ", ")),
               absl::StrJoin(missing, ", "), absl::StrJoin(kSupported, ", ")};
    return std::nullopt;
  }

  const LilvNode* audio = host->Uri(LV2_CORE__AudioPort);
  const LilvNode* control = host->Uri(LV2_CORE__ControlPort);
  const LilvNode* cv = host->Uri(LV2_CORE__CVPort);
  const LilvNode* atom = host->Uri(LV2_ATOM__AtomPort);
  const LilvNode* input = host->Uri(LV2_CORE__InputPort);
  const LilvNode* output = host->Uri(LV2_CORE__OutputPort);
  const LilvNode* optional = host->Uri(LV2_CORE__connectionOptional);
  const LilvNode* toggled = host->Uri(LV2_CORE__toggled);
  const LilvNode* integer = host->Uri(LV2_CORE__integer);
  const LilvNode* enumeration = host->Uri(LV2_CORE__enumeration);
  const LilvNode* sample_rate = host->Uri(LV2_CORE__sampleRate);
  const LilvNode* reports_latency = host->Uri(LV2_CORE__reportsLatency);
  const LilvNode* latency = host->Uri(LV2_CORE__latency);
  const LilvNode* designation = host->Uri(LV2_CORE__designation);
  const LilvNode* unit = host->Uri(LV2_UNITS__unit);
  const LilvNode* minimum_size = host->Uri(LV2_RESIZE_PORT__minimumSize);
  const LilvNode* logarithmic = host->Uri(LV2_PORT_PROPS__logarithmic);
  (void)logarithmic;

  PortPlan plan;
  std::vector<model::ParamDesc> params;
  std::set<std::string> names, symbols;
  const uint32_t n_ports = lilv_plugin_get_num_ports(plugin);
  if (n_ports > kMaxPorts) return bad(RefusalCode::kLv2Unsupported, "more than 512 ports");
  // lilv numbers ports by their lv2:index: two ports with one index would
  // leave a port the plugin has unconnected. Count the descriptions.
  LilvNodes* described =
      lilv_world_find_nodes(w, lilv_plugin_get_uri(plugin), host->Uri(LV2_CORE__port), nullptr);
  const size_t n_described = described ? lilv_nodes_size(described) : 0;
  if (described) lilv_nodes_free(described);
  if (n_described != n_ports) {
    return bad(RefusalCode::kLv2Unsupported,
               absl::StrCat("describes ", n_described, " ports but their port index ",
                            "numbers cover ", n_ports, " (an index missing or given twice)"));
  }
  for (uint32_t i = 0; i < n_ports; ++i) {
    const LilvPort* port = lilv_plugin_get_port_by_index(plugin, i);
    if (port == nullptr || lilv_port_get_index(plugin, port) != i) {
      return bad(RefusalCode::kLv2Unsupported,
                 absl::StrCat("port index ", i, " of ", n_ports,
                              " is missing or given twice (an invalid description)"));
    }
    PortInfo info;
    info.index = i;
    info.symbol = NodeString(lilv_port_get_symbol(plugin, port));
    const bool is_in = lilv_port_is_a(plugin, port, input);
    const bool is_out = lilv_port_is_a(plugin, port, output);
    if (is_in == is_out) {
      return bad(RefusalCode::kLv2Unsupported,
                 absl::StrCat("port '", info.symbol, "' is ",
                              is_in ? "both an input and an output" : "neither input nor output"));
    }
    if (!symbols.insert(info.symbol).second) {
      return bad(RefusalCode::kLv2Unsupported,
                 absl::StrCat("port symbol '", info.symbol, "' is used twice"));
    }
    if (lilv_port_is_a(plugin, port, audio)) {
      info.role = is_in ? PortRole::kAudioIn : PortRole::kAudioOut;
      (is_in ? plan.audio_in : plan.audio_out).push_back(i);
    } else if (lilv_port_is_a(plugin, port, control) && is_out) {
      info.role = PortRole::kControlOut;
      UniqueNode des(lilv_port_get(plugin, port, designation));
      if (!plan.latency_port && (lilv_port_has_property(plugin, port, reports_latency) ||
                                 (des.n && lilv_node_equals(des.n, latency)))) {
        plan.latency_port = i;
      }
    } else if (lilv_port_is_a(plugin, port, control) && is_in) {
      info.role = PortRole::kControlIn;
      plan.control_in.push_back(i);
      LilvNode *def = nullptr, *min = nullptr, *max = nullptr;
      lilv_port_get_range(plugin, port, &def, &min, &max);
      const bool per_rate = lilv_port_has_property(plugin, port, sample_rate);
      const double unbounded = per_rate ? 1e3 : 1e6;
      double lo = min ? static_cast<double>(lilv_node_as_float(min)) : -unbounded;
      double hi = max ? static_cast<double>(lilv_node_as_float(max)) : unbounded;
      double d = def ? static_cast<double>(lilv_node_as_float(def)) : lo;
      lilv_node_free(def);
      lilv_node_free(min);
      lilv_node_free(max);
      if (!std::isfinite(lo)) lo = -unbounded;
      if (!std::isfinite(hi)) hi = unbounded;
      if (lo > hi) std::swap(lo, hi);
      if (!std::isfinite(d)) d = lo;
      d = std::clamp(d, lo, hi);
      std::string n = PortParamName(info.symbol);
      for (int k = 2; names.count(n); ++k) n = absl::StrCat(PortParamName(info.symbol), "_", k);
      names.insert(n);
      model::ParamDesc p;
      p.name = n;
      p.live = true;
      UniqueNode label(lilv_port_get_name(plugin, port));
      p.help = NodeString(label.n);
      UniqueNode u(lilv_port_get(plugin, port, unit));
      p.unit = u.n ? UnitName(NodeString(u.n)) : "";
      std::vector<double> choice_values;
      LilvScalePoints* points = lilv_port_get_scale_points(plugin, port);
      if (lilv_port_has_property(plugin, port, enumeration) && points != nullptr &&
          lilv_scale_points_size(points) > 0 && lilv_scale_points_size(points) <= kMaxScalePoints &&
          !per_rate) {
        std::vector<std::pair<double, std::string>> sorted;
        LILV_FOREACH(scale_points, s, points) {
          const LilvScalePoint* sp = lilv_scale_points_get(points, s);
          sorted.emplace_back(
              static_cast<double>(lilv_node_as_float(lilv_scale_point_get_value(sp))),
              NodeString(lilv_scale_point_get_label(sp)));
        }
        std::sort(sorted.begin(), sorted.end());
        p.type = model::ParamType::kEnum;
        std::set<std::string> used;
        size_t best = 0;
        for (size_t k = 0; k < sorted.size(); ++k) {
          std::string c = PortParamName(sorted[k].second);
          for (int m = 2; used.count(c); ++m)
            c = absl::StrCat(PortParamName(sorted[k].second), "_", m);
          used.insert(c);
          p.choices.push_back(c);
          choice_values.push_back(sorted[k].first);
          if (std::abs(sorted[k].first - d) < std::abs(sorted[best].first - d)) best = k;
        }
        p.default_value = p.choices[best];
        p.help = absl::StrCat(p.help, " (", absl::StrJoin(p.choices, ", "), ")");
      } else if (lilv_port_has_property(plugin, port, toggled)) {
        p.type = model::ParamType::kBool;
        p.default_value = d > 0.0;
      } else if (lilv_port_has_property(plugin, port, integer) && !per_rate) {
        p.type = model::ParamType::kInteger;
        p.min = std::ceil(lo);
        p.max = std::floor(hi);
        if (p.min > p.max) p.max = p.min;
        p.default_value = std::clamp(std::round(d), p.min, p.max);
      } else {
        p.type = per_rate && lilv_port_has_property(plugin, port, integer)
                     ? model::ParamType::kInteger
                     : model::ParamType::kNumber;
        p.min = lo;
        p.max = hi;
        p.default_value = d;
        p.per_sample_rate = per_rate;
        p.default_per_sample_rate = per_rate;
        if (per_rate) p.unit = "Hz";
      }
      if (points != nullptr) lilv_scale_points_free(points);
      params.push_back(std::move(p));
      plan.choice_values.push_back(std::move(choice_values));
    } else if (lilv_port_is_a(plugin, port, cv)) {
      info.role = PortRole::kCv;
    } else if (lilv_port_is_a(plugin, port, atom)) {
      info.role = is_in ? PortRole::kAtomIn : PortRole::kAtomOut;
      UniqueNode size(lilv_port_get(plugin, port, minimum_size));
      if (size.n && lilv_node_is_int(size.n)) {
        const int want = lilv_node_as_int(size.n);
        if (want > (1 << 20))
          return bad(RefusalCode::kLv2Unsupported,
                     absl::StrCat("atom port '", info.symbol, "' asks for more than 1 MiB"));
        info.atom_capacity =
            std::max<uint32_t>(kAtomCapacity, static_cast<uint32_t>(std::max(0, want)));
      }
    } else if (lilv_port_has_property(plugin, port, optional)) {
      info.role = PortRole::kNull;
    } else {
      const LilvNodes* classes = lilv_port_get_classes(plugin, port);
      std::vector<std::string> types;
      LILV_FOREACH(nodes, c, classes) types.push_back(NodeString(lilv_nodes_get(classes, c)));
      return bad(RefusalCode::kLv2Unsupported,
                 absl::StrCat("port '", info.symbol, "' is of a type this host does not support (",
                              absl::StrJoin(types, ", "), ")"));
    }
    plan.ports.push_back(std::move(info));
  }
  if (plan.audio_in.empty() || plan.audio_in.size() != plan.audio_out.size()) {
    return bad(
        RefusalCode::kLv2Unsupported,
        absl::StrCat("has ", plan.audio_in.size(), " audio inputs and ", plan.audio_out.size(),
                     " audio outputs; AERS hosts LV2 plugins with k inputs and k outputs"));
  }
  if (plan.audio_in.size() > static_cast<size_t>(model::kMaxChannels))
    return bad(RefusalCode::kLv2Unsupported, "too many audio ports");

  // Presets (pset:Preset resources related to the plugin).
  std::vector<PresetDesc> presets;
  LilvNodes* related = lilv_plugin_get_related(plugin, host->Uri(LV2_PRESETS__Preset));
  const LilvNode* label_pred = host->Uri("http://www.w3.org/2000/01/rdf-schema#label");
  const LilvNode* see_also = host->Uri("http://www.w3.org/2000/01/rdf-schema#seeAlso");
  LILV_FOREACH(nodes, i, related) {
    const LilvNode* preset = lilv_nodes_get(related, i);
    // A preset's data (rdfs:seeAlso) is read only from the store copy.
    LilvNodes* files = lilv_world_find_nodes(w, preset, see_also, nullptr);
    std::string outside;
    LILV_FOREACH(nodes, f, files) {
      if (outside.empty() && !InStore(*host, lilv_nodes_get(files, f)))
        outside = NodeString(lilv_nodes_get(files, f));
    }
    if (files) lilv_nodes_free(files);
    if (!outside.empty()) {
      const std::string message =
          absl::StrCat("its preset <", NodeString(preset), "> reads <", outside,
                       ">, which is not a file of the verified "
                       "bundle");
      lilv_nodes_free(related);  // `preset` belongs to it
      return bad(RefusalCode::kModuleOutsideAllowedDirs, message);
    }
    lilv_world_load_resource(w, preset);
    LilvNodes* labels = lilv_world_find_nodes(w, preset, label_pred, nullptr);
    PresetDesc d;
    d.uri = NodeString(preset);
    d.label = labels && lilv_nodes_size(labels) > 0 ? NodeString(lilv_nodes_get_first(labels)) : "";
    if (labels) lilv_nodes_free(labels);
    presets.push_back(std::move(d));
  }
  if (related) lilv_nodes_free(related);
  // A loaded preset file may add links of its own (to itself or to another
  // preset): every preset's links must still be files of the store copy.
  for (const auto& d : presets) {
    UniqueNode node(lilv_new_uri(w, d.uri.c_str()));
    LilvNodes* files = lilv_world_find_nodes(w, node.n, see_also, nullptr);
    std::string outside;
    LILV_FOREACH(nodes, f, files) {
      if (outside.empty() && !InStore(*host, lilv_nodes_get(files, f)))
        outside = NodeString(lilv_nodes_get(files, f));
    }
    if (files) lilv_nodes_free(files);
    if (!outside.empty()) {
      return bad(RefusalCode::kModuleOutsideAllowedDirs,
                 absl::StrCat("its preset <", d.uri, "> links to <", outside,
                              ">, which is not a file of the verified bundle"));
    }
  }
  std::sort(presets.begin(), presets.end(),
            [](const PresetDesc& a, const PresetDesc& b) { return a.uri < b.uri; });

  UniqueNode pname(lilv_plugin_get_name(plugin));
  std::string description = absl::StrCat("LV2: ", NodeString(pname.n), " <", entry.uri, ">");
  return std::make_shared<Lv2Kind>(host, plugin, kind_name, std::move(description), std::move(plan),
                                   std::move(params), std::move(presets));
}

}  // namespace

bool Lv2Supported() {
  return true;
}

std::optional<KindList> MakeLv2Kinds(const std::shared_ptr<const LoadedPlugin>& plugin,
                                     const std::string& bundle_dir, const std::string& state_dir,
                                     Refusal& refusal) {
  const Manifest& m = plugin->manifest();
  auto host = std::make_shared<Lv2Host>(plugin, bundle_dir, state_dir);
  std::lock_guard lock(host->mu());
  LilvWorld* w = host->world();
  // Only the store copy: no LV2_PATH from the environment, no dynamic manifests.
  UniqueNode path(lilv_new_string(w, bundle_dir.c_str()));
  lilv_world_set_option(w, LILV_OPTION_LV2_PATH, path.n);
  UniqueNode no(lilv_new_bool(w, false));
  lilv_world_set_option(w, LILV_OPTION_DYN_MANIFEST, no.n);
  UniqueNode bundle(lilv_new_file_uri(w, nullptr, absl::StrCat(bundle_dir, "/").c_str()));
  lilv_world_load_bundle(w, bundle.n);
  const LilvPlugins* all = lilv_world_get_all_plugins(w);
  KindList out;
  for (const Lv2Entry& e : m.lv2_plugins) {
    UniqueNode uri(lilv_new_uri(w, e.uri.c_str()));
    const LilvPlugin* p = lilv_plugins_get_by_uri(all, uri.n);
    if (p == nullptr) {
      std::vector<std::string> have;
      std::string close;  // the same URI but for case
      LILV_FOREACH(plugins, i, all) {
        have.push_back(NodeString(lilv_plugin_get_uri(lilv_plugins_get(all, i))));
        if (absl::EqualsIgnoreCase(have.back(), e.uri)) close = have.back();
      }
      std::sort(have.begin(), have.end());
      refusal = {RefusalCode::kLv2UriMissing,
                 absl::StrCat("the bundle describes no LV2 plugin <", e.uri, ">",
                              close.empty() ? "" : absl::StrCat("; did you mean <", close, ">?"),
                              " (`lv2ls` and `lv2info URI` list a bundle's plugins)"),
                 e.uri, have.empty() ? std::string("(none)") : absl::StrJoin(have, ", ")};
      return std::nullopt;
    }
    if (auto outside = OutsideStore(*host, p, e.uri)) {
      refusal = *outside;
      return std::nullopt;
    }
    if (auto bad_index = BadPortIndex(*host, p, e.uri)) {
      refusal = *bad_index;
      return std::nullopt;
    }
    if (!lilv_plugin_verify(p)) {
      refusal = {RefusalCode::kLv2Unsupported,
                 absl::StrCat("LV2 plugin <", e.uri, "> is not a valid plugin description (",
                              "lilv_plugin_verify)"),
                 "", ""};
      return std::nullopt;
    }
    auto kind = DescribePlugin(host, p, e, absl::StrCat(m.name, "/", e.kind), refusal);
    if (!kind) return std::nullopt;
    out.push_back(std::move(*kind));
  }
  return out;
}

}  // namespace aers::plugin

#else  // built without lilv (Debian: liblilv-dev)

namespace aers::plugin {

bool Lv2Supported() {
  return false;
}

std::optional<KindList> MakeLv2Kinds(const std::shared_ptr<const LoadedPlugin>&, const std::string&,
                                     const std::string&, Refusal& refusal) {
  refusal = {RefusalCode::kLv2Unsupported, "this build has no LV2 support (lilv was missing)", "",
             ""};
  return std::nullopt;
}

}  // namespace aers::plugin

#endif
