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
  fs::path joined = given.is_absolute() || dirs.base.empty() ? given : dirs.base / given;
  std::error_code ec;
  if (!joined.is_absolute()) joined = fs::absolute(joined, ec);
  // Outside by its spelling: refused before the file system is asked, so
  // the answer says nothing about what exists there.
  const auto outside = [&](const char* how) {
    std::vector<std::string> listed;
    for (const auto& dir : dirs.allowed) listed.push_back(dir.string());
    return absl::InvalidArgumentError(
        absl::StrCat("'", value, "' ", how, " the data directories (", absl::StrJoin(listed, ", "),
                     "); put the file there or add its directory with aersd --data_dir"));
  };
  if (!dirs.allowed.empty()) {
    const fs::path lexical = joined.lexically_normal();
    bool inside = false;
    for (const auto& dir : dirs.allowed) {
      if (Beneath(lexical, fs::absolute(dir, ec).lexically_normal())) inside = true;
    }
    if (!inside) return outside("is outside");
  }
  const fs::path canonical = fs::canonical(joined, ec);
  if (ec) {
    return absl::NotFoundError(absl::StrCat("'", value, "': ", ec.message()));
  }
  if (!dirs.allowed.empty()) {
    bool inside = false;
    for (const auto& dir : dirs.allowed) {
      const fs::path d = fs::weakly_canonical(dir, ec);
      if (!ec && Beneath(canonical, d)) inside = true;
    }
    // Where the link points is not said.
    if (!inside) return outside("leads through a symbolic link outside");
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

DataDirs DataDirsFor(const std::string& config_path, const std::vector<std::string>& data_dirs) {
  std::error_code ec;
  fs::path dir = fs::absolute(config_path, ec).parent_path();
  DataDirs out;
  out.base = dir;
  out.allowed.push_back(dir);
  for (const auto& d : data_dirs) out.allowed.emplace_back(d);
  return out;
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
