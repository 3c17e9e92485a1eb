#include "dsp/data_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

absl::StatusOr<int> OpenDataFile(const DataFile& file, const std::string& shown_as) {
  const int fd = ::open(file.path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", shown_as, "' cannot be opened: ", std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("'", shown_as, "' is not a regular file; give the path of a file"));
  }
  // Regular files never block; back to ordinary reads.
  (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

absl::StatusOr<std::string> ReadDataFile(const DataFile& file, const std::string& shown_as,
                                         uint64_t max_bytes) {
  auto fd = OpenDataFile(file, shown_as);
  if (!fd.ok()) return fd.status();
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(*fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(*fd);
      return absl::InvalidArgumentError(
          absl::StrCat("'", shown_as, "' cannot be read: ", std::strerror(err)));
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > max_bytes) {
      ::close(*fd);
      return absl::InvalidArgumentError(absl::StrCat("'", shown_as, "' is larger than ", max_bytes,
                                                     " bytes, the most files of this kind hold"));
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(*fd);
  return text;
}

}  // namespace aers::dsp
