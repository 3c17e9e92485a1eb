#include "plugin/bundle_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "plugin/check.h"
#include "plugin/minisign.h"
#include "plugin/secure_open.h"

namespace aers::plugin {
namespace {

// `name` with bytes outside printable ASCII as \xNN (for messages).
std::string EscapedName(std::string_view name) {
  std::string out;
  for (unsigned char ch : name) {
    if (ch >= 0x20 && ch <= 0x7e && ch != '\\') {
      out += static_cast<char>(ch);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    }
  }
  return out;
}

class TreeReader {
 public:
  TreeReader(std::string bundle_path, const std::vector<std::string>& allowed_dirs,
             size_t max_bytes, BundleError* error)
      : bundle_path_(std::move(bundle_path)),
        allowed_dirs_(allowed_dirs),
        max_bytes_(max_bytes),
        error_(error) {}

  absl::StatusOr<BundleTree> Run(int fd) {
    if (auto s = Walk(fd, "", 0); !s.ok()) return s;
    std::sort(tree_.entries.begin(), tree_.entries.end(),
              [](const BundleEntry& a, const BundleEntry& b) { return a.path < b.path; });
    return std::move(tree_);
  }

 private:
  absl::Status Fail(BundleFault fault, const std::string& rel, const std::string& message) {
    const std::string where = rel.empty() ? bundle_path_ : absl::StrCat(bundle_path_, "/", rel);
    if (error_ != nullptr) *error_ = {fault, where, message};
    return absl::PermissionDeniedError(absl::StrCat(where, ": ", message));
  }

  absl::Status CheckOpen(int fd, bool directory, const std::string& rel) {
    FileCheckFailure cf{};
    if (auto s = CheckOwnerAndMode(fd, directory, rel.empty() ? "the bundle" : rel, &cf); !s.ok()) {
      const BundleFault f = cf == FileCheckFailure::kOwner  ? BundleFault::kOwner
                            : cf == FileCheckFailure::kMode ? BundleFault::kPermissions
                            : cf == FileCheckFailure::kType ? BundleFault::kEntry
                                                            : BundleFault::kUnreadable;
      return Fail(f, rel, std::string(s.message()));
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && (st.st_mode & 07000) != 0) {
      return Fail(BundleFault::kPermissions, rel, "has a setuid, setgid or sticky bit");
    }
    return absl::OkStatus();
  }

  absl::Status AddEntry(BundleEntry e) {
    if (tree_.entries.size() >= kMaxBundleEntries) {
      return Fail(BundleFault::kTooLarge, e.path,
                  absl::StrCat("the bundle has more than ", kMaxBundleEntries, " entries"));
    }
    tree_.total_bytes += e.bytes.size();
    tree_.entries.push_back(std::move(e));
    return absl::OkStatus();
  }

  // Reads the regular file open as `fd` into an entry named `rel`.
  absl::Status AddFile(int fd, const std::string& rel, const std::string& link_from) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      return Fail(BundleFault::kUnreadable, rel, absl::StrCat("fstat: ", ErrnoText(errno)));
    }
    if (static_cast<size_t>(st.st_size) > max_bytes_ - std::min(max_bytes_, tree_.total_bytes)) {
      return Fail(BundleFault::kTooLarge, rel,
                  absl::StrCat("the bundle's files exceed ", max_bytes_, " bytes in all"));
    }
    auto bytes = ReadSmallFile(fd, max_bytes_ - tree_.total_bytes, rel);
    if (!bytes.ok()) {
      const bool big = bytes.status().code() == absl::StatusCode::kFailedPrecondition;
      return Fail(big ? BundleFault::kTooLarge : BundleFault::kUnreadable, rel,
                  std::string(bytes.status().message()));
    }
    BundleEntry e;
    e.path = rel;
    e.mode = static_cast<uint32_t>(st.st_mode & 07777);
    e.bytes = std::move(*bytes);
    e.link_from = link_from;
    return AddEntry(std::move(e));
  }

  // A symlink named `rel` in the directory `dir_fd`: allowed only if it
  // resolves to a regular file beneath an allowed system directory.
  absl::Status AddLink(int dir_fd, const std::string& name, const std::string& rel) {
    char target[PATH_MAX];
    const ssize_t n = ::readlinkat(dir_fd, name.c_str(), target, sizeof target - 1);
    const std::string shown = n > 0 ? std::string(target, static_cast<size_t>(n)) : "?";
    const std::string full = absl::StrCat(bundle_path_, "/", rel);
    char resolved[PATH_MAX];
    if (::realpath(full.c_str(), resolved) == nullptr) {
      return Fail(BundleFault::kEntry, rel,
                  absl::StrCat("is a symlink to '", shown, "', which does not resolve (",
                               ErrnoText(errno), ")"));
    }
    const auto beneath = SplitBeneathAllowedDir(resolved, allowed_dirs_);
    if (!beneath) {
      return Fail(BundleFault::kEntry, rel,
                  absl::StrCat("is a symlink to '", resolved,
                               "'; a symlink in a bundle must resolve to a file beneath an "
                               "allowed system directory (plugins.allowed_system_dirs; allowed: ",
                               allowed_dirs_.empty() ? std::string("none")
                                                     : absl::StrJoin(allowed_dirs_, ", "),
                               ")"));
    }
    const int bfd = ::open(beneath->first.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0) {
      return Fail(BundleFault::kUnreadable, rel,
                  absl::StrCat("cannot open ", beneath->first, ": ", ErrnoText(errno)));
    }
    UniqueFd base(bfd);
    auto fd = OpenBeneath(base.get(), beneath->second, O_RDONLY);
    if (!fd.ok()) return Fail(BundleFault::kUnreadable, rel, std::string(fd.status().message()));
    if (auto s = CheckOpen(fd->get(), false, rel); !s.ok()) return s;
    return AddFile(fd->get(), rel, resolved);
  }

