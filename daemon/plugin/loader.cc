#include "plugin/loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aers/plugin.h"
#include "plugin/kinds.h"
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

// --- process-wide names of loaded plugins --------------------------------------

std::mutex& LoadedMutex() {
  static std::mutex m;
  return m;
}
std::multiset<std::string>& LoadedSet() {
  static std::multiset<std::string> s;
  return s;
}

std::string Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// --- what the dynamic loader has mapped ----------------------------------------

struct LoadedObject {
  std::string path;    // dlpi_name
  std::string soname;  // from the in-memory dynamic section, "" if none
};

// Reads DT_SONAME of a mapped object, checking that every pointer lies in
// one of its PT_LOAD segments.
std::string InMemorySoname(const dl_phdr_info* info) {
  auto in_load = [&](uintptr_t addr, size_t len) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
      const auto& ph = info->dlpi_phdr[i];
      if (ph.p_type != PT_LOAD) continue;
      const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
      if (addr >= lo && addr - lo <= ph.p_memsz && ph.p_memsz - (addr - lo) >= len) return true;
    }
    return false;
  };
  const ElfW(Dyn)* dyn = nullptr;
  size_t dyn_count = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_DYNAMIC) {
      dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + ph.p_vaddr);
      dyn_count = ph.p_memsz / sizeof(ElfW(Dyn));
    }
  }
  if (dyn == nullptr || !in_load(reinterpret_cast<uintptr_t>(dyn), dyn_count * sizeof(ElfW(Dyn)))) {
    return "";
  }
  uintptr_t strtab = 0;
  uint64_t soname = 0, strsz = 0;
  bool has_soname = false;
  for (size_t i = 0; i < dyn_count && dyn[i].d_tag != DT_NULL; ++i) {
    if (dyn[i].d_tag == DT_STRTAB) strtab = dyn[i].d_un.d_ptr;
    if (dyn[i].d_tag == DT_STRSZ) strsz = dyn[i].d_un.d_val;
    if (dyn[i].d_tag == DT_SONAME) {
      soname = dyn[i].d_un.d_val;
      has_soname = true;
    }
  }
  if (!has_soname || strtab == 0 || soname >= strsz) return "";
  // glibc relocates DT_STRTAB in place for most objects, not for read-only
  // dynamic sections (the vDSO): accept either form.
  if (!in_load(strtab, strsz)) strtab += info->dlpi_addr;
  if (!in_load(strtab, strsz)) return "";
  const char* s = reinterpret_cast<const char*>(strtab) + soname;
  const void* nul = std::memchr(s, '\0', strsz - soname);
  return nul == nullptr ? "" : std::string(s, static_cast<const char*>(nul));
}

std::vector<LoadedObject> LoadedObjects() {
  std::vector<LoadedObject> out;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        auto* v = static_cast<std::vector<LoadedObject>*>(data);
        v->push_back({info->dlpi_name ? info->dlpi_name : "", InMemorySoname(info)});
        return 0;
      },
      &out);
  return out;
}

bool IsMapped(const std::string& path) {
  for (const auto& o : LoadedObjects()) {
    if (o.path == path) return true;
  }
  return false;
}

std::string HexOf(const uint8_t* p, size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.resize(n * 2);
  return out;
}

absl::StatusCode CodeFor(std::string_view reason) {
  if (reason == "manifest_invalid" || reason == "invalid_name")
    return absl::StatusCode::kInvalidArgument;
  if (reason == "not_found") return absl::StatusCode::kNotFound;
  if (reason == "already_loaded" || reason == "kind_exists")
    return absl::StatusCode::kAlreadyExists;
  if (reason == "state_error" || reason == "internal") return absl::StatusCode::kInternal;
  return absl::StatusCode::kPermissionDenied;
}

}  // namespace

// --- LoadedPlugin ---------------------------------------------------------------

