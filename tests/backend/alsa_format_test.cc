// Sample conversion of the ALSA backend (backend/alsa_format.h): exact
// integers for S32/S24/S24_3/S16, saturation and clip counts, TPDF dither
// statistics, and no allocation.
#include "backend/alsa_format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/alloc_counter.h"

namespace aers::backend {
namespace {

int32_t Le(const std::byte* p, size_t bytes) {
  uint32_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  const int shift = 32 - static_cast<int>(8 * bytes);
  return static_cast<int32_t>(v << shift) >> shift;  // sign-extend
}

std::vector<int32_t> Encode(const std::vector<float>& x, SampleFormat f, uint64_t* clipped,
                            TpdfDither* dither = nullptr) {
  const size_t bps = BytesPerSample(f);
  std::vector<std::byte> buf(x.size() * bps);
  *clipped = EncodeSamples(x.data(), x.size(), f, buf.data(), bps, dither);
  std::vector<int32_t> out;
  for (size_t i = 0; i < x.size(); ++i) {
    // S24_LE keeps its 24 bits in the low bytes of 4, sign-extended.
    out.push_back(f == SampleFormat::kS24 ? Le(&buf[i * 4], 3) : Le(&buf[i * bps], bps));
    if (f == SampleFormat::kS24) {
      EXPECT_EQ(Le(&buf[i * 4], 4), out.back()) << "sign extension";
    }
  }
  return out;
}

TEST(AlsaFormatTest, IntegersAreScaledRoundedAndSaturated) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {0.0f, 0.5f, -0.5f, 1.0f, -1.0f, 1.5f, -2.0f, 0x1p-20f, nan, -inf};
  uint64_t clipped = 0;
  EXPECT_EQ(Encode(x, SampleFormat::kS32, &clipped),
            (std::vector<int32_t>{0, 1 << 30, -(1 << 30), INT32_MAX, INT32_MIN, INT32_MAX,
                                  INT32_MIN, 1 << 11, 0, 0}));
  EXPECT_EQ(clipped, 2u);  // 1.5 and -2.0; +-1.0 saturate without clipping; non-finite -> 0
  for (SampleFormat f : {SampleFormat::kS24, SampleFormat::kS24_3}) {
    EXPECT_EQ(Encode(x, f, &clipped),
              (std::vector<int32_t>{0, 1 << 22, -(1 << 22), (1 << 23) - 1, -(1 << 23),
                                    (1 << 23) - 1, -(1 << 23), 8, 0, 0}));
    EXPECT_EQ(clipped, 2u);
  }
  EXPECT_EQ(Encode(x, SampleFormat::kS16, &clipped),
            (std::vector<int32_t>{0, 16384, -16384, 32767, -32768, 32767, -32768, 0, 0, 0}));
  EXPECT_EQ(clipped, 2u);
  // Round to nearest (ties to even): 1.5 LSB -> 2, 2.5 LSB -> 2, 2.75 LSB -> 3.
  EXPECT_EQ(Encode({1.5f / 32768, 2.5f / 32768, 2.75f / 32768}, SampleFormat::kS16, &clipped),
            (std::vector<int32_t>{2, 2, 3}));
}

TEST(AlsaFormatTest, FloatPassesBitsUnchanged) {
  const std::vector<float> x = {0.25f, -1.5f, 3.0e-39f, 1.0f};
  std::vector<std::byte> buf(x.size() * 4);
  EXPECT_EQ(EncodeSamples(x.data(), x.size(), SampleFormat::kFloat, buf.data(), 4, nullptr), 0u);
  EXPECT_EQ(std::memcmp(buf.data(), x.data(), buf.size()), 0);
}

TEST(AlsaFormatTest, DecodeInvertsEncodeWhereExact) {
  for (SampleFormat f : {SampleFormat::kFloat, SampleFormat::kS32, SampleFormat::kS24,
                         SampleFormat::kS24_3, SampleFormat::kS16}) {
    const size_t bps = BytesPerSample(f);
    // Multiples of 2^-15 in [-1, 1): exact in every format.
    std::vector<float> x;
    for (int i = -32768; i < 32768; i += 97) x.push_back(static_cast<float>(i) / 32768.0f);
    std::vector<std::byte> buf(x.size() * bps);
    EncodeSamples(x.data(), x.size(), f, buf.data(), bps, nullptr);
    std::vector<float> back(x.size());
    DecodeSamples(buf.data(), bps, x.size(), f, back.data());
    EXPECT_EQ(back, x) << AlsaFormatName(f);
  }
  // Negative full scale and the sign bit of packed 24-bit samples.
  const std::array<std::byte, 6> packed = {std::byte{0x00}, std::byte{0x00}, std::byte{0x80},
                                           std::byte{0xff}, std::byte{0xff}, std::byte{0xff}};
  float y[2];
  DecodeSamples(packed.data(), 3, 2, SampleFormat::kS24_3, y);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[1], -1.0f / 8388608.0f);
}

