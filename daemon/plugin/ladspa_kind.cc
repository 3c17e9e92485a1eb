// LADSPA hosting behind the same gate: the manifest's labels become node
// kinds "<plugin>/<kind>".
//
// Channels: a LADSPA plugin with one audio input and one audio output (the
// common mono effect) accepts any node width: one LADSPA instance runs per
// channel, all sharing the same control values. A plugin with k > 1 audio
// inputs and k outputs is one instance and the node must be exactly k
// channels wide. Plugins whose audio input and output counts differ, or
// that have no audio ports, are refused at load time.
//
// Parameters: every control input port, named from its port name (lowercase,
// [^a-z0-9] -> '_'), with the range and default from its hints. Ports hinted
// SAMPLE_RATE have bounds that are fractions of the sample rate (LADSPA
// multiplies them by the rate the plugin runs at): they become
// per_sample_rate parameters, checked at the stream's actual rate and
// re-checked when it changes (model::ParamDesc::At). TOGGLED ports are flags,
// INTEGER ports integers. Unbounded sides get +-1e6.
//
// Latency: a control output port named "latency" (any case; the LADSPA
// convention Ardour and others follow) is read after a priming run of one
// period of silence at activation; the instance reports it as its latency.
#include "plugin/kinds.h"

namespace aers::plugin {

std::string PortParamName(std::string_view port) {
  std::string out;
  for (char c : port) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (ok) {
      out += c;
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  if (out.empty() || !(out[0] >= 'a' && out[0] <= 'z')) out = "p_" + out;
  return out.substr(0, 60);
}

}  // namespace aers::plugin

#if defined(AERS_HAVE_LADSPA)
#include <ladspa.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "plugin/kinds.h"
#include "plugin/manifest.h"
#include "plugin/param_mailbox.h"
#include "rt/denormals.h"
#include "spdlog/spdlog.h"

namespace aers::plugin {
namespace {

constexpr double kUnbounded = 1e6;
constexpr unsigned long kMaxPorts = 256;
constexpr unsigned long kMaxDescriptors = 4096;

std::optional<std::string> Bounded(const char* s, size_t max) {
  if (s == nullptr) return std::nullopt;
  const size_t n = ::strnlen(s, max + 1);
  if (n > max) return std::nullopt;
  return std::string(s, n);
}

struct PortMap {
  std::vector<unsigned long> audio_in, audio_out, control_in, control_out;
  /// Index into control_out of the port named "latency" (any case), if any.
  std::optional<size_t> latency_out;
};

/// One node instance: one LADSPA instance per channel (mono plugins) or one
/// in total (k-channel plugins).
class LadspaProcessor final : public rt::Processor {
 public:
  /// Non-RT.
  LadspaProcessor(std::shared_ptr<const LoadedPlugin> lib, const LADSPA_Descriptor* d,
                  const PortMap& ports, std::vector<double> mins, std::vector<double> maxs)
      : lib_(std::move(lib)),
        d_(d),
        ports_(ports),
        mins_(std::move(mins)),
        maxs_(std::move(maxs)),
        controls_(new LADSPA_Data[std::max<size_t>(1, ports.control_in.size())]()),
        mailbox_(static_cast<uint32_t>(ports.control_in.size())) {}

  /// Non-RT (Engine::Reclaim): deactivate and clean up every instance.
  ~LadspaProcessor() override {
    for (LADSPA_Handle h : handles_) {
      if (activated_ && d_->deactivate) d_->deactivate(h);
      d_->cleanup(h);
    }
  }

  /// Non-RT. Makes `count` instances with `initial` control values.
  absl::Status Start(size_t count, double sample_rate_hz, const std::vector<double>& initial) {
    for (size_t i = 0; i < ports_.control_in.size(); ++i)
      controls_[i] = static_cast<LADSPA_Data>(initial[i]);
    control_out_.reset(new LADSPA_Data[std::max<size_t>(1, count * ports_.control_out.size())]());
    for (size_t j = 0; j < count; ++j) {
      LADSPA_Handle h =
          d_->instantiate(d_, static_cast<unsigned long>(std::lround(sample_rate_hz)));
      if (h == nullptr) return absl::InternalError("LADSPA instantiate failed");
      handles_.push_back(h);
      for (size_t i = 0; i < ports_.control_in.size(); ++i)
        d_->connect_port(h, ports_.control_in[i], &controls_[i]);
      for (size_t i = 0; i < ports_.control_out.size(); ++i) {
        d_->connect_port(h, ports_.control_out[i],
                         &control_out_[j * ports_.control_out.size() + i]);
      }
    }
    for (LADSPA_Handle h : handles_) {
      if (d_->activate) d_->activate(h);
    }
    activated_ = true;
    if (ports_.latency_out) Prime(sample_rate_hz);
    return absl::OkStatus();
  }

