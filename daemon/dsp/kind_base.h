// A NodeKind described by tables and two functions: what every built-in kind
// (and later, plugin kinds) is made of.
//
// Thread: non-real-time.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dsp/data_files.h"
#include "model/kind.h"

namespace aers::dsp {

class TableKind : public model::NodeKind {
 public:
  using LayoutFn = std::function<model::NodeLayout(const model::NodeSpec&)>;
  using CheckFn = std::function<void(const model::NodeSpec&, const std::string& prefix,
                                     std::vector<model::Issue>&)>;
  using FactoryFn = std::function<absl::StatusOr<std::unique_ptr<rt::Processor>>(
      const model::NodeSpec&, const std::map<std::string, model::ParamValue>&,
      const rt::StreamFormat&)>;

  using StartupFn = std::function<std::string(model::NodeSpec&)>;

  TableKind(std::string name, std::string description, std::vector<model::ParamDesc> params,
            LayoutFn layout, FactoryFn factory, CheckFn check = nullptr,
            StartupFn startup = nullptr)
      : name_(std::move(name)),
        description_(std::move(description)),
        params_(std::move(params)),
        layout_(std::move(layout)),
        factory_(std::move(factory)),
        check_(std::move(check)),
        startup_(std::move(startup)) {}

  const std::string& name() const override { return name_; }
  std::string_view description() const override { return description_; }
  const std::vector<model::ParamDesc>& params() const override { return params_; }
  void CheckSpec(const model::NodeSpec& spec, const std::string& prefix,
                 std::vector<model::Issue>& issues) const override {
    if (check_) check_(spec, prefix, issues);
  }
  std::string AtStartup(model::NodeSpec& spec) const override {
    return startup_ ? startup_(spec) : std::string();
  }
  model::NodeLayout Layout(const model::NodeSpec& spec) const override { return layout_(spec); }
  absl::StatusOr<std::unique_ptr<rt::Processor>> Instantiate(
      const model::NodeSpec& spec, const std::map<std::string, model::ParamValue>& params,
      const rt::StreamFormat& format) const override {
    return factory_(spec, params, format);
  }

 private:
  std::string name_;
  std::string description_;
  std::vector<model::ParamDesc> params_;
  LayoutFn layout_;
  FactoryFn factory_;
  CheckFn check_;
  StartupFn startup_;
};

/// in -> out, both `channels` wide.
model::NodeLayout InOutLayout(const model::NodeSpec& spec);

model::ParamDesc NumberParam(std::string name, double min, double max, double def, std::string unit,
                             std::string help, bool live = true);

model::ParamDesc BoolParam(std::string name, bool def, std::string help);

/// A data file's path (ParamType::kFile): not live, no default (the kind's
/// CheckSpec says it is required).
model::ParamDesc FileParam(std::string name, std::string help);

double GetNumber(const std::map<std::string, model::ParamValue>& params, const std::string& name);
bool GetBool(const std::map<std::string, model::ParamValue>& params, const std::string& name);

/// dB -> linear amplitude (-inf dB and below -120 dB -> 0).
double DbToGain(double db);

std::shared_ptr<model::NodeKind> MakeGainKind();
std::shared_ptr<model::NodeKind> MakeMixerKind();
std::shared_ptr<model::NodeKind> MakeDelayKind();
std::shared_ptr<model::NodeKind> MakeBiquadKind();
std::shared_ptr<model::NodeKind> MakeMeterKind();
std::shared_ptr<model::NodeKind> MakeToneKind();
std::shared_ptr<model::NodeKind> MakeCrossoverKind();
std::shared_ptr<model::NodeKind> MakeVolumeKind();
std::shared_ptr<model::NodeKind> MakeCompressorKind();
std::shared_ptr<model::NodeKind> MakeLimiterKind();
std::shared_ptr<model::NodeKind> MakeGateKind();
std::shared_ptr<model::NodeKind> MakeDitherKind();
std::shared_ptr<model::NodeKind> MakeConvolverKind(DataDirs dirs);
std::shared_ptr<model::NodeKind> MakePeqKind(DataDirs dirs);

}  // namespace aers::dsp
