#include "dsp/data_files.h"

#include <unistd.h>

#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace aers::dsp {
namespace {

namespace fs = std::filesystem;

// True if `path` is `dir` or lies beneath it (both canonical).
bool Beneath(const fs::path& path, const fs::path& dir) {
  auto p = path.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++p) {
    if (d->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *d) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<DataFile> ResolveDataFile(const DataDirs& dirs, const std::string& value,
                                         uint64_t max_bytes) {
  const fs::path given(value);
  const fs::path joined = given.is_absolute() || dirs.base.empty() ? given : dirs.base / given;
  std::error_code ec;
  const fs::path canonical = fs::canonical(joined, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat("'", value, "': ", joined.string(), ": ", ec.message()));
  }
  if (!dirs.allowed.empty()) {
    bool inside = false;
    std::vector<std::string> listed;
    for (const auto& dir : dirs.allowed) {
      const fs::path d = fs::weakly_canonical(dir, ec);
      listed.push_back(dir.string());
      if (!ec && Beneath(canonical, d)) inside = true;
    }
    if (!inside) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", value, "' resolves to ", canonical.string(),
                       ", which is outside the data directories (", absl::StrJoin(listed, ", "),
                       "); put the file there or add its directory with aersd --data_dir"));
    }
  }
  const fs::file_status st = fs::status(canonical, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("'", value, "': ", ec.message()));
  if (!fs::is_regular_file(st)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", value, "' is ", fs::is_directory(st) ? "a directory" : "not a regular file",
        "; give the path of a file"));
  }
  const uint64_t size = fs::file_size(canonical, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("'", value, "': ", ec.message()));
  if (size > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", value, "' is ", size, " bytes; files of this kind are at most ", max_bytes, " bytes"));
  }
  if (::access(canonical.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", value, "' (", canonical.string(), ") is not readable by aersd"));
  }
  return DataFile{canonical, size};
}

}  // namespace aers::dsp
