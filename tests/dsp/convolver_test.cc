// The convolver: partitioned FFT convolution against direct convolution in
// double (IR lengths around and across partition boundaries, periods 16 to
// 4096, irregular calls, a matrix, a 10 s response), impulse responses from
// files (resampling keeps the gain, normalisation, every refusal), no
// allocation, smoothed gain.
#include "dsp/convolver.h"

#include <sndfile.h>
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/process_alloc.h"
#include "common/rig.h"
#include "dsp/builtins.h"
#include "dsp/impulse_response.h"
#include "gmock/gmock.h"
#include "model/validate.h"

namespace aers::test {
namespace {

namespace fs = std::filesystem;
using dsp::FirPath;
using dsp::PartitionedConvolver;

constexpr double kRate = 48000.0;

Signal Noise(size_t frames, uint32_t seed, double amplitude = 0.5) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(-amplitude, amplitude);
  Signal s(frames);
  for (auto& v : s) v = static_cast<float>(d(rng));
  return s;
}

// A decaying random response: the shape of a room's.
std::vector<float> RoomLike(size_t taps, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<float> h(taps);
  const double tau = std::max(1.0, static_cast<double>(taps) / 4.0);
  for (size_t t = 0; t < taps; ++t) {
    h[t] = static_cast<float>(0.3 * d(rng) * std::exp(-static_cast<double>(t) / tau));
  }
  return h;
}

// y = h * x in double.
std::vector<double> Direct(const std::vector<float>& h, const Signal& x) {
  std::vector<double> y(x.size(), 0.0);
  for (size_t n = 0; n < x.size(); ++n) {
    double acc = 0.0;
    const size_t top = std::min(n + 1, h.size());
    for (size_t t = 0; t < top; ++t)
      acc += static_cast<double>(h[t]) * static_cast<double>(x[n - t]);
    y[n] = acc;
  }
  return y;
}

// Runs `conv` over `x` (one input) in calls of the sizes `calls` cycles through.
std::vector<Signal> Convolve(PartitionedConvolver& conv, const std::vector<Signal>& x, int outputs,
                             const std::vector<uint32_t>& calls) {
  const size_t frames = x.front().size();
  std::vector<Signal> y(static_cast<size_t>(outputs), Signal(frames));
  size_t done = 0;
  for (size_t c = 0; done < frames; ++c) {
    const auto n = static_cast<uint32_t>(std::min<size_t>(calls[c % calls.size()], frames - done));
    std::vector<const float*> in;
    std::vector<float*> out;
    for (const auto& s : x) in.push_back(s.data() + done);
    for (auto& s : y) out.push_back(s.data() + done);
    conv.Process(in.data(), out.data(), n);
    done += n;
  }
  return y;
}

double MaxError(const Signal& y, const std::vector<double>& ref) {
  double e = 0.0;
  for (size_t n = 0; n < y.size(); ++n)
    e = std::max(e, std::fabs(static_cast<double>(y[n]) - ref[n]));
  return e;
}

double PeakOf(const std::vector<double>& v) {
  double p = 0.0;
  for (double x : v) p = std::max(p, std::fabs(x));
  return p;
}

// Float FFTs and sums: the error bound, relative to the output's peak, that
// every comparison below is held to. (The float output alone rounds at
// 2^-24 = 6e-8 of full scale.)
constexpr double kRelTolerance = 1e-6;

TEST(PartitionedConvolver, EqualsDirectConvolutionAroundPartitionBoundaries) {
  const Signal x = Noise(6000, 1);
  for (uint32_t block : {16u, 64u, 256u}) {
    for (size_t taps :
         {size_t{1}, size_t{block - 1}, size_t{block}, size_t{block + 1}, size_t{2 * block},
          size_t{3 * block - 1}, size_t{3 * block}, size_t{3 * block + 1}, size_t{1000}}) {
      const auto h = std::make_shared<const std::vector<float>>(RoomLike(taps, 7));
      auto conv = PartitionedConvolver::Make(1, 1, block, {{0, 0, h}});
      ASSERT_TRUE(conv.ok()) << conv.status();
      const auto ref = Direct(*h, x);
      const auto y = Convolve(**conv, {x}, 1, {block});
      EXPECT_LE(MaxError(y[0], ref), kRelTolerance * PeakOf(ref))
          << "block " << block << ", " << taps << " taps";
    }
  }
}

TEST(PartitionedConvolver, EqualsDirectForPeriods16To4096AndIrregularCalls) {
  const Signal x = Noise(20000, 2);
  const auto h = std::make_shared<const std::vector<float>>(RoomLike(5000, 3));
  const auto ref = Direct(*h, x);
  for (uint32_t period : {16u, 32u, 64u, 128u, 256u, 512u, 1024u, 2048u, 4096u}) {
    const uint32_t block = dsp::ChooseBlockFrames(period, h->size());
    EXPECT_EQ(block % period, 0u) << period;
    auto conv = PartitionedConvolver::Make(1, 1, block, {{0, 0, h}});
    ASSERT_TRUE(conv.ok()) << conv.status();
    EXPECT_LE(MaxError(Convolve(**conv, {x}, 1, {period})[0], ref), kRelTolerance * PeakOf(ref))
        << "period " << period << ", block " << block;
  }
  // Calls that do not line up with the block, cross it, or are one frame.
  for (uint32_t block : {64u, 1024u}) {
    auto conv = PartitionedConvolver::Make(1, 1, block, {{0, 0, h}});
    ASSERT_TRUE(conv.ok()) << conv.status();
    EXPECT_LE(MaxError(Convolve(**conv, {x}, 1, {1, 37, 100, 63, 2500, 5, 64})[0], ref),
              kRelTolerance * PeakOf(ref))
        << "block " << block;
  }
}

TEST(PartitionedConvolver, NoAddedLatency) {
  // An impulse in comes out in the same call, at the same frame.
  const auto h = std::make_shared<const std::vector<float>>(std::vector<float>{1.0f, 0.5f});
  auto conv = PartitionedConvolver::Make(1, 1, 256, {{0, 0, h}});
  ASSERT_TRUE(conv.ok());
  Signal x(64, 0.0f);
  x[10] = 1.0f;
  const auto y = Convolve(**conv, {x}, 1, {64});
  EXPECT_NEAR(y[0][10], 1.0f, 1e-6);
  EXPECT_NEAR(y[0][11], 0.5f, 1e-6);
  EXPECT_NEAR(y[0][9], 0.0f, 1e-6);
}

TEST(PartitionedConvolver, MatrixSumsItsFilters) {
  const Signal a = Noise(4000, 4), b = Noise(4000, 5);
  std::vector<std::shared_ptr<const std::vector<float>>> h;
  for (uint32_t s = 0; s < 4; ++s) {
    h.push_back(std::make_shared<const std::vector<float>>(RoomLike(300 + 200 * s, 10 + s)));
  }
  // out0 = h0*a + h1*b, out1 = h2*a + h3*b.
  auto conv = PartitionedConvolver::Make(2, 2, 128,
                                         {{0, 0, h[0]}, {1, 0, h[1]}, {0, 1, h[2]}, {1, 1, h[3]}});
  ASSERT_TRUE(conv.ok());
  const auto y = Convolve(**conv, {a, b}, 2, {128});
  for (int o = 0; o < 2; ++o) {
    auto ref = Direct(*h[size_t(2 * o)], a);
    const auto rb = Direct(*h[size_t(2 * o + 1)], b);
    for (size_t n = 0; n < ref.size(); ++n) ref[n] += rb[n];
    EXPECT_LE(MaxError(y[size_t(o)], ref), kRelTolerance * PeakOf(ref)) << "output " << o;
  }
}

TEST(PartitionedConvolver, TenSecondResponse) {
  // Sparse taps across 10 s at 48 kHz (480,000 taps): each tap is an exact
  // delayed copy, so direct convolution is cheap to compute.
  const size_t taps = 480000;
  std::vector<float> hv(taps, 0.0f);
  const std::vector<std::pair<size_t, float>> spikes = {
      {0, 0.5f}, {255, -0.25f}, {256, 0.125f}, {240001, 0.3f}, {taps - 1, -0.4f}};
  for (auto [t, g] : spikes) hv[t] = g;
  const auto h = std::make_shared<const std::vector<float>>(std::move(hv));
  auto conv = PartitionedConvolver::Make(1, 1, 256, {{0, 0, h}});
  ASSERT_TRUE(conv.ok()) << conv.status();
  EXPECT_EQ((*conv)->partitions(), taps / 256 + (taps % 256 != 0));
  const Signal x = Noise(taps + 2000, 6);
  const auto y = Convolve(**conv, {x}, 1, {256});
  double worst = 0.0;
  for (size_t n = 0; n < x.size(); ++n) {
    double ref = 0.0;
    for (auto [t, g] : spikes) {
      if (n >= t) ref += static_cast<double>(g) * static_cast<double>(x[n - t]);
    }
    worst = std::max(worst, std::fabs(static_cast<double>(y[0][n]) - ref));
  }
  EXPECT_LE(worst, kRelTolerance);
}

TEST(PartitionedConvolver, ResetReturnsToSilence) {
  const auto h = std::make_shared<const std::vector<float>>(RoomLike(700, 8));
  auto conv = PartitionedConvolver::Make(1, 1, 64, {{0, 0, h}});
  ASSERT_TRUE(conv.ok());
  (void)Convolve(**conv, {Noise(1000, 9)}, 1, {64});
  (*conv)->Reset();
  const auto y = Convolve(**conv, {Signal(1000, 0.0f)}, 1, {64});
  for (float v : y[0]) ASSERT_EQ(v, 0.0f);
}

TEST(PartitionedConvolver, RefusesWhatItCannotRun) {
  const auto h = std::make_shared<const std::vector<float>>(std::vector<float>{1.0f});
  EXPECT_FALSE(PartitionedConvolver::Make(1, 1, 8, {{0, 0, h}}).ok());
  EXPECT_FALSE(PartitionedConvolver::Make(1, 1, 32768, {{0, 0, h}}).ok());
  EXPECT_FALSE(PartitionedConvolver::Make(1, 1, 64, {{1, 0, h}}).ok());
  EXPECT_FALSE(PartitionedConvolver::Make(1, 1, 64, {}).ok());
  const auto empty = std::make_shared<const std::vector<float>>();
  EXPECT_FALSE(PartitionedConvolver::Make(1, 1, 64, {{0, 0, empty}}).ok());
  const auto big = std::make_shared<const std::vector<float>>(std::vector<float>(1 << 20, 0.1f));
  auto st = PartitionedConvolver::Make(1, 1, 64, {{0, 0, big}}, size_t{1} << 20);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.status().message()), ::testing::HasSubstr("MiB"));
}

