// Opening plugin files without being fooled: paths resolved strictly beneath
// a directory (no "..", no symlinks, no magic links), owner/mode checks on the
// open file, and a sealed in-memory copy (memfd) so the bytes that are hashed
// are the bytes that are later dlopen'ed.
//
// Thread: non-real-time only (blocking file I/O).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace aers::plugin {

/// An owned file descriptor (closed on destruction; -1 = none).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  /// Gives up ownership (the caller closes it).
  int Release() { return std::exchange(fd_, -1); }
  void Reset();

 private:
  int fd_ = -1;
};

/// strerror(err), thread-safe.
std::string ErrnoText(int err);

/// Why an open failed, for audit reasons.
enum class OpenFailure {
  kNone,
  kEscape,    ///< the path leaves the directory ("..", absolute, EXDEV)
  kSymlink,   ///< a symlink (or magic link) on the path
  kNotFound,  ///< ENOENT
  kOther,
};

/// Error of OpenBeneath: status plus a machine-readable cause.
struct OpenError {
  OpenFailure failure = OpenFailure::kOther;
  absl::Status status;
};

/// Opens `relative` beneath the directory `dirfd`. `relative` must be a
/// relative path of normal components ("a/b.so"; no "", ".", "..", no
/// leading '/'). Uses openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS); where the kernel has no openat2 (ENOSYS, or EPERM
/// from a seccomp filter) it walks the path one component at a time with
/// openat(O_NOFOLLOW). `flags` are open(2) flags; O_CLOEXEC, O_NOFOLLOW and
/// O_NONBLOCK are always added. On error `*failure` (if given) says why.
absl::StatusOr<UniqueFd> OpenBeneath(int dirfd, std::string_view relative, int flags,
                                     OpenFailure* failure = nullptr);

/// Tests only: pretend openat2 is missing so the fallback walk is used.
void SetOpenat2DisabledForTesting(bool disabled);
/// Whether the last OpenBeneath call used openat2 (tests).
bool LastOpenUsedOpenat2();

/// Checks an open file or directory: the right type (regular file, or a
/// directory if `directory`), owned by root or by this process's euid, and
/// neither group- nor world-writable. `what` names it in the error.
enum class FileCheckFailure { kNone, kType, kOwner, kMode, kStat };
absl::Status CheckOwnerAndMode(int fd, bool directory, std::string_view what,
                               FileCheckFailure* failure = nullptr);

/// Reads a whole (small) regular file from `fd`; FAILED_PRECONDITION if it
/// exceeds `max_bytes`.
absl::StatusOr<std::string> ReadSmallFile(int fd, size_t max_bytes, std::string_view what);

/// What kind of file `mode` (st_mode) is, for errors: "a directory", "a
/// FIFO", "a character device", "a symbolic link", ...
std::string FileKindText(unsigned mode);

/// Reads the whole regular file at `path` (symlinks followed), at most
/// `max_bytes`. Never blocks on a FIFO or reads a device: anything but a
/// regular file is FAILED_PRECONDITION ("PATH: a FIFO, not a regular
/// file"); NOT_FOUND/PERMISSION_DENIED name the path and the reason.
absl::StatusOr<std::string> ReadRegularFile(const std::string& path, size_t max_bytes);

/// Refuses to replace what is at `path` unless it is a regular file or
/// nothing (a device, FIFO, socket, directory or symbolic link is kept and
/// named: FAILED_PRECONDITION). For writers that rename a new file over it.
absl::Status CheckReplaceableFile(const std::string& path);

/// A read-only, sealed in-memory copy of a file: a memfd created with
/// MFD_CLOEXEC | MFD_ALLOW_SEALING and sealed with F_SEAL_WRITE |
/// F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, mapped read-only. Nobody can
/// change its bytes any more, so checking them and then loading
/// /proc/self/fd/N closes the check-then-use gap.
class SealedImage {
 public:
  /// Copies all of `fd` (a regular file) into a new sealed memfd.
  /// RESOURCE_EXHAUSTED: larger than `max_bytes`; INVALID_ARGUMENT: empty or
  /// not a regular file. `name` labels the memfd (/proc/*/maps).
  static absl::StatusOr<SealedImage> CopyFrom(int fd, size_t max_bytes, std::string_view name);

  SealedImage() = default;
  ~SealedImage();
  SealedImage(SealedImage&& o) noexcept;
  SealedImage& operator=(SealedImage&& o) noexcept;
  SealedImage(const SealedImage&) = delete;
  SealedImage& operator=(const SealedImage&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  int fd() const { return fd_.get(); }
  /// "/proc/self/fd/N" of the memfd.
  std::string ProcPath() const;
  /// Drops the mapping (the memfd stays open).
  void Unmap();
  /// Hands the memfd over (the mapping is dropped).
  UniqueFd TakeFd();

 private:
  UniqueFd fd_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace aers::plugin
