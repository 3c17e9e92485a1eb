// Unloading: a plugin node removed from the graph is destroyed only when the
// engine reclaims the plan the audio thread retired (never on the audio
// thread), and the library is dlclose'd only after nothing uses it.
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "gmock/gmock.h"
#include "plugin/plugin_fixture.h"
#include "rt/thread_role.h"

namespace aers::plugin::test {
namespace {

struct LogLine {
  std::string event;
  long tid = 0;
};

std::vector<LogLine> ReadLog(const std::string& path) {
  std::vector<LogLine> out;
  std::istringstream in(ReadText(path));
  LogLine l;
  while (in >> l.event >> l.tid) out.push_back(l);
  return out;
}

std::vector<LogLine> Events(const std::vector<LogLine>& log, const std::string& event) {
  std::vector<LogLine> out;
  for (const auto& l : log) {
    if (l.event == event) out.push_back(l);
  }
  return out;
}

// A real audio thread that runs periods of the engine's runner on demand.
class AudioThread {
 public:
  AudioThread(engine::Engine& engine, uint32_t period) : engine_(engine), period_(period) {
    thread_ = std::thread([this] { Loop(); });
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return tid_ != 0; });
  }
  ~AudioThread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  /// Runs `periods` periods on the audio thread; returns when they are done.
  void Run(int periods) {
    std::unique_lock lock(mutex_);
    pending_ += periods;
    cv_.notify_all();
    cv_.wait(lock, [this] { return pending_ == 0; });
  }
  long tid() const { return tid_; }

 private:
  void Loop() {
    {
      std::lock_guard lock(mutex_);
      tid_ = ::gettid();
    }
    cv_.notify_all();
    std::vector<float> in(period_, 0.25f), out(period_);
    const float* ip[1] = {in.data()};
    float* op[1] = {out.data()};
    for (;;) {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || pending_ > 0; });
      if (stop_) return;
      lock.unlock();
      {
        rt::AudioThreadScope audio;
        engine_.runner().Process(ip, 1, op, 1, period_);  // the audio callback
      }
      last_out_.store(out[0]);
      lock.lock();
      if (--pending_ == 0) cv_.notify_all();
    }
  }

 public:
  std::atomic<float> last_out_{0.0f};

 private:
  engine::Engine& engine_;
  uint32_t period_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int pending_ = 0;
  bool stop_ = false;
  long tid_ = 0;
};

class UnloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = env_.base + "/lifecycle.log";
    ::setenv("AERS_TEST_PLUGIN_LOG", log_.c_str(), 1);
    PluginSpec s;
    s.name = "tp";
    s.so_path = AERS_TP_GOOD_SO;
    s.allowed = {"pass"};
    env_.AddPlugin(s);
  }
  void TearDown() override { ::unsetenv("AERS_TEST_PLUGIN_LOG"); }

  PluginEnv env_;
  std::string log_;
};