LoadedPlugin::~LoadedPlugin() {
  // Non-RT: the engine drops the last node instance in Reclaim().
  if (handle_ != nullptr) {
    if (dlclose(handle_) != 0) {
      // NOLINTNEXTLINE(concurrency-mt-unsafe): glibc keeps dlerror state per thread
      spdlog::warn("plugin '{}': dlclose: {}", name(), dlerror());
    }
    if (IsMapped(load_path_)) {
      // Still mapped (e.g. STB_GNU_UNIQUE symbols make a library NODELETE):
      // keep the memfd open forever so its fd number, and so the name
      // "/proc/self/fd/N", is never reused for another module.
      spdlog::warn("plugin '{}': library stays mapped after dlclose; keeping {} open", name(),
                   load_path_);
      (void)memfd_.Release();
    } else {
      spdlog::info("plugin '{}' unloaded", name());
    }
  }
  std::lock_guard lock(LoadedMutex());
  auto it = LoadedSet().find(manifest_.name);
  if (it != LoadedSet().end()) LoadedSet().erase(it);
}

void* LoadedPlugin::OwnSymbol(const char* symbol) const {
  if (handle_ == nullptr) return nullptr;
  dlerror();  // NOLINT(concurrency-mt-unsafe): per-thread state in glibc
  void* sym = dlsym(handle_, symbol);
  if (sym == nullptr) return nullptr;
  // dlsym on a handle also searches the library's dependencies: insist the
  // symbol is defined by the module itself.
  link_map* own = nullptr;
  if (dlinfo(handle_, RTLD_DI_LINKMAP, &own) != 0 || own == nullptr) return nullptr;
  Dl_info info{};
  link_map* where = nullptr;
  if (dladdr1(sym, &info, reinterpret_cast<void**>(&where), RTLD_DL_LINKMAP) == 0) return nullptr;
  return where == own ? sym : nullptr;
}

std::vector<std::string> LoadedPlugin::LoadedNames() {
  std::lock_guard lock(LoadedMutex());
  return {LoadedSet().begin(), LoadedSet().end()};
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

// --- the gate --------------------------------------------------------------------

struct PluginLoader::Checked {
  VerifiedPlugin v;
  SealedImage image;
  std::optional<uint64_t> stored_serial;
};

PluginLoader::PluginLoader(PluginPolicy policy, PluginAuditLog* audit)
    : policy_(std::move(policy)), audit_(audit) {}

namespace {

// Builds refusals: a Status for the caller, an audit record, a log line.
class Gate {
 public:
  Gate(PluginAuditLog* audit, std::string dir)
      : audit_(audit), dir_(std::move(dir)), plugin_(dir_) {}

  void set_plugin(std::string name) { plugin_ = std::move(name); }
  void set_serial(uint64_t s) { serial_ = s; }
  const std::string& plugin() const { return plugin_; }

  absl::Status Refuse(const std::string& reason, const std::string& file,
                      const std::string& message, const std::string& seen = "",
                      const std::string& expected = "") {
    AuditRecord r;
    r.event = "refused";
    r.plugin = plugin_;
    r.directory = dir_;
    r.reason = reason;
    r.file = file;
    r.message = message;
    r.seen = seen;
    r.expected = expected;
    r.serial = serial_;
    if (audit_ != nullptr) audit_->Record(r);
    std::string text = absl::StrCat("plugin '", plugin_, "' refused (", reason, "): ", message);
    if (!file.empty()) absl::StrAppend(&text, " [file ", file, "]");
    if (!seen.empty() || !expected.empty()) {
      absl::StrAppend(&text, " (seen ", seen, ", expected ", expected, ")");
    }
    spdlog::warn("{}", text);
    return absl::Status(CodeFor(reason), text);
  }

  void Loaded(const std::string& file, const std::string& message, const std::string& signer) {
    AuditRecord r;
    r.event = "loaded";
    r.plugin = plugin_;
    r.directory = dir_;
    r.file = file;
    r.message = message;
    r.seen = signer.empty() ? "" : absl::StrCat("signed by ", signer);
    r.serial = serial_;
    if (audit_ != nullptr) audit_->Record(r);
    spdlog::info("plugin '{}' loaded: {}", plugin_, message);
  }

 private:
  PluginAuditLog* audit_;
  std::string dir_;
  std::string plugin_;
  uint64_t serial_ = 0;
};

std::string OpenReason(OpenFailure f, const char* other) {
  switch (f) {
    case OpenFailure::kEscape:
      return "path_escape";
    case OpenFailure::kSymlink:
      return "symlink";
    case OpenFailure::kNotFound:
      return "not_found";
    default:
      return other;
  }
}

std::string CheckReason(FileCheckFailure f, const char* prefix) {
  switch (f) {
    case FileCheckFailure::kOwner:
      return absl::StrCat(prefix, "_owner");
    case FileCheckFailure::kMode:
      return absl::StrCat(prefix, "_permissions");
    case FileCheckFailure::kType:
      return absl::StrCat(prefix, "_type");
    default:
      return "internal";
  }
}

// Trusted keys by key id, read with the same care as plugin files.
using KeyMap = std::map<minisign::KeyId, std::pair<minisign::PublicKey, std::string>>;

void ReadKeyFile(int fd, const std::string& path, KeyMap& keys) {
  if (auto s = CheckOwnerAndMode(fd, false, path); !s.ok()) {
    spdlog::warn("trusted key {} skipped: {}", path, std::string(s.message()));
    return;
  }
  auto text = ReadSmallFile(fd, kMaxKeyBytes, path);
  if (!text.ok()) return;
  auto key = minisign::ParsePublicKey(*text);
  if (!key.ok()) {
    spdlog::warn("trusted key {} skipped: {}", path, std::string(key.status().message()));
    return;
  }
  keys.emplace(key->key_id, std::make_pair(*key, path));
}

KeyMap ReadTrustedKeys(const std::string& dir, const std::vector<std::string>& files,
                       std::string& problem) {
  KeyMap keys;
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      spdlog::warn("trusted key {} skipped: {}", f, ErrnoText(errno));
      continue;
    }
    UniqueFd file(fd);
    ReadKeyFile(file.get(), f, keys);
  }
  if (dir.empty()) {
    if (!keys.empty()) return keys;
    problem = "no trusted keys directory is configured";
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
    ReadKeyFile(fd->get(), absl::StrCat(dir, "/", n), keys);
  }
  return keys;
}

}  // namespace

