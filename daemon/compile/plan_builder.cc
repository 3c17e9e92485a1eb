#include "compile/plan_builder.h"

namespace aers::compile {

namespace {
constexpr size_t kAlignFloats = 16;  // 64 bytes: buffers start on cache lines
}  // namespace

PlanBuilder::PlanBuilder(rt::StreamFormat format, uint32_t input_channels, uint32_t output_channels,
                         uint32_t ramp_frames)
    : plan_(new rt::Plan()) {  // Plan's constructor is private to this builder
  plan_->format_ = format;
  plan_->input_channels_ = input_channels;
  plan_->output_channels_ = output_channels;
  plan_->ramp_frames_ = ramp_frames;
  plan_->stride_ =
      static_cast<uint32_t>((format.max_period_frames + kAlignFloats - 1) & ~(kAlignFloats - 1));
  silence_ = NewBuffer();
  for (uint32_t ch = 0; ch < input_channels; ++ch) plan_->input_buffers_.push_back(NewBuffer());
  plan_->input_counters_.assign(input_channels, nullptr);
}

void PlanBuilder::AddSources(const std::vector<Source>& sources, rt::Plan::Step& step) {
  step.b = static_cast<uint32_t>(sources_.size());
  step.n = static_cast<uint32_t>(sources.size());
  sources_.insert(sources_.end(), sources.begin(), sources.end());
}

void PlanBuilder::AddPointers(const std::vector<BufferId>& in, const std::vector<BufferId>& out,
                              rt::Plan::Step& step) {
  step.a = static_cast<uint32_t>(ptrs_.size());
  ptrs_.insert(ptrs_.end(), in.begin(), in.end());
  step.b = static_cast<uint32_t>(ptrs_.size());
  ptrs_.insert(ptrs_.end(), out.begin(), out.end());
}

void PlanBuilder::AddMix(BufferId dst, const std::vector<Source>& sources) {
  rt::Plan::Step s{};
  s.op = rt::Plan::Op::kMix;
  s.a = dst;
  AddSources(sources, s);
  plan_->steps_.push_back(s);
}

void PlanBuilder::KeepCounters(std::shared_ptr<rt::SignalCounters> counters) {
  // The channels of one port come one after another: keep each port's once.
  auto& owned = plan_->owned_counters_;
  if (counters && (owned.empty() || owned.back() != counters)) owned.push_back(std::move(counters));
}

void PlanBuilder::SetInputCounters(uint32_t ch, std::shared_ptr<rt::SignalCounters> counters) {
  plan_->input_counters_[ch] = counters.get();
  KeepCounters(std::move(counters));
}

void PlanBuilder::AddOutput(uint32_t ch, const std::vector<Source>& sources,
                            std::shared_ptr<rt::SignalCounters> counters) {
  rt::Plan::Step s{};
  s.op = rt::Plan::Op::kOutput;
  s.a = ch;
  s.counters = counters.get();
  KeepCounters(std::move(counters));
  AddSources(sources, s);
  plan_->steps_.push_back(s);
}

void PlanBuilder::AddNode(std::shared_ptr<rt::Processor> proc, const std::vector<BufferId>& in,
                          const std::vector<BufferId>& out) {
  rt::Plan::Step s{};
  s.op = rt::Plan::Op::kNode;
  s.proc = proc.get();
  s.sanitize = proc->ExternalCode();
  s.channels = static_cast<uint32_t>(out.size());
  AddPointers(in, out, s);
  plan_->owned_.push_back(std::move(proc));
  plan_->steps_.push_back(s);
}

void PlanBuilder::AddCascade(const std::vector<std::shared_ptr<rt::Processor>>& procs, int channels,
                             const std::vector<BufferId>& in, const std::vector<BufferId>& out) {
  rt::Plan::Step s{};
  s.op = rt::Plan::Op::kCascade;
  s.channels = static_cast<uint32_t>(channels);
  s.first_section = static_cast<uint32_t>(plan_->sections_.size());
  s.cache = static_cast<uint32_t>(plan_->cascade_caches_.size());
  plan_->cascade_caches_.emplace_back();
  for (const auto& p : procs) {
    plan_->sections_.push_back(p->AsBiquad());
    plan_->owned_.push_back(p);
  }
  AddPointers(in, out, s);
  s.n = static_cast<uint32_t>(procs.size());
  ++plan_->fused_cascades_;
  plan_->steps_.push_back(s);
}

std::unique_ptr<rt::Plan> PlanBuilder::Finish() {
  rt::Plan& p = *plan_;
  // Zero-initialized: every page is touched now, so the audio thread never
  // faults on first use. Extra room to align the first buffer.
  p.storage_.assign(static_cast<size_t>(buffer_count_) * p.stride_ + kAlignFloats, 0.0f);
  const auto addr = reinterpret_cast<uintptr_t>(p.storage_.data());
  const size_t skip = ((kAlignFloats * sizeof(float)) - addr % (kAlignFloats * sizeof(float))) %
                      (kAlignFloats * sizeof(float)) / sizeof(float);
  p.arena_ = p.storage_.data() + skip;
  p.sources_.reserve(sources_.size());
  for (const Source& s : sources_) p.sources_.push_back({p.Buffer(s.buffer), s.ramp});
  p.ptrs_.reserve(ptrs_.size());
  for (BufferId id : ptrs_) p.ptrs_.push_back(p.Buffer(id));
  return std::move(plan_);
}

}  // namespace aers::compile
