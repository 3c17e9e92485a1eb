#include "plugin/tool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "plugin/bundle_tree.h"
#include "plugin/check.h"
#include "plugin/minisign.h"
#include "plugin/secure_open.h"

namespace aers::plugin::tool {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max) {
  return ReadRegularFile(path, max);
}

// Writes `text` to `path` atomically (temp file, fsync, rename) with `mode`.
// What is at `path` must be a regular file or nothing: a device, FIFO or
// symbolic link there is never replaced.
absl::Status WriteFileAtomic(const std::string& path, const std::string& text, mode_t mode) {
  if (auto st = CheckReplaceableFile(path); !st.ok()) return st;
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  // Created now (O_EXCL, O_NOFOLLOW, O_NONBLOCK): a file, link or FIFO put
  // at the temporary's name is neither written through nor waited on.
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
  if (fd < 0)
    return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp, ": ", ErrnoText(errno)));
  UniqueFd f(fd);
  if (::fchmod(fd, mode) != 0 ||
      ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::fsync(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", ErrnoText(err)));
  }
  f.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", ErrnoText(err)));
  }
  return absl::OkStatus();
}

std::string Trimmed(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

// Offset of 1-based (line, column) in text, or npos.
size_t OffsetOf(const std::string& text, int line, int column) {
  size_t off = 0;
  for (int l = 1; l < line; ++l) {
    off = text.find('\n', off);
    if (off == std::string::npos) return off;
    ++off;
  }
  return off + static_cast<size_t>(column - 1);
}

}  // namespace

absl::StatusOr<HashResult> Hash(const std::string& dir_in, std::optional<HashAlgorithm> algorithm,
                                bool write) {
  const std::string dir = Trimmed(dir_in);
  const std::string manifest_path = dir + "/manifest.yaml";
  auto text = ReadFile(manifest_path, kMaxManifestBytes);
  if (!text.ok()) return text.status();
  auto m = ParseManifest(*text, manifest_path);
  if (!m.ok()) return m.status();
  HashResult r;
  r.algorithm = algorithm.value_or(m->hash_algorithm);
  r.manifest_hex = m->hash_hex;
  r.module_path = m->module.front() == '/' ? m->module : absl::StrCat(dir, "/", m->module);
  const bool lv2 = m->format == ModuleFormat::kLv2;
  // O_NONBLOCK: a FIFO named as the module is refused below, not waited on.
  const int fd = ::open(r.module_path.c_str(),
                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (lv2 ? O_DIRECTORY : 0));
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("cannot open ", lv2 ? "bundle " : "module ",
                                            r.module_path, ": ", ErrnoText(errno)));
  }
  UniqueFd f(fd);
  if (struct stat st{}; !lv2 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    return absl::FailedPreconditionError(absl::StrCat(
        "module ", r.module_path, ": ", FileKindText(st.st_mode), ", not a regular file"));
  }
  if (lv2) {
    // Symlinks are followed into the usual system trees here; the daemon
    // admits them only beneath its allowed_system_dirs.
    auto tree = ReadBundleTree(f.get(), r.module_path, {"/usr", "/opt"}, size_t{1} << 30, nullptr);
    if (!tree.ok()) return tree.status();
    r.hex = BundleTreeHashHex(r.algorithm, *tree);
  } else {
    auto image = SealedImage::CopyFrom(f.get(), size_t{1} << 30, m->name);
    if (!image.ok()) return image.status();
    r.hex = HashHex(r.algorithm, image->bytes());
  }
  r.matches = r.algorithm == m->hash_algorithm && r.hex == m->hash_hex;
  if (write && !r.matches) {
    std::string out = *text;
    const size_t at = OffsetOf(out, m->hash_value_position.line, m->hash_value_position.column);
    if (at == std::string::npos || at >= out.size())
      return absl::InternalError("cannot locate hash.value");
    const size_t start = (out[at] == '"' || out[at] == '\'') ? at + 1 : at;
    if (out.compare(start, 64, m->hash_hex) != 0) {
      // Mixed-case hex in the file: compare case-insensitively.
      for (size_t i = 0; i < 64; ++i) {
        if (start + i >= out.size() ||
            std::tolower(static_cast<unsigned char>(out[start + i])) != m->hash_hex[i]) {
          return absl::InternalError("cannot locate hash.value in manifest.yaml");
        }
      }
    }
    out.replace(start, 64, r.hex);
    if (r.algorithm != m->hash_algorithm) {
      const std::string from = absl::StrCat("algorithm: ", HashAlgorithmName(m->hash_algorithm));
      const size_t pos = out.find(from);
      if (pos == std::string::npos) return absl::InternalError("cannot locate hash.algorithm");
      out.replace(pos, from.size(), absl::StrCat("algorithm: ", HashAlgorithmName(r.algorithm)));
    }
    auto check = ParseManifest(out, manifest_path);
    if (!check.ok())
      return absl::InternalError(absl::StrCat("rewrite failed: ", check.status().message()));
    struct stat st {};
    const mode_t mode = ::stat(manifest_path.c_str(), &st) == 0 ? (st.st_mode & 0755) : 0644;
    if (auto s = WriteFileAtomic(manifest_path, out, mode); !s.ok()) return s;
    r.manifest_hex = r.hex;
    r.matches = true;
  }
  return r;
}