  /// Non-RT. Latency read from the plugin's "latency" output port.
  uint32_t LatencyFrames() const noexcept override { return latency_frames_; }
  bool ExternalCode() const noexcept override { return true; }

  /// Non-RT. Runs one short period of silence so the plugin fills its
  /// latency port, reads it, and resets the instances (deactivate +
  /// activate) so the primed state does not leak into the audio.
  void Prime(double sample_rate_hz) {
    // Plugin DSP runs here as on the audio thread: subnormals flushed.
    rt::ScopedFlushToZero flush_to_zero;
    constexpr unsigned long kFrames = 64;
    std::vector<LADSPA_Data> in(kFrames, 0.0f), out(kFrames, 0.0f);
    for (LADSPA_Handle h : handles_) {
      for (size_t a = 0; a < ports_.audio_in.size(); ++a) {
        d_->connect_port(h, ports_.audio_in[a], in.data());
        d_->connect_port(h, ports_.audio_out[a], out.data());
      }
      d_->run(h, kFrames);
    }
    const double reported =
        static_cast<double>(control_out_[*ports_.latency_out]);  // the first instance's port
    const double limit = 10.0 * sample_rate_hz;
    latency_frames_ = std::isfinite(reported) && reported > 0.0
                          ? static_cast<uint32_t>(std::lround(std::min(reported, limit)))
                          : 0;
    for (LADSPA_Handle h : handles_) {
      if (d_->deactivate) d_->deactivate(h);
      if (d_->activate) d_->activate(h);
    }
  }

  /// Audio thread. Wait-free if the LADSPA plugin is hard-RT capable (its
  /// connect_port and run only store pointers and compute).
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    mailbox_.Drain([this](uint32_t i, double v) { controls_[i] = static_cast<LADSPA_Data>(v); });
    const size_t k = ports_.audio_in.size();
    for (size_t j = 0; j < handles_.size(); ++j) {
      LADSPA_Handle h = handles_[j];
      for (size_t a = 0; a < k; ++a) {
        // LADSPA's signature is non-const; it does not write its inputs.
        d_->connect_port(h, ports_.audio_in[a], const_cast<float*>(in[j * k + a]));
        d_->connect_port(h, ports_.audio_out[a], out[j * k + a]);
      }
      d_->run(h, frames);
    }
  }

  /// Any thread. Wait-free.
  void SetParam(uint32_t param, uint32_t element, double value) noexcept override {
    (void)element;
    if (param >= mins_.size() || !std::isfinite(value)) return;
    mailbox_.Post(param, std::clamp(value, mins_[param], maxs_[param]));
  }

 private:
  std::shared_ptr<const LoadedPlugin> lib_;
  const LADSPA_Descriptor* d_;
  PortMap ports_;
  uint32_t latency_frames_ = 0;
  std::vector<double> mins_, maxs_;
  std::unique_ptr<LADSPA_Data[]> controls_;     // shared by every instance
  std::unique_ptr<LADSPA_Data[]> control_out_;  // written by the plugin; "latency" read once
  std::vector<LADSPA_Handle> handles_;
  bool activated_ = false;
  ParamMailbox mailbox_;
};

class LadspaKind final : public model::NodeKind {
 public:
  LadspaKind(std::shared_ptr<const LoadedPlugin> lib, const LADSPA_Descriptor* d, std::string name,
             std::string description, PortMap ports, std::vector<model::ParamDesc> params)
      : lib_(std::move(lib)),
        d_(d),
        name_(std::move(name)),
        description_(std::move(description)),
        ports_(std::move(ports)),
        params_(std::move(params)) {}

  const std::string& name() const override { return name_; }
  std::string_view description() const override { return description_; }
  const std::vector<model::ParamDesc>& params() const override { return params_; }
  int max_channels() const override {
    return mono() ? model::kMaxChannels : static_cast<int>(ports_.audio_in.size());
  }
  bool mono() const { return ports_.audio_in.size() == 1; }

