#include "control/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace aers::control {

namespace {

absl::Status OpenError(int err, const std::string& path, const std::string& what) {
  const std::string message =
      absl::StrCat(what, " ", path, ": ", std::generic_category().message(err));
  if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  return absl::FailedPreconditionError(message);
}

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, const std::string& what,
                                            bool secret) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no path given"));
  // O_NONBLOCK: a FIFO at the path must not hang start-up.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return OpenError(errno, path, what);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return OpenError(errno, path, what);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " ", path, ": ", S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file"));
  }
  if (secret) {
    if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "%s %s: owned by uid %u; it must be owned by root or by the daemon's user (uid %u)", what,
          path, st.st_uid, ::geteuid()));
    }
    // systemd's credentials (LoadCredential=) may be root-owned 0440 with
    // an ACL granting the service's user: private to the service by
    // construction, so group read is accepted there.
    const char* creds = std::getenv("CREDENTIALS_DIRECTORY");
    const bool systemd_credential = creds != nullptr && *creds == '/' && st.st_uid == 0 &&
                                    path.rfind(std::string(creds) + "/", 0) == 0 &&
                                    (st.st_mode & 0037) == 0;
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 && !systemd_credential) {
      return absl::PermissionDeniedError(
          absl::StrFormat("%s %s: mode %04o lets group or others read it; chmod 600 (or 400)", what,
                          path, st.st_mode & 07777));
    }
  }
  if (static_cast<size_t>(st.st_size) > kMaxCredentialFileBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", path, ": larger than ", kMaxCredentialFileBytes, " bytes"));
  }
  std::string text;
  char buf[8192];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return OpenError(errno, path, what);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxCredentialFileBytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, " ", path, ": larger than ", kMaxCredentialFileBytes, " bytes"));
    }
  }
  return text;
}

}  // namespace

absl::StatusOr<std::string> ReadSecretFile(const std::string& path, std::string_view what) {
  return ReadRegularFile(path, std::string(what), true);
}

absl::StatusOr<std::string> ReadPublicFile(const std::string& path, std::string_view what) {
  return ReadRegularFile(path, std::string(what), false);
}

}  // namespace aers::control
