// Equalizer APO parametric EQ text (see eq_apo.h). Non-real-time.
#include "dsp/eq_apo.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <optional>

#include "absl/status/status.h"
#include "model/strings.h"
#include "model/validate.h"

namespace aers::dsp {
namespace {

using model::IssueCode;
using strutil::Cat;

// Ranges a value must be in (inclusive). Gains as the biquad kind's.
constexpr double kMaxGainDb = 48.0;
constexpr double kMaxPreampDb = 96.0;
constexpr double kMaxFcHz = 1e6;
constexpr double kMinQ = 1e-3;  // rt::DesignBiquad's own floor
constexpr double kMaxQ = 1000.0;
constexpr double kMinBwOct = 1e-3;
constexpr double kMaxBwOct = 10.0;
constexpr double kMinSlopeDb = 0.1;
constexpr double kMaxSlopeDb = 48.0;
// Equalizer APO's defaults when no width is given (BiQuadFilterFactory.cpp:
// "found out by experimentation with RoomEQWizard" for the shelf and notch).
constexpr double kDefaultPassQ = std::numbers::sqrt2 / 2.0;
constexpr double kDefaultNotchQ = 30.0;
constexpr double kDefaultShelfS = 0.9;

struct TypeName {
  std::string_view name;
  EqApoType type;
};
constexpr TypeName kTypes[] = {
    {"PK", EqApoType::kPeaking},   {"PEQ", EqApoType::kPeaking},  {"LS", EqApoType::kLowShelf},
    {"LSC", EqApoType::kLowShelf}, {"HS", EqApoType::kHighShelf}, {"HSC", EqApoType::kHighShelf},
    {"LP", EqApoType::kLowPass},   {"LPQ", EqApoType::kLowPass},  {"HP", EqApoType::kHighPass},
    {"HPQ", EqApoType::kHighPass}, {"BP", EqApoType::kBandPass},  {"NO", EqApoType::kNotch},
    {"AP", EqApoType::kAllPass},
};
constexpr std::string_view kTypeList = "PK, PEQ, LS, LSC, HS, HSC, LP, LPQ, HP, HPQ, BP, NO, AP";

// Equalizer APO commands this reader refuses by name (its other filters and
// control flow): a clearer message than "unknown command".
constexpr std::string_view kOtherApoCommands[] = {
    "Channel",   "Include", "GraphicEQ", "Device",    "Convolution",
    "Delay",     "Copy",    "Eval",      "If",        "ElseIf",
    "Else",      "EndIf",   "Stage",     "VSTPlugin", "LoudnessCorrection",
    "AudioUnit",
};

bool IsShelf(EqApoType t) {
  return t == EqApoType::kLowShelf || t == EqApoType::kHighShelf;
}
bool HasGain(EqApoType t) {
  return t == EqApoType::kPeaking || IsShelf(t);
}

// Shelf slope S -> Q (RBJ cookbook: 1/Q = sqrt((A + 1/A)(1/S - 1) + 2)).
// NaN when S is too steep for the gain (the root's argument is not > 0).
double ShelfQFromS(double s, double gain_db) {
  const double a = std::pow(10.0, gain_db / 40.0);
  const double arg = (a + 1.0 / a) * (1.0 / s - 1.0) + 2.0;
  return arg > 0.0 ? 1.0 / std::sqrt(arg) : std::nan("");
}
// Q -> S, the inverse of the above.
double ShelfSFromQ(double q, double gain_db) {
  const double a = std::pow(10.0, gain_db / 40.0);
  return 1.0 / ((1.0 / (q * q) - 2.0) / (a + 1.0 / a) + 1.0);
}

std::string Quote(std::string_view s) {
  constexpr size_t kMax = 40;
  if (s.size() > kMax) return Cat("'", s.substr(0, kMax), "...'");
  return Cat("'", s, "'");
}

// Shortest text that reads back as v; plain digits below 1e9 ("2000000",
// not "2e+06").
std::string FormatNumber(double v) {
  char buf[64];
  const auto r = std::fabs(v) < 1e9
                     ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                     : std::to_chars(buf, buf + sizeof buf, v);
  return r.ec == std::errc() ? std::string(buf, r.ptr) : std::string("?");
}

enum class NumberError { kNone, kSyntax, kComma, kRange };

// Equalizer APO's number text: [+-] digits [. digits] [e [+-] digits] (or a
// leading '.'). Finite only.
NumberError ParseNumber(std::string_view s, double* out) {
  size_t i = 0;
  const auto digits = [&] {
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  const size_t body = i;
  const size_t int_digits = digits();
  size_t frac_digits = 0;
  if (i < s.size() && s[i] == ',' && int_digits > 0) {
    ++i;
    if (digits() > 0 && i == s.size()) return NumberError::kComma;
    return NumberError::kSyntax;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    frac_digits = digits();
  }
  if (int_digits + frac_digits == 0) return NumberError::kSyntax;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return NumberError::kSyntax;
  }
  if (i != s.size()) return NumberError::kSyntax;
  std::string_view text = s.substr(body);
  double v = 0.0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec == std::errc::result_out_of_range || !std::isfinite(v)) return NumberError::kRange;
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return NumberError::kSyntax;
  *out = s[0] == '-' ? -v : v;
  return NumberError::kNone;
}

struct Token {
  std::string_view text;
  size_t offset = 0;  // bytes from the start of the line
};

class Reader {
 public:
  explicit Reader(EqApoReadResult& out) : out_(out) {}