absl::StatusOr<PluginLoader::Checked> PluginLoader::Check(std::string_view dir_name_view) {
  const std::string dir_name(dir_name_view);
  Gate gate(audit_, dir_name);
  const std::string dir_path = absl::StrCat(policy_.plugin_root, "/", dir_name);

  // 1. The plugin directory, strictly beneath the root.
  if (dir_name.find('/') != std::string::npos || dir_name == ".." || dir_name == "." ||
      dir_name.empty()) {
    return gate.Refuse("path_escape", dir_path,
                       "a plugin is named by one directory beneath the plugin root");
  }
  if (!IsValidPluginName(dir_name)) {
    return gate.Refuse("invalid_name", dir_path,
                       "plugin directory names are [a-z][a-z0-9_-]*, at most 64 characters");
  }
  const int rfd = ::open(policy_.plugin_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0) {
    return gate.Refuse("not_found", policy_.plugin_root,
                       absl::StrCat("cannot open the plugin root: ", ErrnoText(errno)));
  }
  UniqueFd root(rfd);
  OpenFailure of{};
  auto dir = OpenBeneath(root.get(), dir_name, O_RDONLY | O_DIRECTORY, &of);
  if (!dir.ok())
    return gate.Refuse(OpenReason(of, "directory_unreadable"), dir_path,
                       std::string(dir.status().message()));
  FileCheckFailure cf{};
  if (auto s = CheckOwnerAndMode(dir->get(), true, "the plugin directory", &cf); !s.ok()) {
    return gate.Refuse(CheckReason(cf, "directory"), dir_path, std::string(s.message()));
  }

  // 2. The manifest, through the directory fd.
  const std::string manifest_path = absl::StrCat(dir_path, "/", kManifestFile);
  auto mfd = OpenBeneath(dir->get(), kManifestFile, O_RDONLY, &of);
  if (!mfd.ok())
    return gate.Refuse(OpenReason(of, "manifest_unreadable"), manifest_path,
                       std::string(mfd.status().message()));
  if (auto s = CheckOwnerAndMode(mfd->get(), false, kManifestFile, &cf); !s.ok()) {
    return gate.Refuse(CheckReason(cf, "manifest"), manifest_path, std::string(s.message()));
  }
  auto manifest_text = ReadSmallFile(mfd->get(), kMaxManifestBytes, kManifestFile);
  if (!manifest_text.ok()) {
    return gate.Refuse("manifest_invalid", manifest_path,
                       std::string(manifest_text.status().message()));
  }
  auto manifest = ParseManifest(*manifest_text, kManifestFile);
  if (!manifest.ok())
    return gate.Refuse("manifest_invalid", manifest_path, std::string(manifest.status().message()));
  gate.set_plugin(manifest->name);
  gate.set_serial(manifest->serial);
  if (manifest->name != dir_name) {
    return gate.Refuse("name_mismatch", manifest_path,
                       absl::StrCat("manifest name '", manifest->name,
                                    "' differs from its directory name '", dir_name, "'"));
  }
  if (manifest->format == ModuleFormat::kAers && manifest->abi_version != AERS_PLUGIN_ABI_VERSION) {
    return gate.Refuse("abi_mismatch", manifest_path,
                       "the manifest's abi_version is not this host's",
                       absl::StrCat(manifest->abi_version), absl::StrCat(AERS_PLUGIN_ABI_VERSION));
  }

  // 3. The module, opened once.
  Checked out;
  out.v.manifest = *manifest;
  const Manifest& m = out.v.manifest;
  UniqueFd module;
  if (!m.module.empty() && m.module.front() == '/') {
    // LADSPA only (the parser enforces it): beneath an allow-listed system dir.
    std::string base, rest;
    for (const auto& allowed : policy_.allowed_system_dirs) {
      std::string a = allowed;
      while (a.size() > 1 && a.back() == '/') a.pop_back();
      if (a.empty() || a.front() != '/') continue;
      if (m.module.size() > a.size() + 1 && m.module.compare(0, a.size(), a) == 0 &&
          m.module[a.size()] == '/') {
        base = a;
        rest = m.module.substr(a.size() + 1);
        break;
      }
    }
    out.v.module_path = m.module;
    if (base.empty()) {
      return gate.Refuse("module_outside_allowed_dirs", m.module,
                         absl::StrCat("an absolute module path must lie beneath an allowed system "
                                      "directory (allowed: ",
                                      policy_.allowed_system_dirs.empty()
                                          ? std::string("none")
                                          : absl::StrJoin(policy_.allowed_system_dirs, ", "),
                                      ")"));
    }
    const int bfd = ::open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0) {
      return gate.Refuse("not_found", base,
                         absl::StrCat("cannot open ", base, ": ", ErrnoText(errno)));
    }
    UniqueFd basefd(bfd);
    auto fd = OpenBeneath(basefd.get(), rest, O_RDONLY, &of);
    if (!fd.ok())
      return gate.Refuse(OpenReason(of, "module_unreadable"), m.module,
                         std::string(fd.status().message()));
    module = std::move(*fd);
  } else {
    out.v.module_path = absl::StrCat(dir_path, "/", m.module);
    auto fd = OpenBeneath(dir->get(), m.module, O_RDONLY, &of);
    if (!fd.ok()) {
      return gate.Refuse(OpenReason(of, "module_unreadable"), out.v.module_path,
                         std::string(fd.status().message()));
    }
    module = std::move(*fd);
  }
  const std::string& module_path = out.v.module_path;

  // 4. Owner and mode of the open file.
  if (auto s = CheckOwnerAndMode(module.get(), false, "the module", &cf); !s.ok()) {
    return gate.Refuse(CheckReason(cf, "module"), module_path, std::string(s.message()));
  }

  // 5. A sealed copy: from here on the bytes cannot change.
  auto image = SealedImage::CopyFrom(module.get(), policy_.max_module_bytes, m.name);
  if (!image.ok()) {
    const auto code = image.status().code();
    return gate.Refuse(code == absl::StatusCode::kResourceExhausted ? "module_too_large"
                       : code == absl::StatusCode::kInvalidArgument ? "elf_invalid"
                                                                    : "internal",
                       module_path, std::string(image.status().message()));
  }
  module.Reset();
  out.image = std::move(*image);

  // 6. Hash the sealed bytes; compare in constant time.
  out.v.hash_hex = HashHex(m.hash_algorithm, out.image.bytes());
  {
    uint8_t want[32], seen[32];
    size_t wl = 0, sl = 0;
    const bool ok = sodium_hex2bin(want, sizeof want, m.hash_hex.data(), m.hash_hex.size(), nullptr,
                                   &wl, nullptr) == 0 &&
                    sodium_hex2bin(seen, sizeof seen, out.v.hash_hex.data(), out.v.hash_hex.size(),
                                   nullptr, &sl, nullptr) == 0 &&
                    wl == 32 && sl == 32;
    if (!ok || sodium_memcmp(want, seen, 32) != 0) {
      return gate.Refuse("hash_mismatch", module_path,
                         absl::StrCat("the module's ", HashAlgorithmName(m.hash_algorithm),
                                      " hash differs from the manifest"),
                         absl::StrCat(HashAlgorithmName(m.hash_algorithm), ":", out.v.hash_hex),
                         absl::StrCat(HashAlgorithmName(m.hash_algorithm), ":", m.hash_hex));
    }
  }

  // 7. The signature over manifest.yaml.
  const std::string sig_path = absl::StrCat(dir_path, "/", kSignatureFile);
  auto sfd = OpenBeneath(dir->get(), kSignatureFile, O_RDONLY, &of);
  if (!sfd.ok() && of != OpenFailure::kNotFound) {
    return gate.Refuse(OpenReason(of, "signature_invalid"), sig_path,
                       std::string(sfd.status().message()));
  }
  if (!sfd.ok()) {
    if (policy_.require_signature) {
      return gate.Refuse("signature_missing", sig_path,
                         "the policy requires a signature and there is no manifest.yaml.minisig");
    }
    spdlog::warn("plugin '{}' is not signed (allowed by policy)", m.name);
  } else {
    if (auto s = CheckOwnerAndMode(sfd->get(), false, kSignatureFile, &cf); !s.ok()) {
      return gate.Refuse(CheckReason(cf, "signature"), sig_path, std::string(s.message()));
    }
    auto sig_text = ReadSmallFile(sfd->get(), kMaxSignatureBytes, kSignatureFile);
    if (!sig_text.ok())
      return gate.Refuse("signature_invalid", sig_path, std::string(sig_text.status().message()));
    auto sig = minisign::ParseSignature(*sig_text);
    if (!sig.ok())
      return gate.Refuse("signature_invalid", sig_path, std::string(sig.status().message()));
    std::string problem;
    const auto keys = ReadTrustedKeys(policy_.trusted_keys_dir, policy_.trusted_key_files, problem);
    const std::string key_id = minisign::KeyIdHex(sig->key_id);
    auto it = keys.find(sig->key_id);
    if (it == keys.end()) {
      return gate.Refuse(
          "untrusted_key", sig_path,
          absl::StrCat("signed by key ", key_id, ", which is not a trusted key",
                       problem.empty() ? "" : absl::StrCat(" (", problem, ")")),
          absl::StrCat("key ", key_id),
          absl::StrCat("a key in ",
                       policy_.trusted_keys_dir.empty() ? "(none)" : policy_.trusted_keys_dir));
    }
    if (auto s = minisign::Verify(*sig, it->second.first, *manifest_text); !s.ok()) {
      return gate.Refuse("signature_invalid", sig_path,
                         absl::StrCat(s.message(), " (key ", key_id, ", ", it->second.second, ")"));
    }
    out.v.signer_key_id = key_id;
  }

  // 8. Rollback.
  if (!policy_.state_dir.empty()) {
    SerialStore store(policy_.state_dir);
    auto stored = store.Get(m.name);
    if (!stored.ok())
      return gate.Refuse("state_error", policy_.state_dir, std::string(stored.status().message()));
    if (stored->has_value() && m.serial < **stored) {
      return gate.Refuse(
          "rollback", manifest_path,
          absl::StrCat("serial ", m.serial, " is lower than the highest accepted serial ", **stored,
                       " (a rolled-back plugin)"),
          absl::StrCat(m.serial), absl::StrCat(">= ", **stored));
    }
    out.stored_serial = *stored;
  } else {
    spdlog::warn("plugin '{}': no state directory, rollback protection is off", m.name);
  }

  // 9. The ELF file itself.
  auto elf = ReadElf(out.image.bytes());
  if (!elf.ok())
    return gate.Refuse("elf_invalid", module_path, std::string(elf.status().message()));
  out.v.elf = *elf;
  if (elf->has_interp) {
    return gate.Refuse("elf_invalid", module_path,
                       "has PT_INTERP: an executable, not a plugin library");
  }
  if (!elf->rpath.empty()) {
    return gate.Refuse("elf_rpath", module_path, "has DT_RPATH (library search paths of its own)",
                       absl::StrCat("DT_RPATH=", absl::StrJoin(elf->rpath, ":")), "none");
  }
  if (!elf->runpath.empty()) {
    return gate.Refuse("elf_rpath", module_path, "has DT_RUNPATH (library search paths of its own)",
                       absl::StrCat("DT_RUNPATH=", absl::StrJoin(elf->runpath, ":")), "none");
  }
  if (elf->textrel) {
    return gate.Refuse("elf_textrel", module_path, "has text relocations (needs writable code)");
  }
  if (!elf->has_gnu_stack) {
    return gate.Refuse("elf_execstack", module_path,
                       "has no PT_GNU_STACK header, so loading it would make the stack executable",
                       "no PT_GNU_STACK", "PT_GNU_STACK RW");
  }
  if (elf->exec_stack) {
    return gate.Refuse("elf_execstack", module_path,
                       "asks for an executable stack (link with -Wl,-z,noexecstack)",
                       "PT_GNU_STACK RWE", "PT_GNU_STACK RW");
  }
  std::set<std::string> allowed_needed = {"libc.so.6", "libm.so.6", kDynamicLoader};
  allowed_needed.insert(m.dependencies.begin(), m.dependencies.end());
  for (const auto& n : elf->needed) {
    if (!allowed_needed.count(n)) {
      return gate.Refuse("elf_dependency", module_path,
                         absl::StrCat("depends on '", n, "', which is not allowed"),
                         absl::StrCat("DT_NEEDED ", n),
                         absl::StrCat("one of ", absl::StrJoin(allowed_needed, ", ")));
    }
  }
  return out;
}