// --- the node kind, with impulse responses from files ----------------------

class ConvolverKind : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("aers-conv-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    kinds_ = dsp::MakeBuiltinRegistry(dsp::DataDirs{dir_, {dir_}});
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `channels` (equal lengths) as a float WAV at `rate`.
  std::string WriteWav(const std::string& name, const std::vector<std::vector<float>>& channels,
                       int rate, int format = SF_FORMAT_WAV | SF_FORMAT_FLOAT) {
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = static_cast<int>(channels.size());
    info.format = format;
    const fs::path path = dir_ / name;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    EXPECT_NE(f, nullptr) << sf_strerror(nullptr);
    std::vector<float> inter;
    for (size_t n = 0; n < channels.front().size(); ++n) {
      for (const auto& c : channels) inter.push_back(c[n]);
    }
    sf_writef_float(f, inter.data(), static_cast<sf_count_t>(channels.front().size()));
    sf_close(f);
    return name;
  }

  model::NodeSpec Spec(const std::string& file, int channels = 1,
                       std::map<std::string, model::ParamValue> more = {}) {
    model::NodeSpec spec;
    spec.name = "c";
    spec.kind = "convolver";
    spec.channels = channels;
    spec.params = std::move(more);
    spec.params["ir_file"] = file;
    return spec;
  }

  absl::StatusOr<std::unique_ptr<rt::Processor>> Make(const model::NodeSpec& spec,
                                                      uint32_t period = 256) {
    const auto* kind = kinds_->Find("convolver");
    return kind->Instantiate(spec, kind->ResolveParams(spec, kRate), {kRate, period});
  }

  // Problems CheckSpec reports for `spec` (validation of the node alone).
  std::string Check(const model::NodeSpec& spec) {
    std::vector<model::Issue> issues;
    kinds_->Find("convolver")->CheckSpec(spec, "nodes[0]", issues);
    std::string all;
    for (const auto& i : issues) all += i.path + ": " + i.message + "\n";
    return all;
  }

  // The response of a 1-channel node to a unit impulse (frames long).
  Signal Impulse(rt::Processor& p, size_t frames, uint32_t period = 256) {
    Signal x(frames, 0.0f), y(frames, 0.0f);
    x[0] = 1.0f;
    for (size_t d = 0; d < frames; d += period) {
      const float* in[] = {x.data() + d};
      float* out[] = {y.data() + d};
      p.Process(in, out, static_cast<uint32_t>(std::min<size_t>(period, frames - d)));
    }
    return y;
  }

  fs::path dir_;
  std::unique_ptr<model::KindRegistry> kinds_;
};

