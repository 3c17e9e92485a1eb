#include "plugin/check.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aers/plugin.h"
#include "plugin/bundle_tree.h"
#include "plugin/minisign.h"
#include "plugin/serial_store.h"
#include "spdlog/spdlog.h"

namespace aers::plugin {
namespace {

constexpr const char* kManifestFile = "manifest.yaml";
constexpr const char* kSignatureFile = "manifest.yaml.minisig";
constexpr size_t kMaxSignatureBytes = size_t{16} * 1024;
constexpr size_t kMaxKeyBytes = 4096;

#if defined(__x86_64__)
constexpr const char* kDynamicLoader = "ld-linux-x86-64.so.2";
#elif defined(__aarch64__)
constexpr const char* kDynamicLoader = "ld-linux-aarch64.so.1";
#else
constexpr const char* kDynamicLoader = "ld-linux.so.2";
#endif

std::string HexOf(const uint8_t* p, size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.resize(n * 2);
  return out;
}

// The refusal for an OpenBeneath failure: the path's own fault, or `other`.
RefusalCode OpenCode(OpenFailure f, RefusalCode other) {
  switch (f) {
    case OpenFailure::kEscape:
      return RefusalCode::kPathEscape;
    case OpenFailure::kSymlink:
      return RefusalCode::kSymlink;
    case OpenFailure::kNotFound:
      return RefusalCode::kNotFound;
    default:
      return other;
  }
}

// The refusals of a CheckOwnerAndMode failure, per file.
struct FileCodes {
  RefusalCode type, owner, mode;
};
constexpr FileCodes kDirectoryCodes = {RefusalCode::kDirectoryType, RefusalCode::kDirectoryOwner,
                                       RefusalCode::kDirectoryPermissions};
constexpr FileCodes kManifestCodes = {RefusalCode::kManifestType, RefusalCode::kManifestOwner,
                                      RefusalCode::kManifestPermissions};
constexpr FileCodes kModuleCodes = {RefusalCode::kModuleType, RefusalCode::kModuleOwner,
                                    RefusalCode::kModulePermissions};
constexpr FileCodes kSignatureCodes = {RefusalCode::kSignatureType, RefusalCode::kSignatureOwner,
                                       RefusalCode::kSignaturePermissions};

RefusalCode CheckCode(FileCheckFailure f, const FileCodes& codes) {
  switch (f) {
    case FileCheckFailure::kOwner:
      return codes.owner;
    case FileCheckFailure::kMode:
      return codes.mode;
    case FileCheckFailure::kType:
      return codes.type;
    default:
      return RefusalCode::kInternal;
  }
}

// --- trusted keys -------------------------------------------------------------

// Trusted keys by key id, read with the same care as plugin files.
using KeyMap = std::map<minisign::KeyId, std::pair<minisign::PublicKey, std::string>>;

// Adds the key in `fd` to `keys`; otherwise logs and returns why it was
// skipped.
std::string ReadKeyFile(int fd, const std::string& path, KeyMap& keys) {
  std::string why;
  if (auto s = CheckOwnerAndMode(fd, false, path); !s.ok()) {
    why = std::string(s.message());
  } else if (auto text = ReadSmallFile(fd, kMaxKeyBytes, path); !text.ok()) {
    why = std::string(text.status().message());
  } else if (auto key = minisign::ParsePublicKey(*text); !key.ok()) {
    why = std::string(key.status().message());
  } else {
    keys.emplace(key->key_id, std::make_pair(*key, path));
    return "";
  }
  spdlog::warn("trusted key {} skipped: {}", path, why);
  return why;
}

KeyMap ReadTrustedKeys(const std::string& dir, const std::vector<std::string>& files,
                       std::string& problem) {
  KeyMap keys;
  std::vector<std::string> skipped;
  for (const auto& f : files) {
    // O_NONBLOCK: a FIFO named as a key must not stall the gate.
    const int fd = ::open(f.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      skipped.push_back(absl::StrCat(
          "trusted key ", f, " skipped: ", err == ELOOP ? "a symbolic link" : ErrnoText(err)));
      spdlog::warn("{}", skipped.back());
      continue;
    }
    UniqueFd file(fd);
    if (std::string why = ReadKeyFile(file.get(), f, keys); !why.empty()) {
      skipped.push_back(absl::StrCat("trusted key ", f, " skipped: ", why));
    }
  }
  if (dir.empty()) {
    if (!keys.empty()) return keys;
    problem =
        skipped.empty() ? "no trusted keys directory is configured" : absl::StrJoin(skipped, "; ");
    return keys;
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    problem = absl::StrCat("cannot open trusted keys directory ", dir, ": ", ErrnoText(errno));
    return keys;
  }
  UniqueFd dirfd(dfd);
  if (auto s = CheckOwnerAndMode(dirfd.get(), true, absl::StrCat("trusted keys directory ", dir));
      !s.ok()) {
    problem = std::string(s.message());
    return keys;
  }
  const int lfd = ::dup(dirfd.get());
  DIR* d = lfd >= 0 ? ::fdopendir(lfd) : nullptr;
  if (d == nullptr) {
    if (lfd >= 0) ::close(lfd);
    problem = absl::StrCat("cannot list ", dir);
    return keys;
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 4 && n.ends_with(".pub") && n.front() != '.') names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    auto fd = OpenBeneath(dirfd.get(), n, O_RDONLY);
    if (!fd.ok()) {
      spdlog::warn("trusted key {}/{} skipped: {}", dir, n, std::string(fd.status().message()));
      continue;
    }
    (void)ReadKeyFile(fd->get(), absl::StrCat(dir, "/", n), keys);
  }
  return keys;
}

// --- the checklist --------------------------------------------------------------

// One run of steps 1-9 over one plugin directory. Each step is one member
// function that either refuses (through gate_) or leaves what the next step
// needs in the members below.
class Checker {
 public:
  Checker(const PluginPolicy& policy, std::string_view dir_name, int root_fd, GateReporter& gate)
      : policy_(policy),
        dir_name_(dir_name),
        dir_path_(absl::StrCat(policy.plugin_root, "/", dir_name_)),
        manifest_path_(absl::StrCat(dir_path_, "/", kManifestFile)),
        root_fd_(root_fd),
        gate_(gate) {}

