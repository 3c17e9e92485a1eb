// Shared helpers of the plugin tests: a throw-away plugin root with a key
// pair, manifests written from a few fields, and checks that a refusal left
// everything as it was. The engine driven by hand is tests/common/rig.h's Rig.
#pragma once

#include <dlfcn.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/rig.h"
#include "dsp/builtins.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "plugin/audit.h"
#include "plugin/loader.h"
#include "plugin/minisign.h"
#include "plugin/secure_open.h"
#include "plugin/tool.h"

namespace aers::plugin::test {

namespace fs = std::filesystem;
using aers::test::GraphBuilder;
using aers::test::Rig;  // the shared rig: RigOptions{.kinds = &registry} for plugin kinds
using aers::test::RigOptions;
using aers::test::Signal;

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteText(const std::string& path, const std::string& text, mode_t mode = 0644) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  ::chmod(path.c_str(), mode);
}

inline std::string FileHash(const std::string& path, HashAlgorithm a = HashAlgorithm::kSha256) {
  const std::string bytes = ReadText(path);
  return HashHex(a, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}

/// Libraries loaded from a memfd ("/proc/self/fd/N") right now.
inline int MemfdLibraries() {
  int n = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        if (info->dlpi_name && std::string_view(info->dlpi_name).starts_with("/proc/self/fd/")) {
          ++*static_cast<int*>(data);
        }
        return 0;
      },
      &n);
  return n;
}

/// Keeps every audit record; with `fail` set, keeps none and returns an
/// error instead (a log that cannot be written).
class RecordingAudit final : public PluginAuditLog {
 public:
  absl::Status Record(const AuditRecord& r) override {
    if (fail) {
      ++failed;
      return absl::UnavailableError("the test's audit log is full");
    }
    records.push_back(r);
    json.push_back(AuditRecordToJson(r));
    return absl::OkStatus();
  }
  bool fail = false;
  int failed = 0;
  std::vector<AuditRecord> records;
  std::vector<std::string> json;
};

/// What AddPlugin writes.
struct PluginSpec {
  std::string name;
  std::string so_path;
  std::string module = "plugin.so";
  std::string format = "aers";
  std::string algorithm = "sha256";
  std::string hash;  ///< "" = the copied module's real hash
  std::vector<std::string> allowed;
  uint64_t serial = 1;
  int abi = 1;
  std::vector<std::string> deps;
  std::string extra;  ///< more YAML lines (labels: ...)
  bool sign = true;
};

/// A temporary plugin root, trusted-keys dir (with one key) and state dir.
class PluginEnv {
 public:
  PluginEnv() {
    char tmpl[] = "/tmp/aers-plugin-test-XXXXXX";
    base = ::mkdtemp(tmpl);
    ::chmod(base.c_str(), 0755);
    root = base + "/root";
    keys = base + "/keys";
    state = base + "/state";
    fs::create_directory(root);
    fs::create_directory(keys);
    ::chmod(root.c_str(), 0755);
    ::chmod(keys.c_str(), 0755);
    auto kp = minisign::GenerateKeyPair();
    EXPECT_TRUE(kp.ok());
    secret_key = base + "/test.sec";
    public_key = keys + "/test.pub";
    WriteText(secret_key, kp->secret_key, 0600);
    WriteText(public_key, kp->public_key, 0644);
    key_id = minisign::KeyIdHex(kp->key_id);
  }
  ~PluginEnv() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }

  PluginPolicy Policy(bool require_signature = true) const {
    PluginPolicy p;
    p.plugin_root = root;
    p.require_signature = require_signature;
    p.trusted_keys_dir = keys;
    p.state_dir = state;
    return p;
  }

  std::string Dir(const std::string& name) const { return root + "/" + name; }

  static std::string ManifestText(const PluginSpec& s, const std::string& hash) {
    std::string y = absl::StrCat("name: ", s.name, "\nversion: \"1.0\"\nformat: ", s.format,
                                 "\nmodule: ", s.module, "\n");
    if (s.format == "aers") absl::StrAppend(&y, "abi_version: ", s.abi, "\n");
    absl::StrAppend(&y, "serial: ", s.serial, "\nhash:\n  algorithm: ", s.algorithm,
                    "\n  value: ", hash, "\nallowed_node_kinds: [", absl::StrJoin(s.allowed, ", "),
                    "]\n");
    if (!s.deps.empty()) absl::StrAppend(&y, "dependencies: [", absl::StrJoin(s.deps, ", "), "]\n");
    y += s.extra;
    return y;
  }

  /// Makes root/<name>/ with the module copied in (unless the module path is
  /// absolute) and a manifest; signs it with the trusted key if `sign`.
  std::string AddPlugin(const PluginSpec& s) {
    const std::string dir = Dir(s.name);
    fs::create_directories(dir);
    ::chmod(dir.c_str(), 0755);
    std::string module_file = s.module.front() == '/' ? s.module : dir + "/" + s.module;
    if (s.module.front() != '/') {
      fs::create_directories(fs::path(module_file).parent_path());
      fs::copy_file(s.so_path, module_file, fs::copy_options::overwrite_existing);
      ::chmod(module_file.c_str(), 0644);
    }
    const HashAlgorithm a =
        s.algorithm == "blake2b" ? HashAlgorithm::kBlake2b : HashAlgorithm::kSha256;
    const std::string hash = s.hash.empty() ? FileHash(module_file, a) : s.hash;
    WriteText(dir + "/manifest.yaml", ManifestText(s, hash));
    if (s.sign) SignDir(s.name);
    return dir;
  }

  void SignDir(const std::string& name, bool legacy = false) {
    auto r = tool::Sign(Dir(name), secret_key, "", legacy);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  std::string base, root, keys, state;
  std::string secret_key, public_key, key_id;
};

inline std::vector<std::string> KindNames(const model::KindRegistry& r) {
  std::vector<std::string> out;
  for (const auto* k : r.List()) out.push_back(k->name());
  return out;
}

inline bool IsRoot() {
  return ::geteuid() == 0;
}

}  // namespace aers::plugin::test