double Sum(const Signal& s) {
  double a = 0.0;
  for (float v : s) a += static_cast<double>(v);
  return a;
}

TEST_F(ConvolverKind, AppliesTheFileAtTheStreamRate) {
  const auto h = RoomLike(3000, 20);
  auto proc = Make(Spec(WriteWav("room.wav", {h}, 48000)));
  ASSERT_TRUE(proc.ok()) << proc.status();
  const Signal y = Impulse(**proc, 4096);
  for (size_t t = 0; t < h.size(); ++t) ASSERT_NEAR(y[t], h[t], 1e-6) << t;
  for (size_t t = h.size(); t < y.size(); ++t) ASSERT_NEAR(y[t], 0.0f, 1e-6) << t;
}

TEST_F(ConvolverKind, ResamplingKeepsTheFiltersGain) {
  // A lowpass (windowed sinc at 2 kHz, DC gain 0.5) stored at 44.1 and
  // 96 kHz: at 48 kHz its DC gain and 1 kHz gain stay within 0.01 dB.
  for (int rate : {44100, 96000}) {
    const size_t taps = 511;
    std::vector<float> h(taps);
    const double fc = 2000.0 / rate;
    double sum = 0.0;
    for (size_t t = 0; t < taps; ++t) {
      const double m = static_cast<double>(t) - (taps - 1) / 2.0;
      const double sinc = m == 0.0 ? 2 * fc : std::sin(2 * M_PI * fc * m) / (M_PI * m);
      const double w = 0.42 - 0.5 * std::cos(2 * M_PI * t / (taps - 1)) +
                       0.08 * std::cos(4 * M_PI * t / (taps - 1));
      h[t] = static_cast<float>(sinc * w);
      sum += sinc * w;
    }
    for (auto& v : h) v = static_cast<float>(static_cast<double>(v) * 0.5 / sum);
    auto proc = Make(Spec(WriteWav("lp" + std::to_string(rate) + ".wav", {h}, rate)));
    ASSERT_TRUE(proc.ok()) << proc.status();
    const Signal y = Impulse(**proc, 8192);
    EXPECT_NEAR(20 * std::log10(Sum(y) / 0.5), 0.0, 0.01) << rate;
    double re = 0.0, im = 0.0;
    for (size_t n = 0; n < y.size(); ++n) {
      re += static_cast<double>(y[n]) * std::cos(2 * M_PI * 1000.0 * n / kRate);
      im -= static_cast<double>(y[n]) * std::sin(2 * M_PI * 1000.0 * n / kRate);
    }
    EXPECT_NEAR(20 * std::log10(std::hypot(re, im) / 0.5), 0.0, 0.01) << rate;
  }
}