  absl::Status Walk(int dir_fd, const std::string& prefix, int depth) {
    if (depth > kMaxBundleDepth) {
      return Fail(BundleFault::kTooLarge, prefix,
                  absl::StrCat("the bundle nests deeper than ", kMaxBundleDepth, " directories"));
    }
    const int lfd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = lfd >= 0 ? ::fdopendir(lfd) : nullptr;
    if (d == nullptr) {
      if (lfd >= 0) ::close(lfd);
      return Fail(BundleFault::kUnreadable, prefix,
                  absl::StrCat("cannot list: ", ErrnoText(errno)));
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      names.push_back(n);
      if (names.size() > kMaxBundleEntries) break;
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      const std::string rel = prefix.empty() ? n : absl::StrCat(prefix, "/", n);
      if (n.front() == '.') {
        return Fail(BundleFault::kEntry, rel,
                    "is a hidden file; a bundle may not contain names starting with '.'");
      }
      for (unsigned char ch : n) {
        if (ch < 0x20 || ch > 0x7e) {
          return Fail(BundleFault::kEntry, EscapedName(rel),
                      "has a name that is not printable ASCII (control characters, "
                      "non-ASCII bytes); bundle file names must be");
        }
      }
      struct stat st {};
      if (::fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return Fail(BundleFault::kUnreadable, rel, absl::StrCat("stat: ", ErrnoText(errno)));
      }
      if (S_ISLNK(st.st_mode)) {
        if (auto s = AddLink(dir_fd, n, rel); !s.ok()) return s;
      } else if (S_ISDIR(st.st_mode)) {
        const int cfd =
            ::openat(dir_fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0) {
          return Fail(BundleFault::kUnreadable, rel, absl::StrCat("open: ", ErrnoText(errno)));
        }
        UniqueFd child(cfd);
        if (auto s = CheckOpen(child.get(), true, rel); !s.ok()) return s;
        struct stat cst {};
        ::fstat(child.get(), &cst);
        BundleEntry e;
        e.path = rel;
        e.directory = true;
        e.mode = static_cast<uint32_t>(cst.st_mode & 07777);
        if (auto s = AddEntry(std::move(e)); !s.ok()) return s;
        if (auto s = Walk(child.get(), rel, depth + 1); !s.ok()) return s;
      } else if (S_ISREG(st.st_mode)) {
        const int ffd = ::openat(dir_fd, n.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (ffd < 0) {
          return Fail(BundleFault::kUnreadable, rel, absl::StrCat("open: ", ErrnoText(errno)));
        }
        UniqueFd file(ffd);
        if (auto s = CheckOpen(file.get(), false, rel); !s.ok()) return s;
        if (auto s = AddFile(file.get(), rel, ""); !s.ok()) return s;
      } else {
        return Fail(BundleFault::kEntry, rel,
                    "is not a regular file or directory (a FIFO, socket or device)");
      }
    }
    return absl::OkStatus();
  }

  std::string bundle_path_;
  const std::vector<std::string>& allowed_dirs_;
  size_t max_bytes_;
  BundleError* error_;
  BundleTree tree_;
};

std::string DigestHex(HashAlgorithm algorithm, std::string_view bytes) {
  return HashHex(algorithm, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}

absl::Status WriteAll(int fd, std::string_view bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("write ", path, ": ", ErrnoText(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<std::pair<std::string, std::string>> SplitBeneathAllowedDir(
    const std::string& path, const std::vector<std::string>& allowed_dirs) {
  for (const auto& allowed : allowed_dirs) {
    std::string a = allowed;
    while (a.size() > 1 && a.back() == '/') a.pop_back();
    if (a.empty() || a.front() != '/') continue;
    if (path.size() > a.size() + 1 && path.compare(0, a.size(), a) == 0 && path[a.size()] == '/') {
      return std::make_pair(a, path.substr(a.size() + 1));
    }
  }
  return std::nullopt;
}

absl::StatusOr<BundleTree> ReadBundleTree(int bundle_fd, const std::string& bundle_path,
                                          const std::vector<std::string>& allowed_dirs,
                                          size_t max_bytes, BundleError* error) {
  return TreeReader(bundle_path, allowed_dirs, max_bytes, error).Run(bundle_fd);
}

std::string BundleTreeHashHex(HashAlgorithm algorithm, const BundleTree& tree) {
  std::string text = "aers-lv2-tree-v2\n";
  char mode[8];
  for (const auto& e : tree.entries) {
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(e.mode & 07777));
    // The path is length-prefixed: no name can imitate entry boundaries.
    if (e.directory) {
      absl::StrAppend(&text, "d ", mode, " ", e.path.size(), ":", e.path, "\n");
    } else {
      absl::StrAppend(&text, "f ", mode, " ", e.path.size(), ":", e.path, " ", e.bytes.size(), " ",
                      DigestHex(algorithm, e.bytes), "\n");
    }
  }
  return DigestHex(algorithm, text);
}

bool LooksLikeElf(std::string_view bytes) {
  return bytes.size() >= 4 && bytes.substr(0, 4) == std::string_view(
                                                        "\x7f"
                                                        "ELF",
                                                        4);
}

absl::Status EnsurePrivateDirectory(const std::string& dir) {
  std::error_code ec;
  const std::filesystem::path p(dir);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ErrnoText(errno)));
  }
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", dir, ": ", ErrnoText(errno)));
  UniqueFd d(fd);
  struct stat st {};
  if (::fstat(d.get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InternalError(absl::StrCat(dir, " is not a directory"));
  }
  if (st.st_uid != ::geteuid()) {
    return absl::PermissionDeniedError(
        absl::StrCat(dir, " is owned by uid ", st.st_uid, ", not the daemon's uid ", ::geteuid()));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return absl::PermissionDeniedError(
        absl::StrCat(dir, " has mode ", mode, "; the store must be 0700 (only aersd reads it)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> WriteBundleTree(const std::string& store_dir, const std::string& name,
                                            const BundleTree& tree) {
  if (auto s = EnsurePrivateDirectory(store_dir); !s.ok()) return s;
  std::string tmp = absl::StrCat(store_dir, "/.tmp-XXXXXX");
  if (::mkdtemp(tmp.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp in ", store_dir, ": ", ErrnoText(errno)));
  }
  auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
  };
  const int tfd = ::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tfd < 0) {
    cleanup();
    return absl::InternalError(absl::StrCat("open ", tmp, ": ", ErrnoText(errno)));
  }
  UniqueFd root(tfd);
  for (const auto& e : tree.entries) {
    const std::string path = absl::StrCat(tmp, "/", e.path);
    if (e.directory) {
      if (::mkdirat(root.get(), e.path.c_str(), 0700) != 0) {
        cleanup();
        return absl::InternalError(absl::StrCat("mkdir ", path, ": ", ErrnoText(errno)));
      }
      continue;
    }
    const int fd = ::openat(root.get(), e.path.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      cleanup();
      return absl::InternalError(absl::StrCat("create ", path, ": ", ErrnoText(errno)));
    }
    UniqueFd file(fd);
    absl::Status s = WriteAll(file.get(), e.bytes, path);
    if (s.ok() && ::fchmod(file.get(), e.mode) != 0)
      s = absl::InternalError(absl::StrCat("chmod ", path, ": ", ErrnoText(errno)));
    if (s.ok() && ::fsync(file.get()) != 0)
      s = absl::InternalError(absl::StrCat("fsync ", path, ": ", ErrnoText(errno)));
    if (!s.ok()) {
      cleanup();
      return s;
    }
  }
  // Directory modes last (a read-only directory could not be filled), deepest first.
  for (auto it = tree.entries.rbegin(); it != tree.entries.rend(); ++it) {
    if (!it->directory) continue;
    if (::fchmodat(root.get(), it->path.c_str(), it->mode, 0) != 0) {
      cleanup();
      return absl::InternalError(
          absl::StrCat("chmod ", tmp, "/", it->path, ": ", ErrnoText(errno)));
    }
  }
  ::fchmod(root.get(), 0755);
  ::fsync(root.get());
  const std::string target = absl::StrCat(store_dir, "/", name);
  std::error_code ec;
  if (std::filesystem::exists(target, ec)) {
    std::string old = absl::StrCat(store_dir, "/.old-XXXXXX");
    if (::mkdtemp(old.data()) != nullptr && ::rename(target.c_str(), (old + "/x").c_str()) == 0) {
      std::filesystem::remove_all(old, ec);
    } else {
      std::filesystem::remove_all(target, ec);
    }
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    cleanup();
    return absl::InternalError(absl::StrCat("rename into ", target, ": ", ErrnoText(err)));
  }
  const int sfd = ::open(store_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sfd >= 0) {
    ::fsync(sfd);
    ::close(sfd);
  }
  return target;
}

}  // namespace aers::plugin