TEST(AlsaFormatTest, InterleavedStrideWritesOneChannel) {
  // Two channels of S16 interleaved: writing channel 1 leaves channel 0 alone.
  std::vector<std::byte> buf(4 * 2 * 2, std::byte{0x55});
  const float x[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  EncodeSamples(x, 4, SampleFormat::kS16, buf.data() + 2, 4, nullptr);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Le(&buf[static_cast<size_t>(i) * 4], 2), 0x5555);
    EXPECT_EQ(Le(&buf[static_cast<size_t>(i) * 4 + 2], 2), 16384);
  }
  SilenceSamples(buf.data(), 4, 4, SampleFormat::kS16);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Le(&buf[static_cast<size_t>(i) * 4], 2), 0);
}

TEST(AlsaFormatTest, TpdfDitherIsTriangularAndDecorrelates) {
  TpdfDither d(12345);
  double sum = 0, sum2 = 0;
  int over_half = 0;
  constexpr int kN = 200000;
  for (int i = 0; i < kN; ++i) {
    const float v = d.Next();
    ASSERT_GT(v, -1.0f);
    ASSERT_LT(v, 1.0f);
    sum += static_cast<double>(v);
    sum2 += static_cast<double>(v) * static_cast<double>(v);
    if (std::fabs(v) > 0.5f) ++over_half;
  }
  // Triangular on (-1, 1): mean 0, variance 1/6, P(|v| > 0.5) = 1/4.
  EXPECT_NEAR(sum / kN, 0.0, 0.01);
  EXPECT_NEAR(sum2 / kN, 1.0 / 6.0, 0.005);
  EXPECT_NEAR(static_cast<double>(over_half) / kN, 0.25, 0.01);
  // A constant below 1 LSB: without dither it vanishes; with dither its
  // mean survives (the point of dither).
  std::vector<float> x(kN, 0.3f / 32768.0f);
  uint64_t clipped = 0;
  const auto plain = Encode(x, SampleFormat::kS16, &clipped);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 0), kN);
  TpdfDither d2;
  const auto dithered = Encode(x, SampleFormat::kS16, &clipped, &d2);
  double mean = 0;
  for (int32_t v : dithered) {
    ASSERT_LE(std::abs(v), 2);
    mean += v;
  }
  EXPECT_NEAR(mean / kN, 0.3, 0.02);
  // Same seed, same sequence.
  TpdfDither a(7), b(7);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.Next(), b.Next());
}

TEST(AlsaFormatTest, ConversionAllocatesNothing) {
  std::vector<float> x(1024, 0.25f), y(1024);
  std::vector<std::byte> buf(1024 * 4);
  TpdfDither d;
  test::ArmAllocCounter();
  for (SampleFormat f : {SampleFormat::kFloat, SampleFormat::kS32, SampleFormat::kS24,
                         SampleFormat::kS24_3, SampleFormat::kS16}) {
    EncodeSamples(x.data(), x.size(), f, buf.data(), BytesPerSample(f), &d);
    DecodeSamples(buf.data(), BytesPerSample(f), y.size(), f, y.data());
    SilenceSamples(buf.data(), BytesPerSample(f), y.size(), f);
  }
  EXPECT_EQ(test::DisarmAllocCounter(), 0u);
}

}  // namespace
}  // namespace aers::backend