TEST_F(ConvolverKind, PerChannelAndMatrixFiles) {
  const auto h0 = RoomLike(300, 30), h1 = RoomLike(300, 31);
  auto per = Make(Spec(WriteWav("two.wav", {h0, h1}, 48000), 2));
  ASSERT_TRUE(per.ok()) << per.status();
  Signal x(512, 0.0f), zero(512, 0.0f), y0(512), y1(512);
  x[0] = 1.0f;
  {
    const float* in[] = {x.data(), x.data()};
    float* out[] = {y0.data(), y1.data()};
    (*per)->Process(in, out, 256);
    const float* in2[] = {x.data() + 256, x.data() + 256};
    float* out2[] = {y0.data() + 256, y1.data() + 256};
    (*per)->Process(in2, out2, 256);
  }
  for (size_t t = 0; t < 300; ++t) {
    ASSERT_NEAR(y0[t], h0[t], 1e-6);
    ASSERT_NEAR(y1[t], h1[t], 1e-6);
  }
  // 2 x 2 matrix: channel o*2+i is input i -> output o. An impulse on input
  // 1 only gives h(0,1) on output 0 and h(1,1) on output 1.
  const std::vector<std::vector<float>> m = {RoomLike(100, 40), RoomLike(100, 41),
                                             RoomLike(100, 42), RoomLike(100, 43)};
  auto mat = Make(Spec(WriteWav("matrix.wav", m, 48000), 2));
  ASSERT_TRUE(mat.ok()) << mat.status();
  const float* in[] = {zero.data(), x.data()};
  float* out[] = {y0.data(), y1.data()};
  (*mat)->Process(in, out, 256);
  for (size_t t = 0; t < 100; ++t) {
    ASSERT_NEAR(y0[t], m[1][t], 1e-6) << t;
    ASSERT_NEAR(y1[t], m[3][t], 1e-6) << t;
  }
  EXPECT_THAT(Check(Spec("matrix.wav", 3)),
              ::testing::HasSubstr("has 4 channels; a 3-channel convolver takes 1 (one filter for "
                                   "all), 3 (one per channel) or 9 (an input x output matrix)"));
}

