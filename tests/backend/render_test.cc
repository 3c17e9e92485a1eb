// Offline render through real files (libsndfile) and the aersd binary.
#include <fcntl.h>
#include <sndfile.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <thread>

#include "backend/offline.h"
#include "common/rig.h"
#include "config/config.h"
#include "rt/biquad.h"

namespace aers::test {
namespace {

namespace fs = std::filesystem;

// Starts `aersd ARGS` with stderr to `err_path`; returns its pid. With
// `max_file_bytes`, its files are limited to that (RLIMIT_FSIZE; a render
// ignores SIGXFSZ itself, so a write past it fails with EFBIG, as a full
// disk fails with ENOSPC).
pid_t SpawnAersd(const std::vector<std::string>& args, const fs::path& err_path,
                 std::optional<rlim_t> max_file_bytes = std::nullopt) {
  std::vector<std::string> argv_s = {AERSD_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) ::dup2(fd, 2);
    if (max_file_bytes) {
      const rlimit lim{*max_file_bytes, *max_file_bytes};
      ::setrlimit(RLIMIT_FSIZE, &lim);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

class RenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("aers-render-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string WriteWav(const std::string& name, const std::vector<Signal>& chans, int rate = 48000,
                       int format = SF_FORMAT_WAV | SF_FORMAT_FLOAT) {
    const std::string path = (dir_ / name).string();
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = static_cast<int>(chans.size());
    info.format = format;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    EXPECT_NE(f, nullptr);
    std::vector<float> inter(chans[0].size() * chans.size());
    for (size_t n = 0; n < chans[0].size(); ++n) {
      for (size_t c = 0; c < chans.size(); ++c) inter[n * chans.size() + c] = chans[c][n];
    }
    sf_writef_float(f, inter.data(), static_cast<sf_count_t>(chans[0].size()));
    sf_close(f);
    return path;
  }

  std::vector<Signal> ReadWav(const std::string& path, int* rate = nullptr) {
    SF_INFO info{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
    EXPECT_NE(f, nullptr) << path;
    if (!f) return {};
    std::vector<float> inter(static_cast<size_t>(info.frames * info.channels));
    sf_readf_float(f, inter.data(), info.frames);
    sf_close(f);
    if (rate) *rate = info.samplerate;
    std::vector<Signal> out(static_cast<size_t>(info.channels),
                            Signal(static_cast<size_t>(info.frames)));
    for (size_t n = 0; n < out[0].size(); ++n) {
      for (size_t c = 0; c < out.size(); ++c) out[c][n] = inter[n * out.size() + c];
    }
    return out;
  }

  std::string WriteText(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // Runs aersd with args; returns exit status, stderr in *err.
  int RunAersd(const std::vector<std::string>& args, std::string* err) {
    const std::string err_path = (dir_ / "stderr.txt").string();
    std::string cmd = std::string(AERSD_PATH);
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " 2>'" + err_path + "'";
    const int st = std::system(cmd.c_str());
    std::ifstream in(err_path);
    err->assign(std::istreambuf_iterator<char>(in), {});
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

  // Runs aersd like RunAersd, with its files limited to `max_file_bytes`
  // (SpawnAersd).
  int RunAersdWithFileLimit(const std::vector<std::string>& args, rlim_t max_file_bytes,
                            std::string* err) {
    const fs::path err_path = dir_ / "stderr.txt";
    int st = 0;
    ::waitpid(SpawnAersd(args, err_path, max_file_bytes), &st, 0);
    std::ifstream in(err_path);
    err->assign(std::istreambuf_iterator<char>(in), {});
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

  // Files in dir_ other than the test's own: what a failed render left.
  std::vector<std::string> Leftovers(const std::vector<std::string>& own) {
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (std::find(own.begin(), own.end(), name) == own.end()) left.push_back(name);
    }
    return left;
  }

  fs::path dir_;
};

// A 1 kHz tone at -6 dBFS to one mono output: a graph with no inputs.
constexpr char kToneConfig[] = R"(version: 1
outputs:
  - {name: out, channels: 1}
nodes:
  - {name: t, kind: tone, params: {freq_hz: 1000, level_db: -6}}
routes:
  - {from: t, to: out}
)";

// Inputs routed straight to the outputs.
std::string PassThroughConfig(int channels) {
  const std::string ch = std::to_string(channels);
  return "version: 1\ninputs:\n  - {name: in, channels: " + ch +
         "}\noutputs:\n  - {name: out, channels: " + ch + "}\nroutes:\n  - {from: in, to: out}\n";
}

// Noise with a few special values: -0, exactly 1 and a finite value past
// full scale (counted as clipped, kept as it is).
std::vector<Signal> TestNoise(size_t channels, size_t frames, uint32_t seed, float level = 0.9f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-level, level);
  std::vector<Signal> x(channels, Signal(frames));
  for (auto& c : x) {
    for (auto& v : c) v = dist(rng);
  }
  if (frames > 3 && level > 0.95f) {
    x[0][1] = -0.0f;
    x[0][2] = 1.0f;
    x[0][3] = 1.5f;
  }
  return x;
}

bool BitEqual(const Signal& a, const Signal& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// What libsndfile reports about a file's header (frames 0 if it cannot open it).
SF_INFO HeaderInfo(const std::string& path) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  EXPECT_NE(f, nullptr) << path << ": " << sf_strerror(nullptr);
  if (f) sf_close(f);
  return info;
}

// Whether libsndfile finds a peak chunk in the file (PEAK in WAV and AIFF,
// peak in CAF): SFC_GET_SIGNAL_MAX answers from that chunk only.
bool HasPeakChunk(const std::string& path) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  EXPECT_NE(f, nullptr) << path;
  if (!f) return false;
  double max = 0.0;
  const bool has = sf_command(f, SFC_GET_SIGNAL_MAX, &max, sizeof(max)) == SF_TRUE;
  sf_close(f);
  return has;
}

// The ids and sizes of a RIFF file's chunks, in order.
std::vector<std::pair<std::string, uint32_t>> RiffChunks(const std::string& bytes) {
  std::vector<std::pair<std::string, uint32_t>> chunks;
  if (bytes.size() < 12 || bytes.compare(0, 4, "RIFF") != 0 || bytes.compare(8, 4, "WAVE") != 0) {
    return chunks;
  }
  for (size_t pos = 12; pos + 8 <= bytes.size();) {
    uint32_t size = 0;
    for (int i = 0; i < 4; ++i)
      size |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[pos + 4 + i])) << (8 * i);
    chunks.emplace_back(bytes.substr(pos, 4), size);
    pos += 8 + size + (size & 1u);
  }
  return chunks;
}

// Checks a float WAV the render wrote: the header libsndfile reports, no
// PEAK chunk (libsndfile leaves a PAD chunk where it had reserved room for
// one), and a data chunk of all the samples that ends the file.
void ExpectFloatWavHeader(const std::string& path, int channels, int rate, size_t frames) {
  const SF_INFO info = HeaderInfo(path);
  EXPECT_EQ(info.format, SF_FORMAT_WAV | SF_FORMAT_FLOAT) << path;
  EXPECT_EQ(info.channels, channels) << path;
  EXPECT_EQ(info.samplerate, rate) << path;
  EXPECT_EQ(info.frames, static_cast<sf_count_t>(frames)) << path;
  EXPECT_FALSE(HasPeakChunk(path)) << path;
  std::ifstream in(path, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), {}};
  const auto chunks = RiffChunks(bytes);
  std::vector<std::string> ids;
  size_t end = 12;
  for (const auto& [id, size] : chunks) {
    ids.push_back(id);
    end += 8 + size + (size & 1u);
  }
  ASSERT_FALSE(ids.empty()) << path;
  EXPECT_EQ(ids.front(), "fmt ") << path;
  EXPECT_EQ(ids.back(), "data") << path;
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "PEAK"), 0) << path;
  EXPECT_EQ(end, bytes.size()) << path;
  EXPECT_EQ(chunks.back().second, frames * static_cast<size_t>(channels) * 4) << path;
}