  absl::StatusOr<CheckedPlugin> Run() {
    if (auto s = OpenPluginDirectory(); !s.ok()) return s;  // 1
    if (auto s = ReadManifest(); !s.ok()) return s;         // 2
    if (manifest().format == ModuleFormat::kLv2) {
      if (auto s = ReadBundle(); !s.ok()) return s;      // 3-5
      if (auto s = CheckTreeHash(); !s.ok()) return s;   // 6
      if (auto s = CheckSignature(); !s.ok()) return s;  // 7
      if (auto s = CheckRollback(); !s.ok()) return s;   // 8
      if (auto s = CheckBundleElf(); !s.ok()) return s;  // 9
      return std::move(out_);
    }
    if (auto s = OpenModule(); !s.ok()) return s;               // 3
    if (auto s = CheckModuleOwnerAndMode(); !s.ok()) return s;  // 4
    if (auto s = SealModule(); !s.ok()) return s;               // 5
    if (auto s = CheckHash(); !s.ok()) return s;                // 6
    if (auto s = CheckSignature(); !s.ok()) return s;           // 7
    if (auto s = CheckRollback(); !s.ok()) return s;            // 8
    if (auto s = CheckElf(); !s.ok()) return s;                 // 9
    return std::move(out_);
  }

 private:
  // A small file the gate reads whole (manifest, signature): its owner and
  // mode are checked first (refused with `codes`), then at most `max_bytes`
  // are read (refused as `invalid`); refusals name `path`.
  absl::StatusOr<std::string> ReadCheckedFile(int fd, size_t max_bytes, std::string_view name,
                                              const FileCodes& codes, RefusalCode invalid,
                                              const std::string& path) {
    FileCheckFailure cf{};
    if (auto s = CheckOwnerAndMode(fd, false, name, &cf); !s.ok()) {
      return gate_.Refuse(CheckCode(cf, codes), path, std::string(s.message()));
    }
    auto text = ReadSmallFile(fd, max_bytes, name);
    if (!text.ok()) return gate_.Refuse(invalid, path, std::string(text.status().message()));
    return text;
  }
  const Manifest& manifest() const { return out_.verified.manifest; }
  const std::string& module_path() const { return out_.verified.module_path; }

