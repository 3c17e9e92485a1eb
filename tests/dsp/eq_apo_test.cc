// The Equalizer APO parametric EQ reader (dsp/eq_apo.h): an AutoEQ-style
// file against hand-written RBJ biquads, Equalizer APO's defaults and
// width conversions, OFF filters, BOM/CRLF, and every refusal at its exact
// line:column.
#include "dsp/eq_apo.h"

#include <cmath>
#include <complex>
#include <fstream>
#include <numbers>
#include <sstream>

#include "gmock/gmock.h"
#include "model/validate.h"

namespace aers::dsp {
namespace {

using model::IssueCode;
using ::testing::HasSubstr;

std::string ReadTestFile(const std::string& relative) {
  std::ifstream in(std::string(AERS_SOURCE_ROOT) + "/" + relative, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

EqApoProgram MustParse(std::string_view text) {
  auto p = ParseEqApo(text, "t.txt");
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : EqApoProgram{};
}

// --- An independent reference: the cookbook written out here -------------

struct Ref {
  double b0, b1, b2, a0, a1, a2;
};

enum class RefType { kPeak, kLowShelf, kHighShelf };

Ref RbjReference(RefType type, double f0, double gain_db, double q, double fs) {
  const double a = std::pow(10.0, gain_db / 40.0);
  const double w0 = 2.0 * std::numbers::pi * f0 / fs;
  const double c = std::cos(w0);
  const double alpha = std::sin(w0) / (2.0 * q);
  const double ra = 2.0 * std::sqrt(a) * alpha;
  switch (type) {
    case RefType::kPeak:
      return {1 + alpha * a, -2 * c, 1 - alpha * a, 1 + alpha / a, -2 * c, 1 - alpha / a};
    case RefType::kLowShelf:
      return {a * ((a + 1) - (a - 1) * c + ra), 2 * a * ((a - 1) - (a + 1) * c),
              a * ((a + 1) - (a - 1) * c - ra), (a + 1) + (a - 1) * c + ra,
              -2 * ((a - 1) + (a + 1) * c),     (a + 1) + (a - 1) * c - ra};
    case RefType::kHighShelf:
      return {a * ((a + 1) + (a - 1) * c + ra), -2 * a * ((a - 1) + (a + 1) * c),
              a * ((a + 1) + (a - 1) * c - ra), (a + 1) - (a - 1) * c + ra,
              2 * ((a - 1) - (a + 1) * c),      (a + 1) - (a - 1) * c - ra};
  }
  return {};
}

double RefDb(const Ref& r, double f, double fs) {
  const std::complex<double> z1 = std::polar(1.0, -2.0 * std::numbers::pi * f / fs);
  const std::complex<double> h =
      (r.b0 + r.b1 * z1 + r.b2 * z1 * z1) / (r.a0 + r.a1 * z1 + r.a2 * z1 * z1);
  return 20.0 * std::log10(std::abs(h));
}

double SectionsDb(const EqApoSections& s, double f, double fs) {
  double db = 20.0 * std::log10(s.preamp_gain);
  for (const auto& c : s.sections) db += rt::BiquadMagnitudeDb(c, f, fs);
  return db;
}

TEST(EqApo, AutoEqFileMatchesHandWrittenBiquads) {
  const std::string text = ReadTestFile("tests/data/eq_apo/autoeq_headphone.txt");
  ASSERT_FALSE(text.empty());
  const EqApoProgram program = MustParse(text);
  ASSERT_EQ(program.filters.size(), 10u);
  EXPECT_DOUBLE_EQ(program.preamp_db, -6.2);

  // The same EQ, written by hand from the file.
  struct Band {
    RefType type;
    double f0, gain_db, q;
  };
  const Band bands[] = {
      {RefType::kLowShelf, 105, 5.8, 0.70}, {RefType::kPeak, 62, -1.9, 0.45},
      {RefType::kPeak, 176, -3.1, 0.91},    {RefType::kPeak, 1120, 2.4, 1.68},
      {RefType::kPeak, 2380, -4.7, 2.35},   {RefType::kPeak, 3650, 3.9, 3.12},
      {RefType::kPeak, 5210, -2.6, 4.60},   {RefType::kPeak, 7400, 1.8, 2.05},
      {RefType::kPeak, 11200, -3.3, 1.30},  {RefType::kHighShelf, 10000, -1.5, 0.70},
  };
  for (double fs : {44100.0, 48000.0, 96000.0}) {
    const auto sections = DesignEqApo(program, fs);
    ASSERT_TRUE(sections.ok()) << sections.status();
    ASSERT_EQ(sections->sections.size(), 10u);
    EXPECT_NEAR(sections->preamp_gain, std::pow(10.0, -6.2 / 20.0), 1e-12);
    int checked = 0;
    for (int i = 0; i <= 400; ++i) {
      const double f = 10.0 * std::pow(0.45 * fs / 10.0, i / 400.0);
      double want = -6.2;
      for (const Band& b : bands)
        want += RefDb(RbjReference(b.type, b.f0, b.gain_db, b.q, fs), f, fs);
      ASSERT_NEAR(SectionsDb(*sections, f, fs), want, 0.01) << f << " Hz at " << fs;
      ++checked;
    }
    EXPECT_EQ(checked, 401);
  }
}

TEST(EqApo, ReadsEveryFieldOfTheAutoEqFile) {
  const EqApoProgram p = MustParse(ReadTestFile("tests/data/eq_apo/autoeq_headphone.txt"));
  ASSERT_EQ(p.filters.size(), 10u);
  EXPECT_EQ(p.file_name, "t.txt");
  const EqApoFilter& first = p.filters.front();
  EXPECT_EQ(first.type, EqApoType::kLowShelf);
  EXPECT_EQ(first.type_name, "LSC");
  EXPECT_DOUBLE_EQ(first.fc_hz, 105.0);
  EXPECT_DOUBLE_EQ(first.gain_db, 5.8);
  EXPECT_EQ(first.width_kind, EqApoWidth::kQ);
  EXPECT_DOUBLE_EQ(first.width, 0.70);
  EXPECT_FALSE(first.corner_fc);
  EXPECT_EQ(first.line, 2);
  EXPECT_EQ(first.fc_column, 21);
  EXPECT_EQ(p.filters.back().type, EqApoType::kHighShelf);
  EXPECT_EQ(p.filters.back().line, 11);
}

TEST(EqApo, PreampLinesAddUp) {
  const EqApoProgram p = MustParse("Preamp: -6 dB\nPreamp: 1.5 dB\nPreamp: -0.5\n");
  EXPECT_DOUBLE_EQ(p.preamp_db, -5.0);
  EXPECT_TRUE(p.filters.empty());
  EXPECT_DOUBLE_EQ(MustParse("").preamp_db, 0.0);
}

TEST(EqApo, OffFiltersAreCheckedAndLeftOut) {
  const EqApoProgram p = MustParse(
      "Filter 1: OFF PK Fc 100 Hz Gain 3 dB Q 1\n"
      "Filter 2: ON PK Fc 200 Hz Gain -3 dB Q 2\n"
      "Filter 3: OFF HSC Fc 8000 Hz Gain 2 dB\n");
  ASSERT_EQ(p.filters.size(), 1u);
  EXPECT_DOUBLE_EQ(p.filters[0].fc_hz, 200.0);
  EXPECT_EQ(p.filters[0].line, 2);
  // An OFF filter is still read: its errors are errors.
  const auto bad = ParseEqApo("Filter: OFF PK Fc 0 Hz Gain 3 dB Q 1\n", "t.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "t.txt:1:19: Fc 0 Hz is out of range; expected more than 0 and at most 1000000 Hz");
  // OFF filters do not count against the limit.
  std::string many;
  for (size_t i = 0; i < kEqApoMaxFilters; ++i) many += "Filter: ON PK Fc 100 Hz Gain 1 dB Q 1\n";
  for (int i = 0; i < 10; ++i) many += "Filter: OFF PK Fc 100 Hz Gain 1 dB Q 1\n";
  EXPECT_EQ(MustParse(many).filters.size(), kEqApoMaxFilters);
}

TEST(EqApo, BomCrlfCommentsTabsAndFilterNumbers) {
  const std::string lf =
      "# AutoEQ-style, with comments\n"
      "Preamp: -3 dB\n"
      "\n"
      "Filter: ON PK Fc 100 Hz Gain -2 dB Q 1.41\n"
      "Filter 10: ON PK Fc 1000 Hz Gain 2 dB Q 0.7  # trailing comment\n"
      "Filter\t11 :\tON\tLP\tFc\t18000\tHz\n"
      "   Filter 12: ON PK Fc 100Hz Gain -1dB Q 2\n";
  const EqApoProgram want = MustParse(lf);
  ASSERT_EQ(want.filters.size(), 4u);
  std::string crlf;
  for (char c : lf) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  EXPECT_EQ(MustParse("\xEF\xBB\xBF" + crlf), want);
  EXPECT_EQ(MustParse("\xEF\xBB\xBF" + lf), want);
  // No final newline.
  EXPECT_EQ(MustParse(lf.substr(0, lf.size() - 1)), want);
  // Columns count after the BOM.
  const auto bad = ParseEqApo(
      "\xEF\xBB\xBF"
      "Channel: L\r\n",
      "t.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("t.txt:1:1: 'Channel:'"));
  EXPECT_EQ(want.filters[1].fc_hz, 1000.0);
  EXPECT_EQ(want.filters[2].type, EqApoType::kLowPass);
  EXPECT_EQ(want.filters[3].gain_db, -1.0);
}

TEST(EqApo, TypesAndNumbers) {
  const EqApoProgram p = MustParse(
      "Filter: ON PEQ Fc +1e3 Hz Gain -.5 dB Q 2\n"
      "Filter: ON LPQ Fc 500 Hz Q 0.5\n"
      "Filter: ON HPQ Fc 20 Hz\n"
      "Filter: ON BP Fc 1000 Hz\n"
      "Filter: ON NO Fc 50 Hz\n"
      "Filter: ON AP Fc 300 Hz Q 0.7\n"
      "Filter: ON LS Fc 100 Hz Gain 3 dB\n"
      "Filter: ON HS Fc 100 Hz Gain 3 dB\n");
  ASSERT_EQ(p.filters.size(), 8u);
  EXPECT_EQ(p.filters[0].type, EqApoType::kPeaking);
  EXPECT_DOUBLE_EQ(p.filters[0].fc_hz, 1000.0);
  EXPECT_DOUBLE_EQ(p.filters[0].gain_db, -0.5);
  const EqApoType want[] = {EqApoType::kPeaking,  EqApoType::kLowPass,  EqApoType::kHighPass,
                            EqApoType::kBandPass, EqApoType::kNotch,    EqApoType::kAllPass,
                            EqApoType::kLowShelf, EqApoType::kHighShelf};
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(p.filters[i].type, want[i]) << i;
  // LS/HS without a width are centred (Equalizer APO moves only given widths).
  EXPECT_FALSE(p.filters[6].corner_fc);
}

TEST(EqApo, DefaultsFollowEqualizerApo) {
  const EqApoProgram p = MustParse(
      "Filter: ON LP Fc 1000 Hz\n"
      "Filter: ON HP Fc 1000 Hz Gain 6 dB\n"  // a gain on a pass filter is ignored
      "Filter: ON BP Fc 1000 Hz\n"
      "Filter: ON NO Fc 1000 Hz\n"
      "Filter: ON LSC Fc 1000 Hz Gain 6 dB\n"
      "Filter: ON HSC Fc 1000 Hz Gain -6 dB\n");
  const auto params = EqApoBiquadParams(p, 48000.0);
  ASSERT_TRUE(params.ok()) << params.status();
  ASSERT_EQ(params->size(), 6u);
  const double sqrt_half = std::sqrt(0.5);
  EXPECT_NEAR((*params)[0].q, sqrt_half, 1e-12);
  EXPECT_NEAR((*params)[1].q, sqrt_half, 1e-12);
  EXPECT_EQ((*params)[1].gain_db, 0.0);
  EXPECT_EQ((*params)[1].type, rt::BiquadType::kHighpass);
  EXPECT_NEAR((*params)[2].q, sqrt_half, 1e-12);
  EXPECT_EQ((*params)[2].type, rt::BiquadType::kBandpass);
  EXPECT_DOUBLE_EQ((*params)[3].q, 30.0);
  // Shelves: S = 0.9, Q = 1 / sqrt((A + 1/A)(1/S - 1) + 2).
  for (int i : {4, 5}) {
    const double a = std::pow(10.0, (*params)[i].gain_db / 40.0);
    EXPECT_NEAR((*params)[i].q, 1.0 / std::sqrt((a + 1.0 / a) * (1.0 / 0.9 - 1.0) + 2.0), 1e-12);
    EXPECT_DOUBLE_EQ((*params)[i].freq_hz, 1000.0);
  }
}

TEST(EqApo, ShelfSlopeInDb) {
  // 12 dB per octave is S = 1, Q = 1/sqrt(2) at any gain; the C types keep Fc.
  const EqApoProgram p = MustParse(
      "Filter: ON LSC 12dB Fc 200 Hz Gain 6 dB\n"
      "Filter: ON HSC 12 dB Fc 5000 Hz Gain -9 dB\n"
      "Filter: ON LSC 6 dB Fc 200 Hz Gain 4 dB\n");
  EXPECT_EQ(p.filters[0].width_kind, EqApoWidth::kSlopeDb);
  EXPECT_DOUBLE_EQ(p.filters[0].width, 12.0);
  const auto params = EqApoBiquadParams(p, 48000.0);
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_NEAR((*params)[0].q, std::sqrt(0.5), 1e-12);
  EXPECT_NEAR((*params)[1].q, std::sqrt(0.5), 1e-12);
  EXPECT_DOUBLE_EQ((*params)[0].freq_hz, 200.0);
  EXPECT_DOUBLE_EQ((*params)[1].freq_hz, 5000.0);
  const double a = std::pow(10.0, 4.0 / 40.0);
  EXPECT_NEAR((*params)[2].q, 1.0 / std::sqrt((a + 1.0 / a) * (2.0 - 1.0) + 2.0), 1e-12);
}

TEST(EqApo, LsHsGiveTheCornerFrequency) {
  // LS/HS with a width: Fc is the corner; the centre is Fc * 10^(|g|/(80 S))
  // for a low shelf, Fc / that for a high shelf (Equalizer APO, "DCX2496").
  const EqApoProgram p = MustParse(
      "Filter: ON LS 12dB Fc 100 Hz Gain 8 dB\n"
      "Filter: ON HS 6dB Fc 8000 Hz Gain -4 dB\n"
      "Filter: ON LS Fc 100 Hz Gain 8 dB Q 0.7071\n");
  EXPECT_TRUE(p.filters[0].corner_fc);
  const auto params = EqApoBiquadParams(p, 48000.0);
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_NEAR((*params)[0].freq_hz, 100.0 * std::pow(10.0, 8.0 / 80.0), 1e-9);
  EXPECT_NEAR((*params)[1].freq_hz, 8000.0 / std::pow(10.0, 4.0 / 80.0 / 0.5), 1e-9);
  // A Q of 1/sqrt(2) is S = 1 at any gain.
  EXPECT_NEAR((*params)[2].freq_hz, 100.0 * std::pow(10.0, 8.0 / 80.0), 1e-3);
  EXPECT_DOUBLE_EQ((*params)[2].q, 0.7071);
}

// Frequency where |H| crosses `level_db`, by bisection between lo and hi.
double Crossing(const rt::BiquadCoeffs& c, double fs, double level_db, double lo, double hi) {
  const double sign = rt::BiquadMagnitudeDb(c, lo, fs) - level_db;
  for (int i = 0; i < 200; ++i) {
    const double mid = std::sqrt(lo * hi);
    if ((rt::BiquadMagnitudeDb(c, mid, fs) - level_db) * sign > 0) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return std::sqrt(lo * hi);
}

TEST(EqApo, BandwidthInOctavesIsTheCookbookQ) {
  // RBJ cookbook (and Equalizer APO's alpha): 1/Q = 2 sinh(ln2/2 * BW * w0/sin w0),
  // BW between a notch's -3 dB points and a peak's half-gain points. The
  // w0/sin w0 term is the cookbook's correction for the bilinear warping:
  // exact at low frequencies, an approximation towards Nyquist.
  for (double fs : {44100.0, 48000.0}) {
    for (double f0 : {100.0, 1000.0, 8000.0}) {
      for (double bw : {0.3, 1.0, 2.0}) {
        const std::string text = "Filter: ON NO Fc " + std::to_string(f0) + " Hz BW Oct " +
                                 std::to_string(bw) + "\nFilter: ON PK Fc " + std::to_string(f0) +
                                 " Hz Gain 6 dB BW Oct " + std::to_string(bw) + "\n";
        const EqApoProgram p = MustParse(text);
        EXPECT_EQ(p.filters[0].width_kind, EqApoWidth::kBandwidthOct);
        const auto params = EqApoBiquadParams(p, fs);
        ASSERT_TRUE(params.ok()) << params.status();
        const double w0 = 2.0 * std::numbers::pi * f0 / fs;
        const double q = 1.0 / (2.0 * std::sinh(std::log(2.0) / 2.0 * bw * w0 / std::sin(w0)));
        EXPECT_NEAR((*params)[0].q, q, 1e-12 * q);
        EXPECT_NEAR((*params)[1].q, q, 1e-12 * q);

        const auto s = DesignEqApo(p, fs);
        ASSERT_TRUE(s.ok()) << s.status();
        const double lo = Crossing(s->sections[0], fs, -3.0103, 1.0, f0);
        const double hi = Crossing(s->sections[0], fs, -3.0103, f0, fs / 2 * 0.9999);
        const double plo = Crossing(s->sections[1], fs, 3.0, 1.0, f0);
        const double phi = Crossing(s->sections[1], fs, 3.0, f0, fs / 2 * 0.9999);
        const double tolerance_oct = f0 <= 1000.0 && bw <= 1.0 ? 0.002 : 0.1;
        EXPECT_NEAR(std::log2(hi / lo), bw, tolerance_oct) << f0 << " " << bw << " " << fs;
        EXPECT_NEAR(std::log2(phi / plo), bw, tolerance_oct) << f0 << " " << bw << " " << fs;
      }
    }
  }
}

TEST(EqApo, NyquistIsAnErrorAtTheFcValue) {
  const EqApoProgram p = MustParse(
      "Preamp: -1 dB\n"
      "Filter 1: ON PK Fc 22050 Hz Gain 1 dB Q 1\n"
      "Filter 2: ON PK Fc 30000 Hz Gain 1 dB Q 1\n");
  const auto at_44 = DesignEqApo(p, 44100.0);
  ASSERT_FALSE(at_44.ok());
  EXPECT_EQ(at_44.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(at_44.status().message(),
            "t.txt:2:20: Fc 22050 Hz is at or above Nyquist (22050 Hz at 44100 Hz)\n"
            "t.txt:3:20: Fc 30000 Hz is at or above Nyquist (22050 Hz at 44100 Hz)");
  EXPECT_TRUE(DesignEqApo(p, 96000.0).ok());
  // Between 0.49 fs and Nyquist: kept, and clamped to 0.49 fs by
  // rt::DesignBiquad as the biquad kind does.
  const EqApoProgram near = MustParse("Filter: ON PK Fc 21900 Hz Gain 3 dB Q 1\n");
  const auto s = DesignEqApo(near, 44100.0);
  ASSERT_TRUE(s.ok());
  const rt::BiquadCoeffs clamped =
      rt::DesignBiquad({rt::BiquadType::kPeaking, 0.49 * 44100.0, 1.0, 3.0}, 44100.0);
  EXPECT_DOUBLE_EQ(s->sections[0].b0, clamped.b0);
  EXPECT_DOUBLE_EQ(s->sections[0].a1, clamped.a1);
  // A low-shelf corner whose centre lands above Nyquist.
  const auto shifted =
      DesignEqApo(MustParse("Filter: ON LS 3dB Fc 20000 Hz Gain 12 dB\n"), 44100.0);
  ASSERT_FALSE(shifted.ok());
  EXPECT_THAT(std::string(shifted.status().message()),
              HasSubstr("t.txt:1:22: LS corner Fc 20000 Hz puts the shelf's centre at"));
  EXPECT_FALSE(DesignEqApo(near, 0.0).ok());
}

// --- Refusals, each at its line:column -------------------------------------

struct Refusal {
  std::string text;
  int line, column;
  IssueCode code;
  std::string message_part;
};

TEST(EqApo, RefusalsNameLineAndColumn) {
  const std::string ok_filter = "Filter: ON PK Fc 100 Hz Gain 1 dB Q 1\n";
  const std::vector<Refusal> cases = {
      {"Channel: L\n", 1, 1, IssueCode::kBadValue, "'Channel:' is an Equalizer APO command"},
      {ok_filter + "Include: other.txt\n", 2, 1, IssueCode::kBadValue, "'Include:'"},
      {"GraphicEQ: 25 0; 40 -1\n", 1, 1, IssueCode::kBadValue, "'GraphicEQ:'"},
      {"Device: Speakers\n", 1, 1, IssueCode::kBadValue, "'Device:'"},
      {"  Convolution: room.wav\n", 1, 3, IssueCode::kBadValue, "'Convolution:'"},
      {"Delay: 10 ms\n", 1, 1, IssueCode::kBadValue, "'Delay:'"},
      {"Foo: bar\n", 1, 1, IssueCode::kSyntax, "unknown command 'Foo'"},
      {"preamp: -6 dB\n", 1, 1, IssueCode::kSyntax, "unknown command 'preamp'"},
      {"Room EQ V5.19\n", 1, 1, IssueCode::kSyntax, "expected 'Preamp: <gain> dB'"},
      {"Filter x: ON PK Fc 100 Hz Gain 1 dB Q 1\n", 1, 8, IssueCode::kSyntax,
       "expected 'Filter:' or 'Filter <number>:'"},
      {"Filter 1: PK Fc 100 Hz Gain 1 dB Q 1\n", 1, 11, IssueCode::kSyntax,
       "expected ON or OFF after 'Filter:', found 'PK'"},
      {"Filter 1:\n", 1, 10, IssueCode::kSyntax, "expected ON or OFF"},
      {"Filter 1: ON\n", 1, 13, IssueCode::kMissingField, "expected a filter type"},
      {"Filter 1: ON XX Fc 100 Hz Gain 1 dB Q 1\n", 1, 14, IssueCode::kBadValue,
       "unknown filter type 'XX'; expected one of PK, PEQ"},
      {"Filter 1: ON pk Fc 100 Hz Gain 1 dB Q 1\n", 1, 14, IssueCode::kBadValue,
       "filter types are upper case: write 'PK'"},
      {"Filter 1: ON Modal Fc 40 Hz Gain -5 dB Q 5\n", 1, 14, IssueCode::kBadValue,
       "unknown filter type 'Modal'"},
      {"Filter 1: ON PK Gain 1 dB Q 1\n", 1, 30, IssueCode::kMissingField,
       "missing 'Fc <frequency> Hz' for PK"},
      {"Filter 1: ON PK Fc 100 Hz Q 1\n", 1, 30, IssueCode::kMissingField,
       "missing 'Gain <gain> dB' for PK"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1 dB\n", 1, 36, IssueCode::kMissingField,
       "missing 'Q <q>' or 'BW Oct <octaves>' for PK"},
      {"Filter 1: ON AP Fc 100 Hz\n", 1, 26, IssueCode::kMissingField, "for AP"},
      {"Filter 1: ON PK Fc 100 Hz Fc 200 Hz Gain 1 dB Q 1\n", 1, 27, IssueCode::kDuplicateKey,
       "Fc is given twice (first at column 20)"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1 dB Q 1 Q 2\n", 1, 41, IssueCode::kDuplicateKey,
       "Q is given twice"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1 dB Q 1 BW Oct 1\n", 1, 48, IssueCode::kBadValue,
       "give a Q or a BW Oct, not both"},
      {"Filter 1: ON LSC Fc 100 Hz Gain 1 dB BW Oct 1\n", 1, 45, IssueCode::kBadValue,
       "shelves take a Q or a slope in dB, not BW Oct"},
      {"Filter 1: ON LSC 12dB Fc 100 Hz Gain 1 dB Q 0.7\n", 1, 45, IssueCode::kBadValue,
       "a slope in dB or a Q, not both"},
      {"Filter 1: ON PK 12dB Fc 100 Hz Gain 1 dB Q 1\n", 1, 17, IssueCode::kBadValue,
       "a slope in dB is only for shelves (LS, LSC, HS, HSC), not PK"},
      {"Filter 1: ON LSC 12 Fc 100 Hz Gain 1 dB\n", 1, 21, IssueCode::kSyntax,
       "expected 'dB' after the slope value, found 'Fc'"},
      {"Filter 1: ON LSC 48 dB Fc 100 Hz Gain 20 dB\n", 1, 18, IssueCode::kOutOfRange,
       "slope 48 dB is too steep for a 20 dB shelf"},
      {"Filter 1: ON LSC 0 dB Fc 100 Hz Gain 2 dB\n", 1, 18, IssueCode::kOutOfRange,
       "slope 0 dB is out of range"},
      {"Filter 1: ON PK Fc 100 Gain 1 dB Q 1\n", 1, 24, IssueCode::kSyntax,
       "expected 'Hz' after the Fc value, found 'Gain'"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1 Q 1\n", 1, 34, IssueCode::kSyntax,
       "expected 'dB' after the Gain value"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1 dB Q\n", 1, 38, IssueCode::kMissingField,
       "expected a value after Q"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1 dB BW 1\n", 1, 40, IssueCode::kSyntax,
       "expected 'Oct' after 'BW'"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1 dB Q 1 T60 300\n", 1, 41, IssueCode::kUnknownField,
       "unexpected 'T60'; expected Fc <f> Hz, Gain <g> dB, Q <q> or BW Oct <octaves>"},
      {"Filter 1: ON PK Fc 0 Hz Gain 1 dB Q 1\n", 1, 20, IssueCode::kOutOfRange,
       "Fc 0 Hz is out of range"},
      {"Filter 1: ON PK Fc -50 Hz Gain 1 dB Q 1\n", 1, 20, IssueCode::kOutOfRange,
       "Fc -50 Hz is out of range"},
      {"Filter 1: ON PK Fc 2e6 Hz Gain 1 dB Q 1\n", 1, 20, IssueCode::kOutOfRange,
       "Fc 2000000 Hz is out of range"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1 dB Q 0\n", 1, 39, IssueCode::kOutOfRange,
       "Q 0 is out of range; expected 0.001 to 1000"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1 dB Q -1\n", 1, 39, IssueCode::kOutOfRange,
       "Q -1 is out of range"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1 dB BW Oct 0\n", 1, 44, IssueCode::kOutOfRange,
       "BW Oct 0 octaves is out of range"},
      {"Filter 1: ON PK Fc 100 Hz Gain 60 dB Q 1\n", 1, 32, IssueCode::kOutOfRange,
       "Gain 60 dB is out of range; expected -48 to 48 dB"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1e999 dB Q 1\n", 1, 32, IssueCode::kOutOfRange,
       "Gain '1e999' is not a finite number"},
      {"Filter 1: ON PK Fc 100 Hz Gain nan dB Q 1\n", 1, 32, IssueCode::kSyntax,
       "expected a number for Gain, found 'nan'"},
      {"Filter 1: ON PK Fc inf Hz Gain 1 dB Q 1\n", 1, 20, IssueCode::kSyntax,
       "expected a number for Fc, found 'inf'"},
      {"Filter 1: ON PK Fc 100 Hz Gain -3,5 dB Q 1\n", 1, 32, IssueCode::kSyntax,
       "Gain '-3,5' has a decimal comma; write the decimal point as '.'"},
      {"Filter 1: ON PK Fc 100 Hz Gain 1 dB Q 1,41\n", 1, 39, IssueCode::kSyntax, "decimal comma"},
      {"Preamp: -6,2 dB\n", 1, 9, IssueCode::kSyntax, "Preamp '-6,2' has a decimal comma"},
      {"Filter 1: ON PK Fc 1.000 Hz Gain 1 dB Q 1\n", 1, 20, IssueCode::kBadValue,
       "Fc '1.000' is ambiguous"},
      {"Preamp: -6 dB \xff\n", 1, 15, IssueCode::kNotUtf8, "UTF-8"},
      {"# \xc3\xa9 \xff\n", 1, 5, IssueCode::kNotUtf8, "UTF-8"},
      {"Preamp: -6 dB\rFilter: ON PK Fc 100 Hz Gain 1 dB Q 1\n", 1, 14, IssueCode::kSyntax,
       "control character 0x0D"},
      {"Preamp:\n", 1, 8, IssueCode::kMissingField, "expected the preamp gain"},
      {"Preamp: -6 dB extra\n", 1, 15, IssueCode::kSyntax, "unexpected 'extra'"},
      {"Preamp: -200 dB\n", 1, 9, IssueCode::kOutOfRange, "Preamp -200 dB is out of range"},
      {"Preamp: -60 dB\nPreamp: -60 dB\n", 2, 9, IssueCode::kOutOfRange,
       "the Preamp lines add up to -120 dB"},
      {"#" + std::string(2000, 'x') + "\n", 1, 1025, IssueCode::kTooLarge,
       "the line is 2001 bytes; at most 1024"},
  };
  for (const Refusal& c : cases) {
    const EqApoReadResult r = ReadEqApo(c.text, "t.txt");
    ASSERT_EQ(r.issues.size(), 1u) << c.text << "\n" << EqApoIssuesText("t.txt", r.issues);
    const EqApoIssue& issue = r.issues[0];
    EXPECT_EQ(issue.line, c.line) << c.text;
    EXPECT_EQ(issue.column, c.column) << c.text << "\n" << issue.message;
    EXPECT_EQ(issue.code, c.code) << c.text << "\n" << model::IssueCodeName(issue.code);
    EXPECT_THAT(issue.message, HasSubstr(c.message_part)) << c.text;
    // The Status carries the same, as FILE:LINE:COLUMN.
    const auto status = ParseEqApo(c.text, "eq/x.txt");
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(status.status().message(), "eq/x.txt:" + std::to_string(c.line) + ":" +
                                             std::to_string(c.column) + ": " + issue.message);
  }
}

TEST(EqApo, TooManyFiltersAndTooLargeText) {
  std::string many;
  for (size_t i = 0; i <= kEqApoMaxFilters; ++i) {
    many += "Filter " + std::to_string(i + 1) + ": ON PK Fc 100 Hz Gain 1 dB Q 1\n";
  }
  EqApoReadResult r = ReadEqApo(many, "t.txt");
  ASSERT_EQ(r.issues.size(), 1u);
  EXPECT_EQ(r.issues[0].line, 65);
  EXPECT_EQ(r.issues[0].column, 1);
  EXPECT_EQ(r.issues[0].code, IssueCode::kTooLarge);
  EXPECT_EQ(r.issues[0].message, "more than 64 ON filters");

  const std::string big(kEqApoMaxBytes + 1, '\n');
  r = ReadEqApo(big, "t.txt");
  ASSERT_EQ(r.issues.size(), 1u);
  EXPECT_EQ(r.issues[0].line, 1);
  EXPECT_EQ(r.issues[0].column, 1);
  EXPECT_EQ(r.issues[0].code, IssueCode::kTooLarge);
  EXPECT_TRUE(ReadEqApo(std::string(kEqApoMaxBytes, '\n'), "t.txt").issues.empty());
}

TEST(EqApo, EveryErrorOfTheFileAtOnce) {
  const auto r = ParseEqApo(
      "Preamp: -6.2 dB\n"
      "Channel: L\n"
      "Filter 1: ON PK Fc 100 Hz Gain 1 dB Q 0\n"
      "Filter 2: ON PK Fc 200 Hz Gain 1 dB Q 1\n"
      "Filter 3: ON LSC Fc 105 Hz Gain 5,8 dB Q 0.7\n",
      "eq.txt");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "eq.txt:2:1: 'Channel:' is an Equalizer APO command this reader does not take; "
            "expected 'Preamp:' or 'Filter:' lines only\n"
            "eq.txt:3:39: Q 0 is out of range; expected 0.001 to 1000\n"
            "eq.txt:5:33: Gain '5,8' has a decimal comma; write the decimal point as '.' (1.5, "
            "not 1,5)");
  // Past model::kMaxReportedIssues the rest are counted.
  std::string bad;
  for (int i = 0; i < 60; ++i) bad += "Channel: L\n";
  const EqApoReadResult many = ReadEqApo(bad, "t.txt");
  EXPECT_EQ(many.issues.size(), model::kMaxReportedIssues);
  EXPECT_EQ(many.omitted_issues, 60 - model::kMaxReportedIssues);
  EXPECT_THAT(EqApoIssuesText("t.txt", many.issues, many.omitted_issues),
              HasSubstr("\n... and 10 more problems"));
}

}  // namespace
}  // namespace aers::dsp