TEST_F(ConvolverKind, Normalization) {
  const std::vector<float> h = {0.5f, 0.5f, 0.5f, 0.5f};  // DC gain 2, peak response 2 (at DC)
  const std::vector<float> g = {0.25f, -0.25f};           // peak response 0.5 at Nyquist
  WriteWav("dc.wav", {h}, 48000);
  WriteWav("hp.wav", {g}, 48000);
  auto dc = Make(Spec("dc.wav", 1, {{"normalize", std::string("dc_gain")}}));
  ASSERT_TRUE(dc.ok());
  EXPECT_NEAR(Sum(Impulse(**dc, 256)), 1.0, 1e-6);
  auto pk = Make(Spec("hp.wav", 1, {{"normalize", std::string("peak_response")}}));
  ASSERT_TRUE(pk.ok());
  const Signal y = Impulse(**pk, 256);
  EXPECT_NEAR(y[0], 0.5f, 1e-4);
  EXPECT_NEAR(y[1], -0.5f, 1e-4);
  auto zero = Make(Spec("hp.wav", 1, {{"normalize", std::string("dc_gain")}}));
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(std::string(zero.status().message()), ::testing::HasSubstr("DC gain is zero"));
}

TEST_F(ConvolverKind, RefusalsNameTheFileAndWhatIsWrong) {
  EXPECT_THAT(Check(Spec("missing.wav")),
              ::testing::HasSubstr("nodes[0].params.ir_file: 'missing.wav': "));
  fs::create_directories(dir_ / "adir");
  EXPECT_THAT(Check(Spec("adir")), ::testing::HasSubstr("'adir' is a directory"));
  std::ofstream(dir_ / "text.wav") << "not audio\n";
  EXPECT_THAT(Check(Spec("text.wav")),
              ::testing::HasSubstr("'text.wav' is not an audio file aersd reads"));
  // Outside by its spelling: the same answer whether the file exists or not
  // (no oracle for what lies outside).
  for (const char* outside : {"/etc/hostname", "/nonexistent/x.wav", "../x.wav"}) {
    EXPECT_THAT(Check(Spec(outside)),
                ::testing::HasSubstr(std::string("'") + outside +
                                     "' is outside the data directories (" + dir_.string() + ")"))
        << outside;
  }
  EXPECT_THAT(Check(Spec("../" + dir_.filename().string() + "/missing.wav")),
              ::testing::HasSubstr("No such file"));  // inside after all
  // A symlink out of the data directory is judged by where it points, which
  // is not said.
  fs::create_symlink("/etc/hostname", dir_ / "link.wav");
  const std::string link = Check(Spec("link.wav"));
  EXPECT_THAT(link, ::testing::HasSubstr("'link.wav' leads through a symbolic link outside the "
                                         "data directories"));
  EXPECT_THAT(link, ::testing::Not(::testing::HasSubstr("hostname")));
  // Samples beyond +80 dB are a mistake, not a filter.
  WriteWav("loud.wav", {{1.0f, 2e4f}}, 48000);
  auto loud = Make(Spec("loud.wav"));
  ASSERT_FALSE(loud.ok());
  EXPECT_THAT(std::string(loud.status().message()),
              ::testing::HasSubstr("channel 1, frame 1 is 20000; impulse-response samples are at "
                                   "most 10000"));
  // partition_frames 1 to 15 is named as such.
  EXPECT_THAT(Check(Spec("room.wav", 1, {{"partition_frames", 8.0}})),
              ::testing::HasSubstr("nodes[0].params.partition_frames: partition_frames = 8 is out "
                                   "of range; use 0"));
  // More work than a node may take is refused when it is built, naming the
  // field that caused it.
  WriteWav("long.wav", {std::vector<float>(480000, 1e-3f)}, 48000);
  auto heavy = Make(Spec("long.wav", 1, {{"partition_frames", 16.0}}), 64);
  ASSERT_FALSE(heavy.ok());
  EXPECT_THAT(std::string(heavy.status().message()),
              ::testing::HasSubstr("params.partition_frames: 'long.wav' (1 filter of up to 480000 "
                                   "taps) at partitions of 16 frames"));
  EXPECT_THAT(std::string(heavy.status().message()), ::testing::HasSubstr("GFLOP/s"));
  EXPECT_TRUE(Make(Spec("long.wav"), 64).ok()) << "the same file at the chosen partition";
  // A FIFO is refused by name, and also when it is swapped in after the
  // path was resolved: the open does not wait for a writer.
  ASSERT_EQ(::mkfifo((dir_ / "fifo.wav").c_str(), 0600), 0);
  EXPECT_THAT(Check(Spec("fifo.wav")), ::testing::HasSubstr("'fifo.wav' is not a regular file"));
  auto fifo = dsp::OpenDataFile({dir_ / "fifo.wav", 0}, "fifo.wav");
  ASSERT_FALSE(fifo.ok());
  EXPECT_THAT(std::string(fifo.status().message()), ::testing::HasSubstr("not a regular file"));
  model::NodeSpec none = Spec("x");
  none.params.erase("ir_file");
  EXPECT_THAT(Check(none), ::testing::HasSubstr("a convolver needs ir_file"));
  // A sample that is not a number: named by channel and frame.
  WriteWav("nan.wav", {{0.5f, 0.25f}, {0.1f, std::nanf("")}}, 48000);
  auto nan = Make(Spec("nan.wav", 2));
  ASSERT_FALSE(nan.ok());
  EXPECT_THAT(std::string(nan.status().message()),
              ::testing::HasSubstr("'nan.wav': channel 2, frame 1 is not a finite number"));
  // Longer than the limit at the stream's rate.
  auto info = dsp::ReadImpulseInfo(
      {dir_ / WriteWav("long.wav", {std::vector<float>(5000, 0.0f)}, 100), 0}, "long.wav", kRate);
  ASSERT_FALSE(info.ok());
  EXPECT_THAT(std::string(info.status().message()),
              ::testing::HasSubstr("impulse responses are at most"));
}