  // 1. The plugin directory: one valid name, opened strictly beneath the
  //    root; owner root/euid, not group/world-writable.
  absl::Status OpenPluginDirectory() {
    if (dir_name_.find('/') != std::string::npos || dir_name_ == ".." || dir_name_ == "." ||
        dir_name_.empty()) {
      return gate_.Refuse(RefusalCode::kPathEscape, dir_path_,
                          "a plugin is named by one directory beneath the plugin root");
    }
    if (!IsValidPluginName(dir_name_)) {
      return gate_.Refuse(RefusalCode::kInvalidName, dir_path_,
                          "plugin directory names are [a-z][a-z0-9_-]*, at most 64 characters");
    }
    if (root_fd_ < 0) {
      const int rfd = ::open(policy_.plugin_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (rfd < 0) {
        return gate_.Refuse(RefusalCode::kNotFound, policy_.plugin_root,
                            absl::StrCat("cannot open the plugin root: ", ErrnoText(errno)));
      }
      own_root_ = UniqueFd(rfd);
      root_fd_ = rfd;
    }
    OpenFailure of{};
    auto dir = OpenBeneath(root_fd_, dir_name_, O_RDONLY | O_DIRECTORY, &of);
    if (!dir.ok()) {
      return gate_.Refuse(OpenCode(of, RefusalCode::kDirectoryUnreadable), dir_path_,
                          std::string(dir.status().message()));
    }
    dir_ = std::move(*dir);
    FileCheckFailure cf{};
    if (auto s = CheckOwnerAndMode(dir_.get(), true, "the plugin directory", &cf); !s.ok()) {
      return gate_.Refuse(CheckCode(cf, kDirectoryCodes), dir_path_, std::string(s.message()));
    }
    return absl::OkStatus();
  }

  // 2. manifest.yaml through the directory fd: same owner/mode rule, parsed
  //    strictly; its name is the directory's; an AERS module's ABI is ours.
  absl::Status ReadManifest() {
    OpenFailure of{};
    auto mfd = OpenBeneath(dir_.get(), kManifestFile, O_RDONLY, &of);
    if (!mfd.ok()) {
      return gate_.Refuse(OpenCode(of, RefusalCode::kManifestUnreadable), manifest_path_,
                          std::string(mfd.status().message()));
    }
    auto text = ReadCheckedFile(mfd->get(), kMaxManifestBytes, kManifestFile, kManifestCodes,
                                RefusalCode::kManifestInvalid, manifest_path_);
    if (!text.ok()) return text.status();
    manifest_text_ = std::move(*text);
    auto manifest = ParseManifest(manifest_text_, kManifestFile);
    if (!manifest.ok()) {
      return gate_.Refuse(RefusalCode::kManifestInvalid, manifest_path_,
                          std::string(manifest.status().message()));
    }
    gate_.set_plugin(manifest->name);
    gate_.set_serial(manifest->serial);
    if (manifest->name != dir_name_) {
      return gate_.Refuse(RefusalCode::kNameMismatch, manifest_path_,
                          absl::StrCat("manifest name '", manifest->name,
                                       "' differs from its directory name '", dir_name_, "'"));
    }
    if (manifest->format == ModuleFormat::kAers &&
        manifest->abi_version != AERS_PLUGIN_ABI_VERSION) {
      return gate_.Refuse(RefusalCode::kAbiMismatch, manifest_path_,
                          "the manifest's abi_version is not this host's",
                          absl::StrCat(manifest->abi_version),
                          absl::StrCat(AERS_PLUGIN_ABI_VERSION));
    }
    out_.verified.manifest = std::move(*manifest);
    return absl::OkStatus();
  }

  // 3. The module, opened once (O_NOFOLLOW | O_CLOEXEC) beneath the plugin
  //    directory, or for LADSPA beneath an allow-listed system directory.
  absl::Status OpenModule() {
    const Manifest& m = manifest();
    OpenFailure of{};
    if (!m.module.empty() && m.module.front() == '/') {
      // LADSPA only (the parser enforces it).
      out_.verified.module_path = m.module;
      const auto beneath = SplitBeneathAllowedDir(m.module, policy_.allowed_system_dirs);
      if (!beneath) {
        return gate_.Refuse(
            RefusalCode::kModuleOutsideAllowedDirs, m.module,
            absl::StrCat("an absolute module path must lie beneath a directory listed in "
                         "plugins.allowed_system_dirs (allowed: ",
                         policy_.allowed_system_dirs.empty()
                             ? std::string("none")
                             : absl::StrJoin(policy_.allowed_system_dirs, ", "),
                         ")"));
      }
      const auto& [base, rest] = *beneath;
      const int bfd = ::open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (bfd < 0) {
        return gate_.Refuse(RefusalCode::kNotFound, base,
                            absl::StrCat("cannot open ", base, ": ", ErrnoText(errno)));
      }
      UniqueFd basefd(bfd);
      auto fd = OpenBeneath(basefd.get(), rest, O_RDONLY, &of);
      if (!fd.ok()) {
        return gate_.Refuse(OpenCode(of, RefusalCode::kModuleUnreadable), m.module,
                            std::string(fd.status().message()));
      }
      module_ = std::move(*fd);
      return absl::OkStatus();
    }
    out_.verified.module_path = absl::StrCat(dir_path_, "/", m.module);
    auto fd = OpenBeneath(dir_.get(), m.module, O_RDONLY, &of);
    if (!fd.ok()) {
      return gate_.Refuse(OpenCode(of, RefusalCode::kModuleUnreadable), module_path(),
                          std::string(fd.status().message()));
    }
    module_ = std::move(*fd);
    return absl::OkStatus();
  }

  // 4. fstat of the open module: a regular file, owner root or our euid,
  //    neither group- nor world-writable.
  absl::Status CheckModuleOwnerAndMode() {
    FileCheckFailure cf{};
    if (auto s = CheckOwnerAndMode(module_.get(), false, "the module", &cf); !s.ok()) {
      return gate_.Refuse(CheckCode(cf, kModuleCodes), module_path(), std::string(s.message()));
    }
    return absl::OkStatus();
  }

  // 5. A sealed memfd copy: from here on the bytes cannot change.
  absl::Status SealModule() {
    auto image = SealedImage::CopyFrom(module_.get(), policy_.max_module_bytes, manifest().name);
    if (!image.ok()) {
      const auto code = image.status().code();
      return gate_.Refuse(code == absl::StatusCode::kResourceExhausted
                              ? RefusalCode::kModuleTooLarge
                          : code == absl::StatusCode::kInvalidArgument ? RefusalCode::kElfInvalid
                                                                       : RefusalCode::kInternal,
                          module_path(), std::string(image.status().message()));
    }
    module_.Reset();
    out_.image = std::move(*image);
    return absl::OkStatus();
  }

  // 3-5 (LV2). The bundle directory, opened like a module (beneath the
  //    plugin directory, or beneath an allow-listed system directory), then
  //    every file in it read once into memory (plugin/bundle_tree.h): from
  //    here on the gate works on those bytes only.
  absl::Status ReadBundle() {
    const Manifest& m = manifest();
    OpenFailure of{};
    UniqueFd bundle;
    if (m.module.front() == '/') {
      out_.verified.module_path = m.module;
      const auto beneath = SplitBeneathAllowedDir(m.module, policy_.allowed_system_dirs);
      if (!beneath) {
        return gate_.Refuse(
            RefusalCode::kModuleOutsideAllowedDirs, m.module,
            absl::StrCat("an absolute bundle path must lie beneath a directory listed in "
                         "plugins.allowed_system_dirs (allowed: ",
                         policy_.allowed_system_dirs.empty()
                             ? std::string("none")
                             : absl::StrJoin(policy_.allowed_system_dirs, ", "),
                         ")"));
      }
      const int bfd = ::open(beneath->first.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (bfd < 0) {
        return gate_.Refuse(RefusalCode::kNotFound, beneath->first,
                            absl::StrCat("cannot open ", beneath->first, ": ", ErrnoText(errno)));
      }
      UniqueFd basefd(bfd);
      auto fd = OpenBeneath(basefd.get(), beneath->second, O_RDONLY | O_DIRECTORY, &of);
      if (!fd.ok()) {
        return gate_.Refuse(OpenCode(of, RefusalCode::kModuleUnreadable), m.module,
                            std::string(fd.status().message()));
      }
      bundle = std::move(*fd);
    } else {
      out_.verified.module_path = absl::StrCat(dir_path_, "/", m.module);
      auto fd = OpenBeneath(dir_.get(), m.module, O_RDONLY | O_DIRECTORY, &of);
      if (!fd.ok()) {
        return gate_.Refuse(OpenCode(of, RefusalCode::kModuleUnreadable), module_path(),
                            std::string(fd.status().message()));
      }
      bundle = std::move(*fd);
    }
    FileCheckFailure cf{};
    if (auto s = CheckOwnerAndMode(bundle.get(), true, "the bundle", &cf); !s.ok()) {
      return gate_.Refuse(CheckCode(cf, kModuleCodes), module_path(), std::string(s.message()));
    }
    BundleError err;
    auto tree = ReadBundleTree(bundle.get(), module_path(), policy_.allowed_system_dirs,
                               policy_.max_module_bytes, &err);
    if (!tree.ok()) {
      RefusalCode code = RefusalCode::kModuleUnreadable;
      switch (err.fault) {
        case BundleFault::kEntry:
          code = RefusalCode::kBundleEntry;
          break;
        case BundleFault::kOwner:
          code = RefusalCode::kModuleOwner;
          break;
        case BundleFault::kPermissions:
          code = RefusalCode::kModulePermissions;
          break;
        case BundleFault::kTooLarge:
          code = RefusalCode::kModuleTooLarge;
          break;
        case BundleFault::kUnreadable:
          break;
      }
      return gate_.Refuse(code, err.path, err.message);
    }
    out_.tree = std::move(*tree);
    return absl::OkStatus();
  }

  // 6 (LV2). The tree hash of the bytes read, against the manifest.
  absl::Status CheckTreeHash() {
    out_.verified.hash_hex = BundleTreeHashHex(manifest().hash_algorithm, out_.tree);
    return CompareHash("bundle's tree");
  }

  // 9 (LV2). Every ELF file of the bundle passes the module's ELF checks.
  absl::Status CheckBundleElf() {
    for (const auto& e : out_.tree.entries) {
      if (e.directory || !LooksLikeElf(e.bytes)) continue;
      const std::string path = e.link_from.empty()
                                   ? absl::StrCat(module_path(), "/", e.path)
                                   : absl::StrCat(module_path(), "/", e.path, " -> ", e.link_from);
      auto elf =
          CheckElfBytes({reinterpret_cast<const uint8_t*>(e.bytes.data()), e.bytes.size()}, path);
      if (!elf.ok()) return elf.status();
      out_.verified.libraries.push_back(e.path);
      if (out_.verified.libraries.size() == 1) out_.verified.elf = *elf;
    }
    if (out_.verified.libraries.empty()) {
      return gate_.Refuse(RefusalCode::kElfInvalid, module_path(),
                          "the bundle contains no shared library");
    }
    return absl::OkStatus();
  }

  // 6. Hash the sealed bytes; compare with the manifest in constant time.
  absl::Status CheckHash() {
    out_.verified.hash_hex = HashHex(manifest().hash_algorithm, out_.image.bytes());
    return CompareHash("module's");
  }

  // out_.verified.hash_hex against the manifest, in constant time.
  absl::Status CompareHash(const std::string& what) {
    const Manifest& m = manifest();
    const std::string& seen_hex = out_.verified.hash_hex;
    uint8_t want[32], seen[32];
    size_t wl = 0, sl = 0;
    const bool ok = sodium_hex2bin(want, sizeof want, m.hash_hex.data(), m.hash_hex.size(), nullptr,
                                   &wl, nullptr) == 0 &&
                    sodium_hex2bin(seen, sizeof seen, seen_hex.data(), seen_hex.size(), nullptr,
                                   &sl, nullptr) == 0 &&
                    wl == 32 && sl == 32;
    if (!ok || sodium_memcmp(want, seen, 32) != 0) {
      const std::string algorithm = HashAlgorithmName(m.hash_algorithm);
      return gate_.Refuse(
          RefusalCode::kHashMismatch, module_path(),
          absl::StrCat("the ", what, " ", algorithm,
                       " hash differs from the manifest (if the change is intended: review it, "
                       "then pin it with `aersctl plugin hash DIR --write` and sign again)"),
          absl::StrCat(algorithm, ":", seen_hex), absl::StrCat(algorithm, ":", m.hash_hex));
    }
    return absl::OkStatus();
  }

  // 7. manifest.yaml.minisig against the trusted keys: required by policy,
  //    and verified whenever it exists.
  absl::Status CheckSignature() {
    const std::string sig_path = absl::StrCat(dir_path_, "/", kSignatureFile);
    OpenFailure of{};
    auto sfd = OpenBeneath(dir_.get(), kSignatureFile, O_RDONLY, &of);
    if (!sfd.ok() && of != OpenFailure::kNotFound) {
      return gate_.Refuse(OpenCode(of, RefusalCode::kSignatureInvalid), sig_path,
                          std::string(sfd.status().message()));
    }
    if (!sfd.ok()) {
      if (policy_.require_signature) {
        return gate_.Refuse(
            RefusalCode::kSignatureMissing, sig_path,
            "the policy requires a signature and there is no manifest.yaml.minisig");
      }
      spdlog::warn("plugin '{}' is not signed (allowed by policy)", manifest().name);
      return absl::OkStatus();
    }
    auto sig_text = ReadCheckedFile(sfd->get(), kMaxSignatureBytes, kSignatureFile, kSignatureCodes,
                                    RefusalCode::kSignatureInvalid, sig_path);
    if (!sig_text.ok()) return sig_text.status();
    auto sig = minisign::ParseSignature(*sig_text);
    if (!sig.ok()) {
      return gate_.Refuse(RefusalCode::kSignatureInvalid, sig_path,
                          std::string(sig.status().message()));
    }
    std::string problem;
    const auto keys = ReadTrustedKeys(policy_.trusted_keys_dir, policy_.trusted_key_files, problem);
    const std::string key_id = minisign::KeyIdHex(sig->key_id);
    auto it = keys.find(sig->key_id);
    if (it == keys.end()) {
      return gate_.Refuse(
          RefusalCode::kUntrustedKey, sig_path,
          absl::StrCat("signed by key ", key_id, ", which is not a trusted key",
                       problem.empty() ? "" : absl::StrCat(" (", problem, ")")),
          absl::StrCat("key ", key_id),
          absl::StrCat("a key in ",
                       policy_.trusted_keys_dir.empty() ? "(none)" : policy_.trusted_keys_dir));
    }
    if (auto s = minisign::Verify(*sig, it->second.first, manifest_text_); !s.ok()) {
      return gate_.Refuse(
          RefusalCode::kSignatureInvalid, sig_path,
          absl::StrCat(s.message(), " (key ", key_id, ", ", it->second.second, ")"));
    }
    out_.verified.signer_key_id = key_id;
    return absl::OkStatus();
  }

  // 8. Rollback: a serial lower than the highest accepted one is refused.
  absl::Status CheckRollback() {
    const Manifest& m = manifest();
    if (policy_.state_dir.empty()) {
      spdlog::warn("plugin '{}': no state directory, rollback protection is off", m.name);
      return absl::OkStatus();
    }
    auto stored = SerialStore(policy_.state_dir).Get(m.name);
    if (!stored.ok()) {
      return gate_.Refuse(RefusalCode::kStateError, policy_.state_dir,
                          std::string(stored.status().message()));
    }
    if (stored->has_value() && m.serial < **stored) {
      return gate_.Refuse(
          RefusalCode::kRollback, manifest_path_,
          absl::StrCat("serial ", m.serial, " is lower than the highest accepted serial ", **stored,
                       " (a rolled-back plugin)"),
          absl::StrCat(m.serial), absl::StrCat(">= ", **stored));
    }
    out_.stored_serial = *stored;
    return absl::OkStatus();
  }

  // 9. The ELF file, read from the sealed bytes: a shared library without
  //    PT_INTERP, RPATH/RUNPATH or text relocations, with a non-executable
  //    PT_GNU_STACK, needing only libc/libm/ld-linux and the manifest's list.
  absl::Status CheckElf() {
    auto elf = CheckElfBytes(out_.image.bytes(), module_path());
    if (!elf.ok()) return elf.status();
    out_.verified.elf = *elf;
    return absl::OkStatus();
  }

  // The ELF rules of step 9 on `bytes` (refusals name `path`).
  absl::StatusOr<ElfInfo> CheckElfBytes(std::span<const uint8_t> bytes, const std::string& path) {
    auto elf = ReadElf(bytes);
    if (!elf.ok()) {
      return gate_.Refuse(RefusalCode::kElfInvalid, path, std::string(elf.status().message()));
    }
    if (elf->has_interp) {
      return gate_.Refuse(RefusalCode::kElfInvalid, path,
                          "has PT_INTERP: an executable, not a plugin library");
    }
    if (!elf->rpath.empty()) {
      return gate_.Refuse(RefusalCode::kElfRpath, path,
                          "has DT_RPATH (library search paths of its own)",
                          absl::StrCat("DT_RPATH=", absl::StrJoin(elf->rpath, ":")), "none");
    }
    if (!elf->runpath.empty()) {
      return gate_.Refuse(RefusalCode::kElfRpath, path,
                          "has DT_RUNPATH (library search paths of its own)",
                          absl::StrCat("DT_RUNPATH=", absl::StrJoin(elf->runpath, ":")), "none");
    }
    if (elf->textrel) {
      return gate_.Refuse(RefusalCode::kElfTextrel, path,
                          "has text relocations (needs writable code)");
    }
    if (!elf->has_gnu_stack) {
      return gate_.Refuse(
          RefusalCode::kElfExecstack, path,
          "has no PT_GNU_STACK header, so loading it would make the stack executable",
          "no PT_GNU_STACK", "PT_GNU_STACK RW");
    }
    if (elf->exec_stack) {
      return gate_.Refuse(RefusalCode::kElfExecstack, path,
                          "asks for an executable stack (link with -Wl,-z,noexecstack)",
                          "PT_GNU_STACK RWE", "PT_GNU_STACK RW");
    }
    std::set<std::string> allowed_needed = {"libc.so.6", "libm.so.6", kDynamicLoader};
    allowed_needed.insert(manifest().dependencies.begin(), manifest().dependencies.end());
    std::vector<std::string> missing;
    for (const auto& n : elf->needed) {
      if (!allowed_needed.count(n)) missing.push_back(n);
    }
    if (!missing.empty()) {
      return gate_.Refuse(
          RefusalCode::kElfDependency, path,
          absl::StrCat("depends on ", missing.size() == 1 ? "" : "libraries ", "'",
                       absl::StrJoin(missing, "', '"),
                       "', which the manifest does not allow (list what the signer vouches for "
                       "under dependencies: [",
                       absl::StrJoin(missing, ", "), "])"),
          absl::StrCat("DT_NEEDED ", absl::StrJoin(missing, ", ")),
          absl::StrCat("one of ", absl::StrJoin(allowed_needed, ", ")));
    }
    return *elf;
  }

  const PluginPolicy& policy_;
  const std::string dir_name_;
  const std::string dir_path_;       // "<root>/<dir>"
  const std::string manifest_path_;  // "<root>/<dir>/manifest.yaml"
  int root_fd_;                      // the plugin root (borrowed, or own_root_)
  GateReporter& gate_;
  UniqueFd own_root_;          // step 1, if no root fd was given
  UniqueFd dir_;               // step 1: the plugin directory
  std::string manifest_text_;  // step 2: the bytes the signature covers
  UniqueFd module_;            // step 3, closed once sealed (step 5)
  CheckedPlugin out_;          // filled in step by step
};

}  // namespace

// --- GateReporter -------------------------------------------------------------------

GateReporter::GateReporter(PluginAuditLog* audit, std::string dir)
    : audit_(audit), dir_(std::move(dir)), plugin_(dir_) {}

absl::Status GateReporter::Refuse(RefusalCode code, const std::string& file,
                                  const std::string& message, const std::string& seen,
                                  const std::string& expected) {
  AuditRecord r;
  r.event = "refused";
  r.plugin = plugin_;
  r.directory = dir_;
  r.code = code;
  r.file = file;
  r.message = message;
  r.seen = seen;
  r.expected = expected;
  r.serial = serial_;
  if (audit_ != nullptr) (void)audit_->Record(r);  // logged there; refused either way
  std::string text =
      absl::StrCat("plugin '", plugin_, "' refused (", RefusalCodeName(code), "): ", message);
  if (!file.empty()) absl::StrAppend(&text, " [file ", file, "]");
  if (!seen.empty() || !expected.empty()) {
    absl::StrAppend(&text, " (seen ", seen, ", expected ", expected, ")");
  }
  spdlog::warn("{}", text);
  return RefusalStatus(code, text);
}

absl::Status GateReporter::Loading(const std::string& file, const std::string& message,
                                   const std::string& signer) {
  return Admit("loading", file, message, signer);
}

absl::Status GateReporter::Loaded(const std::string& file, const std::string& message,
                                  const std::string& signer) {
  if (auto st = Admit("loaded", file, message, signer); !st.ok()) return st;
  spdlog::info("plugin '{}' loaded: {}", plugin_, message);
  return absl::OkStatus();
}

absl::Status GateReporter::Admit(const char* event, const std::string& file,
                                 const std::string& message, const std::string& signer) {
  AuditRecord r;
  r.event = event;
  r.plugin = plugin_;
  r.directory = dir_;
  r.file = file;
  r.message = message;
  r.seen = signer.empty() ? "" : absl::StrCat("signed by ", signer);
  r.serial = serial_;
  if (audit_ != nullptr) {
    if (absl::Status st = audit_->Record(r); !st.ok()) {
      return Refuse(RefusalCode::kAuditError, file,
                    absl::StrCat("its load cannot be audited: ", st.message()));
    }
  }
  return absl::OkStatus();
}

// --- entry points -----------------------------------------------------------------

absl::StatusOr<CheckedPlugin> CheckPlugin(const PluginPolicy& policy, std::string_view dir_name,
                                          int root_fd, GateReporter& gate) {
  return Checker(policy, dir_name, root_fd, gate).Run();
}

std::string HashHex(HashAlgorithm algorithm, std::span<const uint8_t> bytes) {
  (void)minisign::InitSodium();
  uint8_t digest[32];
  if (algorithm == HashAlgorithm::kSha256) {
    crypto_hash_sha256(digest, bytes.data(), bytes.size());
  } else {
    crypto_generichash(digest, sizeof digest, bytes.data(), bytes.size(), nullptr, 0);
  }
  return HexOf(digest, sizeof digest);
}

}  // namespace aers::plugin
