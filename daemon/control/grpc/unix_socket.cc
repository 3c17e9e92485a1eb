#include "control/grpc/unix_socket.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace aers::control {

absl::Status PrepareSocketDir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    const auto parent = std::filesystem::path(dir).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(
          absl::StrCat(dir, ": cannot create the socket directory: ", std::strerror(errno)));
    }
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::PermissionDeniedError(
        absl::StrCat(dir, ": the socket directory is not a directory (or is a symlink)"));
  }
  if ((st.st_uid != ::geteuid() && st.st_uid != 0) || (st.st_mode & S_IWOTH) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        dir,
        ": the socket directory must be owned by this user or root and not writable by "
        "others"));
  }
  return absl::OkStatus();
}

// One daemon per socket path, for as long as it runs: an flock on
// PATH.lock (kept; removing lock files races). A second daemon started at
// the same moment, or after the socket file was deleted, is refused instead
// of taking the path over (and later deleting the other's socket).
absl::StatusOr<int> LockSocketPath(const std::string& path) {
  const std::string lock = path + ".lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "socket ", path, ": cannot open its lock file ", lock, ": ", std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "socket ", path, ": ",
        err == EWOULDBLOCK ? "another aersd runs on this socket (it holds " + lock +
                                 "); refusing to take it over (use --socket to run a second "
                                 "daemon)"
                           : "cannot lock " + lock + ": " + std::strerror(err)));
  }
  return fd;
}

// The socket path must be free, or hold a socket nobody answers on (left by
// a crash). Anything else is never removed: a file of the operator's, or
// the socket of a daemon that is running.
absl::Status ClaimSocketPath(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("socket ", path, ": cannot inspect it: ", std::strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "socket ", path, ": the path exists and is not a socket; refusing to replace it"));
  }
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("socket ", path, ": path too long"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("socket ", path, ": ", std::strerror(errno)));
  }
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::close(fd);
  if (rc == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket ", path,
                     ": another process (a running aersd?) answers on it; refusing to "
                     "take it over (use --socket to run a second daemon)"));
  }
  if (err != ECONNREFUSED) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket ", path, ": cannot tell whether it is in use: ", std::strerror(err)));
  }
  // A stale socket from a crash: nobody listens.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket ", path, ": cannot remove the stale socket: ", std::strerror(errno)));
  }
  spdlog::info("control: removed the stale socket {}", path);
  return absl::OkStatus();
}

}  // namespace aers::control