absl::StatusOr<std::string> KeyGen(const std::string& public_path, const std::string& secret_path,
                                   bool force) {
  {
    // One file for both keys would keep only the public one.
    std::error_code ec1, ec2;
    const auto a = std::filesystem::weakly_canonical(public_path, ec1);
    const auto b = std::filesystem::weakly_canonical(secret_path, ec2);
    if (public_path == secret_path || (!ec1 && !ec2 && a == b)) {
      return absl::InvalidArgumentError(
          absl::StrCat("-p and -s name the same file (", secret_path, "): the keys need two"));
    }
  }
  auto kp = minisign::GenerateKeyPair();
  if (!kp.ok()) return kp.status();
  if (force) {
    // Both checked before either is written.
    if (auto s = CheckReplaceableFile(secret_path); !s.ok()) return s;
    if (auto s = CheckReplaceableFile(public_path); !s.ok()) return s;
    if (auto s = WriteFileAtomic(secret_path, kp->secret_key, 0600); !s.ok()) return s;
    if (auto s = WriteFileAtomic(public_path, kp->public_key, 0644); !s.ok()) return s;
    return minisign::KeyIdHex(kp->key_id);
  }
  // Without -f: create both files exclusively (never replace a key).
  auto create = [](const std::string& path, const std::string& text, mode_t mode) -> absl::Status {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
      if (errno == EEXIST)
        return absl::AlreadyExistsError(absl::StrCat(path, " exists (use -f to overwrite)"));
      return absl::PermissionDeniedError(
          absl::StrCat("cannot create ", path, ": ", ErrnoText(errno)));
    }
    UniqueFd f(fd);
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::fsync(fd) != 0) {
      const int err = errno;
      ::unlink(path.c_str());
      return absl::InternalError(absl::StrCat("cannot write ", path, ": ", ErrnoText(err)));
    }
    return absl::OkStatus();
  };
  if (auto s = create(secret_path, kp->secret_key, 0600); !s.ok()) return s;
  if (auto s = create(public_path, kp->public_key, 0644); !s.ok()) {
    ::unlink(secret_path.c_str());
    return s;
  }
  return minisign::KeyIdHex(kp->key_id);
}

absl::StatusOr<std::string> Sign(const std::string& dir_in, const std::string& secret_path,
                                 const std::string& trusted_comment, bool legacy) {
  const std::string dir = Trimmed(dir_in);
  const std::string manifest_path = dir + "/manifest.yaml";
  auto key_text = ReadFile(secret_path, 4096);
  if (!key_text.ok()) return key_text.status();
  auto key = minisign::ParseSecretKey(*key_text);
  if (!key.ok()) return key.status();
  auto text = ReadFile(manifest_path, kMaxManifestBytes);
  if (!text.ok()) return text.status();
  // Refuse to sign something the daemon would not accept anyway.
  if (auto m = ParseManifest(*text, manifest_path); !m.ok()) return m.status();
  auto sig = minisign::Sign(*key, *text, "manifest.yaml", trusted_comment, !legacy);
  if (!sig.ok()) return sig.status();
  const std::string sig_path = manifest_path + ".minisig";
  if (auto s = WriteFileAtomic(sig_path, *sig, 0644); !s.ok()) return s;
  return sig_path;
}

absl::StatusOr<std::string> Verify(const std::string& dir_in, const std::string& public_path) {
  const std::filesystem::path dir = std::filesystem::absolute(Trimmed(dir_in)).lexically_normal();
  std::string name = dir.filename().string();
  std::string root = dir.parent_path().string();
  if (name.empty()) {  // trailing slash
    name = dir.parent_path().filename().string();
    root = dir.parent_path().parent_path().string();
  }
  PluginPolicy policy;
  policy.plugin_root = root;
  policy.require_signature = true;
  policy.trusted_key_files = {public_path};
  policy.allowed_system_dirs = {
      "/usr/lib/ladspa", "/usr/local/lib/ladspa", "/usr/lib/x86_64-linux-gnu/ladspa",
      "/usr/lib/lv2",    "/usr/local/lib/lv2",    "/usr/lib/x86_64-linux-gnu/lv2"};
  GateReporter gate(/*audit=*/nullptr, name);
  auto checked = CheckPlugin(policy, name, /*root_fd=*/-1, gate);
  if (!checked.ok()) return checked.status();
  const VerifiedPlugin* v = &checked->verified;
  return absl::StrCat(
      "plugin '", v->manifest.name, "' ", v->manifest.version, " (serial ", v->manifest.serial,
      "): OK\n  ", v->manifest.format == ModuleFormat::kLv2 ? "bundle " : "module ", v->module_path,
      v->libraries.empty() ? std::string()
                           : absl::StrCat(" (libraries ", absl::StrJoin(v->libraries, ", "), ")"),
      "\n  ", HashAlgorithmName(v->manifest.hash_algorithm), " ", v->hash_hex, "\n  signed by key ",
      v->signer_key_id, "\n  needs ",
      v->elf.needed.empty() ? std::string("nothing") : absl::StrJoin(v->elf.needed, ", "),
      "\n  allowed kinds ", absl::StrJoin(v->manifest.allowed_node_kinds, ", "), "\n");
}

}  // namespace aers::plugin::tool