absl::StatusOr<VerifiedPlugin> PluginLoader::Verify(std::string_view dir_name) {
  auto c = Check(dir_name);
  if (!c.ok()) return c.status();
  return std::move(c->v);
}

absl::StatusOr<LoadedKinds> PluginLoader::Load(std::string_view dir_name,
                                               model::KindRegistry& registry) {
  // One load at a time in the process: the "already loaded" checks and the
  // dlopen must not interleave with another load.
  static std::mutex load_mutex;
  std::lock_guard load_lock(load_mutex);
  auto checked = Check(dir_name);
  if (!checked.ok()) return checked.status();
  Checked& c = *checked;
  const Manifest& m = c.v.manifest;
  const std::string& module_path = c.v.module_path;
  Gate gate(audit_, std::string(dir_name));
  gate.set_plugin(m.name);
  gate.set_serial(m.serial);

  // 10. Nothing of the same name may be loaded already.
  {
    std::set<std::string> names = {Basename(m.module)};
    if (!c.v.elf.soname.empty()) names.insert(c.v.elf.soname);
    for (const auto& o : LoadedObjects()) {
      const std::string base = Basename(o.path);
      for (const auto& n : {base, o.soname}) {
        if (!n.empty() && names.count(n)) {
          return gate.Refuse("already_loaded", module_path,
                             absl::StrCat("a library named '", n, "' is already loaded (",
                                          o.path.empty() ? "the main program" : o.path, ")"));
        }
      }
    }
    const auto loaded = LoadedPlugin::LoadedNames();
    if (std::find(loaded.begin(), loaded.end(), m.name) != loaded.end()) {
      return gate.Refuse("already_loaded", module_path,
                         absl::StrCat("plugin '", m.name, "' is already loaded"));
    }
  }

  // 11. Load the sealed bytes that were checked.
  const std::string load_path = c.image.ProcPath();
  if (IsMapped(load_path)) {
    return gate.Refuse("internal", module_path,
                       absl::StrCat(load_path, " is already a loaded library's name"));
  }
  c.image.Unmap();
  auto plugin = std::shared_ptr<LoadedPlugin>(new LoadedPlugin());
  plugin->manifest_ = m;
  plugin->module_path_ = module_path;
  plugin->signer_ = c.v.signer_key_id;
  plugin->load_path_ = load_path;
  plugin->soname_ = c.v.elf.soname;
  plugin->memfd_ = c.image.TakeFd();
  {
    std::lock_guard lock(LoadedMutex());
    LoadedSet().insert(m.name);
  }
  dlerror();  // NOLINT(concurrency-mt-unsafe): per-thread state in glibc
  plugin->handle_ = dlopen(load_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (plugin->handle_ == nullptr) {
    const char* err = dlerror();  // NOLINT(concurrency-mt-unsafe)
    return gate.Refuse("dlopen_failed", module_path,
                       absl::StrCat("dlopen: ", err ? err : "unknown error"));
  }
  {
    link_map* lm = nullptr;
    if (dlinfo(plugin->handle_, RTLD_DI_LINKMAP, &lm) != 0 || lm == nullptr ||
        lm->l_name == nullptr || load_path != lm->l_name) {
      return gate.Refuse("internal", module_path,
                         "dlopen returned a different library than the one checked");
    }
  }

  // 12. The plugin's own description of itself.
  Refusal refusal;
  std::optional<KindList> kinds = m.format == ModuleFormat::kAers
                                      ? MakeAersKinds(plugin, refusal)
                                      : MakeLadspaKinds(plugin, refusal);
  if (!kinds) {
    return gate.Refuse(refusal.reason, module_path, refusal.message, refusal.seen,
                       refusal.expected);
  }
  LoadedKinds result;
  for (const auto& k : *kinds) {
    if (registry.Find(k->name()) != nullptr) {
      return gate.Refuse("kind_exists", module_path,
                         absl::StrCat("node kind '", k->name(), "' is already registered"));
    }
    result.kinds.push_back(k->name());
  }

  // 13. Record the serial, then register (nothing below fails).
  if (!policy_.state_dir.empty() && (!c.stored_serial || m.serial > *c.stored_serial)) {
    if (auto s = SerialStore(policy_.state_dir).Put(m.name, m.serial); !s.ok()) {
      return gate.Refuse("state_error", policy_.state_dir, std::string(s.message()));
    }
  }
  for (auto& k : *kinds) {
    if (auto s = registry.Add(k); !s.ok()) {
      // Only if another thread raced us on the same registry (not supported).
      spdlog::error("plugin '{}': {}", m.name, std::string(s.message()));
    }
  }
  result.plugin = std::move(plugin);
  gate.Loaded(module_path,
              absl::StrCat(ModuleFormatName(m.format), " module, ",
                           HashAlgorithmName(m.hash_algorithm), " ", c.v.hash_hex, ", serial ",
                           m.serial, ", kinds ", absl::StrJoin(result.kinds, ", ")),
              c.v.signer_key_id);
  return result;
}

std::vector<std::pair<std::string, absl::Status>> PluginLoader::LoadAll(
    model::KindRegistry& registry) {
  std::vector<std::pair<std::string, absl::Status>> out;
  const int fd = ::open(policy_.plugin_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    out.emplace_back(
        "", absl::NotFoundError(absl::StrCat("cannot open the plugin root ", policy_.plugin_root,
                                             ": ", ErrnoText(errno))));
    return out;
  }
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    out.emplace_back("", absl::InternalError("cannot list the plugin root"));
    return out;
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n.empty() || n.front() == '.') continue;
    if (e->d_type != DT_DIR && e->d_type != DT_LNK && e->d_type != DT_UNKNOWN) continue;
    names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    auto r = Load(n, registry);
    out.emplace_back(n, r.ok() ? absl::OkStatus() : r.status());
  }
  return out;
}

}  // namespace aers::plugin