  void Read(std::string_view text) {
    if (text.size() > kEqApoMaxBytes) {
      Issue(1, 1, IssueCode::kTooLarge,
            Cat("the text is ", text.size(), " bytes; at most ", kEqApoMaxBytes, " are read"));
      return;
    }
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    int line_no = 0;
    while (!text.empty()) {
      ++line_no;
      const size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      if (line.ends_with('\r')) line.remove_suffix(1);
      ReadLine(line_no, line);
    }
    if (std::fabs(out_.program.preamp_db) > kMaxPreampDb) {
      Issue(last_preamp_line_, last_preamp_column_, IssueCode::kOutOfRange,
            Cat("the Preamp lines add up to ", FormatNumber(out_.program.preamp_db),
                " dB; the sum must be from -", FormatNumber(kMaxPreampDb), " to ",
                FormatNumber(kMaxPreampDb), " dB"));
    }
  }

 private:
  void Issue(int line, int column, IssueCode code, std::string message) {
    if (out_.issues.size() < model::kMaxReportedIssues) {
      out_.issues.push_back({line, column, std::move(message), code});
    } else {
      ++out_.omitted_issues;
    }
  }

  // 1-based column (code points) of a byte offset in the current line.
  int Column(size_t offset) const {
    int col = 1;
    for (size_t i = 0; i < offset && i < line_.size(); ++i) {
      if ((static_cast<unsigned char>(line_[i]) & 0xC0) != 0x80) ++col;
    }
    return col;
  }
  void IssueAt(size_t offset, IssueCode code, std::string message) {
    Issue(line_no_, Column(offset), code, std::move(message));
  }

  // Tokens of line_[from, end) split at spaces and tabs; a token starting
  // with '#' ends the line.
  std::vector<Token> Tokens(size_t from) const {
    std::vector<Token> tokens;
    size_t i = from;
    while (i < line_.size()) {
      while (i < line_.size() && (line_[i] == ' ' || line_[i] == '\t')) ++i;
      if (i >= line_.size() || line_[i] == '#') break;
      const size_t start = i;
      while (i < line_.size() && line_[i] != ' ' && line_[i] != '\t') ++i;
      tokens.push_back({line_.substr(start, i - start), start});
    }
    return tokens;
  }

