// The render's layout changes (backend/render_io.h): interleaving and
// deinterleaving are exact inverses for any channel count, including the
// mono and stereo special cases.
#include "backend/render_io.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace aers::test {
namespace {

// Planar noise of a different level per channel.
std::vector<std::vector<float>> TestSignal(size_t channels, size_t frames, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<std::vector<float>> x(channels, std::vector<float>(frames));
  for (size_t c = 0; c < channels; ++c) {
    const float level = 0.2f + 0.1f * static_cast<float>(c);
    for (auto& v : x[c]) v = dist(rng) * level;
  }
  return x;
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

}  // namespace
}  // namespace aers::test