const char* kGainConfig = R"(version: 1
inputs:
  - {name: in, channels: 2}
outputs:
  - {name: out, channels: 2}
nodes:
  - {name: g, kind: gain, channels: 2, params: {gain_db: -6.0}}
routes:
  - {from: in, to: g}
  - {from: g, to: out}
)";

TEST_F(RenderTest, ToneThroughMinusSixDbIsHalfAmplitude) {
  const Signal tone = Sine(1000.0, 0.8, 96000);
  const std::string in = WriteWav("in.wav", {tone, tone});
  const std::string cfg = WriteText("gain.yaml", kGainConfig);
  const std::string out = (dir_ / "out.wav").string();
  std::string err;
  ASSERT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", out}, &err), 0) << err;
  int rate = 0;
  const auto y = ReadWav(out, &rate);
  ASSERT_EQ(y.size(), 2u);
  EXPECT_EQ(rate, 48000);
  ASSERT_EQ(y[0].size(), tone.size());
  for (int c = 0; c < 2; ++c) {
    EXPECT_NEAR(ToDb(Rms(y[static_cast<size_t>(c)]) / Rms(tone)), -6.0, 0.01);
  }
}

TEST_F(RenderTest, EqAndFirExampleRendersAsItsCommentSays) {
  // configs/examples/eq-and-fir.yaml: the AutoEQ file (peq) then a 16 kHz
  // linear-phase low-pass (convolver). A 1 kHz tone comes out at the EQ's
  // gain there (Preamp -6.2 dB plus the filters' skirts: -4.45 dB), a
  // 20 kHz tone at least 40 dB below it; the data files are found beside
  // the config.
  const std::string cfg = std::string(AERS_SOURCE_ROOT) + "/configs/examples/eq-and-fir.yaml";
  double level_db[2] = {};
  const double freqs[2] = {1000.0, 20000.0};
  for (int i = 0; i < 2; ++i) {
    const Signal tone = Sine(freqs[i], 0.25, 48000);
    const std::string in = WriteWav("in.wav", {tone, tone});
    const std::string out = (dir_ / "out.wav").string();
    std::string err;
    ASSERT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", out}, &err), 0)
        << err;
    const auto y = ReadWav(out);
    ASSERT_EQ(y.size(), 2u);
    level_db[i] = ToDb(Rms(y[0], 24000) / Rms(tone, 24000));
    EXPECT_NEAR(ToDb(Rms(y[1], 24000) / Rms(tone, 24000)), level_db[i], 1e-3);
  }
  EXPECT_GT(level_db[0], -8.0);
  EXPECT_LT(level_db[0], -2.0);
  EXPECT_LT(level_db[1], level_db[0] - 40.0);
}

TEST_F(RenderTest, ThreeWayCrossoverExampleSendsEachToneToItsDriver) {
  // configs/examples/crossover-3way.yaml as its comment says: 2 in, 6 out
  // (woofer, mid, tweeter pairs). A tone well inside each band comes out of
  // that band's driver at its trim, and at least 30 dB lower elsewhere.
  const std::string cfg = std::string(AERS_SOURCE_ROOT) + "/configs/examples/crossover-3way.yaml";
  const struct {
    double freq_hz;
    size_t driver;
    double trim_db;
  } cases[] = {{40.0, 0, 0.0}, {550.0, 1, -1.5}, {12000.0, 2, -3.0}};
  for (const auto& c : cases) {
    const Signal tone = Sine(c.freq_hz, 0.5, 48000);
    const std::string in = WriteWav("in.wav", {tone, tone});
    const std::string out = (dir_ / "out.wav").string();
    std::string err;
    ASSERT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", out}, &err), 0)
        << err;
    const auto y = ReadWav(out);
    ASSERT_EQ(y.size(), 6u);
    for (size_t d = 0; d < 3; ++d) {
      for (size_t ch = 0; ch < 2; ++ch) {
        const double db = ToDb(Rms(y[2 * d + ch], 24000) / Rms(tone, 24000));
        if (d == c.driver) {
          EXPECT_NEAR(db, c.trim_db, 0.3) << c.freq_hz << " Hz, driver " << d;
        } else {
          EXPECT_LT(db, -30.0) << c.freq_hz << " Hz leaks into driver " << d;
        }
      }
    }
  }
}

