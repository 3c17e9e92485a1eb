#include "dsp/builtins.h"

#include <cmath>

#include "dsp/kind_base.h"

namespace aers::dsp {

model::NodeLayout InOutLayout(const model::NodeSpec& spec) {
  model::NodeLayout l;
  l.inputs.push_back({"in", spec.channels});
  l.outputs.push_back({"out", spec.channels});
  return l;
}

model::ParamDesc NumberParam(std::string name, double min, double max, double def, std::string unit,
                             std::string help, bool live) {
  model::ParamDesc d;
  d.name = std::move(name);
  d.type = model::ParamType::kNumber;
  d.min = min;
  d.max = max;
  d.default_value = def;
  d.unit = std::move(unit);
  d.help = std::move(help);
  d.live = live;
  return d;
}

model::ParamDesc BoolParam(std::string name, bool def, std::string help) {
  model::ParamDesc d;
  d.name = std::move(name);
  d.type = model::ParamType::kBool;
  d.default_value = def;
  d.help = std::move(help);
  return d;
}

model::ParamDesc FileParam(std::string name, std::string help) {
  model::ParamDesc d;
  d.name = std::move(name);
  d.type = model::ParamType::kFile;
  d.default_value = std::string();
  d.live = false;
  d.help = std::move(help);
  return d;
}

double GetNumber(const std::map<std::string, model::ParamValue>& params, const std::string& name) {
  return std::get<double>(params.at(name));
}

bool GetBool(const std::map<std::string, model::ParamValue>& params, const std::string& name) {
  return std::get<bool>(params.at(name));
}

double DbToGain(double db) {
  return db <= -120.0 ? 0.0 : std::pow(10.0, db / 20.0);
}

absl::Status RegisterBuiltins(model::KindRegistry& registry, const DataDirs& data) {
  for (auto kind : {MakeGainKind(), MakeMixerKind(), MakeDelayKind(), MakeBiquadKind(),
                    MakeMeterKind(), MakeToneKind(), MakeCrossoverKind(), MakeVolumeKind(),
                    MakeCompressorKind(), MakeLimiterKind(), MakeGateKind(), MakeDitherKind(),
                    MakeConvolverKind(data), MakePeqKind(data)}) {
    if (auto st = registry.Add(std::move(kind)); !st.ok()) return st;
  }
  return absl::OkStatus();
}

std::unique_ptr<model::KindRegistry> MakeBuiltinRegistry(const DataDirs& data) {
  auto registry = std::make_unique<model::KindRegistry>();
  // Cannot fail on an empty registry.
  (void)RegisterBuiltins(*registry, data);
  return registry;
}

}  // namespace aers::dsp
