// Problems with their place in the file, and how they are written out.
//
// Thread: non-real-time.
#include "config/diagnostics.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "model/strings.h"
#include "model/validate.h"

namespace aers::config {
namespace internal {
namespace {

using strutil::Cat;
using strutil::JoinList;

// One problem per line, whatever a user's keys and values contain.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

std::string FormatLine(std::string_view filename, const Located& p) {
  const std::string where =
      p.mark.line > 0 ? Cat(filename, ":", p.mark.line, ":", p.mark.column) : std::string(filename);
  return OneLine(p.path.empty() ? Cat(where, ": ", p.message)
                                : Cat(where, ": ", p.path, ": ", p.message));
}

}  // namespace

std::optional<Mark> Lookup(const SourceMap& where, std::string path) {
  while (true) {
    if (auto it = where.find(path); it != where.end()) return it->second;
    const size_t cut = path.find_last_of(".[");
    if (cut == std::string::npos || cut == 0) return std::nullopt;
    path.resize(cut);
  }
}

Located Locate(const model::Issue& issue, const SourceMap& where) {
  return {Lookup(where, issue.path).value_or(Mark{}), issue.path, issue.message, issue.code};
}

void SortByPosition(std::vector<Located>& problems) {
  std::stable_sort(problems.begin(), problems.end(), [](const Located& a, const Located& b) {
    const auto key = [](const Located& p) {
      return std::pair(p.mark.line > 0 ? p.mark.line : std::numeric_limits<int>::max(),
                       p.mark.column);
    };
    return key(a) < key(b);
  });
}

std::string FormatLocated(const std::vector<Located>& problems, std::string_view filename) {
  std::vector<std::string> lines;
  const size_t shown = std::min(problems.size(), model::kMaxReportedIssues);
  lines.reserve(shown + 1);
  for (size_t i = 0; i < shown; ++i) lines.push_back(FormatLine(filename, problems[i]));
  if (problems.size() > shown) {
    lines.push_back(Cat("... and ", problems.size() - shown, " more problems"));
  }
  return JoinList(lines, "\n");
}

std::vector<model::Issue> ToIssues(const std::vector<Located>& problems) {
  std::vector<model::Issue> out;
  out.reserve(problems.size());
  for (const Located& p : problems) out.push_back({p.path, p.message, p.code});
  return out;
}

}  // namespace internal

std::string FormatIssues(const std::vector<model::Issue>& issues, const SourceMap& where,
                         std::string_view filename) {
  std::vector<internal::Located> problems;
  problems.reserve(issues.size());
  for (const model::Issue& issue : issues) problems.push_back(internal::Locate(issue, where));
  internal::SortByPosition(problems);
  return internal::FormatLocated(problems, filename);
}

}  // namespace aers::config