TEST_F(ConvolverKind, ValidationGivesThePathAndTheType) {
  model::GraphSpec g = GraphBuilder()
                           .Input("in", 1)
                           .Node("c", "convolver", 1, {{"ir_file", 3.0}})
                           .Output("out", 1)
                           .Chain({"in", "c", "out"})
                           .Build();
  auto issues = model::ValidateGraph(g, *kinds_, {kRate});
  ASSERT_FALSE(issues.empty());
  EXPECT_EQ(issues[0].path, "nodes[0].params.ir_file");
  EXPECT_THAT(issues[0].message, ::testing::HasSubstr("expects a file path"));
  g.nodes[0].params["ir_file"] = std::string("a\nb.wav");
  issues = model::ValidateGraph(g, *kinds_, {kRate});
  ASSERT_FALSE(issues.empty());
  EXPECT_THAT(issues[0].message, ::testing::HasSubstr("contains a control character"));
  g.nodes[0].params["ir_file"] = std::string("\xff.wav");
  issues = model::ValidateGraph(g, *kinds_, {kRate});
  ASSERT_FALSE(issues.empty());
  EXPECT_THAT(issues[0].message, ::testing::HasSubstr("is not UTF-8"));
}

TEST_F(ConvolverKind, NoAllocationWhileProcessing) {
  const std::string file = (dir_ / WriteWav("room.wav", {RoomLike(20000, 50)}, 48000)).string();
  EXPECT_EQ(AllocationsWhileProcessing("convolver", 2, {{"ir_file", file}}), 0u);
  EXPECT_EQ(
      AllocationsWhileProcessing("convolver", 2, {{"ir_file", file}, {"partition_frames", 1024.0}},
                                 [](rt::Processor& p) { p.SetParam(1, 0, -12.0); }),
      0u);
}

