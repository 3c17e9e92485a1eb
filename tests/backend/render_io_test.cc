// The render's file-side pieces (backend/render_io.h) against libsndfile:
// the float WAV writer must write the bytes libsndfile writes.
#include "backend/render_io.h"

#include <fcntl.h>
#include <sndfile.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "gtest/gtest.h"

namespace aers::test {
namespace {

namespace fs = std::filesystem;
using backend::FloatWavWriter;
using backend::PeakTracker;

class RenderIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("aers-render-io-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string ReadBytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  fs::path dir_;
};

// Planar test signal: noise of a different level per channel, with a few
// exact ties for the peak (the first must win) and a silent channel when
// there are three or more.
std::vector<std::vector<float>> TestSignal(size_t channels, size_t frames, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<std::vector<float>> x(channels, std::vector<float>(frames));
  for (size_t c = 0; c < channels; ++c) {
    const float level = 0.2f + 0.1f * static_cast<float>(c);
    for (auto& v : x[c]) v = dist(rng) * level;
    if (channels >= 3 && c == 2) std::fill(x[c].begin(), x[c].end(), 0.0f);
    if (frames > 10 && c == 0) {
      x[c][frames / 3] = 0.95f;   // the peak...
      x[c][frames / 2] = -0.95f;  // ...and a later tie, in magnitude
    }
  }
  return x;
}

// What libsndfile writes for these samples, in blocks of `chunk` frames.
void WriteWithSndfile(const std::string& path, const std::vector<std::vector<float>>& x,
                      size_t frames, int rate, size_t chunk) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = static_cast<int>(x.size());
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
  std::vector<float> inter(frames * x.size());
  std::vector<const float*> src;
  for (const auto& c : x) src.push_back(c.data());
  backend::Interleave(src.data(), x.size(), frames, inter.data());
  for (size_t off = 0; off < frames; off += chunk) {
    const size_t n = std::min(chunk, frames - off);
    ASSERT_EQ(sf_writef_float(f, inter.data() + off * x.size(), static_cast<sf_count_t>(n)),
              static_cast<sf_count_t>(n));
  }
  sf_close(f);
}

void WriteWithWriter(const std::string& path, const std::vector<std::vector<float>>& x,
                     size_t frames, int rate, size_t block) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  ASSERT_GE(fd, 0);
  FloatWavWriter w(fd, static_cast<int>(x.size()), rate, block);
  ASSERT_TRUE(w.Begin().ok());
  std::vector<const float*> ptrs(x.size());
  for (size_t off = 0; off < frames; off += block) {
    const size_t n = std::min(block, frames - off);
    for (size_t c = 0; c < x.size(); ++c) ptrs[c] = x[c].data() + off;
    ASSERT_TRUE(w.Write(ptrs.data(), n).ok());
  }
  ASSERT_TRUE(w.Finish().ok());
  ::close(fd);
}

TEST(RenderIoKernels, InterleaveAndDeinterleaveRoundTripForAnyChannelCount) {
  for (size_t ch : {1u, 2u, 3u, 5u, 8u}) {
    for (size_t frames : {0u, 1u, 7u, 1000u, 4099u}) {
      auto x = TestSignal(ch, frames, 7);
      std::vector<const float*> src;
      for (const auto& c : x) src.push_back(c.data());
      std::vector<float> inter(ch * frames);
      backend::Interleave(src.data(), ch, frames, inter.data());
      for (size_t n = 0; n < frames; ++n) {
        for (size_t c = 0; c < ch; ++c) ASSERT_EQ(inter[n * ch + c], x[c][n]);
      }
      std::vector<std::vector<float>> back(ch, std::vector<float>(frames));
      std::vector<float*> dst;
      for (auto& c : back) dst.push_back(c.data());
      backend::Deinterleave(inter.data(), ch, frames, dst.data());
      EXPECT_EQ(back, x) << ch << " channels, " << frames << " frames";
    }
  }
}

TEST(RenderIoKernels, PeakIsTheFirstLargestMagnitudeWhateverTheBlocks) {
  const size_t frames = 10007;
  auto x = TestSignal(3, frames, 3);
  for (size_t block : {1u, 100u, 3333u, 10007u}) {
    PeakTracker peaks(3);
    std::vector<const float*> ptrs(3);
    for (size_t off = 0; off < frames; off += block) {
      for (size_t c = 0; c < 3; ++c) ptrs[c] = x[c].data() + off;
      peaks.Update(ptrs.data(), std::min(block, frames - off));
    }
    EXPECT_EQ(peaks.value(0), 0.95f);
    EXPECT_EQ(peaks.position(0), frames / 3) << "block " << block;
    EXPECT_EQ(peaks.value(2), 0.0f);  // silent: 0 at frame 0
    EXPECT_EQ(peaks.position(2), 0u);
    float max1 = 0.0f;
    size_t at1 = 0;
    for (size_t n = 0; n < frames; ++n) {
      if (std::fabs(x[1][n]) > max1) max1 = std::fabs(x[1][n]), at1 = n;
    }
    EXPECT_EQ(peaks.value(1), max1);
    EXPECT_EQ(peaks.position(1), at1);
  }
}

TEST(RenderIoKernels, SizesThatDoNotFitRiffAreRefused) {
  EXPECT_TRUE(backend::FloatWavFits(2, 28800000));
  EXPECT_TRUE(backend::FloatWavFits(2, 0));
  EXPECT_FALSE(backend::FloatWavFits(2, 600000000));  // 4.8 GB
  EXPECT_FALSE(backend::FloatWavFits(0, 10));
}

// Byte for byte what libsndfile writes, except the PEAK chunk's timestamp
// (seconds at close), for 1 to 8 channels, lengths that are and are not a
// multiple of the block, and an empty file.
TEST_F(RenderIoTest, FloatWavIsWhatLibsndfileWrites) {
  for (size_t ch : {1u, 2u, 3u, 8u}) {
    for (size_t frames : {0u, 1u, 4095u, 4096u, 50001u}) {
      auto x = TestSignal(ch, frames, static_cast<uint32_t>(ch * 1000 + frames));
      const std::string ref = (dir_ / "ref.wav").string();
      const std::string got = (dir_ / "got.wav").string();
      WriteWithSndfile(ref, x, frames, 44100, 1000);
      WriteWithWriter(got, x, frames, 44100, 4096);
      const std::string a = ReadBytes(ref);
      const std::string b = ReadBytes(got);
      ASSERT_EQ(a.size(), b.size()) << ch << " channels, " << frames << " frames";
      ASSERT_EQ(a.size(), backend::FloatWavHeaderBytes(static_cast<int>(ch)) + frames * ch * 4);
      ASSERT_EQ(a.substr(48, 4), "PEAK");
      const size_t stamp = 60;  // RIFF 12, fmt 24, fact 12, PEAK id+size+version 12
      EXPECT_EQ(a.substr(0, stamp), b.substr(0, stamp)) << ch << " channels, " << frames;
      EXPECT_EQ(a.substr(stamp + 4), b.substr(stamp + 4)) << ch << " channels, " << frames;
    }
  }
}

TEST_F(RenderIoTest, WriteErrorsCarryTheSystemsReason) {
  const int fd = ::open((dir_ / "ro.wav").c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
  ASSERT_GE(fd, 0);
  FloatWavWriter w(fd, 2, 48000, 16);
  const auto st = w.Begin();
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message(), std::strerror(EBADF));
  ::close(fd);
}

}  // namespace
}  // namespace aers::test
