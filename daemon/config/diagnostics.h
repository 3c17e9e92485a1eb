// Internal to daemon/config/ (not part of its API): problems with their
// place in the file, and the "FILE:LINE:COLUMN: PATH: MESSAGE" lines every
// parse error of this layer is made of. config.h's FormatIssues is the
// public face of this.
//
// Thread: non-real-time.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "model/graph.h"

namespace aers::config::internal {

/// A problem with its position in the file (line 0: no position).
struct Located {
  Mark mark;
  std::string path;
  std::string message;
  model::IssueCode code = model::IssueCode::kUnspecified;
};

/// The position of `path` or of its longest known prefix (component-wise:
/// "nodes[1].params.x" falls back to "nodes[1].params", then "nodes[1]").
std::optional<Mark> Lookup(const SourceMap& where, std::string path);

/// `issue` placed by `where` (no position when no prefix of its path is known).
Located Locate(const model::Issue& issue, const SourceMap& where);

/// Stable sort by position; problems without one go last, in their order.
void SortByPosition(std::vector<Located>& problems);

/// One line per problem (in the given order), each "FILE:LINE:COLUMN: PATH:
/// MESSAGE" with line breaks in it replaced by spaces; after
/// model::kMaxReportedIssues lines, "... and N more problems".
std::string FormatLocated(const std::vector<Located>& problems, std::string_view filename);

/// The problems as model issues (code, path, message), in the same order.
std::vector<model::Issue> ToIssues(const std::vector<Located>& problems);

}  // namespace aers::config::internal
