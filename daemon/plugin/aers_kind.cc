// Node kinds from the AERS C ABI (include/aers/plugin.h).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aers/plugin.h"
#include "plugin/kinds.h"
#include "plugin/manifest.h"
#include "plugin/param_mailbox.h"

namespace aers::plugin {
namespace {

// A C string from the plugin, bounded; nullopt if NULL or unterminated.
std::optional<std::string> BoundedString(const char* s, size_t max) {
  if (s == nullptr) return std::nullopt;
  const size_t n = ::strnlen(s, max + 1);
  if (n > max) return std::nullopt;
  return std::string(s, n);
}

// The kinds array is indexed by the plugin's own struct_size, which may be
// smaller than this host's (optional members added later).
const aers_kind_descriptor& KindAt(const aers_plugin_descriptor& d, uint32_t k) {
  const auto* base = reinterpret_cast<const char*>(d.kinds);
  return *reinterpret_cast<const aers_kind_descriptor*>(base + size_t{k} * d.kinds[0].struct_size);
}

bool HasLatency(const aers_kind_descriptor& kd) {
  return kd.struct_size >=
             offsetof(aers_kind_descriptor, latency_frames) + sizeof(kd.latency_frames) &&
         kd.latency_frames != nullptr;
}

/// One instance of a plugin kind.
class AersProcessor final : public rt::Processor {
 public:
  /// Non-RT. Takes ownership of an activated `instance`.
  AersProcessor(std::shared_ptr<const LoadedPlugin> lib, const aers_kind_descriptor* kind,
                aers_plugin_instance instance, uint32_t latency_frames)
      : lib_(std::move(lib)),
        kind_(kind),
        instance_(instance),
        latency_frames_(latency_frames),
        mailbox_(kind->param_count) {}

  /// Non-RT: the engine destroys instances in Reclaim(), off the audio
  /// thread. Deactivates and destroys the plugin instance; the library stays
  /// loaded until `lib_` (the last reference, perhaps) goes.
  ~AersProcessor() override {
    kind_->deactivate(instance_);
    kind_->destroy(instance_);
  }

  /// Audio thread. Wait-free if the plugin keeps its RT contract: delivers
  /// pending parameter changes, then runs the plugin's process().
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    mailbox_.Drain([this](uint32_t i, double v) { kind_->set_parameter(instance_, i, v); });
    kind_->process(instance_, in, out, frames);
  }

  /// Any thread. Wait-free: clamps and posts; Process() delivers it.
  void SetParam(uint32_t param, uint32_t element, double value) noexcept override {
    (void)element;
    if (param >= kind_->param_count || !std::isfinite(value)) return;
    const auto& d = kind_->params[param];
    mailbox_.Post(param, std::clamp(value, d.min_value, d.max_value));
  }

  uint32_t LatencyFrames() const noexcept override { return latency_frames_; }
  bool ExternalCode() const noexcept override { return true; }

 private:
  std::shared_ptr<const LoadedPlugin> lib_;
  const aers_kind_descriptor* kind_;
  aers_plugin_instance instance_;
  uint32_t latency_frames_;
  ParamMailbox mailbox_;
};

class AersKind final : public model::NodeKind {
 public:
  AersKind(std::shared_ptr<const LoadedPlugin> lib, const aers_kind_descriptor* kind,
           std::string name, std::string description, std::vector<model::ParamDesc> params)
      : lib_(std::move(lib)),
        kind_(kind),
        name_(std::move(name)),
        description_(std::move(description)),
        params_(std::move(params)) {}

  const std::string& name() const override { return name_; }
  std::string_view description() const override { return description_; }
  const std::vector<model::ParamDesc>& params() const override { return params_; }
  int max_channels() const override { return static_cast<int>(kind_->max_channels); }

  model::NodeLayout Layout(const model::NodeSpec& spec) const override {
    model::NodeLayout l;
    auto width = [&](uint32_t c) {
      return c == AERS_CHANNELS_FOLLOW_NODE ? spec.channels : static_cast<int>(c);
    };
    if (kind_->input_channels != 0) l.inputs.push_back({"in", width(kind_->input_channels)});
    if (kind_->output_channels != 0) l.outputs.push_back({"out", width(kind_->output_channels)});
    return l;
  }

