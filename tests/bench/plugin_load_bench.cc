// Time to check and load a 1 MiB plugin through the full gate (open beneath
// the root, owner/mode, sealed memfd copy, hash, minisign verification, ELF
// checks, dlopen, descriptor checks, registration, then unload), with
// SHA-256 and with BLAKE2b, beside the hash alone over the same bytes.
// tests/bench/plugin_load_bench.sh runs it next to sha256sum/b2sum.
//
//   plugin_load_bench [iterations]
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dsp/builtins.h"
#include "plugin/loader.h"
#include "plugin/tool.h"
#include "spdlog/spdlog.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Stats {
  double median_ms, min_ms;
};

template <typename F>
Stats Time(int iterations, F&& f) {
  std::vector<double> ms;
  f();  // warm-up (page cache, libsodium init)
  for (int i = 0; i < iterations; ++i) {
    const auto t0 = Clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front()};
}

}  // namespace

int main(int argc, char** argv) {
  using namespace aers::plugin;
  const int iterations = argc > 1 ? std::max(1, std::atoi(argv[1])) : 50;
  spdlog::set_level(spdlog::level::warn);

  char tmpl[] = "/tmp/aers-plugin-bench-XXXXXX";
  const std::string base = ::mkdtemp(tmpl);
  ::chmod(base.c_str(), 0755);
  const std::string root = base + "/root", keys = base + "/keys", dir = root + "/gain1m";
  fs::create_directories(dir);
  fs::create_directories(keys);
  for (const auto& d : {root, keys, dir}) ::chmod(d.c_str(), 0755);
  const std::string module = dir + "/example_gain_1m.so";
  fs::copy_file(AERS_EXAMPLE_GAIN_1M_SO, module);
  ::chmod(module.c_str(), 0644);
  if (!tool::KeyGen(keys + "/bench.pub", base + "/bench.sec").ok()) return 1;

  PluginPolicy policy;
  policy.plugin_root = root;
  policy.trusted_keys_dir = keys;
  policy.state_dir = base + "/state";

  const std::string bytes = ReadAll(module);
  const std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  std::printf("module: %s (%zu bytes)\n", module.c_str(), bytes.size());
  std::printf("iterations: %d (median, min)\n", iterations);

  for (HashAlgorithm a : {HashAlgorithm::kSha256, HashAlgorithm::kBlake2b}) {
    const std::string name(HashAlgorithmName(a));
    std::ofstream(dir + "/manifest.yaml")
        << "name: gain1m\nversion: \"1\"\nformat: aers\nmodule: example_gain_1m.so\nabi_version: "
           "1\n"
        << "serial: 1\nhash:\n  algorithm: " << name << "\n  value: " << HashHex(a, span)
        << "\nallowed_node_kinds: [gain]\n";
    ::chmod((dir + "/manifest.yaml").c_str(), 0644);
    if (auto s = tool::Sign(dir, base + "/bench.sec"); !s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.status().message()).c_str());
      return 1;
    }
    PluginLoader loader(policy);
    bool ok = true;
    const Stats load = Time(iterations, [&] {
      auto registry = aers::dsp::MakeBuiltinRegistry();
      auto r = loader.Load("gain1m", *registry);
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str());
        ok = false;
      }
    });
    if (!ok) return 1;
    const Stats verify = Time(iterations, [&] { (void)loader.Verify("gain1m"); });
    const Stats hash = Time(iterations, [&] { (void)HashHex(a, span); });
    std::printf("%-8s verify+load+unload: %7.3f ms  %7.3f ms\n", name.c_str(), load.median_ms,
                load.min_ms);
    std::printf("%-8s verify (no dlopen): %7.3f ms  %7.3f ms\n", name.c_str(), verify.median_ms,
                verify.min_ms);
    std::printf("%-8s hash only (in-proc):%7.3f ms  %7.3f ms\n", name.c_str(), hash.median_ms,
                hash.min_ms);
  }
  std::error_code ec;
  fs::remove_all(base, ec);
  return 0;
}