TEST_F(ConvolverKind, GainGlidesAndIsLiveInTheEngine) {
  WriteWav("unit.wav", {{1.0f}}, 48000);
  RigOptions o;
  o.kinds = kinds_.get();
  Rig rig(o);
  auto spec = GraphBuilder()
                  .Input("in", 1)
                  .Node("c", "convolver", 1, {{"ir_file", std::string("unit.wav")}})
                  .Output("out", 1)
                  .Chain({"in", "c", "out"})
                  .Build();
  rig.Apply(spec);
  const Signal dc(4800, 0.5f);
  (void)rig.Run({dc}, 4800);
  spec.nodes[0].params["gain_db"] = -20.0;
  auto r = rig.engine().Apply(spec);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->replanned);
  const auto y = rig.Run({dc}, 4800)[0];
  EXPECT_NEAR(y.back(), 0.05f, 1e-5);
  EXPECT_LT(MaxJump(y), 0.01);  // a glide, not a jump of 0.45
}

TEST_F(ConvolverKind, AFileChangedOnDiskIsCheckedAgainOnEveryEdit) {
  // The engine checks again only what an edit changed, but a node whose
  // kind reads files (its IR) is checked on every edit: the file may have
  // changed on disk, and a graph that would not load again at a restart is
  // refused, naming the node, whatever the edit (a fader, a new node).
  WriteWav("ir.wav", {{1.0f}}, 48000);
  RigOptions o;
  o.kinds = kinds_.get();
  Rig rig(o);
  auto spec = GraphBuilder()
                  .Input("in", 1)
                  .Node("g", "gain", 1)
                  .Node("c", "convolver", 1, {{"ir_file", std::string("ir.wav")}})
                  .Output("out", 1)
                  .Chain({"in", "g", "c", "out"})
                  .Build();
  rig.Apply(spec);
  const uint64_t rev = rig.engine().revision();
  WriteWav("ir.wav", {{1.0f}, {0.5f}, {0.25f}}, 48000);  // now 3 channels

  auto fader = spec;
  fader.nodes[0].params["gain_db"] = -3.0;
  auto more = spec;
  more.nodes.push_back({"g2", "gain", 1, {}});
  more.routes.push_back({model::Endpoint::Parse("g"), model::Endpoint::Parse("g2")});
  for (const auto& edit : {fader, more}) {
    const auto issues = rig.engine().Validate(edit);
    ASSERT_EQ(issues.size(), 1u) << model::IssuesText(issues);
    EXPECT_EQ(issues[0].path, "nodes[1].params.ir_file") << issues[0].message;
    EXPECT_NE(issues[0].message.find("3 channels"), std::string::npos) << issues[0].message;
    EXPECT_EQ(rig.engine().Apply(edit).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(rig.engine().revision(), rev) << "nothing changed";
  EXPECT_EQ(rig.engine().spec(), spec);

  WriteWav("ir.wav", {{0.5f}}, 48000);  // a good file again: the fader goes through
  uint64_t generation = 0;
  ASSERT_TRUE(rig.engine().Validate(fader, &generation).empty());
  auto r = rig.engine().Apply(fader, std::nullopt, generation);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->replanned);
}

}  // namespace
}  // namespace aers::test