  void CheckSpec(const model::NodeSpec& spec, const std::string& prefix,
                 std::vector<model::Issue>& issues) const override {
    if (!mono() && spec.channels != static_cast<int>(ports_.audio_in.size())) {
      issues.push_back({prefix + ".channels",
                        absl::StrCat("LADSPA plugin '", d_->Label, "' has ", ports_.audio_in.size(),
                                     " audio channels; the node must have channels = ",
                                     ports_.audio_in.size())});
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
    for (const auto& raw : params_) {
      const model::ParamDesc p = raw.At(format.sample_rate_hz);  // Hz bounds at this rate
      auto it = params.find(p.name);
      initial.push_back(it != params.end() ? NumericValue(p, it->second)
                                           : NumericValue(p, p.default_value));
      mins.push_back(p.type == model::ParamType::kBool ? 0.0 : p.min);
      maxs.push_back(p.type == model::ParamType::kBool ? 1.0 : p.max);
    }
    auto proc = std::make_unique<LadspaProcessor>(lib_, d_, ports_, mins, maxs);
    const size_t count = mono() ? static_cast<size_t>(spec.channels) : 1;
    if (auto s = proc->Start(count, format.sample_rate_hz, initial); !s.ok()) {
      return absl::InternalError(absl::StrCat("LADSPA kind '", name_, "': ", s.message()));
    }
    return proc;
  }

 private:
  std::shared_ptr<const LoadedPlugin> lib_;
  const LADSPA_Descriptor* d_;
  std::string name_;
  std::string description_;
  PortMap ports_;
  std::vector<model::ParamDesc> params_;
};

// Range and default of one control port from its hints.
model::ParamDesc ControlParam(const std::string& name, const std::string& port_name,
                              const LADSPA_PortRangeHint& hint) {
  const LADSPA_PortRangeHintDescriptor h = hint.HintDescriptor;
  // SAMPLE_RATE bounds stay fractions of the rate here (ParamDesc::At
  // scales them); an unbounded side is a fraction that covers any rate.
  const bool per_rate = LADSPA_IS_HINT_SAMPLE_RATE(h);
  const double unbounded = per_rate ? kUnbounded / 1000.0 : kUnbounded;
  double lo = LADSPA_IS_HINT_BOUNDED_BELOW(h) ? static_cast<double>(hint.LowerBound) : -unbounded;
  double hi = LADSPA_IS_HINT_BOUNDED_ABOVE(h) ? static_cast<double>(hint.UpperBound) : unbounded;
  if (!std::isfinite(lo)) lo = -unbounded;
  if (!std::isfinite(hi)) hi = unbounded;
  if (lo > hi) std::swap(lo, hi);
  const bool log = LADSPA_IS_HINT_LOGARITHMIC(h) && lo > 0.0 && hi > 0.0;
  auto between = [&](double w_hi) {
    return log ? std::exp(std::log(lo) * (1.0 - w_hi) + std::log(hi) * w_hi)
               : lo * (1.0 - w_hi) + hi * w_hi;
  };
  double def;
  bool def_from_bounds = true;  // else one of the absolute defaults 0, 1, 100, 440
  switch (h & LADSPA_HINT_DEFAULT_MASK) {
    case LADSPA_HINT_DEFAULT_MINIMUM:
      def = lo;
      break;
    case LADSPA_HINT_DEFAULT_LOW:
      def = between(0.25);
      break;
    case LADSPA_HINT_DEFAULT_MIDDLE:
      def = between(0.5);
      break;
    case LADSPA_HINT_DEFAULT_HIGH:
      def = between(0.75);
      break;
    case LADSPA_HINT_DEFAULT_MAXIMUM:
      def = hi;
      break;
    case LADSPA_HINT_DEFAULT_0:
      def = 0.0;
      def_from_bounds = false;
      break;
    case LADSPA_HINT_DEFAULT_1:
      def = 1.0;
      def_from_bounds = false;
      break;
    case LADSPA_HINT_DEFAULT_100:
      def = 100.0;
      def_from_bounds = false;
      break;
    case LADSPA_HINT_DEFAULT_440:
      def = 440.0;
      def_from_bounds = false;
      break;
    default:
      def = 0.0;
      break;
  }
  // Defaults derived from per-rate bounds scale with the rate; the absolute
  // ones (0, 1, 100, 440) do not, and are clamped into range by At().
  if (def_from_bounds || !per_rate) def = std::clamp(def, lo, hi);
  model::ParamDesc p;
  p.per_sample_rate = per_rate;
  p.default_per_sample_rate = per_rate && def_from_bounds;
  p.name = name;
  p.help = port_name;
  p.live = true;
  if (LADSPA_IS_HINT_TOGGLED(h)) {
    p.type = model::ParamType::kBool;
    p.default_value = def > 0.0;
  } else if (LADSPA_IS_HINT_INTEGER(h) && per_rate) {
    p.type = model::ParamType::kInteger;  // At() rounds the scaled bounds inwards
    p.min = lo;
    p.max = hi;
    p.default_value = def;
  } else if (LADSPA_IS_HINT_INTEGER(h)) {
    p.type = model::ParamType::kInteger;
    p.min = std::ceil(lo);
    p.max = std::floor(hi);
    if (p.min > p.max) p.max = p.min;
    p.default_value = std::clamp(std::round(def), p.min, p.max);
  } else {
    p.type = model::ParamType::kNumber;
    p.min = lo;
    p.max = hi;
    p.default_value = def;
  }
  if (LADSPA_IS_HINT_SAMPLE_RATE(h)) p.unit = "Hz";
  return p;
}

}  // namespace

std::optional<KindList> MakeLadspaKinds(const std::shared_ptr<const LoadedPlugin>& plugin,
                                        Refusal& refusal) {
  const Manifest& m = plugin->manifest();
  auto refuse = [&](RefusalCode code, std::string message, std::string seen = "",
                    std::string expected = "") -> std::optional<KindList> {
    refusal = {code, std::move(message), std::move(seen), std::move(expected)};
    return std::nullopt;
  };
  auto fn = reinterpret_cast<LADSPA_Descriptor_Function>(plugin->OwnSymbol("ladspa_descriptor"));
  if (fn == nullptr)
    return refuse(RefusalCode::kEntryMissing, "the module does not define ladspa_descriptor");

  KindList out;
  for (const LadspaLabel& want : m.labels) {
    const LADSPA_Descriptor* d = nullptr;
    for (unsigned long i = 0; i < kMaxDescriptors; ++i) {
      const LADSPA_Descriptor* c = fn(i);
      if (c == nullptr) break;
      auto label = Bounded(c->Label, 256);
      if (label && *label == want.label) {
        d = c;
        break;
      }
    }
    if (d == nullptr) {
      return refuse(RefusalCode::kLadspaLabelMissing,
                    absl::StrCat("the module has no LADSPA plugin labelled '", want.label, "'"));
    }
    auto bad = [&](const std::string& what) {
      return refuse(RefusalCode::kLadspaUnsupported,
                    absl::StrCat("LADSPA plugin '", want.label, "': ", what));
    };
    if (d->PortCount > kMaxPorts ||
        (d->PortCount > 0 && (!d->PortDescriptors || !d->PortNames || !d->PortRangeHints))) {
      return bad("invalid port table");
    }
    if (!d->instantiate || !d->connect_port || !d->run || !d->cleanup)
      return bad("a required function is NULL");
    PortMap ports;
    std::vector<model::ParamDesc> params;
    std::set<std::string> names;
    for (unsigned long p = 0; p < d->PortCount; ++p) {
      const LADSPA_PortDescriptor pd = d->PortDescriptors[p];
      const bool input = LADSPA_IS_PORT_INPUT(pd);
      if (LADSPA_IS_PORT_AUDIO(pd)) {
        (input ? ports.audio_in : ports.audio_out).push_back(p);
      } else if (LADSPA_IS_PORT_CONTROL(pd)) {
        if (!input) {
          auto name = Bounded(d->PortNames[p], 256);
          if (name && absl::EqualsIgnoreCase(*name, "latency") && !ports.latency_out) {
            ports.latency_out = ports.control_out.size();
          }
          ports.control_out.push_back(p);
          continue;
        }
        ports.control_in.push_back(p);
        const std::string port_name = Bounded(d->PortNames[p], 256).value_or("control");
        std::string n = PortParamName(port_name);
        for (int k = 2; names.count(n); ++k) n = absl::StrCat(PortParamName(port_name), "_", k);
        names.insert(n);
        params.push_back(ControlParam(n, port_name, d->PortRangeHints[p]));
      } else {
        return bad(absl::StrCat("port ", p, " is neither audio nor control"));
      }
    }
    if (ports.audio_in.empty() || ports.audio_in.size() != ports.audio_out.size()) {
      return bad(
          absl::StrCat("has ", ports.audio_in.size(), " audio inputs and ", ports.audio_out.size(),
                       " audio outputs; AERS hosts LADSPA plugins with k inputs and k outputs"));
    }
    if (ports.audio_in.size() > static_cast<size_t>(model::kMaxChannels))
      return bad("too many audio ports");
    if (!LADSPA_IS_HARD_RT_CAPABLE(d->Properties)) {
      spdlog::warn("plugin '{}': LADSPA plugin '{}' does not claim to be hard real-time capable",
                   m.name, want.label);
    }
    std::string description =
        absl::StrCat("LADSPA: ", Bounded(d->Name, 256).value_or(want.label), " (", want.label, ")");
    out.push_back(std::make_shared<LadspaKind>(plugin, d, absl::StrCat(m.name, "/", want.kind),
                                               std::move(description), std::move(ports),
                                               std::move(params)));
  }
  return out;
}

}  // namespace aers::plugin

#else  // built without ladspa.h (Debian: ladspa-sdk)

namespace aers::plugin {

std::optional<KindList> MakeLadspaKinds(const std::shared_ptr<const LoadedPlugin>&,
                                        Refusal& refusal) {
  refusal = {RefusalCode::kLadspaUnsupported,
             "this build has no LADSPA support (ladspa.h was missing)", "", ""};
  return std::nullopt;
}

}  // namespace aers::plugin

#endif
