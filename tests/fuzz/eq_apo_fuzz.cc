// libFuzzer target: the Equalizer APO parametric EQ reader (dsp/eq_apo.h).
// Every input must come back as a program or as issues with positions
// inside the text; an accepted program keeps the documented limits and
// either designs finite sections at 44.1 and 48 kHz or is refused with
// INVALID_ARGUMENT (a filter at or above Nyquist).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dsp/eq_apo.h"
#include "fuzz_check.h"
#include "model/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using aers::fuzz::Check;
  namespace dsp = aers::dsp;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const dsp::EqApoReadResult r = dsp::ReadEqApo(text, "fuzz.txt");
  Check(r.issues.size() <= aers::model::kMaxReportedIssues, "more issues than reported");
  Check(r.omitted_issues == 0 || r.issues.size() == aers::model::kMaxReportedIssues,
        "issues omitted before the list was full");
  // Lines and columns are 1-based and inside the text (a column may point
  // one past the end of its line: a missing field).
  const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  for (const dsp::EqApoIssue& issue : r.issues) {
    Check(issue.line >= 1 && static_cast<size_t>(issue.line) <= lines,
          "issue line outside the text", issue.message);
    Check(issue.column >= 1 && static_cast<size_t>(issue.column) <= dsp::kEqApoMaxLineBytes + 1,
          "issue column outside its line", issue.message);
    Check(!issue.message.empty(), "issue without a message");
  }
  const auto parsed = dsp::ParseEqApo(text, "fuzz.txt");
  Check(parsed.ok() == r.issues.empty(), "ParseEqApo and ReadEqApo disagree");
  if (!parsed.ok()) {
    Check(parsed.status().code() == absl::StatusCode::kInvalidArgument,
          "ParseEqApo fails with a code other than INVALID_ARGUMENT", parsed.status().ToString());
    Check(std::string(parsed.status().message()).starts_with("fuzz.txt:"),
          "error without the file name", parsed.status().ToString());
    return 0;
  }
  const dsp::EqApoProgram& p = *parsed;
  Check(p.filters.size() <= dsp::kEqApoMaxFilters, "more filters than the limit");
  Check(std::isfinite(p.preamp_db) && std::fabs(p.preamp_db) <= 96.0, "preamp out of range");
  for (const dsp::EqApoFilter& f : p.filters) {
    Check(f.fc_hz > 0.0 && std::isfinite(f.fc_hz), "accepted a non-positive Fc");
    Check(std::isfinite(f.gain_db) && std::isfinite(f.width), "accepted a non-finite value");
    Check(f.line >= 1 && f.fc_column >= 1, "filter without a position");
  }
  for (double fs : {44100.0, 48000.0}) {
    const auto s = dsp::DesignEqApo(p, fs);
    if (!s.ok()) {
      Check(s.status().code() == absl::StatusCode::kInvalidArgument,
            "DesignEqApo fails with a code other than INVALID_ARGUMENT", s.status().ToString());
      continue;
    }
    Check(s->sections.size() == p.filters.size(), "one section per filter");
    Check(std::isfinite(s->preamp_gain) && s->preamp_gain > 0.0, "preamp gain not finite");
    for (const auto& c : s->sections) {
      Check(std::isfinite(c.b0) && std::isfinite(c.b1) && std::isfinite(c.b2) &&
                std::isfinite(c.a1) && std::isfinite(c.a2),
            "a section with non-finite coefficients");
    }
  }
  return 0;
}