TEST_F(RenderTest, ReferenceChainMatchesChainComputedHere) {
  const std::string cfg_path =
      std::string(AERS_SOURCE_ROOT) + "/configs/examples/reference-chain.yaml";
  auto kinds = dsp::MakeBuiltinRegistry();
  auto config = config::LoadConfigFile(cfg_path, *kinds);
  ASSERT_TRUE(config.ok()) << config.status();
  // Noise-like input: two different tones plus a chirp per channel.
  const size_t frames = 48000 * 2;
  Signal l(frames), r(frames);
  for (size_t n = 0; n < frames; ++n) {
    const double t = static_cast<double>(n) / 48000.0;
    l[n] = static_cast<float>(0.3 * std::sin(2 * std::numbers::pi * 55.0 * t) +
                              0.2 * std::sin(2 * std::numbers::pi * 9000.0 * t));
    r[n] = static_cast<float>(0.4 * std::sin(2 * std::numbers::pi * (30.0 + 4000.0 * t) * t));
  }
  const std::string in = WriteWav("in.wav", {l, r});
  const std::string out = (dir_ / "out.wav").string();
  backend::RenderOptions opts;
  opts.input_path = in;
  opts.output_path = out;
  opts.period_frames = 333;  // odd on purpose: periods must not matter
  auto stats = backend::RenderFile(config->graph, *kinds, opts);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->frames, frames);
  const auto y = ReadWav(out);
  ASSERT_EQ(y.size(), 2u);

  // The same chain, computed here from the config's own parameters.
  std::vector<rt::BiquadCoeffs> stages;
  double gain = 1.0;
  for (const auto& node : config->graph.nodes) {
    if (node.kind == "gain")
      gain = std::pow(10.0, std::get<double>(node.params.at("gain_db")) / 20.0);
    if (node.kind != "biquad") continue;
    const auto& t = std::get<std::string>(node.params.at("type"));
    rt::BiquadParams p;
    p.type = t == "highpass" ? rt::BiquadType::kHighpass : rt::BiquadType::kLowpass;
    p.freq_hz = std::get<double>(node.params.at("freq_hz"));
    p.q = std::get<double>(node.params.at("q"));
    stages.push_back(rt::DesignBiquad(p, 48000.0));
  }
  ASSERT_EQ(stages.size(), 8u);
  const Signal* ins[] = {&l, &r};
  for (int c = 0; c < 2; ++c) {
    std::vector<double> z1(8, 0.0), z2(8, 0.0);
    double max_err = 0.0;
    for (size_t n = 0; n < frames; ++n) {
      double x = static_cast<double>(static_cast<float>(static_cast<double>((*ins[c])[n]) * gain));
      for (size_t k = 0; k < 8; ++k) {
        const auto& s = stages[k];
        const double yk = s.b0 * x + z1[k];
        z1[k] = s.b1 * x - s.a1 * yk + z2[k];
        z2[k] = s.b2 * x - s.a2 * yk;
        x = yk;
      }
      max_err = std::max(max_err, std::fabs(x - static_cast<double>(y[static_cast<size_t>(c)][n])));
    }
    EXPECT_LT(max_err, 1e-5) << "channel " << c;
  }
}

TEST_F(RenderTest, ChannelMismatchIsAClearError) {
  const std::string in = WriteWav("mono.wav", {Sine(440, 0.5, 4800)});
  const std::string cfg = WriteText("gain.yaml", kGainConfig);
  std::string err;
  EXPECT_NE(
      RunAersd({"render", "--config", cfg, "--input", in, "--output", (dir_ / "o.wav").string()},
               &err),
      0);
  EXPECT_NE(err.find("mono.wav: has 1 channel(s) but the graph's inputs take 2"), std::string::npos)
      << err;
  EXPECT_FALSE(fs::exists(dir_ / "o.wav"));
}

TEST_F(RenderTest, MissingAndBadInputFilesAreClearErrors) {
  const std::string cfg = WriteText("gain.yaml", kGainConfig);
  std::string err;
  EXPECT_NE(RunAersd({"render", "--config", cfg, "--input", (dir_ / "nope.wav").string(),
                      "--output", (dir_ / "o.wav").string()},
                     &err),
            0);
  EXPECT_NE(err.find("nope.wav: cannot read audio"), std::string::npos) << err;
  const std::string junk = WriteText("junk.wav", "this is not audio");
  EXPECT_NE(
      RunAersd({"render", "--config", cfg, "--input", junk, "--output", (dir_ / "o.wav").string()},
               &err),
      0);
  EXPECT_NE(err.find("junk.wav: cannot read audio"), std::string::npos) << err;
}

TEST_F(RenderTest, UnwritableOutputIsAClearErrorAndLeavesNothing) {
  const std::string in = WriteWav("in.wav", {Sine(440, 0.5, 4800), Sine(440, 0.5, 4800)});
  const std::string cfg = WriteText("gain.yaml", kGainConfig);
  std::string err;
  EXPECT_NE(RunAersd({"render", "--config", cfg, "--input", in, "--output",
                      (dir_ / "no/such/dir/o.wav").string()},
                     &err),
            0);
  EXPECT_NE(err.find("no/such/dir/o.wav: cannot write"), std::string::npos) << err;
  EXPECT_NE(
      RunAersd({"render", "--config", cfg, "--input", in, "--output", (dir_ / "o.mp9").string()},
               &err),
      0);
  EXPECT_NE(err.find("unsupported output extension '.mp9'"), std::string::npos) << err;
}

TEST_F(RenderTest, InvalidConfigNamesFileLineAndColumn) {
  const std::string in = WriteWav("in.wav", {Sine(440, 0.5, 4800), Sine(440, 0.5, 4800)});
  std::string bad = kGainConfig;
  bad.replace(bad.find("gain_db: -6.0"), 13, "gain_db: 99.0");
  const std::string cfg = WriteText("bad.yaml", bad);
  std::string err;
  EXPECT_EQ(
      RunAersd({"render", "--config", cfg, "--input", in, "--output", (dir_ / "o.wav").string()},
               &err),
      3);
  EXPECT_NE(err.find("bad.yaml:7:"), std::string::npos) << err;
  EXPECT_NE(err.find("nodes[0].params.gain_db"), std::string::npos) << err;
}

