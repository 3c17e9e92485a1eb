#include "model/kind.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace aers::model {

std::string_view ParamTypeName(ParamType type) {
  switch (type) {
    case ParamType::kNumber:
      return "number";
    case ParamType::kInteger:
      return "integer";
    case ParamType::kBool:
      return "bool";
    case ParamType::kEnum:
      return "enum";
    case ParamType::kNumberList:
      return "number list";
    case ParamType::kFile:
      return "file";
  }
  return "?";
}

int NodeLayout::TotalInputChannels() const {
  int n = 0;
  for (const auto& p : inputs) n += p.channels;
  return n;
}

int NodeLayout::TotalOutputChannels() const {
  int n = 0;
  for (const auto& p : outputs) n += p.channels;
  return n;
}

const PortDesc* NodeLayout::FindInput(std::string_view name) const {
  if (name.empty()) return inputs.empty() ? nullptr : &inputs.front();
  for (const auto& p : inputs) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const PortDesc* NodeLayout::FindOutput(std::string_view name) const {
  if (name.empty()) return outputs.empty() ? nullptr : &outputs.front();
  for (const auto& p : outputs) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const ParamDesc* NodeKind::FindParam(std::string_view name) const {
  for (const auto& p : params()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

int NodeKind::ParamIndex(std::string_view name) const {
  const auto& ps = params();
  for (size_t i = 0; i < ps.size(); ++i) {
    if (ps[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

ParamDesc ParamDesc::At(double sample_rate_hz) const {
  ParamDesc d = *this;
  if (!per_sample_rate) return d;
  d.per_sample_rate = false;
  d.default_per_sample_rate = false;
  d.min = min * sample_rate_hz;
  d.max = max * sample_rate_hz;
  if (type == ParamType::kInteger) {
    d.min = std::ceil(d.min);
    d.max = std::max(d.min, std::floor(d.max));
  }
  if (const auto* v = std::get_if<double>(&default_value)) {
    double def = default_per_sample_rate ? *v * sample_rate_hz : *v;
    if (type == ParamType::kInteger) def = std::round(def);
    d.default_value = std::clamp(def, d.min, d.max);
  }
  return d;
}

bool NodeKind::ReadsFiles() const {
  const auto& descs = params();
  return std::any_of(descs.begin(), descs.end(),
                     [](const ParamDesc& d) { return d.type == ParamType::kFile; });
}

std::map<std::string, ParamValue> NodeKind::ResolveParams(const NodeSpec& spec,
                                                          double sample_rate_hz) const {
  std::map<std::string, ParamValue> out;
  for (const auto& p : params()) {
    auto it = spec.params.find(p.name);
    out[p.name] = it != spec.params.end() ? it->second : p.At(sample_rate_hz).default_value;
  }
  return out;
}

double NodeKind::NumericValue(const ParamDesc& desc, const ParamValue& value, size_t element) {
  if (const auto* b = std::get_if<bool>(&value)) return *b ? 1.0 : 0.0;
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* s = std::get_if<std::string>(&value)) {
    const auto it = std::find(desc.choices.begin(), desc.choices.end(), *s);
    return it == desc.choices.end() ? 0.0 : static_cast<double>(it - desc.choices.begin());
  }
  const auto& list = std::get<std::vector<double>>(value);
  return element < list.size() ? list[element] : 0.0;
}

bool NodeKind::UpdateLive(rt::Processor* instance, const NodeSpec& before,
                          const NodeSpec& after) const {
  if (before.kind != after.kind || before.channels != after.channels ||
      before.preset != after.preset) {
    return false;
  }
  // Compared at one nominal rate: only whether a value changed matters here.
  constexpr double kNominalRateHz = 48000.0;
  const auto old_params = ResolveParams(before, kNominalRateHz);
  const auto new_params = ResolveParams(after, kNominalRateHz);
  const auto& descs = params();
  // First pass: refuse before touching anything.
  for (const auto& d : descs) {
    if (old_params.at(d.name) == new_params.at(d.name)) continue;
    if (!d.live) return false;
    // A default that scales with the rate is not known here: rebuild.
    if (d.per_sample_rate && (!before.params.count(d.name) || !after.params.count(d.name))) {
      return false;
    }
    if (d.type == ParamType::kNumberList &&
        std::get<std::vector<double>>(old_params.at(d.name)).size() !=
            std::get<std::vector<double>>(new_params.at(d.name)).size()) {
      return false;
    }
  }
  if (instance == nullptr) return true;
  for (size_t i = 0; i < descs.size(); ++i) {
    const auto& d = descs[i];
    const auto& nv = new_params.at(d.name);
    if (old_params.at(d.name) == nv) continue;
    if (d.type == ParamType::kNumberList) {
      const auto& list = std::get<std::vector<double>>(nv);
      for (size_t e = 0; e < list.size(); ++e) {
        instance->SetParam(static_cast<uint32_t>(i), static_cast<uint32_t>(e), list[e]);
      }
    } else {
      instance->SetParam(static_cast<uint32_t>(i), 0, NumericValue(d, nv));
    }
  }
  return true;
}

absl::Status KindRegistry::Add(std::shared_ptr<const NodeKind> kind) {
  const std::string& name = kind->name();
  if (kinds_.count(name)) {
    return absl::AlreadyExistsError(absl::StrCat("node kind '", name, "' is already registered"));
  }
  kinds_.emplace(name, std::move(kind));
  return absl::OkStatus();
}

const NodeKind* KindRegistry::Find(std::string_view name) const {
  auto it = kinds_.find(name);
  return it == kinds_.end() ? nullptr : it->second.get();
}

void KindRegistry::NoteRefusedPlugin(std::string plugin, std::string why) {
  refused_[std::move(plugin)] = std::move(why);
}

const std::string* KindRegistry::RefusalOf(std::string_view kind_name) const {
  const size_t slash = kind_name.find('/');
  if (slash == std::string_view::npos) return nullptr;
  const auto it = refused_.find(kind_name.substr(0, slash));
  return it == refused_.end() ? nullptr : &it->second;
}

std::vector<const NodeKind*> KindRegistry::List() const {
  std::vector<const NodeKind*> out;
  out.reserve(kinds_.size());
  for (const auto& [name, kind] : kinds_) out.push_back(kind.get());
  return out;
}

std::vector<std::string> ApplyStartupLimits(GraphSpec& graph, const KindRegistry& kinds) {
  std::vector<std::string> changes;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    NodeSpec& node = graph.nodes[i];
    const NodeKind* kind = kinds.Find(node.kind);
    if (kind == nullptr) continue;
    if (std::string what = kind->AtStartup(node); !what.empty()) {
      changes.push_back("nodes[" + std::to_string(i) + "] " + node.name + ": " + what);
    }
  }
  return changes;
}

}  // namespace aers::model
