#include "state/state_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "config/config.h"
#include "config/graph_yaml.h"

namespace aers::state {

namespace {

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(path, ": ", what, ": ", std::strerror(errno)));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

}  // namespace

absl::Status CheckReplaceable(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoError("cannot inspect it", path);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": exists and is not a regular file (",
                                                      S_ISLNK(st.st_mode)   ? "a symbolic link"
                                                      : S_ISDIR(st.st_mode) ? "a directory"
                                                      : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)
                                                          ? "a device"
                                                      : S_ISFIFO(st.st_mode) ? "a FIFO"
                                                                             : "a socket",
                                                      "); refusing to replace it"));
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents,
                                 unsigned mode) {
  if (auto st = CheckReplaceable(path); !st.ok()) return st;
  const std::filesystem::path p(path);
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : ".";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(dir.string(), ": cannot create directory: ", ec.message()));
  }
  std::string tmpl = (dir / absl::StrCat(".", p.filename().string(), ".XXXXXX")).string();
  Fd fd(::mkstemp(tmpl.data()));
  if (fd.get() < 0) return ErrnoError("cannot create temporary file", tmpl);
  bool ok = false;
  struct Cleanup {
    const std::string& name;
    const bool& done;
    ~Cleanup() {
      if (!done) ::unlink(name.c_str());
    }
  } cleanup{tmpl, ok};
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) return ErrnoError("fchmod", tmpl);
  size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd.get(), contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", tmpl);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return ErrnoError("fsync", tmpl);
  if (::close(fd.release()) != 0) return ErrnoError("close", tmpl);
  // Checked again right before: whatever appeared at the path meanwhile
  // (a device, a FIFO) is never replaced.
  if (auto st = CheckReplaceable(path); !st.ok()) return st;
  if (::rename(tmpl.c_str(), path.c_str()) != 0) return ErrnoError("rename", path);
  ok = true;
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0 || ::fsync(dfd.get()) != 0) return ErrnoError("fsync directory", dir.string());
  return absl::OkStatus();
}

namespace {
constexpr char kBaselinePrefix[] = "# baseline: ";
constexpr char kRevisionPrefix[] = "# revision: ";

// The value of a "# key: value" header line among the first lines.
std::string HeaderValue(const std::string& path, std::string_view prefix) {
  std::ifstream in(path);
  std::string line;
  for (int i = 0; i < 3 && std::getline(in, line); ++i) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "";
}
}  // namespace

void StateStore::set_baseline(std::string baseline) {
  std::lock_guard lock(mu_);
  baseline_ = std::move(baseline);
}

absl::Status StateStore::Save(const model::GraphSpec& graph, uint64_t revision) const {
  std::string baseline;
  {
    std::lock_guard lock(mu_);
    baseline = baseline_;
  }
  return WriteFileAtomically(
      path_, "# aersd live graph state: written on every accepted edit; delete to reset\n" +
                 std::string(kBaselinePrefix) + baseline + "\n" + kRevisionPrefix +
                 std::to_string(revision) + "\n" + config::EmitGraphYaml(graph));
}

std::string StateStore::SavedBaseline() const {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path_, ec)) return "";
  return HeaderValue(path_, kBaselinePrefix);
}

std::optional<uint64_t> StateStore::SavedRevision() const {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return 0;
  if (!std::filesystem::is_regular_file(path_, ec)) return std::nullopt;
  const std::string v = HeaderValue(path_, kRevisionPrefix);
  if (v.empty()) return std::nullopt;
  uint64_t out = 0;
  for (char ch : v) {
    if (ch < '0' || ch > '9' || out > (UINT64_MAX - 9) / 10) return std::nullopt;
    out = out * 10 + static_cast<uint64_t>(ch - '0');
  }
  return out;
}

absl::StatusOr<std::optional<model::GraphSpec>> StateStore::Load(
    const model::KindRegistry& kinds) const {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return std::optional<model::GraphSpec>();
  auto text = config::ReadConfigText(path_);
  auto loaded = text.ok() ? config::ParseGraphYaml(*text, path_, kinds)
                          : absl::StatusOr<model::GraphSpec>(text.status());
  if (!loaded.ok()) {
    return absl::DataLossError(absl::StrCat(
        "state file ", path_, " is unusable: ", std::string(loaded.status().message())));
  }
  return std::optional<model::GraphSpec>(std::move(*loaded));
}

absl::Status StateStore::Remove() const {
  if (auto st = CheckReplaceable(path_); !st.ok()) return st;
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink", path_);
  return absl::OkStatus();
}

absl::Status StateStore::CheckPath() const {
  return CheckReplaceable(path_);
}

int StateStore::RemoveStaleTemporaries() const {
  // WriteFileAtomically's temporaries: ".<name>.XXXXXX" beside the file,
  // left behind only by a crash between mkstemp and rename.
  const std::filesystem::path p(path_);
  const std::string prefix = "." + p.filename().string() + ".";
  std::error_code ec;
  int removed = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(p.has_parent_path() ? p.parent_path() : ".", ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() == prefix.size() + 6 && name.rfind(prefix, 0) == 0 && e.is_regular_file(ec) &&
        !e.is_symlink(ec) && std::filesystem::remove(e.path(), ec)) {
      ++removed;
    }
  }
  return removed;
}

std::string StateStore::DefaultPath() {
  if (const char* d = std::getenv("STATE_DIRECTORY"); d && *d) {
    // systemd may pass several, colon-separated: take the first.
    std::string dir(d);
    if (const auto colon = dir.find(':'); colon != std::string::npos) dir.resize(colon);
    return dir + "/graph.yaml";
  }
  if (::geteuid() == 0) return "/var/lib/aers/graph.yaml";
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) {
    return std::string(x) + "/aers/graph.yaml";
  }
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.local/state/aers/graph.yaml";
}

}  // namespace aers::state