TEST_F(RenderTest, GeneratorGraphRendersForADuration) {
  const std::string cfg = WriteText("tone.yaml", kToneConfig);
  const std::string out = (dir_ / "tone.flac").string();
  std::string err;
  ASSERT_EQ(RunAersd({"render", "--config", cfg, "--duration_s", "0.5", "--output", out}, &err), 0)
      << err;
  const auto y = ReadWav(out);
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(y[0].size(), 24000u);
  EXPECT_NEAR(ToDb(Peak(y[0])), -6.0, 0.01);
}

// Subnormal samples of a 64-bit file reach the output as libsndfile
// converts them in any program: the reads run outside the periods' flush
// to zero (a float subnormal is kept, a double one below float's range
// becomes 0 as a cast makes it).
TEST_F(RenderTest, ADoubleFilesSubnormalSamplesAreReadAsInAnyProgram) {
  const Signal x = {1e-40f, -3e-42f, 1.4e-45f, 0.5f, 1e-39f, 2e-38f};
  const std::string in = WriteWav("in.wav", {x}, 48000, SF_FORMAT_WAV | SF_FORMAT_DOUBLE);
  const std::string cfg = WriteText("pass.yaml", PassThroughConfig(1));
  const std::string out = (dir_ / "out.wav").string();
  std::string err;
  ASSERT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", out}, &err), 0) << err;
  const auto y = ReadWav(out);
  ASSERT_EQ(y.size(), 1u);
  ASSERT_EQ(y[0].size(), x.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[0][i], x[i]) << "sample " << i;
}

// A RIFF WAV holds at most 4 GiB of data (32-bit sizes). A longer .wav is
// written as RF64 (EBU Tech 3306), which readers take at its full length;
// a shorter one stays a plain RIFF WAV. 350 s of 64 channels is 4.30 GB:
// written to /dev/shm (tmpfs), skipped where that has no room, under the
// sanitizers and under emulation (seconds of I/O that check libsndfile's
// sizes, not memory or code generation).
TEST_F(RenderTest, AWavPastFourGibIsRf64AndReadsAtItsFullLength) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "4.3 GB of output: run in the main tree";
#endif
  if (const char* emu = std::getenv("AERS_TEST_EMULATED"); emu != nullptr && *emu != '\0') {
    GTEST_SKIP() << "4.3 GB of output under " << emu << " (scripts/arm64-check.sh): minutes";
  }
  struct statvfs vfs {};
  if (::statvfs("/dev/shm", &vfs) != 0 ||
      static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize) < 6e9) {
    GTEST_SKIP() << "/dev/shm has less than 6 GB free";
  }
  std::string yaml = "version: 1\noutputs:\n";
  for (int i = 0; i < 64; ++i) yaml += "  - {name: o" + std::to_string(i) + ", channels: 1}\n";
  yaml += "nodes:\n  - {name: t, kind: tone, params: {freq_hz: 1000, level_db: -6}}\nroutes:\n";
  for (int i = 0; i < 64; ++i) yaml += "  - {from: t, to: o" + std::to_string(i) + "}\n";
  const std::string cfg = WriteText("wide.yaml", yaml);
  const fs::path shm = fs::path("/dev/shm") / ("aers-render-rf64-" + std::to_string(::getpid()));
  fs::create_directories(shm);
  struct Cleanup {
    fs::path p;
    ~Cleanup() { fs::remove_all(p); }
  } cleanup{shm};

  const auto header = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::string magic(4, '\0');
    in.read(magic.data(), 4);
    return magic;
  };
  const auto info = [](const std::string& path) {
    SF_INFO i{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &i);
    EXPECT_NE(f, nullptr) << path << ": " << sf_strerror(nullptr);
    if (f) sf_close(f);
    return i;
  };
  std::string err;
  const std::string small = (shm / "small.wav").string();
  ASSERT_EQ(RunAersd({"render", "--config", cfg, "--duration_s", "1", "--output", small}, &err), 0)
      << err;
  EXPECT_EQ(header(small), "RIFF");
  EXPECT_EQ(info(small).frames, 48000);

  const std::string big = (shm / "big.wav").string();
  ASSERT_EQ(RunAersd({"render", "--config", cfg, "--duration_s", "350", "--output", big}, &err), 0)
      << err;
  EXPECT_GT(fs::file_size(big), uint64_t{1} << 32);
  EXPECT_EQ(header(big), "RF64");
  const SF_INFO i = info(big);
  EXPECT_EQ(i.frames, 350 * 48000);
  EXPECT_EQ(i.channels, 64);
  EXPECT_EQ(i.format & SF_FORMAT_TYPEMASK, SF_FORMAT_RF64);
}

// A short noise burst, then silence, through the reference chain: the
// filter tails decay into the subnormal range unless the render thread
// flushes them. No subnormal sample may reach the file.
TEST_F(RenderTest, BurstThenSilenceHasNoSubnormalSamples) {
  auto kinds = dsp::MakeBuiltinRegistry();
  auto config = config::LoadConfigFile(
      std::string(AERS_SOURCE_ROOT) + "/configs/examples/reference-chain.yaml", *kinds);
  ASSERT_TRUE(config.ok()) << config.status();
  const size_t frames = 48000 * 4;
  Signal l(frames, 0.0f), r(frames, 0.0f);
  uint32_t seed = 1;
  for (size_t n = 0; n < 4800; ++n) {  // 100 ms of white noise
    seed = seed * 1664525u + 1013904223u;
    l[n] = static_cast<float>(static_cast<int32_t>(seed)) / 2147483648.0f * 0.5f;
    r[n] = -l[n];
  }
  const std::string in = WriteWav("burst.wav", {l, r});
  const std::string out = (dir_ / "out.wav").string();
  backend::RenderOptions opts;
  opts.input_path = in;
  opts.output_path = out;
  opts.period_frames = 256;
  ASSERT_TRUE(backend::RenderFile(config->graph, *kinds, opts).ok());
  const auto y = ReadWav(out);
  ASSERT_EQ(y.size(), 2u);
  size_t subnormal = 0, nonzero_tail = 0;
  for (const auto& ch : y) {
    for (size_t n = 0; n < ch.size(); ++n) {
      if (std::fpclassify(ch[n]) == FP_SUBNORMAL) ++subnormal;
      if (n > 9600 && ch[n] != 0.0f) ++nonzero_tail;
    }
  }
  EXPECT_EQ(subnormal, 0u);
  EXPECT_GT(nonzero_tail, 0u);  // the tail is there (the check can see samples)
}