  /// Non-RT. instantiate -> set every parameter -> activate.
  absl::StatusOr<std::unique_ptr<rt::Processor>> Instantiate(
      const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& params,
      const rt::StreamFormat& format) const override {
    aers_plugin_instance inst =
        kind_->instantiate(kind_, format.sample_rate_hz, format.max_period_frames,
                           static_cast<uint32_t>(spec.channels));
    if (inst == nullptr) {
      return absl::InternalError(absl::StrCat("plugin kind '", name_, "': instantiate failed"));
    }
    for (uint32_t i = 0; i < kind_->param_count; ++i) {
      auto it = params.find(params_[i].name);
      double v = kind_->params[i].default_value;
      if (it != params.end()) v = NumericValue(params_[i], it->second);
      kind_->set_parameter(inst, i,
                           std::clamp(v, kind_->params[i].min_value, kind_->params[i].max_value));
    }
    if (kind_->activate(inst) != 0) {
      kind_->destroy(inst);
      return absl::InternalError(absl::StrCat("plugin kind '", name_, "': activate failed"));
    }
    uint32_t latency = 0;
    if (HasLatency(*kind_)) {
      latency = kind_->latency_frames(inst);
      const auto limit = static_cast<uint32_t>(std::lround(10.0 * format.sample_rate_hz));
      if (latency > limit) {
        kind_->deactivate(inst);
        kind_->destroy(inst);
        return absl::InternalError(absl::StrCat("plugin kind '", name_, "' reports ", latency,
                                                " frames of latency; at most ", limit,
                                                " (10 s) are accepted"));
      }
    }
    return std::make_unique<AersProcessor>(lib_, kind_, inst, latency);
  }

