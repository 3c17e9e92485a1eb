// The ALSA backend (daemon/backend/alsa.h) on alsa-lib's `null` PCM, which
// takes any format and channel count and never blocks: the audio thread
// runs periods as fast as the CPU allows, which makes races between it, the
// supervisor, edits and status readers likely (this test also runs under
// ThreadSanitizer). Timing, xruns and device loss are tested against real
// PCMs in tests/integration/test_alsa.py.
#include <chrono>
#include <thread>

#include "backend/alsa.h"
#include "common/rig.h"
#include "gtest/gtest.h"

namespace aers::backend {
namespace {

using namespace std::chrono_literals;
using test::GraphBuilder;
using test::WaitFor;

// in (capture) -> gain -> out, plus a tone -> meter -> tone_out whose peak
// proves the plan runs.
model::GraphSpec Graph(int channels) {
  return GraphBuilder()
      .Input("in", channels)
      .Output("out", channels)
      .Output("tone_out", channels)
      .Node("g", "gain", channels, {{"gain_db", 0.0}})
      .Node("osc", "tone", channels, {{"freq_hz", 1000.0}, {"level_db", -6.0}})
      .Node("m", "meter", channels)
      .Chain({"in", "g", "out"})
      .Chain({"osc", "m", "tone_out"})
      .Build();
}

class AlsaBackendTest : public ::testing::Test {
 protected:
  AlsaBackendTest() : rig_(48000.0, 256) {}
  static AlsaOptions Options() {
    AlsaOptions o;
    o.playback = "null";
    o.capture = "null";
    o.period_frames = 256;
    o.rt_priority = 0;
    return o;
  }
  bool Runs(uint64_t periods = 20) {
    const uint64_t start = rig_.engine().runner().cycles();
    return WaitFor([&] { return rig_.engine().runner().cycles() > start + periods; });
  }
  float Peak() {
    auto r = rig_.engine().ReadMeter("m");
    return r.ok() && !r->empty() ? (*r)[0].peak : -1.0f;
  }
  test::Rig rig_;
};

TEST_F(AlsaBackendTest, RunsDuplexAndReportsTheNegotiatedDevice) {
  rig_.Apply(Graph(2));
  AlsaBackend backend(rig_.engine(), Options());
  ASSERT_TRUE(backend.Start().ok());
  ASSERT_TRUE(Runs());
  ASSERT_TRUE(WaitFor([&] { return Peak() > 0.45f; })) << Peak();
  const BackendStatus st = backend.status();
  EXPECT_EQ(st.name, "alsa");
  EXPECT_TRUE(st.running);
  EXPECT_EQ(st.format, "FLOAT_LE");  // auto: the first of the preference order
  EXPECT_EQ(st.period_frames, 256u);
  EXPECT_EQ(st.playback_device, "null");
  EXPECT_GE(st.periods, 2u);
  EXPECT_NE(st.detail.find("playback 'null' (FLOAT_LE, 4 ch"), std::string::npos) << st.detail;
  EXPECT_GT(st.dsp.periods, 0u);
  backend.Stop();
  EXPECT_FALSE(backend.status().running);
  const uint64_t stopped = rig_.engine().runner().cycles();
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(rig_.engine().runner().cycles(), stopped) << "periods after Stop()";
  backend.Stop();  // idempotent
}

TEST_F(AlsaBackendTest, AnExplicitFormatIsUsed) {
  rig_.Apply(Graph(1));
  AlsaOptions o = Options();
  o.format = SampleFormat::kS24_3;
  o.capture.clear();  // playback only
  AlsaBackend backend(rig_.engine(), o);
  ASSERT_TRUE(backend.Start().ok());
  ASSERT_TRUE(Runs());
  EXPECT_EQ(backend.status().format, "S24_3LE");
  EXPECT_TRUE(backend.status().capture_device.empty());
}

TEST_F(AlsaBackendTest, ChannelCountChangesReopenTheDeviceAndRunTheNewPlan) {
  rig_.Apply(Graph(1));
  AlsaBackend backend(rig_.engine(), Options());
  ASSERT_TRUE(backend.Start().ok());
  // Edits that change the channel count, while readers poll the status.
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      (void)backend.status();
      (void)rig_.engine().SignalReports();
    }
  });
  for (int i = 0; i < 20; ++i) {
    auto r = rig_.engine().Apply(Graph(1 + i % 3));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(Runs(2)) << "edit " << i;
  }
  done.store(true);
  reader.join();
  // The last graph (i = 19) has 2 channels: 2 + 2 outputs, 2 inputs.
  const std::string detail = backend.status().detail;
  EXPECT_NE(detail.find("playback 'null' (FLOAT_LE, 4 ch"), std::string::npos) << detail;
  EXPECT_NE(detail.find("capture 'null' (FLOAT_LE, 2 ch"), std::string::npos) << detail;
  EXPECT_TRUE(backend.status().running);
}

TEST_F(AlsaBackendTest, AGraphThatDoesNotFitIsRefusedAndTheOldOneRuns) {
  rig_.Apply(Graph(2));
  AlsaOptions o = Options();
  o.playback_channels = 4;
  o.playback_map = {3, 2, 1, 0};  // graph outputs: out_1, out_2, tone_out_1, tone_out_2
  AlsaBackend backend(rig_.engine(), o);
  ASSERT_TRUE(backend.Start().ok()) << "the map fits 4 outputs";
  const uint64_t rev = rig_.engine().revision();
  auto r = rig_.engine().Apply(Graph(3));  // 6 outputs, the map lists 4
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("backend.alsa.playback_map lists 4 channels but the graph "
                                      "has 6 output channels"),
            std::string::npos)
      << r.status();
  EXPECT_EQ(rig_.engine().revision(), rev);
  ASSERT_TRUE(Runs());
  EXPECT_TRUE(backend.status().running);
}

TEST_F(AlsaBackendTest, BadDevicesFailStartClearlyAndLeaveTheEngineAlone) {
  rig_.Apply(Graph(1));
  AlsaOptions o = Options();
  o.playback = "no_such_pcm_anywhere";
  AlsaBackend backend(rig_.engine(), o);
  const absl::Status st = backend.Start();
  EXPECT_TRUE(absl::IsNotFound(st)) << st;
  EXPECT_NE(st.message().find("ALSA playback device 'no_such_pcm_anywhere' cannot be opened"),
            std::string::npos)
      << st;
  EXPECT_FALSE(backend.status().running);
  // No port host left behind: an edit that changes the ports goes through.
  EXPECT_TRUE(rig_.engine().Apply(Graph(2)).ok());

  AlsaOptions none;
  AlsaBackend nothing(rig_.engine(), none);
  EXPECT_TRUE(absl::IsInvalidArgument(nothing.Start()));

  // A card name that does not exist has no holders to name (and no crash).
  EXPECT_TRUE(AlsaBackend::DeviceHolders("hw:CARD=NoSuchCard,DEV=0", true).empty());
  EXPECT_TRUE(AlsaBackend::DeviceHolders("default", true).empty());
}

}  // namespace
}  // namespace aers::backend