TEST_F(UnloadTest, DestroyRunsAtReclaimOffTheAudioThreadAndDlcloseComesLast) {
  auto registry = dsp::MakeBuiltinRegistry();
  std::weak_ptr<LoadedPlugin> weak;
  {
    PluginLoader loader(env_.Policy());
    auto r = loader.Load("tp", *registry);
    ASSERT_TRUE(r.ok()) << r.status();
    weak = r->plugin;
  }
  ASSERT_FALSE(weak.expired());  // the registry's kind holds it

  engine::EngineOptions o;
  o.format = {48000.0, 64};
  o.crossfade_ms = 5.0;
  o.settle_timeout = std::chrono::milliseconds(0);
  auto engine = std::make_unique<engine::Engine>(*registry, o);
  {
    AudioThread audio(*engine, 64);
    const long main_tid = ::gettid();
    ASSERT_NE(audio.tid(), main_tid);

    auto with = GraphBuilder()
                    .Input("in")
                    .Output("out")
                    .Node("p", "tp/pass", 1, {{"scale", 2.0}})
                    .Chain({"in", "p", "out"})
                    .Build();
    ASSERT_TRUE(engine->Apply(with).ok());
    audio.Run(50);
    EXPECT_FLOAT_EQ(audio.last_out_.load(), 0.5f);  // 0.25 * 2 through the plugin
    EXPECT_EQ(Events(ReadLog(log_), "instantiate").size(), 1u);

    // Remove the node. The engine drops its reference at once, but the audio
    // thread's current plan still runs the instance: nothing is destroyed.
    auto without = GraphBuilder().Input("in").Output("out").Route("in", "out").Build();
    ASSERT_TRUE(engine->Apply(without).ok());
    EXPECT_TRUE(Events(ReadLog(log_), "destroy").empty())
        << "destroyed while the audio thread used it";

    // The audio thread crossfades to the new plan and retires the old ones;
    // it hands them back, it does not free them.
    audio.Run(50);
    EXPECT_FLOAT_EQ(audio.last_out_.load(), 0.25f);
    EXPECT_TRUE(Events(ReadLog(log_), "destroy").empty())
        << "the audio thread destroyed an instance";

    // Housekeeping frees the retired plans: deactivate + destroy happen here,
    // on this thread.
    engine->Reclaim();
    const auto log = ReadLog(log_);
    const auto destroys = Events(log, "destroy");
    ASSERT_EQ(destroys.size(), 1u);
    EXPECT_EQ(destroys[0].tid, main_tid);
    EXPECT_NE(destroys[0].tid, audio.tid());
    ASSERT_EQ(Events(log, "deactivate").size(), 1u);
    EXPECT_NE(Events(log, "deactivate")[0].tid, audio.tid());
    EXPECT_TRUE(Events(log, "unload").empty()) << "the library went while its kind is registered";
    EXPECT_FALSE(weak.expired());
  }

  // Last references: the engine, then the registry (its kind). The library
  // is unloaded now, once, and not by the audio thread.
  engine.reset();
  EXPECT_EQ(MemfdLibraries(), 1);
  registry.reset();
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(MemfdLibraries(), 0);
  const auto unloads = Events(ReadLog(log_), "unload");
  ASSERT_EQ(unloads.size(), 1u);
  EXPECT_EQ(unloads[0].tid, ::gettid());
  EXPECT_TRUE(LoadedPlugin::LoadedNames().empty());
}

TEST_F(UnloadTest, AnInstanceKeepsTheLibraryLoadedAfterTheRegistryIsGone) {
  auto registry = dsp::MakeBuiltinRegistry();
  std::weak_ptr<LoadedPlugin> weak;
  {
    PluginLoader loader(env_.Policy());
    auto r = loader.Load("tp", *registry);
    ASSERT_TRUE(r.ok()) << r.status();
    weak = r->plugin;
  }
  const model::NodeKind* kind = registry->Find("tp/pass");
  ASSERT_NE(kind, nullptr);
  model::NodeSpec spec{"p", "tp/pass", 1, {}};
  auto proc = kind->Instantiate(spec, kind->ResolveParams(spec, 48000.0), {48000.0, 64});
  ASSERT_TRUE(proc.ok()) << proc.status();
  registry.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(MemfdLibraries(), 1);

  // Still runs: code and descriptor are mapped.
  std::vector<float> in(64, 0.5f), out(64, 0.0f);
  const float* ip[1] = {in.data()};
  float* op[1] = {out.data()};
  (*proc)->SetParam(0, 0, 3.0);
  (*proc)->Process(ip, op, 64);
  EXPECT_FLOAT_EQ(out[0], 1.5f);
  (*proc)->SetParam(0, 0, 100.0);  // clamped to the declared max 4
  (*proc)->Process(ip, op, 64);
  EXPECT_FLOAT_EQ(out[0], 2.0f);

  proc->reset();
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(MemfdLibraries(), 0);
  const auto log = ReadLog(log_);
  ASSERT_EQ(Events(log, "unload").size(), 1u);
  ASSERT_EQ(Events(log, "destroy").size(), 1u);
  // destroy before unload
  size_t destroy_at = 0, unload_at = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    if (log[i].event == "destroy") destroy_at = i;
    if (log[i].event == "unload") unload_at = i;
  }
  EXPECT_LT(destroy_at, unload_at);
}

}  // namespace
}  // namespace aers::plugin::test
