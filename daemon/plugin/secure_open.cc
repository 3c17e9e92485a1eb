#include "plugin/secure_open.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace aers::plugin {
namespace {

std::atomic<bool> g_openat2_disabled{false};
thread_local bool t_last_used_openat2 = false;

std::string Errno(int err) {
  return ErrnoText(err);
}

// Lexical check of a relative path: normal components only.
bool SplitRelative(std::string_view relative, std::vector<std::string>& parts) {
  if (relative.empty() || relative.front() == '/' || relative.size() > 4096) return false;
  for (absl::string_view c :
       absl::StrSplit(absl::string_view(relative.data(), relative.size()), '/')) {
    if (c.empty() || c == "." || c == "..") return false;
    if (c.find('\0') != absl::string_view::npos) return false;
    parts.emplace_back(c);
  }
  return !parts.empty();
}

OpenFailure FailureOf(int err) {
  switch (err) {
    case EXDEV:
      return OpenFailure::kEscape;
    case ELOOP:
      return OpenFailure::kSymlink;
    case ENOENT:
      return OpenFailure::kNotFound;
    default:
      return OpenFailure::kOther;
  }
}

std::string Describe(int err, std::string_view relative) {
  switch (err) {
    case EXDEV:
      return absl::StrCat("'", std::string(relative), "' escapes its directory");
    case ELOOP:
      return absl::StrCat("'", std::string(relative),
                          "' has a symlink on its path (symlinks are refused)");
    default:
      return absl::StrCat("cannot open '", std::string(relative), "': ", Errno(err));
  }
}

// Diagnosis only (after a refusal): is any component of `parts` a symlink?
// Never follows one.
bool HasSymlink(int dirfd, const std::vector<std::string>& parts) {
  UniqueFd cur;
  int at = dirfd;
  for (size_t i = 0; i < parts.size(); ++i) {
    struct stat st {};
    if (::fstatat(at, parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
    if (S_ISLNK(st.st_mode)) return true;
    if (i + 1 == parts.size() || !S_ISDIR(st.st_mode)) return false;
    const int fd = ::openat(at, parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    cur = UniqueFd(fd);
    at = cur.get();
  }
  return false;
}

}  // namespace

std::string ErrnoText(int err) {
  char buf[128];
  // GNU strerror_r: returns a pointer to a static string or to buf.
  return ::strerror_r(err, buf, sizeof buf);
}

void UniqueFd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void SetOpenat2DisabledForTesting(bool disabled) {
  g_openat2_disabled.store(disabled);
}
bool LastOpenUsedOpenat2() {
  return t_last_used_openat2;
}

absl::StatusOr<UniqueFd> OpenBeneath(int dirfd, std::string_view relative, int flags,
                                     OpenFailure* failure) {
  auto fail = [&](OpenFailure f, absl::Status s) -> absl::Status {
    if (failure) *failure = f;
    return s;
  };
  if (failure) *failure = OpenFailure::kNone;
  std::vector<std::string> parts;
  if (!SplitRelative(relative, parts)) {
    return fail(OpenFailure::kEscape,
                absl::PermissionDeniedError(absl::StrCat(
                    "'", std::string(relative),
                    "' is not a plain relative path (absolute, empty, '.' or '..' components)")));
  }
  // O_NONBLOCK: a FIFO planted where a file is expected must not hang the
  // loader (the type check after open refuses it); no effect on files.
  flags |= O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  t_last_used_openat2 = false;

  if (!g_openat2_disabled.load()) {
    open_how how{};
    how.flags = static_cast<uint64_t>(flags);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const std::string path(relative);
    long fd;
    do {
      fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
    } while (fd < 0 && errno == EINTR);
    if (fd >= 0) {
      t_last_used_openat2 = true;
      return UniqueFd(static_cast<int>(fd));
    }
    const int err = errno;
    // ENOSYS: kernel older than 5.6. EPERM: a seccomp filter that does not
    // know openat2. Anything else is a real answer.
    if (err != ENOSYS && err != EPERM) {
      t_last_used_openat2 = true;
      // O_NOFOLLOW | O_DIRECTORY on a final symlink says ENOTDIR: name the
      // symlink instead.
      if ((err == ENOTDIR || err == ELOOP) && HasSymlink(dirfd, parts)) {
        return fail(OpenFailure::kSymlink, absl::PermissionDeniedError(Describe(ELOOP, relative)));
      }
      return fail(FailureOf(err), absl::PermissionDeniedError(Describe(err, relative)));
    }
  }

  // Fallback: one component at a time, never following a symlink.
  UniqueFd cur;
  int at = dirfd;
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    const int f = last ? flags : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int fd;
    do {
      fd = ::openat(at, parts[i].c_str(), f);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      // O_NOFOLLOW on a final symlink gives ELOOP; O_DIRECTORY on a symlink
      // (opened with O_PATH|O_NOFOLLOW) gives ENOTDIR. Tell them apart.
      const int err = errno;
      struct stat st {};
      if ((err == ENOTDIR || err == ELOOP) &&
          ::fstatat(at, parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        return fail(OpenFailure::kSymlink, absl::PermissionDeniedError(Describe(ELOOP, relative)));
      }
      return fail(FailureOf(err), absl::PermissionDeniedError(Describe(err, relative)));
    }
    UniqueFd next(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      return fail(OpenFailure::kOther, absl::PermissionDeniedError(Describe(errno, relative)));
    }
    if (S_ISLNK(st.st_mode)) {
      return fail(OpenFailure::kSymlink, absl::PermissionDeniedError(Describe(ELOOP, relative)));
    }
    if (!last && !S_ISDIR(st.st_mode)) {
      return fail(OpenFailure::kOther, absl::PermissionDeniedError(Describe(ENOTDIR, relative)));
    }
    cur = std::move(next);
    at = cur.get();
  }
  return cur;
}

absl::Status CheckOwnerAndMode(int fd, bool directory, std::string_view what,
                               FileCheckFailure* failure) {
  auto fail = [&](FileCheckFailure f, const std::string& msg) {
    if (failure) *failure = f;
    return absl::PermissionDeniedError(msg);
  };
  if (failure) *failure = FileCheckFailure::kNone;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return fail(FileCheckFailure::kStat,
                absl::StrCat("cannot stat ", std::string(what), ": ", Errno(errno)));
  }
  if (directory ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
    return fail(FileCheckFailure::kType, absl::StrCat(std::string(what), " is not a ",
                                                      directory ? "directory" : "regular file"));
  }
  const uid_t euid = ::geteuid();
  if (st.st_uid != 0 && st.st_uid != euid) {
    return fail(FileCheckFailure::kOwner,
                absl::StrCat(std::string(what), " is owned by uid ", st.st_uid,
                             "; only root (0) or the daemon's uid (", euid, ") may own it"));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(FileCheckFailure::kMode,
                absl::StrCat(std::string(what), " is ",
                             (st.st_mode & S_IWOTH) ? "world-writable" : "group-writable",
                             " (mode ", mode, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(int fd, size_t max_bytes, std::string_view what) {
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::PermissionDeniedError(
          absl::StrCat("cannot read ", std::string(what), ": ", Errno(errno)));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(std::string(what), " is larger than ", max_bytes, " bytes"));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string FileKindText(unsigned mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "a regular file";
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symbolic link";
    default:
      return "not a regular file";
  }
}

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, size_t max_bytes) {
  if (path.empty()) return absl::InvalidArgumentError("empty file name");
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    const std::string msg = absl::StrCat(path, ": cannot open: ", Errno(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::PermissionDeniedError(msg);
  }
  UniqueFd f(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot stat: ", Errno(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": ", FileKindText(st.st_mode), ", not a regular file"));
  }
  return ReadSmallFile(fd, max_bytes, path);
}

absl::Status CheckReplaceableFile(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return absl::OkStatus();  // nothing there (or unreadable: the write says)
  if (S_ISREG(st.st_mode)) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(path, ": ", FileKindText(st.st_mode), ", not replaced by a regular file"));
}

// --- SealedImage --------------------------------------------------------------

SealedImage::~SealedImage() {
  Unmap();
}

SealedImage::SealedImage(SealedImage&& o) noexcept
    : fd_(std::move(o.fd_)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

SealedImage& SealedImage::operator=(SealedImage&& o) noexcept {
  if (this != &o) {
    Unmap();
    fd_ = std::move(o.fd_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void SealedImage::Unmap() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
}

UniqueFd SealedImage::TakeFd() {
  Unmap();
  return std::move(fd_);
}

std::string SealedImage::ProcPath() const {
  return absl::StrCat("/proc/self/fd/", fd_.get());
}

absl::StatusOr<SealedImage> SealedImage::CopyFrom(int fd, size_t max_bytes, std::string_view name) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return absl::InternalError(absl::StrCat("fstat: ", Errno(errno)));
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError("module is not a regular file");
  if (st.st_size <= 0) return absl::InvalidArgumentError("module is empty");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("module is ", st.st_size, " bytes; the limit is ", max_bytes));
  }
  const std::string label = absl::StrCat("aers-plugin:", std::string(name.substr(0, 200)));
  unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
  // Kernels >= 6.3 know MFD_EXEC and (with vm.memfd_noexec=1) would otherwise
  // make the memfd non-executable; older kernels reject the flag (EINVAL).
  constexpr unsigned kMfdExec = 0x0010U;
  int mfd = static_cast<int>(::syscall(SYS_memfd_create, label.c_str(), flags | kMfdExec));
  if (mfd < 0 && errno == EINVAL) mfd = ::memfd_create(label.c_str(), flags);
  if (mfd < 0) return absl::InternalError(absl::StrCat("memfd_create: ", Errno(errno)));
  SealedImage img;
  img.fd_ = UniqueFd(mfd);

  // Copy with pread from offset 0: the source's file offset does not matter.
  std::vector<char> buf(1 << 16);
  uint64_t off = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("read module: ", Errno(errno)));
    }
    if (n == 0) break;
    if (off + static_cast<uint64_t>(n) > max_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("module grew past the limit of ", max_bytes, " bytes while being read"));
    }
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(mfd, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return absl::InternalError(absl::StrCat("write memfd: ", Errno(errno)));
      }
      done += w;
    }
    off += static_cast<uint64_t>(n);
  }
  if (off == 0) return absl::InvalidArgumentError("module is empty");
  if (::fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return absl::InternalError(absl::StrCat("sealing memfd: ", Errno(errno)));
  }
  void* p = ::mmap(nullptr, off, PROT_READ, MAP_PRIVATE, mfd, 0);
  if (p == MAP_FAILED) return absl::InternalError(absl::StrCat("mmap memfd: ", Errno(errno)));
  img.data_ = static_cast<const uint8_t*>(p);
  img.size_ = off;
  return img;
}

}  // namespace aers::plugin
