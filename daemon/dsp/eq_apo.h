// Equalizer APO parametric EQ text: the `Preamp:` and `Filter:` lines that
// Room EQ Wizard and AutoEQ export ("Preamp: -6.2 dB",
// "Filter 1: ON PK Fc 100 Hz Gain -3.0 dB Q 1.41"), read into a value and
// turned into biquad sections at a sample rate.
//
// Thread: non-real-time (parsing and design allocate). Nothing here runs on
// the audio thread; a node kind designs its sections before it is swapped in.
//
// Syntax and meaning follow Equalizer APO's configuration reference and its
// filter definitions (filters/BiQuadFilterFactory.cpp, BiQuadFilter.cpp and
// BiQuad.cpp of Equalizer APO 1.3): what this reader accepts means what it
// means there. The coefficients are the biquad kind's, rt::DesignBiquad
// (R. Bristow-Johnson, "Audio EQ Cookbook").
//
// Accepted, line by line (fields separated by spaces or tabs; keywords and
// type names are case-sensitive, as in Equalizer APO):
//
//   Preamp: <gain> [dB]          every Preamp line adds to the preamp
//   Filter[ <n>]: ON|OFF <type> [<slope> dB] <field>...
//   # comment                    also after the fields of a line
//   (blank line)
//
// Types: PK (= PEQ) peaking; LSC, HSC shelves at their centre frequency;
// LS, HS shelves whose Fc is the corner (see EqApoFilter::corner_fc);
// LP (= LPQ), HP (= HPQ) second-order low/high pass; BP band pass
// (constant 0 dB peak); NO notch; AP all-pass.
// Fields, each at most once, in any order: `Fc <f> Hz`, `Gain <g> dB`,
// `Q <q>`, `BW Oct <octaves>`; a unit may be attached ("100Hz", "12dB").
// Ranges: Fc > 0 to 1e6 Hz, Gain -48 to 48 dB (the biquad kind's), Q 0.001
// to 1000, BW Oct 0.001 to 10, slope 0.1 to 48 dB (and S within the
// cookbook's limit for the gain), each Preamp and their sum -96 to 96 dB.
// OFF filters are read and checked like the others, then left out.
// The text may start with a UTF-8 byte order mark; lines may end in CRLF.
//
// Refused (each an EqApoIssue): every other Equalizer APO command (Channel,
// Include, GraphicEQ, Device, Convolution, Delay, Copy, If, Eval, Stage,
// ...), unknown commands and filter types, missing or repeated fields,
// numbers that are not finite or out of range, decimal commas ("1,5"), a
// 4-digit Fc written with a '.' thousands separator ("1.000", which
// Equalizer APO reads as 1000 Hz), bytes that are not UTF-8, control
// characters, lines over kEqApoMaxLineBytes bytes, text over kEqApoMaxBytes,
// more than kEqApoMaxFilters ON filters. The header lines of REW's generic
// text export ("Filter Settings file", "Room EQ V5.19", "Dated: ...") are
// refused like any other text: comment them out with '#'.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/graph.h"
#include "rt/biquad.h"

