// Node kinds: what a node of a kind looks like (parameters, ports) and how to
// make an instance. Built-ins live in dsp/; plugins add their own later.
//
// Thread: non-real-time only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/graph.h"
#include "rt/processor.h"

namespace aers::model {

enum class ParamType {
  kNumber,      ///< double in [min, max]
  kInteger,     ///< whole number in [min, max]
  kBool,        ///< true/false
  kEnum,        ///< one of `choices`
  kNumberList,  ///< list of doubles, each in [min, max]
  kFile,        ///< a data file's path (UTF-8, 1 to kMaxPathBytes bytes, no control
                ///< characters); where it may point is the kind's business
                ///< (dsp/data_files.h)
};

/// Longest kFile value accepted (bytes), PATH_MAX.
inline constexpr size_t kMaxPathBytes = 4096;

std::string_view ParamTypeName(ParamType type);

struct ParamDesc {
  std::string name;  ///< with its unit: gain_db, freq_hz, delay_ms
  ParamType type = ParamType::kNumber;
  double min = 0.0;
  double max = 0.0;
  ParamValue default_value;
  std::string unit;                  ///< "dB", "Hz", "ms", "" ...
  std::vector<std::string> choices;  ///< kEnum only
  bool live = true;                  ///< changes reach a running instance without rebuilding it
  std::string help;
  /// min and max are fractions of the sample rate (LADSPA_HINT_SAMPLE_RATE):
  /// the range enforced is [min * rate, max * rate] at the stream's actual
  /// rate. Use At() for the range in force.
  bool per_sample_rate = false;
  /// With per_sample_rate: default_value is a fraction of the rate too
  /// (a LADSPA default derived from the bounds; 0/1/100/440 are absolute).
  bool default_per_sample_rate = false;

  /// This description at `sample_rate_hz` (Hz): per-sample-rate bounds and
  /// default scaled, integers rounded inwards, the default clamped into the
  /// range. Descriptions without per_sample_rate come back unchanged.
  ParamDesc At(double sample_rate_hz) const;
};

/// A named starting point a kind offers (an LV2 preset).
struct PresetInfo {
  std::string uri;    ///< what NodeSpec::preset names
  std::string label;  ///< for people ("" if the plugin gives none)
};

struct PortDesc {
  std::string name;
  int channels = 1;
};

/// The ports of one node, given its spec. The first input (output) is the
/// default a route uses when it names no port.
struct NodeLayout {
  std::vector<PortDesc> inputs;
  std::vector<PortDesc> outputs;
  int TotalInputChannels() const;
  int TotalOutputChannels() const;
  const PortDesc* FindInput(std::string_view name) const;
  const PortDesc* FindOutput(std::string_view name) const;
};

class NodeKind {
 public:
  virtual ~NodeKind() = default;

  virtual const std::string& name() const = 0;
  virtual std::string_view description() const = 0;
  virtual const std::vector<ParamDesc>& params() const = 0;
  /// Largest `channels` a node of this kind accepts.
  virtual int max_channels() const { return kMaxChannels; }
  /// Presets a node of this kind may start from (NodeSpec::preset).
  virtual std::vector<PresetInfo> presets() const { return {}; }

  /// Constraints between parameters beyond each one's type and range (for
  /// example: a mixer's gains_db has `inputs` entries). `prefix` is the
  /// node's path ("nodes[3]"); issues use it ("nodes[3].params.gains_db").
  /// Called only after every parameter passed its own type/range check.
  /// Its verdict may depend only on the spec, and on the files its kFile
  /// parameters name (ReadsFiles: such nodes are checked on every edit,
  /// since the files may change on disk).
  virtual void CheckSpec(const NodeSpec& spec, const std::string& prefix,
                         std::vector<Issue>& issues) const {
    (void)spec;
    (void)prefix;
    (void)issues;
  }

  /// What a valid node becomes when the daemon starts (from its config or
  /// its persisted state): a kind may pull parameters back to safe values
  /// (a master volume's start-up limit). Returns a description of what it
  /// changed ("" for nothing). The default changes nothing.
  virtual std::string AtStartup(NodeSpec& spec) const {
    (void)spec;
    return {};
  }
  /// Ports of a valid node of this kind.
  virtual NodeLayout Layout(const NodeSpec& spec) const = 0;

  /// Makes an instance of a valid node. `params` has every parameter (the
  /// spec's values with defaults filled in).
  virtual absl::StatusOr<std::unique_ptr<rt::Processor>> Instantiate(
      const NodeSpec& spec, const std::map<std::string, ParamValue>& params,
      const rt::StreamFormat& format) const = 0;

  /// Brings a running instance from `before` to `after` through SetParam
  /// when only live parameters differ; returns false when the change needs
  /// a new instance (channels, a non-live parameter). With a null `instance`
  /// it only answers whether it could. Wait-free for the audio thread (it
  /// only stores atomics). A live parameter never changes the node's
  /// Layout: the plan and the routes stay valid (the engine and
  /// model::ValidateNodeSettings rely on it).
  bool UpdateLive(rt::Processor* instance, const NodeSpec& before, const NodeSpec& after) const;

  /// The spec's parameters with defaults (at `sample_rate_hz`, Hz) filled in.
  std::map<std::string, ParamValue> ResolveParams(const NodeSpec& spec,
                                                  double sample_rate_hz) const;
  const ParamDesc* FindParam(std::string_view name) const;
  /// True when a parameter names a file (ParamType::kFile): CheckSpec may
  /// read it, so a node's verdict can change while its spec does not.
  bool ReadsFiles() const;
  int ParamIndex(std::string_view name) const;

  /// The numeric form of a value that SetParam takes (enum -> index, bool -> 0/1).
  static double NumericValue(const ParamDesc& desc, const ParamValue& value, size_t element = 0);
};

class KindRegistry;

/// Calls NodeKind::AtStartup on every node of `graph` whose kind is known.
/// Returns one line per change, "nodes[i] NAME: what changed". Non-RT.
std::vector<std::string> ApplyStartupLimits(GraphSpec& graph, const KindRegistry& kinds);

/// Node kinds by name. Built-ins are registered at start; plugins add theirs.
class KindRegistry {
 public:
  /// Fails if a kind of that name exists.
  absl::Status Add(std::shared_ptr<const NodeKind> kind);
  const NodeKind* Find(std::string_view name) const;
  std::vector<const NodeKind*> List() const;
  /// Notes why plugin `plugin`'s kinds ("PLUGIN/KIND") are absent: the
  /// gate's refusal, said again where a graph names one of them. Non-RT.
  void NoteRefusedPlugin(std::string plugin, std::string why);
  /// The note for the plugin part of `kind_name` ("PLUGIN/..."), or nullptr.
  const std::string* RefusalOf(std::string_view kind_name) const;

 private:
  std::map<std::string, std::shared_ptr<const NodeKind>, std::less<>> kinds_;
  std::map<std::string, std::string, std::less<>> refused_;  // plugin -> why
};

}  // namespace aers::model
