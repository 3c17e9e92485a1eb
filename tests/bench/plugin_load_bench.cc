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
#include "plugin/kinds.h"
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

std::error_code& ec_ignore() {
  static thread_local std::error_code ec;
  return ec;
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
  // Native, LADSPA and LV2 side by side: verify + load + one node
  // instantiated + unload, every plugin signed the same way. LV2 twice: with
  // its verified copy already in the store (the usual restart), and with the
  // store emptied before each load (first load: the copy is written, fsync'd
  // and hashed again).
  struct Case {
    std::string dir, manifest, kind;
    std::string wipe;  // a directory removed before each iteration ("" = none)
  };
  std::vector<Case> cases;
  auto add_dir = [&](const std::string& name) {
    fs::create_directories(root + "/" + name);
    ::chmod((root + "/" + name).c_str(), 0755);
    return root + "/" + name;
  };
  {
    const std::string d = add_dir("native");
    fs::copy_file(AERS_EXAMPLE_GAIN_SO, d + "/example_gain.so");
    ::chmod((d + "/example_gain.so").c_str(), 0644);
    cases.push_back({"native",
                     "name: native\nversion: \"1\"\nformat: aers\nmodule: example_gain.so\n"
                     "abi_version: 1\nserial: 1\nhash: {algorithm: sha256, value: " +
                         std::string(64, '0') + "}\nallowed_node_kinds: [gain]\n",
                     "native/gain", ""});
  }
  if (::access("/usr/lib/ladspa/amp.so", R_OK) == 0) {
    add_dir("ladspa");
    cases.push_back({"ladspa",
                     "name: ladspa\nversion: \"1\"\nformat: ladspa\nmodule: "
                     "/usr/lib/ladspa/amp.so\nserial: 1\nhash: {algorithm: sha256, value: " +
                         std::string(64, '0') +
                         "}\nallowed_node_kinds: [amp_mono]\nlabels: [amp_mono]\n",
                     "ladspa/amp_mono", ""});
  }
  const bool lv2 = Lv2Supported() && ::access("/usr/lib/lv2/amp-swh.lv2", R_OK) == 0 &&
                   ::access("/usr/lib/lv2/mda.lv2", R_OK) == 0;
  if (lv2) {
    add_dir("lv2amp");
    add_dir("mda");
    const std::string amp =
        "name: lv2amp\nversion: \"1\"\nformat: lv2\nbundle: /usr/lib/lv2/amp-swh.lv2\n"
        "serial: 1\nhash: {algorithm: sha256, value: " +
        std::string(64, '0') +
        "}\nallowed_node_kinds: [amp]\nplugins: [{uri: "
        "\"http://plugin.org.uk/swh-plugins/amp\", kind: amp}]\n";
    const std::string mda =
        "name: mda\nversion: \"1\"\nformat: lv2\nbundle: /usr/lib/lv2/mda.lv2\n"
        "serial: 1\nhash: {algorithm: sha256, value: " +
        std::string(64, '0') +
        "}\nallowed_node_kinds: [detune]\ndependencies: [libstdc++.so.6, libgcc_s.so.1]\n"
        "plugins: [{uri: \"http://drobilla.net/plugins/mda/Detune\", kind: detune}]\n";
    cases.push_back({"lv2amp", amp, "lv2amp/amp", ""});
    cases.push_back({"lv2amp", amp, "lv2amp/amp", policy.state_dir + "/lv2-store"});
    cases.push_back({"mda", mda, "mda/detune", ""});
    cases.push_back({"mda", mda, "mda/detune", policy.state_dir + "/lv2-store"});
  }
  PluginPolicy all = policy;
  all.allowed_system_dirs = {"/usr/lib/ladspa", "/usr/lib/lv2"};
  std::printf("\nverify + load + instantiate one node + unload, sha256, signed (median, min):\n");
  for (const Case& c : cases) {
    std::ofstream(root + "/" + c.dir + "/manifest.yaml") << c.manifest;
    ::chmod((root + "/" + c.dir + "/manifest.yaml").c_str(), 0644);
    if (auto h = tool::Hash(root + "/" + c.dir, std::nullopt, true); !h.ok()) {
      std::fprintf(stderr, "%s\n", std::string(h.status().message()).c_str());
      return 1;
    }
    if (auto s = tool::Sign(root + "/" + c.dir, base + "/bench.sec"); !s.ok()) return 1;
    PluginLoader loader(all);
    bool ok = true;
    const Stats t = Time(iterations, [&] {
      if (!c.wipe.empty()) fs::remove_all(c.wipe, ec_ignore());
      auto registry = aers::dsp::MakeBuiltinRegistry();
      auto r = loader.Load(c.dir, *registry);
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str());
        ok = false;
        return;
      }
      const aers::model::NodeKind* k = registry->Find(c.kind);
      aers::model::NodeSpec spec{"n", c.kind, k->max_channels() == 2 ? 2 : 1, {}};
      auto p = k->Instantiate(spec, k->ResolveParams(spec, 48000.0), {48000.0, 256});
      ok = ok && p.ok();
    });
    if (!ok) return 1;
    std::printf("  %-10s %-28s %8.3f ms %8.3f ms\n", c.dir.c_str(),
                c.wipe.empty()
                    ? (c.dir == "native" || c.dir == "ladspa" ? "" : "(store copy reused)")
                    : "(store copy written)",
                t.median_ms, t.min_ms);
  }

  // DSP time of an LV2 node (Process(), block 256) for the same frames that
  // lv2bench runs; plugin_load_bench.sh runs lv2bench beside it.
  if (lv2) {
    std::printf("\n");
    struct Dsp {
      std::string kind, uri;
      int channels;
    } dsp[] = {{"mda/detune", "http://drobilla.net/plugins/mda/Detune", 2},
               {"lv2amp/amp", "http://plugin.org.uk/swh-plugins/amp", 1}};
    PluginLoader loader(all);
    auto registry = aers::dsp::MakeBuiltinRegistry();
    if (!loader.Load("lv2amp", *registry).ok() || !loader.Load("mda", *registry).ok()) return 1;
    constexpr uint32_t kBlock = 256;
    constexpr size_t kFrames = 4800000;
    for (const auto& d : dsp) {
      const aers::model::NodeKind* k = registry->Find(d.kind);
      aers::model::NodeSpec spec{"n", d.kind, d.channels, {}};
      auto p = k->Instantiate(spec, k->ResolveParams(spec, 48000.0), {48000.0, kBlock});
      if (!p.ok()) return 1;
      std::vector<std::vector<float>> in(d.channels, std::vector<float>(kBlock, 0.25f));
      std::vector<std::vector<float>> out(d.channels, std::vector<float>(kBlock));
      std::vector<const float*> ip;
      std::vector<float*> op;
      for (int c = 0; c < d.channels; ++c) {
        ip.push_back(in[c].data());
        op.push_back(out[c].data());
      }
      std::vector<double> runs;
      for (int rep = 0; rep < 5; ++rep) {
        const auto t0 = Clock::now();
        for (size_t f = 0; f < kFrames; f += kBlock) (*p)->Process(ip.data(), op.data(), kBlock);
        runs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      }
      std::sort(runs.begin(), runs.end());
      std::printf("dsp %s %u %zu %.6f\n", d.uri.c_str(), kBlock, kFrames, runs[runs.size() / 2]);
    }
  }
  std::error_code ec;
  fs::remove_all(base, ec);
  return 0;
}