namespace aers::dsp {

/// Limits of what the reader takes: far above any REW or AutoEQ export
/// (AutoEQ writes ~10 filters in ~600 bytes, REW at most 20-ish).
inline constexpr size_t kEqApoMaxBytes = 64 * 1024;
inline constexpr size_t kEqApoMaxLineBytes = 1024;
inline constexpr size_t kEqApoMaxFilters = 64;

/// Equalizer APO's filter types by what they do (several spellings each).
enum class EqApoType {
  kPeaking,    ///< PK, PEQ
  kLowShelf,   ///< LS, LSC
  kHighShelf,  ///< HS, HSC
  kLowPass,    ///< LP, LPQ
  kHighPass,   ///< HP, HPQ
  kBandPass,   ///< BP
  kNotch,      ///< NO
  kAllPass,    ///< AP
};

/// How a filter's width was given.
enum class EqApoWidth {
  kDefault,       ///< none: LP/HP/BP Q = 1/sqrt(2), NO Q = 30, shelves S = 0.9
  kQ,             ///< `Q <q>`
  kBandwidthOct,  ///< `BW Oct <octaves>` (not shelves)
  kSlopeDb,       ///< `<slope> dB` after a shelf type: dB per octave, S = slope / 12
};

/// One `Filter` line as written (units in the names; nothing converted yet).
struct EqApoFilter {
  EqApoType type = EqApoType::kPeaking;
  std::string type_name;  ///< as written: "PK", "LSC", ...
  double fc_hz = 0.0;     ///< > 0
  /// dB; 0 for types without a gain (LP, HP, BP, NO, AP: a Gain written on
  /// them is checked and ignored, as Equalizer APO does).
  double gain_db = 0.0;
  EqApoWidth width_kind = EqApoWidth::kDefault;
  /// Q, octaves or dB per octave per width_kind; 0 with kDefault.
  double width = 0.0;
  /// LS/HS (no trailing C) with a width: fc_hz is the shelf's corner, and
  /// the section is designed at the centre, fc * 10^(|gain| / (80 S)) for
  /// a low shelf, fc / that for a high shelf (Equalizer APO's "frequency
  /// adjustment for DCX2496"; a Q is first turned into S, RBJ cookbook).
  bool corner_fc = false;
  int line = 0;       ///< 1-based
  int fc_column = 0;  ///< 1-based column of the Fc value (errors at design)
  friend bool operator==(const EqApoFilter&, const EqApoFilter&) = default;
};

/// A parsed file: what a `peq` node runs.
struct EqApoProgram {
  std::string file_name;             ///< for messages at design time
  double preamp_db = 0.0;            ///< the sum of every Preamp line, dB
  std::vector<EqApoFilter> filters;  ///< ON filters in file order
  friend bool operator==(const EqApoProgram&, const EqApoProgram&) = default;
};

/// One problem in the text. line and column are 1-based; the column counts
/// characters (UTF-8 code points, a tab is one) after any byte order mark,
/// and points at the offending token.
struct EqApoIssue {
  int line = 0;
  int column = 0;
  std::string message;  ///< says what was expected
  model::IssueCode code = model::IssueCode::kSyntax;
  friend bool operator==(const EqApoIssue&, const EqApoIssue&) = default;
};

/// What ReadEqApo found: the program (meaningful only without issues), and
/// every problem of the text in order, at most model::kMaxReportedIssues of
/// them; omitted_issues counts the rest.
struct EqApoReadResult {
  EqApoProgram program;
  std::vector<EqApoIssue> issues;
  size_t omitted_issues = 0;
};

/// Non-RT. Reads the whole text and reports every problem at once.
EqApoReadResult ReadEqApo(std::string_view text, std::string_view file_name);

/// Non-RT. The program, or InvalidArgument whose message has one line per
/// issue, "FILE:LINE:COLUMN: message", then "... and N more problems" if
/// issues were omitted.
absl::StatusOr<EqApoProgram> ParseEqApo(std::string_view text, std::string_view file_name);

/// The "FILE:LINE:COLUMN: message" lines ParseEqApo puts in its error.
std::string EqApoIssuesText(std::string_view file_name, const std::vector<EqApoIssue>& issues,
                            size_t omitted_issues = 0);

/// Non-RT. One rt::BiquadParams per filter, in order, at sample_rate_hz,
/// for rt::DesignBiquad or rt::BiquadSection:
/// - the type mapped onto rt::BiquadType (BP is the cookbook's constant
///   0 dB peak band pass, as in Equalizer APO);
/// - widths turned into a Q at this rate: BW in octaves by the RBJ cookbook's
///   Q = 1 / (2 sinh(ln 2 / 2 * BW * w0 / sin w0)) (its bilinear-warping
///   correction: close to the digital bandwidth at low frequencies,
///   approximate towards Nyquist, the same as Equalizer APO); a shelf slope
///   S (= dB per octave / 12, default 0.9) by the cookbook's
///   Q = 1 / sqrt((A + 1/A)(1/S - 1) + 2), A = 10^(gain_db / 40); no width:
///   Q = 1/sqrt(2) for LP/HP/BP, 30 for NO (Equalizer APO's defaults);
/// - LS/HS corners moved to the centre (EqApoFilter::corner_fc).
///
/// Errors: InvalidArgument "FILE:LINE:COLUMN: ..." (column of the Fc value)
/// for every filter whose design frequency is at or above Nyquist
/// (sample_rate_hz / 2); InvalidArgument for a rate that is not finite and
/// positive. A frequency in [0.49, 0.5) * rate is kept, and rt::DesignBiquad
/// clamps it to 0.49 * rate as the biquad kind does.
absl::StatusOr<std::vector<rt::BiquadParams>> EqApoBiquadParams(const EqApoProgram& program,
                                                                double sample_rate_hz);

/// The program as sections at one rate.
struct EqApoSections {
  double preamp_gain = 1.0;                ///< linear, 10^(preamp_db / 20)
  std::vector<rt::BiquadCoeffs> sections;  ///< normalized (a0 = 1), file order
};

/// Non-RT. EqApoBiquadParams through rt::DesignBiquad, plus the preamp as a
/// linear gain. Same errors as EqApoBiquadParams.
absl::StatusOr<EqApoSections> DesignEqApo(const EqApoProgram& program, double sample_rate_hz);

}  // namespace aers::dsp