// Render flags out of range are usage errors that name the flag and the
// allowed range, before any file is touched.
TEST_F(RenderTest, BadNumericFlagsAreUsageErrorsNamingTheFlag) {
  const std::string cfg = WriteText("tone.yaml", R"(version: 1
outputs: [{name: out, channels: 1}]
nodes: [{name: t, kind: tone}]
routes: [{from: t, to: out}]
)");
  const std::string out = (dir_ / "x.wav").string();
  for (const std::string v : {"0", "nan", "inf", "1", "-48000", "1e9"}) {
    std::string err;
    EXPECT_EQ(RunAersd({"render", "--config", cfg, "--duration_s", "0.1", "--sample_rate_hz", v,
                        "--output", out},
                       &err),
              2)
        << v << ": " << err;
    EXPECT_NE(err.find("--sample_rate_hz"), std::string::npos) << err;
    EXPECT_NE(err.find("8000 to 384000"), std::string::npos) << err;
    EXPECT_EQ(err.find("x.wav"), std::string::npos) << "blames the output file: " << err;
  }
  std::string err;
  EXPECT_EQ(RunAersd({"render", "--config", cfg, "--duration_s", "nan", "--output", out}, &err), 2);
  EXPECT_NE(err.find("--duration_s"), std::string::npos) << err;
  EXPECT_EQ(RunAersd({"render", "--config", cfg, "--duration_s", "1", "--period_frames", "0",
                      "--output", out},
                     &err),
            2);
  EXPECT_NE(err.find("--period_frames"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(out));
}

// Paths that cannot mean what was asked: refused before anything is read or
// written, naming the flag.
TEST_F(RenderTest, PathsThatWouldOverwriteOrBeIgnoredAreRefused) {
  const std::string in = WriteWav("in.wav", {Sine(440, 0.5, 4800), Sine(440, 0.5, 4800)});
  const std::string cfg = WriteText("gain.yaml", kGainConfig);
  const auto bytes = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  const std::string before = bytes(in);
  std::string err;
  // The input as the output (also through another spelling of the path).
  const std::string same = (dir_ / "." / "in.wav").string();
  EXPECT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", same}, &err), 2);
  EXPECT_NE(err.find("--input " + in + " and --output " + same + " are the same file"),
            std::string::npos)
      << err;
  EXPECT_EQ(bytes(in), before);
  EXPECT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", cfg}, &err), 2);
  EXPECT_NE(err.find("--config"), std::string::npos) << err;
  // A FIFO or a symbolic link at the output is kept, not replaced.
  const std::string fifo = (dir_ / "fifo.wav").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string link = (dir_ / "link.wav").string();
  fs::create_symlink("/dev/null", link);
  for (const std::string& out : {fifo, link}) {
    EXPECT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", out}, &err), 4)
        << out;
    EXPECT_NE(err.find(out + ": a "), std::string::npos) << err;
    EXPECT_NE(err.find("would replace it"), std::string::npos) << err;
  }
  EXPECT_TRUE(fs::is_fifo(fs::symlink_status(fifo)));
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(link)));
  // An empty path, a daemon flag and a stray argument are usage errors, not
  // ignored.
  const std::string out = (dir_ / "o.wav").string();
  EXPECT_EQ(RunAersd({"render", "--config", cfg, "--input=", "--output", out}, &err), 2);
  EXPECT_NE(err.find("--input: empty path"), std::string::npos) << err;
  EXPECT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", out, "--state_file",
                      (dir_ / "s.yaml").string()},
                     &err),
            2);
  EXPECT_NE(err.find("--state_file is a daemon flag"), std::string::npos) << err;
  EXPECT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", out, "extra"}, &err),
            2);
  EXPECT_NE(err.find("unexpected argument 'extra'"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(dir_ / "s.yaml"));
  // A symbolic link put at the name of the render's temporary file (its pid
  // is the shell's, which execs it) is neither followed nor replaced.
  const std::string victim = WriteText("victim.txt", "victim\n");
  const std::string o3 = (dir_ / "o3.wav").string();
  const std::string cmd = "sh -c 'ln -s " + victim + " " + (dir_ / ".o3.wav.tmp.").string() +
                          "$$ && exec " + AERSD_PATH + " render --config " + cfg + " --input " +
                          in + " --output " + o3 + "' 2>" + (dir_ / "sh.err").string();
  const int rc = std::system(cmd.c_str());
  EXPECT_NE(rc, 0);
  EXPECT_EQ(bytes(victim), "victim\n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(o3)));
  EXPECT_NE(bytes((dir_ / "sh.err").string()).find("is there already"), std::string::npos)
      << bytes((dir_ / "sh.err").string());
}

// A client name JACK cannot hold fails at start with a clear error instead of
// retrying for ever, from the config and from the flag that bypasses it.
TEST_F(RenderTest, ClientNamesJackCannotHoldFailAtStart) {
  const std::string long_name(65, 'c');
  const std::string cfg = WriteText("long.yaml",
                                    "version: 1\nbackend: {type: \"null\", jack: "
                                    "{client_name: " +
                                        long_name +
                                        "}}\n"
                                        "outputs: [{name: out}]\n");
  std::string err;
  EXPECT_EQ(
      RunAersd({"--config", cfg, "--socket", "none", "--state_file", (dir_ / "s.yaml").string()},
               &err),
      3)
      << err;
  EXPECT_NE(err.find("backend.jack.client_name"), std::string::npos) << err;
  const std::string ok = WriteText("ok.yaml",
                                   "version: 1\nbackend: {type: \"null\"}\n"
                                   "outputs: [{name: out}]\n");
  for (const std::string& bad : {long_name, std::string("aers:x"), std::string("a\xff")}) {
    EXPECT_EQ(RunAersd({"--config", ok, "--jack_client_name", bad, "--socket", "none",
                        "--state_file", (dir_ / "s.yaml").string()},
                       &err),
              2)
        << bad << ": " << err;
    EXPECT_NE(err.find("--jack_client_name"), std::string::npos) << err;
  }
}

// `aersd` is two programs (daemon/meson.build): the command renders without
// loading the control plane, JACK, ALSA or systemd (its start-up is a
// third of the daemon program's), and execs the daemon program for daemon
// mode.

// What `cmd` prints on stdout.
std::string Output(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// The libraries a program names (its NEEDED entries): read from the file,
// so it works for programs of another architecture too (the arm64 check
// runs the unit suite under qemu, where ldd cannot).
std::string Needed(const std::string& program) {
  return Output("readelf -d '" + program + "' | grep NEEDED");
}

TEST_F(RenderTest, TheCommandLinksNoControlPlaneOrLiveAudioLibraries) {
  const std::string command = Needed(AERSD_PATH);
  const std::string daemon = Needed(AERSD_DAEMON_PATH);
  ASSERT_NE(command.find("libsndfile"), std::string::npos) << command;
  for (const char* lib :
       {"libgrpc", "libgpr", "libprotobuf", "libjack", "libasound", "libsystemd"}) {
    EXPECT_EQ(command.find(lib), std::string::npos) << lib << " in\n" << command;
  }
  // The check reads what it should: the daemon program has them.
  EXPECT_NE(daemon.find("libgrpc++"), std::string::npos) << daemon;
  EXPECT_NE(daemon.find("libprotobuf"), std::string::npos) << daemon;
}

class LauncherTest : public RenderTest {
 protected:
  // Runs `program` with `args` (quoted), stderr into *err; the exit status.
  int Run(const std::string& program, const std::string& args, std::string* err,
          const std::string& shell = "sh") {
    const std::string err_path = (dir_ / "stderr.txt").string();
    const std::string cmd = shell + " -c \"'" + program + "' " + args + " 2>'" + err_path + "'\"";
    const int st = std::system(cmd.c_str());
    std::ifstream in(err_path);
    err->assign(std::istreambuf_iterator<char>(in), {});
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  // A command line for daemon mode that stops at the config: the file does
  // not exist (exit 3 from the daemon program, naming it), nothing is
  // written anywhere.
  std::string MissingConfigArgs() const {
    return "--config '" + (dir_ / "missing.yaml").string() + "' --socket none --state_file '" +
           (dir_ / "s.yaml").string() + "'";
  }
};

TEST_F(LauncherTest, AMovedInstallRunsItsOwnDaemonProgram) {
  const std::string relative = AERSD_DAEMON_RELATIVE;
  if (relative.empty()) GTEST_SKIP() << "bindir or libexecdir is absolute: no relative lookup";
  // prefix/bin/aersd and prefix/<libexecdir>/aers/aersd under a new prefix.
  const fs::path bin = dir_ / "prefix" / "bin";
  fs::create_directories(bin);
  const fs::path daemon = (bin / relative).lexically_normal();
  fs::create_directories(daemon.parent_path());
  fs::copy_file(AERSD_PATH, bin / "aersd", fs::copy_options::overwrite_existing);
  fs::copy_file(AERSD_DAEMON_PATH, daemon, fs::copy_options::overwrite_existing);
  std::string err;
  EXPECT_EQ(Run((bin / "aersd").string(), MissingConfigArgs(), &err), 3) << err;
  EXPECT_NE(err.find("missing.yaml"), std::string::npos) << err;
}

TEST_F(LauncherTest, DaemonModeWithoutTheDaemonProgramFailsNamingWhereItLooked) {
  if (fs::exists(AERSD_INSTALLED_DAEMON_PATH)) {
    GTEST_SKIP() << AERSD_INSTALLED_DAEMON_PATH << " is installed: a copy would run it";
  }
  // A copy of the command with no daemon program beside it; this
  // directory first on PATH (which must not be searched).
  const fs::path copy = dir_ / "aersd";
  fs::copy_file(AERSD_PATH, copy, fs::copy_options::overwrite_existing);
  std::string err;
  EXPECT_EQ(Run("env",
                "PATH='" + dir_.string() + ":/usr/bin:/bin' '" + copy.string() + "' " +
                    MissingConfigArgs(),
                &err),
            7)
      << err;
  EXPECT_NE(err.find("the daemon program is missing (looked for " + dir_.string() + "/"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find(AERSD_INSTALLED_DAEMON_PATH), std::string::npos) << err;
  // Render works from the copy: it needs no daemon program.
  const std::string tone = WriteText("tone.yaml", R"(version: 1
outputs:
  - {name: out, channels: 1}
nodes:
  - {name: t, kind: tone, params: {freq_hz: 1000}}
routes:
  - {from: t, to: out}
)");
  const std::string out = (dir_ / "tone.wav").string();
  EXPECT_EQ(Run(copy.string(),
                "render --config '" + tone + "' --duration_s 0.1 --output '" + out + "'", &err),
            0)
      << err;
  EXPECT_TRUE(fs::exists(out)) << err;
}

TEST_F(LauncherTest, AFlagFileFromAPipeReachesTheDaemonProgram) {
  // Read once: were the command to parse it before the exec, the daemon
  // program would find the pipe empty and ask for --config (exit 2).
  std::string err;
  EXPECT_EQ(Run(AERSD_PATH,
                "--flagfile=<(printf -- '--config=" + (dir_ / "missing.yaml").string() +
                    "\\n--socket=none\\n--state_file=" + (dir_ / "s.yaml").string() + "\\n')",
                &err, "bash"),
            3)
      << err;
  EXPECT_NE(err.find("missing.yaml"), std::string::npos) << err;
}

// The floor case: inputs routed straight to the outputs. A float WAV comes
// out with every sample bit for bit as it went in, the input's channels,
// rate and length in its header, and no PEAK chunk (the input, written by
// libsndfile with its defaults, has one): 1, 2 and 6 channels, a length
// that is no multiple of the period or of the render's blocks.
TEST_F(RenderTest, PassThroughFloatWavKeepsEverySample) {
  for (int ch : {1, 2, 6}) {
    const size_t frames = 70001;
    const auto x = TestNoise(static_cast<size_t>(ch), frames, static_cast<uint32_t>(ch), 1.0f);
    const std::string in = WriteWav("in.wav", x, 44100);
    ASSERT_TRUE(HasPeakChunk(in));
    const std::string cfg = WriteText("pass.yaml", PassThroughConfig(ch));
    const std::string out = (dir_ / "out.wav").string();
    std::string err;
    ASSERT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", out}, &err), 0)
        << err;
    ExpectFloatWavHeader(out, ch, 44100, frames);
    const auto y = ReadWav(out);
    ASSERT_EQ(y.size(), static_cast<size_t>(ch));
    for (size_t c = 0; c < y.size(); ++c) EXPECT_TRUE(BitEqual(y[c], x[c])) << ch << "ch, " << c;
  }
}

// 16- and 24-bit PCM (WAV and FLAC) in, float WAV out: the samples are
// libsndfile's float reading of the input, exactly.
TEST_F(RenderTest, PcmInputsPassThroughAsLibsndfileReadsThem) {
  const std::string cfg = WriteText("pass.yaml", PassThroughConfig(2));
  const auto x = TestNoise(2, 30011, 5);
  for (const auto& [name, format] : {std::pair{"in16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16},
                                     std::pair{"in24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24},
                                     std::pair{"in24.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24}}) {
    const std::string in = WriteWav(name, x, 48000, format);
    const std::string out = (dir_ / "out.wav").string();
    std::string err;
    ASSERT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", out}, &err), 0)
        << err;
    const auto want = ReadWav(in);
    const auto y = ReadWav(out);
    ASSERT_EQ(y.size(), 2u);
    for (size_t c = 0; c < 2; ++c) EXPECT_TRUE(BitEqual(y[c], want[c])) << name << " ch " << c;
  }
}

// The other outputs: float W64 and CAF keep the samples exactly, FLAC to 24
// bits; the headers carry the input's channels, rate and length, and the
// CAF no peak chunk.
TEST_F(RenderTest, PassThroughToOtherFormatsKeepsTheSamples) {
  const std::string cfg = WriteText("pass.yaml", PassThroughConfig(2));
  const auto x = TestNoise(2, 70001, 9);
  const std::string in = WriteWav("in.wav", x);
  for (const std::string ext : {".w64", ".caf", ".flac"}) {
    const std::string out = (dir_ / ("out" + ext)).string();
    std::string err;
    ASSERT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", out}, &err), 0)
        << err;
    const SF_INFO info = HeaderInfo(out);
    const int want_format = ext == ".w64"   ? (SF_FORMAT_W64 | SF_FORMAT_FLOAT)
                            : ext == ".caf" ? (SF_FORMAT_CAF | SF_FORMAT_FLOAT)
                                            : (SF_FORMAT_FLAC | SF_FORMAT_PCM_24);
    EXPECT_EQ(info.format, want_format) << ext;
    EXPECT_EQ(info.channels, 2) << ext;
    EXPECT_EQ(info.samplerate, 48000) << ext;
    EXPECT_EQ(info.frames, 70001) << ext;
    EXPECT_FALSE(HasPeakChunk(out)) << ext;
    const auto y = ReadWav(out);
    ASSERT_EQ(y.size(), 2u);
    for (size_t c = 0; c < 2; ++c) {
      ASSERT_EQ(y[c].size(), x[c].size()) << ext;
      if (ext != ".flac") {
        EXPECT_TRUE(BitEqual(y[c], x[c])) << ext << " ch " << c;
        continue;
      }
      double max_err = 0.0;
      for (size_t n = 0; n < x[c].size(); ++n) {
        max_err = std::max(max_err, std::fabs(static_cast<double>(y[c][n] - x[c][n])));
      }
      // libsndfile scales by 2^23 - 1 writing and by 2^23 reading: 1.5 LSB.
      EXPECT_LE(max_err, 2.0 / 8388608.0) << ext << " ch " << c;
    }
  }
}

// An input without frames gives an output without frames: a float WAV
// header with the input's channels and rate, an empty data chunk, no PEAK.
TEST_F(RenderTest, EmptyInputGivesAnEmptyFile) {
  const std::string in = WriteWav("in.wav", {Signal{}, Signal{}});
  const std::string cfg = WriteText("pass.yaml", PassThroughConfig(2));
  const std::string out = (dir_ / "out.wav").string();
  std::string err;
  ASSERT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", out}, &err), 0) << err;
  ExpectFloatWavHeader(out, 2, 48000, 0);
  const auto y = ReadWav(out);
  ASSERT_EQ(y.size(), 2u);
  EXPECT_TRUE(y[0].empty());
}

// A FLAC stream cut short declares more frames than it holds: the render
// fails naming the file and how far it got, and leaves no output (nor its
// temporary file) behind. Cut at two places: depending on where the stream
// ends, libsndfile reports a decoder error or just runs out of frames; both
// are read failures.
TEST_F(RenderTest, TruncatedInputIsAClearErrorAndLeavesNothing) {
  const std::string cfg = WriteText("pass.yaml", PassThroughConfig(2));
  for (const double keep : {0.5, 0.9}) {
    const std::string in =
        WriteWav("in.flac", TestNoise(2, 96000, 3), 48000, SF_FORMAT_FLAC | SF_FORMAT_PCM_24);
    fs::resize_file(in, static_cast<uintmax_t>(static_cast<double>(fs::file_size(in)) * keep));
    std::string err;
    EXPECT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output",
                        (dir_ / "out.wav").string()},
                       &err),
              4);
    EXPECT_NE(err.find("in.flac: read failed after "), std::string::npos) << err;
    EXPECT_NE(err.find(" of 96000 frames: "), std::string::npos) << err;
    EXPECT_EQ(Leftovers({"in.flac", "pass.yaml", "stderr.txt"}), std::vector<std::string>{});
  }
}

// A write that fails part way (here the file size limit, EFBIG; a full disk
// fails the same way with ENOSPC) is an error naming the output and the
// system's reason, for WAV and W64, and leaves nothing behind.
TEST_F(RenderTest, WriteFailureIsAClearErrorAndLeavesNothing) {
  const std::string in = WriteWav("in.wav", TestNoise(2, 480000, 4));  // 3.8 MB
  const std::string cfg = WriteText("pass.yaml", PassThroughConfig(2));
  for (const std::string name : {"out.wav", "out.w64"}) {
    std::string err;
    EXPECT_EQ(RunAersdWithFileLimit(
                  {"render", "--config", cfg, "--input", in, "--output", (dir_ / name).string()},
                  1 << 20, &err),
              4)
        << name;
    EXPECT_NE(err.find(name + ": write failed"), std::string::npos) << err;
    EXPECT_NE(err.find(std::strerror(EFBIG)), std::string::npos) << err;
    EXPECT_EQ(Leftovers({"in.wav", "pass.yaml", "stderr.txt"}), std::vector<std::string>{}) << name;
  }
}

// The FLAC encoder writes its last frames inside sf_close, and libsndfile
// reports success even when those writes fail: the render sees the write
// error itself and fails, leaving nothing, instead of putting a cut FLAC in
// place.
TEST_F(RenderTest, AFlacWhoseLastWriteFailsIsAnErrorAndLeavesNothing) {
  const std::string in = WriteWav("in.wav", TestNoise(2, 60000, 5));
  const std::string cfg = WriteText("pass.yaml", PassThroughConfig(2));
  const std::string whole = (dir_ / "whole.flac").string();
  std::string err;
  ASSERT_EQ(RunAersd({"render", "--config", cfg, "--input", in, "--output", whole}, &err), 0)
      << err;
  const auto size = fs::file_size(whole);
  ASSERT_GT(size, 1000u);
  fs::remove(whole);
  // One byte short: everything but the end of the last write fits.
  const std::string out = (dir_ / "out.flac").string();
  EXPECT_EQ(RunAersdWithFileLimit({"render", "--config", cfg, "--input", in, "--output", out},
                                  static_cast<rlim_t>(size - 1), &err),
            4);
  EXPECT_NE(err.find("out.flac: write failed"), std::string::npos) << err;
  EXPECT_NE(err.find(std::strerror(EFBIG)), std::string::npos) << err;
  EXPECT_EQ(Leftovers({"in.wav", "pass.yaml", "stderr.txt"}), std::vector<std::string>{});
}

// Waits (at most `limit`) for the temporary file of a render into
// dir/out.wav by `pid` to exist.
bool WaitForTempFile(const fs::path& dir, pid_t pid, std::chrono::seconds limit) {
  const fs::path tmp = dir / (".out.wav.tmp." + std::to_string(pid));
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    std::error_code ec;
    if (fs::exists(tmp, ec)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// Waits (at most `limit`) for `pid` to end; kills it if it does not.
// Returns its wait status, or -1 when it had to be killed.
int WaitOrKill(pid_t pid, std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  int st = 0;
  while (std::chrono::steady_clock::now() < end) {
    if (::waitpid(pid, &st, WNOHANG) == pid) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &st, 0);
  return -1;
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A render stopped by a signal (Ctrl-C, systemd, a closed terminal, a CPU
// time limit) removes its temporary file and exits 128 + the signal;
// before, the default action killed it and the hidden temporary file
// stayed.
TEST_F(RenderTest, ARenderStoppedBySignalLeavesNothingAndExitsWithTheSignal) {
  const std::string cfg = WriteText("tone.yaml", kToneConfig);
  const fs::path err_path = dir_ / "stderr.txt";
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    SCOPED_TRACE(sigabbrev_np(sig));
    // Twenty minutes of audio, one frame per period: seconds of work (and
    // at most 230 MB should the signal be missed).
    const pid_t pid = SpawnAersd({"render", "--config", cfg, "--duration_s", "1200",
                                  "--period_frames", "1", "--output", (dir_ / "out.wav").string()},
                                 err_path);
    ASSERT_GT(pid, 0);
    EXPECT_TRUE(WaitForTempFile(dir_, pid, std::chrono::seconds(15)));
    ::kill(pid, sig);
    const int st = WaitOrKill(pid, std::chrono::seconds(60));
    const std::string err = ReadText(err_path);
    ASSERT_TRUE(st != -1 && WIFEXITED(st)) << "status " << st << "\n" << err;
    EXPECT_EQ(WEXITSTATUS(st), 128 + sig) << err;
    EXPECT_NE(err.find(std::string("render interrupted by SIG") + sigabbrev_np(sig) + " after"),
              std::string::npos)
        << err;
    EXPECT_EQ(Leftovers({"tone.yaml", "stderr.txt"}), std::vector<std::string>{});
  }
}

// A render waiting for input from a FIFO whose writer stalls never reaches
// its next chunk (libsndfile retries the interrupted read): it is ended a
// second after the signal, its temporary file removed first.
TEST_F(RenderTest, ARenderBlockedOnItsInputIsStillStoppedBySignal) {
  const std::string cfg = WriteText("pass.yaml", PassThroughConfig(1));
  const std::string wav = WriteWav("long.wav", TestNoise(1, 480000, 7));
  const std::string whole = ReadText(wav);
  fs::remove(wav);
  const fs::path fifo = dir_ / "in.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const fs::path err_path = dir_ / "stderr.txt";
  const pid_t pid = SpawnAersd({"render", "--config", cfg, "--input", fifo.string(), "--output",
                                (dir_ / "out.wav").string()},
                               err_path);
  ASSERT_GT(pid, 0);
  // The header and a little audio, then nothing (the writer stays open).
  const int w = ::open(fifo.c_str(), O_WRONLY);
  ASSERT_GE(w, 0) << std::strerror(errno);
  ASSERT_EQ(::write(w, whole.data(), 4096), 4096);
  EXPECT_TRUE(WaitForTempFile(dir_, pid, std::chrono::seconds(15)));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // into the blocking read
  ::kill(pid, SIGTERM);
  const int st = WaitOrKill(pid, std::chrono::seconds(30));
  ::close(w);
  const std::string err = ReadText(err_path);
  ASSERT_TRUE(st != -1 && WIFEXITED(st)) << "status " << st << "\n" << err;
  EXPECT_EQ(WEXITSTATUS(st), 128 + SIGTERM) << err;
  EXPECT_NE(err.find("render interrupted by SIGTERM"), std::string::npos) << err;
  EXPECT_EQ(Leftovers({"pass.yaml", "in.fifo", "stderr.txt"}), std::vector<std::string>{});
}

}  // namespace
}  // namespace aers::test
