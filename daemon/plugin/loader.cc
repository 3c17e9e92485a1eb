#include "plugin/loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "plugin/bundle_tree.h"
#include "plugin/kinds.h"
#include "plugin/serial_store.h"
#include "spdlog/spdlog.h"

namespace aers::plugin {
namespace {

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

// --- steps 10-13: loading what CheckPlugin admitted -------------------------------

// 10. Nothing of the same name may be loaded already: no library with the
//     module's soname or file name, no plugin with its name.
absl::Status RefuseIfAlreadyLoaded(const CheckedPlugin& c, GateReporter& gate) {
  const Manifest& m = c.verified.manifest;
  const std::string& module_path = c.verified.module_path;
  // LV2 libraries load by their store path (several bundles may each have
  // a "plugin.so"); the others by file name and soname.
  std::set<std::string> names;
  if (m.format != ModuleFormat::kLv2) {
    names.insert(Basename(m.module));
    if (!c.verified.elf.soname.empty()) names.insert(c.verified.elf.soname);
  }
  for (const auto& o : LoadedObjects()) {
    const std::string base = Basename(o.path);
    for (const auto& n : {base, o.soname}) {
      if (!n.empty() && names.count(n)) {
        return gate.Refuse(RefusalCode::kAlreadyLoaded, module_path,
                           absl::StrCat("a library named '", n, "' is already loaded (",
                                        o.path.empty() ? "the main program" : o.path, ")"));
      }
    }
  }
  const auto loaded = LoadedPlugin::LoadedNames();
  if (std::find(loaded.begin(), loaded.end(), m.name) != loaded.end()) {
    return gate.Refuse(RefusalCode::kAlreadyLoaded, module_path,
                       absl::StrCat("plugin '", m.name, "' is already loaded"));
  }
  return absl::OkStatus();
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

// --- the loader -------------------------------------------------------------------

PluginLoader::PluginLoader(PluginPolicy policy, PluginAuditLog* audit)
    : policy_(std::move(policy)), audit_(audit) {}

// 11. dlopen("/proc/self/fd/N") on the sealed memfd: the bytes checked are
//     the bytes loaded. The LoadedPlugin owns the memfd from here on.
absl::StatusOr<std::shared_ptr<LoadedPlugin>> PluginLoader::OpenSealed(CheckedPlugin& c,
                                                                       GateReporter& gate) {
  const Manifest& m = c.verified.manifest;
  const std::string& module_path = c.verified.module_path;
  const std::string load_path = c.image.ProcPath();
  if (IsMapped(load_path)) {
    return gate.Refuse(RefusalCode::kInternal, module_path,
                       absl::StrCat(load_path, " is already a loaded library's name"));
  }
  c.image.Unmap();
  auto plugin = std::shared_ptr<LoadedPlugin>(new LoadedPlugin());
  plugin->manifest_ = m;
  plugin->module_path_ = module_path;
  plugin->signer_ = c.verified.signer_key_id;
  plugin->load_path_ = load_path;
  plugin->soname_ = c.verified.elf.soname;
  plugin->memfd_ = c.image.TakeFd();
  {
    std::lock_guard lock(LoadedMutex());
    LoadedSet().insert(m.name);
  }
  dlerror();  // NOLINT(concurrency-mt-unsafe): per-thread state in glibc
  plugin->handle_ = dlopen(load_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (plugin->handle_ == nullptr) {
    const char* err = dlerror();  // NOLINT(concurrency-mt-unsafe)
    return gate.Refuse(RefusalCode::kDlopenFailed, module_path,
                       absl::StrCat("dlopen: ", err ? err : "unknown error"));
  }
  link_map* lm = nullptr;
  if (dlinfo(plugin->handle_, RTLD_DI_LINKMAP, &lm) != 0 || lm == nullptr ||
      lm->l_name == nullptr || load_path != lm->l_name) {
    return gate.Refuse(RefusalCode::kInternal, module_path,
                       "dlopen returned a different library than the one checked");
  }
  return plugin;
}

std::string PluginLoader::StoreDir() const {
  if (!policy_.lv2_store_dir.empty()) return policy_.lv2_store_dir;
  return policy_.state_dir.empty() ? "" : absl::StrCat(policy_.state_dir, "/lv2-store");
}

// 11 (LV2). The bundle's bytes (those hashed) into the store, content-
// addressed by the tree hash; the copy is read back and hashed again, and
// only it is what lilv reads (MakeLv2Kinds). An existing copy with the right
// hash is reused; any other is replaced.
absl::StatusOr<std::shared_ptr<LoadedPlugin>> PluginLoader::StoreBundle(CheckedPlugin& c,
                                                                        GateReporter& gate) {
  const Manifest& m = c.verified.manifest;
  const std::string store = StoreDir();
  if (store.empty()) {
    return gate.Refuse(RefusalCode::kLv2StoreError, c.verified.module_path,
                       "LV2 plugins need a store for verified bundles: configure "
                       "plugins.state_dir (the store is <state_dir>/lv2-store)");
  }
  if (auto s = EnsurePrivateDirectory(store); !s.ok()) {
    return gate.Refuse(RefusalCode::kLv2StoreError, store, std::string(s.message()));
  }
  const std::string name =
      absl::StrCat(HashAlgorithmName(m.hash_algorithm), "-", c.verified.hash_hex);
  const std::string path = absl::StrCat(store, "/", name);
  auto rehash = [&]() -> std::optional<std::string> {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    UniqueFd dir(fd);
    auto tree = ReadBundleTree(dir.get(), path, {}, policy_.max_module_bytes, nullptr);
    if (!tree.ok()) return std::nullopt;
    return BundleTreeHashHex(m.hash_algorithm, *tree);
  };
  if (rehash() != c.verified.hash_hex) {
    auto written = WriteBundleTree(store, name, c.tree);
    if (!written.ok()) {
      return gate.Refuse(RefusalCode::kLv2StoreError, path,
                         std::string(written.status().message()));
    }
    const auto again = rehash();
    if (again != c.verified.hash_hex) {
      return gate.Refuse(RefusalCode::kLv2StoreError, path,
                         "the store copy does not hash to what was verified",
                         again.value_or("(unreadable)"), c.verified.hash_hex);
    }
  }
  c.tree = {};  // the bytes live in the store now
  auto plugin = std::shared_ptr<LoadedPlugin>(new LoadedPlugin());
  plugin->manifest_ = m;
  plugin->module_path_ = c.verified.module_path;
  plugin->signer_ = c.verified.signer_key_id;
  plugin->load_path_ = path;
  {
    std::lock_guard lock(LoadedMutex());
    LoadedSet().insert(m.name);
  }
  return plugin;
}

absl::StatusOr<VerifiedPlugin> PluginLoader::Verify(std::string_view dir_name) {
  GateReporter gate(audit_, std::string(dir_name));
  auto c = CheckPlugin(policy_, dir_name, -1, gate);
  if (!c.ok()) return c.status();
  return std::move(c->verified);
}

absl::StatusOr<LoadedKinds> PluginLoader::Load(std::string_view dir_name,
                                               model::KindRegistry& registry) {
  return LoadBeneath(-1, dir_name, registry);
}

absl::StatusOr<LoadedKinds> PluginLoader::LoadBeneath(int root_fd, std::string_view dir_name,
                                                      model::KindRegistry& registry) {
  // One load at a time in the process: the "already loaded" checks and the
  // dlopen must not interleave with another load.
  static std::mutex load_mutex;
  std::lock_guard load_lock(load_mutex);
  GateReporter gate(audit_, std::string(dir_name));

  // 1-9. Everything short of loading.
  auto checked = CheckPlugin(policy_, dir_name, root_fd, gate);
  if (!checked.ok()) return checked.status();
  if (after_check_hook_) after_check_hook_(std::string(dir_name));
  CheckedPlugin& c = *checked;
  const Manifest& m = c.verified.manifest;
  const std::string& module_path = c.verified.module_path;

  // 10-11. Nothing of that name loaded yet; load the sealed bytes (LV2:
  // copy the bundle's bytes into the store, hash the copy again).
  const bool lv2 = m.format == ModuleFormat::kLv2;
  if (auto s = RefuseIfAlreadyLoaded(c, gate); !s.ok()) return s;
  // The plugin's code runs from here on (constructors, entry point): not
  // before its record is written.
  if (auto s = gate.Loading(
          module_path,
          absl::StrCat(ModuleFormatName(m.format), " module, ", HashAlgorithmName(m.hash_algorithm),
                       " ", c.verified.hash_hex, ", serial ", m.serial),
          c.verified.signer_key_id);
      !s.ok()) {
    return s;
  }
  auto plugin = lv2 ? StoreBundle(c, gate) : OpenSealed(c, gate);
  if (!plugin.ok()) return plugin.status();

  // 12. The plugin's own description of itself; its kind names must be free.
  Refusal refusal;
  std::optional<KindList> kinds =
      lv2 ? MakeLv2Kinds(*plugin, (*plugin)->load_path(), policy_.state_dir, refusal)
      : m.format == ModuleFormat::kAers ? MakeAersKinds(*plugin, refusal)
                                        : MakeLadspaKinds(*plugin, refusal);
  if (!kinds) {
    return gate.Refuse(refusal.code, module_path, refusal.message, refusal.seen, refusal.expected);
  }
  LoadedKinds result;
  for (const auto& k : *kinds) {
    if (registry.Find(k->name()) != nullptr) {
      return gate.Refuse(RefusalCode::kKindExists, module_path,
                         absl::StrCat("node kind '", k->name(), "' is already registered"));
    }
    result.kinds.push_back(k->name());
  }

  // 13. Write the load's audit record (a load that cannot be audited is
  // refused, and changes nothing), record the serial, then register
  // (nothing below fails).
  if (auto s = gate.Loaded(
          module_path,
          absl::StrCat(ModuleFormatName(m.format), " module, ", HashAlgorithmName(m.hash_algorithm),
                       " ", c.verified.hash_hex, ", serial ", m.serial, ", kinds ",
                       absl::StrJoin(result.kinds, ", ")),
          c.verified.signer_key_id);
      !s.ok()) {
    return s;
  }
  if (!policy_.state_dir.empty() && (!c.stored_serial || m.serial > *c.stored_serial)) {
    if (auto s = SerialStore(policy_.state_dir).Put(m.name, m.serial); !s.ok()) {
      return gate.Refuse(RefusalCode::kStateError, policy_.state_dir, std::string(s.message()));
    }
  }
  for (auto& k : *kinds) {
    if (auto s = registry.Add(k); !s.ok()) {
      // Only if another thread raced us on the same registry (not supported).
      spdlog::error("plugin '{}': {}", m.name, std::string(s.message()));
    }
  }
  result.plugin = std::move(*plugin);
  return result;
}

std::vector<LoadOutcome> PluginLoader::LoadAll(
    model::KindRegistry& registry, const std::function<void(const LoadOutcome&)>& each) {
  std::vector<LoadOutcome> out;
  // The root is opened once: listed through this fd, and every plugin is
  // then opened beneath the same fd (not by its path again).
  const int fd = ::open(policy_.plugin_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    out.push_back(
        {"", absl::NotFoundError(absl::StrCat("cannot open the plugin root ", policy_.plugin_root,
                                              ": ", ErrnoText(errno)))});
    if (each) each(out.back());
    return out;
  }
  UniqueFd root(fd);
  const int lfd = ::dup(root.get());
  DIR* d = lfd >= 0 ? ::fdopendir(lfd) : nullptr;
  if (d == nullptr) {
    if (lfd >= 0) ::close(lfd);
    out.push_back({"", absl::InternalError("cannot list the plugin root")});
    if (each) each(out.back());
    return out;
  }
  // Directories, and names that resolve to one (a symlink, which the gate
  // refuses with an audit record); other files are not plugins.
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (e->d_type != DT_DIR) {
      if (e->d_type != DT_LNK && e->d_type != DT_UNKNOWN) continue;
      struct stat st {};
      if (::fstatat(root.get(), n.c_str(), &st, 0) != 0 || !S_ISDIR(st.st_mode)) continue;
    }
    names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    out.push_back({n, LoadBeneath(root.get(), n, registry)});
    if (each) each(out.back());
  }
  return out;
}

}  // namespace aers::plugin