  void ReadLine(int line_no, std::string_view line) {
    line_no_ = line_no;
    line_ = line;
    if (line.size() > kEqApoMaxLineBytes) {
      // The column of the first byte past the limit, counted on valid text.
      const size_t bad = strutil::FirstInvalidUtf8(line.substr(0, kEqApoMaxLineBytes));
      Issue(line_no, bad == std::string_view::npos ? Column(kEqApoMaxLineBytes) : Column(bad),
            IssueCode::kTooLarge,
            Cat("the line is ", line.size(), " bytes; at most ", kEqApoMaxLineBytes, " are read"));
      return;
    }
    if (const size_t bad = strutil::FirstInvalidUtf8(line); bad != std::string_view::npos) {
      IssueAt(bad, IssueCode::kNotUtf8, "the text must be UTF-8; this byte is not part of any");
      return;
    }
    for (size_t i = 0; i < line.size(); ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      if ((c < 0x20 && c != '\t') || c == 0x7F) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "%02X", c);
        IssueAt(i, IssueCode::kSyntax, Cat("control character 0x", hex, " in the text"));
        return;
      }
    }
    const std::vector<Token> all = Tokens(0);
    if (all.empty()) return;  // blank or comment
    const size_t colon = line.find(':');
    const size_t first = all.front().offset;
    if (colon == std::string_view::npos || colon > all.back().offset + all.back().text.size()) {
      IssueAt(first, IssueCode::kSyntax,
              Cat("expected 'Preamp: <gain> dB' or 'Filter: ON|OFF <type> ...', found ",
                  Quote(all.front().text)));
      return;
    }
    std::string_view command = line.substr(first, colon - first);
    while (!command.empty() && (command.back() == ' ' || command.back() == '\t')) {
      command.remove_suffix(1);
    }
    if (command == "Preamp") return ReadPreamp(colon + 1);
    if (command.starts_with("Filter")) {
      std::string_view number = command.substr(6);
      const size_t number_at = first + 6;
      size_t skip = 0;
      while (skip < number.size() && (number[skip] == ' ' || number[skip] == '\t')) ++skip;
      number.remove_prefix(skip);
      const bool digits =
          number.size() <= 9 &&
          std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits) {
        IssueAt(number_at + skip, IssueCode::kSyntax,
                Cat("expected 'Filter:' or 'Filter <number>:', found ", Quote(command)));
        return;
      }
      return ReadFilter(first, colon + 1);
    }
    for (std::string_view other : kOtherApoCommands) {
      if (command == other) {
        IssueAt(first, IssueCode::kBadValue,
                Cat("'", command,
                    ":' is an Equalizer APO command this reader does not take; expected "
                    "'Preamp:' or 'Filter:' lines only"));
        return;
      }
    }
    IssueAt(first, IssueCode::kSyntax,
            Cat("unknown command ", Quote(command), "; expected 'Preamp:' or 'Filter:'"));
  }

  // A number token, with `unit` attached ("12dB") or as the next token.
  // Advances *i past what it took. required_unit: the unit must be there.
  bool TakeNumber(const std::vector<Token>& t, size_t* i, std::string_view unit, bool required_unit,
                  std::string_view what, double* value, size_t* value_offset,
                  std::string_view* value_text) {
    const Token& tok = t[*i];
    std::string_view num = tok.text;
    bool attached = false;
    if (!unit.empty() && num.size() > unit.size() && num.ends_with(unit)) {
      num.remove_suffix(unit.size());
      attached = true;
    }
    const NumberError e = ParseNumber(num, value);
    if (e == NumberError::kComma) {
      IssueAt(tok.offset, IssueCode::kSyntax,
              Cat(what, " ", Quote(num),
                  " has a decimal comma; write the decimal point as '.' (1.5, not 1,5)"));
      return false;
    }
    if (e == NumberError::kSyntax) {
      IssueAt(tok.offset, IssueCode::kSyntax,
              Cat("expected a number for ", what, ", found ", Quote(tok.text)));
      return false;
    }
    if (e == NumberError::kRange) {
      IssueAt(tok.offset, IssueCode::kOutOfRange,
              Cat(what, " ", Quote(num), " is not a finite number"));
      return false;
    }
    *value_offset = tok.offset;
    if (value_text != nullptr) *value_text = num;
    ++*i;
    if (attached || unit.empty()) return true;
    if (*i < t.size() && t[*i].text == unit) {
      ++*i;
      return true;
    }
    if (!required_unit) return true;
    const size_t at = *i < t.size() ? t[*i].offset : tok.offset + tok.text.size();
    IssueAt(at, IssueCode::kSyntax,
            Cat("expected '", unit, "' after the ", what, " value",
                *i < t.size() ? Cat(", found ", Quote(t[*i].text)) : std::string()));
    return false;
  }

  bool CheckRange(double v, double lo, double hi, size_t offset, std::string_view what,
                  std::string_view unit) {
    if (v >= lo && v <= hi) return true;
    IssueAt(offset, IssueCode::kOutOfRange,
            Cat(what, " ", FormatNumber(v), unit, " is out of range; expected ", FormatNumber(lo),
                " to ", FormatNumber(hi), unit));
    return false;
  }

  void ReadPreamp(size_t params_from) {
    const std::vector<Token> t = Tokens(params_from);
    if (t.empty()) {
      IssueAt(line_.size(), IssueCode::kMissingField,
              "expected the preamp gain after 'Preamp:' (as in 'Preamp: -6 dB')");
      return;
    }
    size_t i = 0, at = 0;
    double db = 0.0;
    if (!TakeNumber(t, &i, "dB", false, "Preamp", &db, &at, nullptr)) return;
    if (i < t.size()) {
      IssueAt(t[i].offset, IssueCode::kSyntax,
              Cat("unexpected ", Quote(t[i].text), " after the preamp gain"));
      return;
    }
    if (!CheckRange(db, -kMaxPreampDb, kMaxPreampDb, at, "Preamp", " dB")) return;
    out_.program.preamp_db += db;
    last_preamp_line_ = line_no_;
    last_preamp_column_ = Column(at);
  }

  void ReadFilter(size_t command_offset, size_t params_from) {
    const std::vector<Token> t = Tokens(params_from);
    const size_t end_offset = line_.size();  // "missing" issues point past the line
    if (t.empty() || (t[0].text != "ON" && t[0].text != "OFF")) {
      IssueAt(t.empty() ? end_offset : t[0].offset, IssueCode::kSyntax,
              Cat("expected ON or OFF after 'Filter:'",
                  t.empty() ? std::string() : Cat(", found ", Quote(t[0].text))));
      return;
    }
    const bool on = t[0].text == "ON";
    if (t.size() < 2) {
      IssueAt(end_offset, IssueCode::kMissingField,
              Cat("expected a filter type (", kTypeList, ")"));
      return;
    }
    EqApoFilter f;
    f.line = line_no_;
    f.type_name = std::string(t[1].text);
    const auto type = std::find_if(std::begin(kTypes), std::end(kTypes),
                                   [&](const TypeName& n) { return n.name == t[1].text; });
    if (type == std::end(kTypes)) {
      std::string upper(t[1].text);
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      const bool case_only = std::any_of(std::begin(kTypes), std::end(kTypes),
                                         [&](const TypeName& n) { return n.name == upper; });
      IssueAt(t[1].offset, IssueCode::kBadValue,
              case_only
                  ? Cat("filter types are upper case: write '", upper, "', not ", Quote(t[1].text))
                  : Cat("unknown filter type ", Quote(t[1].text), "; expected one of ", kTypeList));
      return;
    }
    f.type = type->type;
    const bool shelf = IsShelf(f.type);

    size_t i = 2;
    std::optional<size_t> fc_at, gain_at, q_at, bw_at, slope_at;
    std::string_view fc_text;
    double q = 0.0, bw = 0.0, slope = 0.0, gain = 0.0;
    // A slope in dB right after the type ("LSC 12dB", "HS 6 dB").
    if (i < t.size()) {
      const char c = t[i].text[0];
      if ((c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-') {
        size_t at = 0;
        if (!TakeNumber(t, &i, "dB", true, "slope", &slope, &at, nullptr)) return;
        if (!shelf) {
          IssueAt(at, IssueCode::kBadValue,
                  Cat("a slope in dB is only for shelves (LS, LSC, HS, HSC), not ", f.type_name));
          return;
        }
        slope_at = at;
      }
    }
    const auto duplicate = [&](const Token& key, std::optional<size_t> first) {
      if (!first) return false;
      IssueAt(key.offset, IssueCode::kDuplicateKey,
              Cat(key.text, " is given twice (first at column ", Column(*first), ")"));
      return true;
    };
    while (i < t.size()) {
      const Token& key = t[i];
      const auto need_value = [&](std::string_view what) {
        if (i + 1 < t.size()) return true;
        IssueAt(end_offset, IssueCode::kMissingField, Cat("expected a value after ", what));
        return false;
      };
      size_t at = 0;
      if (key.text == "Fc") {
        if (duplicate(key, fc_at) || !need_value("Fc")) return;
        ++i;
        if (!TakeNumber(t, &i, "Hz", true, "Fc", &f.fc_hz, &at, &fc_text)) return;
        fc_at = at;
      } else if (key.text == "Gain") {
        if (duplicate(key, gain_at) || !need_value("Gain")) return;
        ++i;
        if (!TakeNumber(t, &i, "dB", true, "Gain", &gain, &at, nullptr)) return;
        gain_at = at;
      } else if (key.text == "Q") {
        if (duplicate(key, q_at) || !need_value("Q")) return;
        ++i;
        if (!TakeNumber(t, &i, "", false, "Q", &q, &at, nullptr)) return;
        q_at = at;
      } else if (key.text == "BW") {
        if (duplicate(key, bw_at)) return;
        if (i + 1 >= t.size() || t[i + 1].text != "Oct") {
          IssueAt(i + 1 < t.size() ? t[i + 1].offset : end_offset, IssueCode::kSyntax,
                  "expected 'Oct' after 'BW' (bandwidth in octaves: 'BW Oct 1.5')");
          return;
        }
        if (!need_value("BW Oct")) return;
        i += 2;
        if (i >= t.size()) {
          IssueAt(end_offset, IssueCode::kMissingField, "expected a value after BW Oct");
          return;
        }
        if (!TakeNumber(t, &i, "", false, "BW Oct", &bw, &at, nullptr)) return;
        bw_at = at;
      } else {
        IssueAt(key.offset, IssueCode::kUnknownField,
                Cat("unexpected ", Quote(key.text),
                    "; expected Fc <f> Hz, Gain <g> dB, Q <q> or BW Oct <octaves>"));
        return;
      }
    }

    // Which fields go together.
    bool ok = true;
    if (!fc_at) {
      IssueAt(end_offset, IssueCode::kMissingField,
              Cat("missing 'Fc <frequency> Hz' for ", f.type_name));
      ok = false;
    }
    if (!gain_at && HasGain(f.type)) {
      IssueAt(end_offset, IssueCode::kMissingField,
              Cat("missing 'Gain <gain> dB' for ", f.type_name));
      ok = false;
    }
    if (q_at && bw_at) {
      IssueAt(std::max(*q_at, *bw_at), IssueCode::kBadValue, "give a Q or a BW Oct, not both");
      ok = false;
    }
    if (shelf && bw_at) {
      IssueAt(*bw_at, IssueCode::kBadValue,
              Cat("shelves take a Q or a slope in dB, not BW Oct (", f.type_name, ")"));
      ok = false;
    }
    if (slope_at && q_at) {
      IssueAt(*q_at, IssueCode::kBadValue, "give a shelf a slope in dB or a Q, not both");
      ok = false;
    }
    if ((f.type == EqApoType::kPeaking || f.type == EqApoType::kAllPass) && !q_at && !bw_at) {
      IssueAt(end_offset, IssueCode::kMissingField,
              Cat("missing 'Q <q>' or 'BW Oct <octaves>' for ", f.type_name));
      ok = false;
    }
    if (!ok) return;

    // Ranges.
    if (f.fc_hz <= 0.0 || f.fc_hz > kMaxFcHz) {
      IssueAt(*fc_at, IssueCode::kOutOfRange,
              Cat("Fc ", FormatNumber(f.fc_hz),
                  " Hz is out of range; expected more than 0 and "
                  "at most ",
                  FormatNumber(kMaxFcHz), " Hz"));
      ok = false;
    } else if (fc_text.size() >= 5 && fc_text.find_first_of("eE") == std::string_view::npos &&
               fc_text[fc_text.size() - 4] == '.') {
      // Equalizer APO's reading of REW's thousands separator.
      IssueAt(*fc_at, IssueCode::kBadValue,
              Cat("Fc ", Quote(fc_text),
                  " is ambiguous: Equalizer APO reads a '.' before the last three digits as a "
                  "thousands separator; write the frequency in Hz without it"));
      ok = false;
    }
    if (gain_at) ok &= CheckRange(gain, -kMaxGainDb, kMaxGainDb, *gain_at, "Gain", " dB");
    if (q_at) ok &= CheckRange(q, kMinQ, kMaxQ, *q_at, "Q", "");
    if (bw_at) ok &= CheckRange(bw, kMinBwOct, kMaxBwOct, *bw_at, "BW Oct", " octaves");
    if (slope_at) {
      if (!CheckRange(slope, kMinSlopeDb, kMaxSlopeDb, *slope_at, "slope", " dB")) {
        ok = false;
      } else if (std::isnan(ShelfQFromS(slope / 12.0, gain))) {
        IssueAt(*slope_at, IssueCode::kOutOfRange,
                Cat("slope ", FormatNumber(slope), " dB is too steep for a ", FormatNumber(gain),
                    " dB shelf (RBJ cookbook: (A + 1/A)(1/S - 1) + 2 must be > 0, S = slope / "
                    "12)"));
        ok = false;
      }
    }
    if (!ok) return;

    f.fc_column = Column(*fc_at);
    f.gain_db = HasGain(f.type) ? gain : 0.0;
    if (slope_at) {
      f.width_kind = EqApoWidth::kSlopeDb;
      f.width = slope;
    } else if (q_at) {
      f.width_kind = EqApoWidth::kQ;
      f.width = q;
    } else if (bw_at) {
      f.width_kind = EqApoWidth::kBandwidthOct;
      f.width = bw;
    }
    f.corner_fc = shelf && f.width_kind != EqApoWidth::kDefault && !f.type_name.ends_with('C');
    if (!on) return;
    if (out_.program.filters.size() >= kEqApoMaxFilters) {
      IssueAt(command_offset, IssueCode::kTooLarge,
              Cat("more than ", kEqApoMaxFilters, " ON filters"));
      return;
    }
    out_.program.filters.push_back(std::move(f));
  }

  EqApoReadResult& out_;
  int line_no_ = 0;
  std::string_view line_;
  int last_preamp_line_ = 1;
  int last_preamp_column_ = 1;
};

}  // namespace

