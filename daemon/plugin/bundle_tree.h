// An LV2 bundle as the gate sees it: every file beneath the bundle directory,
// read once into memory, hashed as one deterministic tree, and written from
// those same bytes into aersd's store (so what was hashed is what lilv reads).
//
// Rules for a bundle (docs/plugins.md, "LV2 bundles"):
//   - entries are directories and regular files; a name starting with '.' is
//     refused (hidden files would be hashed but easy to overlook), and so is
//     a name with a byte outside printable ASCII (0x20-0x7e);
//   - a symlink is refused unless it points (after resolving every link) to a
//     regular file beneath one of the allowed system directories: the way
//     Debian's calf bundle reaches a library outside the bundle. It is then
//     treated as that file (its bytes and mode) under the link's own name;
//   - FIFOs, sockets and devices are refused;
//   - every file and directory: owner root or the daemon's euid, not group- or
//     world-writable (the same rule as a module file), no setuid, setgid or
//     sticky bit;
//   - at most kMaxBundleEntries entries, kMaxBundleDepth levels, and
//     `max_bytes` bytes of file content in all.
//
// The tree hash (HashAlgorithm of the manifest) is the digest of
//   "aers-lv2-tree-v2\n" then, for every entry in bytewise order of its
//   relative path: TYPE ' ' MODE ' ' LEN ':' PATH '\n' for a directory
//   (TYPE 'd'), or TYPE ' ' MODE ' ' LEN ':' PATH ' ' SIZE ' ' HEX '\n' for a
//   file (TYPE 'f'),
// with MODE four octal digits (st_mode & 07777), LEN the path's length in
// bytes (so no name can imitate an entry boundary), SIZE in decimal bytes and
// HEX the file content's digest in lowercase hex (same algorithm). A rename,
// an added or removed file, a mode change or one changed byte changes it.
//
// Thread: non-real-time only (blocking file I/O).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "plugin/manifest.h"

namespace aers::plugin {

inline constexpr size_t kMaxBundleEntries = 4096;
inline constexpr int kMaxBundleDepth = 16;

struct BundleEntry {
  std::string path;  ///< relative to the bundle, '/'-separated, no leading '/'
  bool directory = false;
  uint32_t mode = 0;      ///< st_mode & 07777
  std::string bytes;      ///< file content (empty for directories)
  std::string link_from;  ///< for a followed symlink: the file it resolved to
};

struct BundleTree {
  std::vector<BundleEntry> entries;  ///< sorted by path
  size_t total_bytes = 0;
};

/// Why a bundle could not be read (BundleError::what maps to a RefusalCode).
enum class BundleFault {
  kUnreadable,   ///< an entry could not be opened or read
  kEntry,        ///< hidden name, special file, a symlink not allowed
  kOwner,        ///< owned by someone other than root or the daemon
  kPermissions,  ///< group- or world-writable
  kTooLarge,     ///< over the entry, depth or byte limits
};

struct BundleError {
  BundleFault fault = BundleFault::kUnreadable;
  std::string path;  ///< the offending entry, as a path the operator can open
  std::string message;
};

/// Reads the whole bundle beneath the open directory `bundle_fd` (named
/// `bundle_path` in messages). `allowed_dirs`: absolute directories a symlink
/// may resolve into (see above). On failure returns PERMISSION_DENIED and
/// fills `*error` (if given) with the fault and the entry.
absl::StatusOr<BundleTree> ReadBundleTree(int bundle_fd, const std::string& bundle_path,
                                          const std::vector<std::string>& allowed_dirs,
                                          size_t max_bytes, BundleError* error);

/// The tree hash described above, lowercase hex (64 digits).
std::string BundleTreeHashHex(HashAlgorithm algorithm, const BundleTree& tree);

/// An absolute `path` split into the allowed directory it lies beneath and
/// the rest ("/usr/lib/lv2/x.lv2" -> {"/usr/lib/lv2", "x.lv2"}); nullopt if it
/// lies beneath none of `allowed_dirs` (absolute; trailing '/' ignored).
std::optional<std::pair<std::string, std::string>> SplitBeneathAllowedDir(
    const std::string& path, const std::vector<std::string>& allowed_dirs);

/// Whether `bytes` start with the ELF magic.
bool LooksLikeElf(std::string_view bytes);

/// Writes `tree` beneath `store_dir` (which must exist, be owned by the
/// daemon's euid and not be group/world-accessible) as the directory
/// `<store_dir>/<name>`, atomically: the files go into a fresh temporary
/// directory (modes as recorded, fsync'd) that is then renamed into place.
/// An existing `<store_dir>/<name>` is replaced. Returns its path.
absl::StatusOr<std::string> WriteBundleTree(const std::string& store_dir, const std::string& name,
                                            const BundleTree& tree);

/// Creates `dir` (and its parent if missing) with mode 0700 if it does not
/// exist, and checks it: a directory owned by the daemon's euid with no
/// group/world permission bits.
absl::Status EnsurePrivateDirectory(const std::string& dir);

}  // namespace aers::plugin