 private:
  std::shared_ptr<const LoadedPlugin> lib_;
  const aers_kind_descriptor* kind_;
  std::string name_;
  std::string description_;
  std::vector<model::ParamDesc> params_;
};

bool ValidParamName(const std::string& s) {
  if (s.empty() || s.size() > AERS_PLUGIN_MAX_NAME || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

std::optional<KindList> MakeAersKinds(const std::shared_ptr<const LoadedPlugin>& plugin,
                                      Refusal& refusal) {
  const Manifest& m = plugin->manifest();
  auto refuse = [&](RefusalCode code, std::string message, std::string seen = "",
                    std::string expected = "") -> std::optional<KindList> {
    refusal = {code, std::move(message), std::move(seen), std::move(expected)};
    return std::nullopt;
  };
  auto entry = reinterpret_cast<aers_plugin_entry_fn>(plugin->OwnSymbol(AERS_PLUGIN_ENTRY_SYMBOL));
  if (entry == nullptr) {
    return refuse(RefusalCode::kEntryMissing,
                  absl::StrCat("the module does not define ", AERS_PLUGIN_ENTRY_SYMBOL));
  }
  const aers_plugin_descriptor* d = entry(AERS_PLUGIN_ABI_VERSION);
  if (d == nullptr) {
    return refuse(RefusalCode::kAbiMismatch,
                  "the entry point returned no descriptor for this host's ABI", "none",
                  absl::StrCat(AERS_PLUGIN_ABI_VERSION));
  }
  if (d->abi_version != AERS_PLUGIN_ABI_VERSION) {
    return refuse(RefusalCode::kAbiMismatch,
                  absl::StrCat("the plugin was built for ABI ", d->abi_version,
                               ", this host has ABI ", AERS_PLUGIN_ABI_VERSION),
                  absl::StrCat(d->abi_version), absl::StrCat(AERS_PLUGIN_ABI_VERSION));
  }
  if (d->kind_count == 0 || d->kind_count > AERS_PLUGIN_MAX_KINDS || d->kinds == nullptr) {
    return refuse(RefusalCode::kDescriptorInvalid,
                  absl::StrCat("kind_count ", d->kind_count, " is out of range"));
  }
  // struct_size is the first member: read it before anything is indexed by it.
  const uint32_t stride = d->kinds[0].struct_size;
  if (stride < AERS_KIND_DESCRIPTOR_MIN_SIZE || stride > 4096 || stride % alignof(void*) != 0) {
    return refuse(RefusalCode::kDescriptorInvalid,
                  absl::StrCat("kind #0 has struct_size ", stride, "; expected at least ",
                               AERS_KIND_DESCRIPTOR_MIN_SIZE));
  }
  const std::set<std::string> allowed(m.allowed_node_kinds.begin(), m.allowed_node_kinds.end());
  // First pass: names only, so an undeclared kind is refused before any
  // other detail of its descriptor is trusted.
  for (uint32_t k = 0; k < d->kind_count; ++k) {
    auto name = BoundedString(KindAt(*d, k).name, AERS_PLUGIN_MAX_NAME);
    if (!name || !IsValidKindName(*name)) {
      return refuse(RefusalCode::kDescriptorInvalid,
                    absl::StrCat("kind #", k, " has an invalid name"));
    }
    if (!allowed.count(*name)) {
      return refuse(RefusalCode::kKindNotAllowed,
                    absl::StrCat("the plugin declares kind '", *name,
                                 "', which its manifest's allowed_node_kinds does not list"),
                    *name,
                    absl::StrCat("one of [", absl::StrJoin(m.allowed_node_kinds, ", "), "]"));
    }
  }
  KindList out;
  std::set<std::string> seen;
  for (uint32_t k = 0; k < d->kind_count; ++k) {
    const aers_kind_descriptor& kd = KindAt(*d, k);
    const std::string name = *BoundedString(kd.name, AERS_PLUGIN_MAX_NAME);
    auto bad = [&](const std::string& what) {
      return refuse(RefusalCode::kDescriptorInvalid, absl::StrCat("kind '", name, "': ", what));
    };
    if (!seen.insert(name).second) return bad("declared twice");
    if (kd.struct_size != stride) return bad("struct_size differs from the first kind's");
    if (!kd.instantiate || !kd.activate || !kd.process || !kd.set_parameter || !kd.deactivate ||
        !kd.destroy) {
      return bad("a function pointer is NULL");
    }
    if (kd.max_channels < 1 || kd.max_channels > static_cast<uint32_t>(model::kMaxChannels)) {
      return bad(absl::StrCat("max_channels ", kd.max_channels, " is out of range 1..",
                              model::kMaxChannels));
    }
    for (uint32_t c : {kd.input_channels, kd.output_channels}) {
      if (c != AERS_CHANNELS_FOLLOW_NODE && c > static_cast<uint32_t>(model::kMaxChannels)) {
        return bad(absl::StrCat("port width ", c, " is out of range"));
      }
    }
    if (kd.input_channels == 0 && kd.output_channels == 0)
      return bad("has neither input nor output");
    if (kd.param_count > AERS_PLUGIN_MAX_PARAMS || (kd.param_count > 0 && kd.params == nullptr)) {
      return bad(absl::StrCat("param_count ", kd.param_count, " is out of range"));
    }
    std::vector<model::ParamDesc> params;
    std::set<std::string> pnames;
    for (uint32_t i = 0; i < kd.param_count; ++i) {
      const aers_param_descriptor& p = kd.params[i];
      auto pname = BoundedString(p.name, AERS_PLUGIN_MAX_NAME);
      if (!pname || !ValidParamName(*pname) || !pnames.insert(*pname).second) {
        return bad(absl::StrCat("parameter #", i, " has an invalid or duplicate name"));
      }
      if (!std::isfinite(p.min_value) || !std::isfinite(p.max_value) ||
          !std::isfinite(p.default_value) || p.min_value > p.max_value ||
          p.default_value < p.min_value || p.default_value > p.max_value) {
        return bad(absl::StrCat("parameter '", *pname, "' has an invalid range or default"));
      }
      model::ParamDesc pd;
      pd.name = *pname;
      pd.type = model::ParamType::kNumber;
      pd.min = p.min_value;
      pd.max = p.max_value;
      pd.default_value = p.default_value;
      pd.unit = BoundedString(p.unit, 32).value_or("");
      pd.help = BoundedString(p.help, 256).value_or("");
      pd.live = true;
      params.push_back(std::move(pd));
    }
    std::string description = BoundedString(kd.description, 256).value_or("");
    out.push_back(std::make_shared<AersKind>(plugin, &kd, absl::StrCat(m.name, "/", name),
                                             std::move(description), std::move(params)));
  }
  return out;
}

}  // namespace aers::plugin