EqApoReadResult ReadEqApo(std::string_view text, std::string_view file_name) {
  EqApoReadResult result;
  result.program.file_name = std::string(file_name);
  Reader(result).Read(text);
  return result;
}

std::string EqApoIssuesText(std::string_view file_name, const std::vector<EqApoIssue>& issues,
                            size_t omitted_issues) {
  std::string out;
  for (const EqApoIssue& issue : issues) {
    if (!out.empty()) out += '\n';
    out += Cat(file_name, ":", issue.line, ":", issue.column, ": ", issue.message);
  }
  if (omitted_issues > 0) out += Cat("\n... and ", omitted_issues, " more problems");
  return out;
}

absl::StatusOr<EqApoProgram> ParseEqApo(std::string_view text, std::string_view file_name) {
  EqApoReadResult r = ReadEqApo(text, file_name);
  if (!r.issues.empty()) {
    return absl::InvalidArgumentError(EqApoIssuesText(file_name, r.issues, r.omitted_issues));
  }
  return std::move(r.program);
}

absl::StatusOr<std::vector<rt::BiquadParams>> EqApoBiquadParams(const EqApoProgram& program,
                                                                double sample_rate_hz) {
  if (!(sample_rate_hz > 0.0) || !std::isfinite(sample_rate_hz)) {
    return absl::InvalidArgumentError(
        Cat("sample rate ", FormatNumber(sample_rate_hz), " Hz is not finite and positive"));
  }
  const double nyquist_hz = sample_rate_hz / 2.0;
  std::vector<rt::BiquadParams> out;
  std::vector<std::string> errors;
  out.reserve(program.filters.size());
  for (const EqApoFilter& f : program.filters) {
    const std::string where = Cat(program.file_name, ":", f.line, ":", f.fc_column, ": ");
    rt::BiquadParams p;
    p.gain_db = f.gain_db;
    switch (f.type) {
      case EqApoType::kPeaking:
        p.type = rt::BiquadType::kPeaking;
        break;
      case EqApoType::kLowShelf:
        p.type = rt::BiquadType::kLowshelf;
        break;
      case EqApoType::kHighShelf:
        p.type = rt::BiquadType::kHighshelf;
        break;
      case EqApoType::kLowPass:
        p.type = rt::BiquadType::kLowpass;
        break;
      case EqApoType::kHighPass:
        p.type = rt::BiquadType::kHighpass;
        break;
      case EqApoType::kBandPass:
        p.type = rt::BiquadType::kBandpass;
        break;
      case EqApoType::kNotch:
        p.type = rt::BiquadType::kNotch;
        break;
      case EqApoType::kAllPass:
        p.type = rt::BiquadType::kAllpass;
        break;
    }
    // Shelves: S from the slope or the default; a Q as given.
    double shelf_s = kDefaultShelfS;
    if (f.width_kind == EqApoWidth::kSlopeDb) shelf_s = f.width / 12.0;
    if (f.width_kind == EqApoWidth::kQ) shelf_s = ShelfSFromQ(f.width, f.gain_db);
    double fc = f.fc_hz;
    if (f.corner_fc && IsShelf(f.type)) {
      const double factor = std::pow(10.0, std::fabs(f.gain_db) / 80.0 / shelf_s);
      fc = f.type == EqApoType::kLowShelf ? fc * factor : fc / factor;
    }
    if (!(fc > 0.0) || !std::isfinite(fc) || fc >= nyquist_hz) {
      errors.push_back(Cat(where,
                           f.corner_fc
                               ? Cat(f.type_name, " corner Fc ", FormatNumber(f.fc_hz),
                                     " Hz puts the shelf's centre at ", FormatNumber(fc), " Hz, ")
                               : Cat("Fc ", FormatNumber(fc), " Hz is "),
                           "at or above Nyquist (", FormatNumber(nyquist_hz), " Hz at ",
                           FormatNumber(sample_rate_hz), " Hz)"));
      continue;
    }
    p.freq_hz = fc;
    switch (f.width_kind) {
      case EqApoWidth::kQ:
        p.q = f.width;
        break;
      case EqApoWidth::kBandwidthOct: {
        // RBJ cookbook, BW in octaves between the -3 dB (or midpoint gain)
        // frequencies, digital: 1/(2Q) = sinh(ln2/2 * BW * w0/sin w0).
        const double w0 = 2.0 * std::numbers::pi * fc / sample_rate_hz;
        p.q = 1.0 / (2.0 * std::sinh(std::numbers::ln2 / 2.0 * f.width * w0 / std::sin(w0)));
        break;
      }
      case EqApoWidth::kSlopeDb:
        p.q = ShelfQFromS(shelf_s, f.gain_db);
        break;
      case EqApoWidth::kDefault:
        if (IsShelf(f.type)) {
          p.q = ShelfQFromS(shelf_s, f.gain_db);
        } else if (f.type == EqApoType::kNotch) {
          p.q = kDefaultNotchQ;
        } else {
          p.q = kDefaultPassQ;
        }
        break;
    }
    if (!(p.q > 0.0) || !std::isfinite(p.q) || !std::isfinite(p.gain_db)) {
      errors.push_back(
          Cat(where, "no finite positive Q for this filter (width ", FormatNumber(f.width), ")"));
      continue;
    }
    out.push_back(p);
  }
  if (!errors.empty()) return absl::InvalidArgumentError(strutil::JoinList(errors, "\n"));
  return out;
}

absl::StatusOr<EqApoSections> DesignEqApo(const EqApoProgram& program, double sample_rate_hz) {
  auto params = EqApoBiquadParams(program, sample_rate_hz);
  if (!params.ok()) return params.status();
  if (!std::isfinite(program.preamp_db)) {
    return absl::InvalidArgumentError(Cat(program.file_name, ": preamp is not finite"));
  }
  EqApoSections out;
  out.preamp_gain = std::pow(10.0, program.preamp_db / 20.0);
  out.sections.reserve(params->size());
  for (const rt::BiquadParams& p : *params) {
    out.sections.push_back(rt::DesignBiquad(p, sample_rate_hz));
  }
  return out;
}

}  // namespace aers::dsp
