// LV2 behind the gate: the manifest's lv2 fields, the bundle tree (its
// hash, its refusals, the store copy), and the loader with the test plugin
// of tests/plugin/lv2/ (worker, state, atom and CV ports) processing audio
// without allocating. Debian's plugins against an independent host are in
// tests/integration/test_lv2.py.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_replace.h"
#include "common/alloc_counter.h"
#include "gmock/gmock.h"
#include "plugin/bundle_tree.h"
#include "plugin/kinds.h"
#include "plugin/plugin_fixture.h"

namespace aers::plugin::test {
namespace {

using ::testing::HasSubstr;

constexpr const char* kUri = "urn:aers:lv2:stateful";

std::string LineFor(const std::string& uri, const std::string& kind) {
  return absl::StrCat("  - {uri: \"", uri, "\", kind: ", kind, "}\n");
}

std::string Lv2Manifest(const std::string& name, const std::string& bundle, const std::string& hash,
                        const std::string& plugins) {
  return absl::StrCat("name: ", name, "\nversion: \"1\"\nformat: lv2\nbundle: ", bundle,
                      "\nserial: 1\nhash: {algorithm: sha256, value: ", hash,
                      "}\nallowed_node_kinds: [stateful]\nplugins:\n", plugins);
}

// --- manifest ------------------------------------------------------------------

TEST(Lv2ManifestTest, ParsesBundleAndPlugins) {
  auto m = ParseManifest(
      Lv2Manifest("st", "/usr/lib/lv2/x.lv2", std::string(64, 'a'), LineFor(kUri, "stateful")));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->format, ModuleFormat::kLv2);
  EXPECT_EQ(m->module, "/usr/lib/lv2/x.lv2");
  ASSERT_EQ(m->lv2_plugins.size(), 1u);
  EXPECT_EQ(m->lv2_plugins[0].uri, kUri);
  EXPECT_EQ(m->lv2_plugins[0].kind, "stateful");
  EXPECT_EQ(KindNameForUri("http://plugin.org.uk/swh-plugins/hardLimiter"), "hardlimiter");
  EXPECT_EQ(KindNameForUri("http://x.org/p#Amp-Mono"), "amp_mono");
  EXPECT_EQ(KindNameForUri("urn:a:1"), "l_1");
}

TEST(Lv2ManifestTest, EveryMistakeIsNamedWithItsPosition) {
  const std::string hash(64, 'a');
  struct Case {
    std::string text;
    std::string want;
  } cases[] = {
      {absl::StrReplaceAll(Lv2Manifest("st", "b.lv2", hash, LineFor(kUri, "stateful")),
                           {{"bundle: b.lv2", "module: b.lv2"}}),
       "module: is not for format lv2"},
      {Lv2Manifest("st", "b.lv2", hash, ""), "plugins: must be a non-empty list"},
      {Lv2Manifest("st", "../b.lv2", hash, LineFor(kUri, "stateful")),
       "bundle: '../b.lv2' must not contain '..'"},
      {Lv2Manifest("st", "b.lv2", hash, LineFor("not a uri", "stateful")),
       "plugins[0].uri: 'not a uri' is not an absolute URI"},
      {Lv2Manifest("st", "b.lv2", hash, LineFor(kUri, "stateful") + LineFor(kUri, "other")),
       "plugins[1]: URI 'urn:aers:lv2:stateful' is listed twice"},
      {Lv2Manifest("st", "b.lv2", hash, LineFor(kUri, "notallowed")),
       "plugins[0]: kind 'notallowed' is not in allowed_node_kinds"},
      {absl::StrCat(Lv2Manifest("st", "b.lv2", hash, LineFor(kUri, "stateful")),
                    "abi_version: 1\n"),
       "abi_version: is only for format aers"},
      {absl::StrReplaceAll(Lv2Manifest("st", "b.lv2", hash, LineFor(kUri, "stateful")),
                           {{"format: lv2", "format: ladspa"}}),
       "bundle: is only for format lv2"},
  };
  for (const auto& c : cases) {
    auto m = ParseManifest(c.text);
    ASSERT_FALSE(m.ok()) << c.text;
    EXPECT_THAT(std::string(m.status().message()), HasSubstr(c.want)) << c.text;
    EXPECT_THAT(std::string(m.status().message()),
                ::testing::ContainsRegex("^manifest\\.yaml:[0-9]+:[0-9]+: "));
  }
}

// --- the bundle tree --------------------------------------------------------------

class BundleTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/aers-bundle-test-XXXXXX";
    base_ = ::mkdtemp(tmpl);
    ::chmod(base_.c_str(), 0755);
    bundle_ = base_ + "/b.lv2";
    fs::create_directory(bundle_);
    ::chmod(bundle_.c_str(), 0755);
    WriteText(bundle_ + "/manifest.ttl", "@prefix lv2: <x> .\n");
    WriteText(bundle_ + "/plugin.so", std::string("\x7f"
                                                  "ELF",
                                                  4) +
                                          "rest");
    fs::create_directory(bundle_ + "/presets");
    ::chmod((bundle_ + "/presets").c_str(), 0755);
    WriteText(bundle_ + "/presets/a.ttl", "# preset\n");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  absl::StatusOr<BundleTree> Read(BundleError* err = nullptr, std::vector<std::string> allowed = {},
                                  size_t max = size_t{1} << 20) {
    UniqueFd fd(::open(bundle_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return ReadBundleTree(fd.get(), bundle_, allowed, max, err);
  }
  std::string Hash() {
    auto t = Read();
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? BundleTreeHashHex(HashAlgorithm::kSha256, *t) : "";
  }
  std::string base_, bundle_;
};

TEST_F(BundleTreeTest, HashCoversNamesModesContentsAndDirectories) {
  auto t = Read();
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->entries.size(), 4u);  // sorted: manifest.ttl, plugin.so, presets, presets/a.ttl
  EXPECT_EQ(t->entries[0].path, "manifest.ttl");
  EXPECT_EQ(t->entries[2].path, "presets");
  EXPECT_TRUE(t->entries[2].directory);
  EXPECT_EQ(t->entries[3].path, "presets/a.ttl");
  const std::string h0 = Hash();
  EXPECT_EQ(h0, Hash());  // deterministic
  EXPECT_EQ(h0.size(), 64u);
  std::set<std::string> seen = {h0};
  auto changed = [&](const char* what) {
    const std::string h = Hash();
    EXPECT_TRUE(seen.insert(h).second) << what << " did not change the tree hash";
  };
  WriteText(bundle_ + "/presets/a.ttl", "# preset!\n");
  changed("one changed byte");
  ::chmod((bundle_ + "/presets/a.ttl").c_str(), 0600);
  changed("a mode");
  fs::rename(bundle_ + "/presets/a.ttl", bundle_ + "/presets/b.ttl");
  changed("a rename");
  fs::create_directory(bundle_ + "/empty");
  ::chmod((bundle_ + "/empty").c_str(), 0755);
  changed("an empty directory");
  WriteText(bundle_ + "/extra.ttl", "");
  changed("an added empty file");
}

TEST_F(BundleTreeTest, NoFileNameCanImitateAnEntryBoundary) {
  // Two different trees whose v1 encoding ("f MODE PATH SIZE HEX\n" with the
  // raw path) was the same bytes: a name holding "SIZE HEX\nf MODE NAME".
  const std::string lib =
      "\x7f"
      "ELF library";
  const std::string lib_hex =
      HashHex(HashAlgorithm::kSha256, {reinterpret_cast<const uint8_t*>(lib.data()), lib.size()});
  BundleTree one, two;
  one.entries.push_back(
      {"a.so " + std::to_string(lib.size()) + " " + lib_hex + "\nf 0644 b", false, 0644, "x", ""});
  two.entries.push_back({"a.so", false, 0644, lib, ""});
  two.entries.push_back({"b", false, 0644, "x", ""});
  EXPECT_NE(BundleTreeHashHex(HashAlgorithm::kSha256, one),
            BundleTreeHashHex(HashAlgorithm::kSha256, two));
  // And such names are not read at all.
  WriteText(bundle_ + "/a\nb", "x");
  BundleError err;
  auto t = Read(&err);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(err.fault, BundleFault::kEntry);
  EXPECT_THAT(err.path, HasSubstr("a\\x0ab"));
}

TEST_F(BundleTreeTest, HiddenSpecialAndEscapingEntriesAreRefused) {
  BundleError err;
  WriteText(bundle_ + "/.hidden", "x");
  auto t = Read(&err);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(err.fault, BundleFault::kEntry);
  EXPECT_THAT(err.path, HasSubstr(".hidden"));
  fs::remove(bundle_ + "/.hidden");

  ASSERT_EQ(::mkfifo((bundle_ + "/fifo").c_str(), 0644), 0);
  t = Read(&err);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(err.fault, BundleFault::kEntry);
  EXPECT_THAT(err.message, HasSubstr("FIFO"));
  fs::remove(bundle_ + "/fifo");

  // A symlink out of the bundle: refused unless it resolves beneath an
  // allowed directory; then it is that file, under the link's name.
  WriteText(base_ + "/outside.so", "outside bytes");
  fs::create_symlink(base_ + "/outside.so", bundle_ + "/link.so");
  t = Read(&err);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(err.fault, BundleFault::kEntry);
  EXPECT_THAT(err.message, HasSubstr("allowed system directory"));
  t = Read(&err, {base_});
  ASSERT_TRUE(t.ok()) << t.status();
  auto link = std::find_if(t->entries.begin(), t->entries.end(),
                           [](const BundleEntry& e) { return e.path == "link.so"; });
  ASSERT_NE(link, t->entries.end());
  EXPECT_EQ(link->bytes, "outside bytes");
  EXPECT_EQ(link->link_from, base_ + "/outside.so");
  // A symlink to a directory is refused even beneath an allowed directory.
  fs::remove(bundle_ + "/link.so");
  fs::create_directory_symlink(base_, bundle_ + "/dirlink");
  t = Read(&err, {"/"});
  ASSERT_FALSE(t.ok());
  fs::remove(bundle_ + "/dirlink");

  ::chmod((bundle_ + "/manifest.ttl").c_str(), 0664);
  t = Read(&err);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(err.fault, BundleFault::kPermissions);
  ::chmod((bundle_ + "/manifest.ttl").c_str(), 04644);
  t = Read(&err);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(err.fault, BundleFault::kPermissions);
  EXPECT_THAT(err.message, HasSubstr("setuid"));
  ::chmod((bundle_ + "/manifest.ttl").c_str(), 0644);

  t = Read(&err, {}, 8);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(err.fault, BundleFault::kTooLarge);
}

TEST_F(BundleTreeTest, StoreCopyHashesTheSameAndReplacesAWrongOne) {
  auto t = Read();
  ASSERT_TRUE(t.ok());
  const std::string store = base_ + "/store";
  auto path = WriteBundleTree(store, "sha256-x", *t);
  ASSERT_TRUE(path.ok()) << path.status();
  struct stat st {};
  ASSERT_EQ(::stat(store.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  UniqueFd fd(::open(path->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto copy = ReadBundleTree(fd.get(), *path, {}, size_t{1} << 20, nullptr);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(BundleTreeHashHex(HashAlgorithm::kSha256, *copy),
            BundleTreeHashHex(HashAlgorithm::kSha256, *t));
  // Written again over a damaged copy: the copy is whole again.
  WriteText(*path + "/manifest.ttl", "damaged");
  ASSERT_TRUE(WriteBundleTree(store, "sha256-x", *t).ok());
  EXPECT_EQ(ReadText(*path + "/manifest.ttl"), "@prefix lv2: <x> .\n");
  // A store others may read is refused.
  ::chmod(store.c_str(), 0755);
  auto again = WriteBundleTree(store, "sha256-y", *t);
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("0700"));
}

// --- the loader with the test plugin ------------------------------------------------

class Lv2LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Lv2Supported()) GTEST_SKIP() << "built without lilv";
  }
  // root/st/stateful.lv2 from tests/plugin/lv2 and the built stateful.so.
  std::string AddStateful(const std::string& name = "st") {
    const std::string dir = env_.Dir(name);
    const std::string bundle = dir + "/stateful.lv2";
    fs::create_directories(bundle);
    ::chmod(dir.c_str(), 0755);
    ::chmod(bundle.c_str(), 0755);
    const std::string src = std::string(AERS_SOURCE_ROOT) + "/tests/plugin/lv2/";
    WriteText(bundle + "/manifest.ttl", ReadText(src + "manifest.ttl"));
    WriteText(bundle + "/stateful.ttl", ReadText(src + "stateful.ttl"));
    WriteText(bundle + "/stateful.so", ReadText(AERS_LV2_STATEFUL_SO));
    WriteText(dir + "/manifest.yaml",
              Lv2Manifest(name, "stateful.lv2", std::string(64, '0'), LineFor(kUri, "stateful")));
    auto h = tool::Hash(dir, std::nullopt, /*write=*/true);
    EXPECT_TRUE(h.ok()) << h.status();
    return dir;
  }
  PluginEnv env_;
};

TEST_F(Lv2LoaderTest, LoadsFromTheStoreAndProcessesWithoutAllocating) {
  AddStateful();
  auto registry = dsp::MakeBuiltinRegistry();
  RecordingAudit audit;
  PluginLoader loader(env_.Policy(/*require_signature=*/false), &audit);
  auto r = loader.Load("st", *registry);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kinds, (std::vector<std::string>{"st/stateful"}));
  EXPECT_THAT(r->plugin->load_path(), HasSubstr(env_.state + "/lv2-store/sha256-"));
  const model::NodeKind* kind = registry->Find("st/stateful");
  ASSERT_NE(kind, nullptr);
  std::vector<std::string> names;
  for (const auto& p : kind->params()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"gain", "latch", "mode"}));
  EXPECT_EQ(kind->params()[1].type, model::ParamType::kBool);
  EXPECT_EQ(kind->params()[2].type, model::ParamType::kEnum);
  EXPECT_EQ(kind->params()[2].choices, (std::vector<std::string>{"normal", "invert"}));
  ASSERT_EQ(kind->presets().size(), 1u);
  EXPECT_EQ(kind->presets()[0].uri, std::string(kUri) + "#half");

  // Two channels: two instances; every port connected (the plugin outputs
  // silence if its atom or CV port is not), run without allocating.
  model::NodeSpec spec{"s", "st/stateful", 2, {{"gain", 0.5}, {"mode", std::string("invert")}}};
  const rt::StreamFormat format{48000.0, 256};
  auto proc = kind->Instantiate(spec, kind->ResolveParams(spec, 48000.0), format);
  ASSERT_TRUE(proc.ok()) << proc.status();
  std::vector<float> a(256, 0.25f), b(256, -0.5f), oa(256), ob(256);
  const float* in[] = {a.data(), b.data()};
  float* out[] = {oa.data(), ob.data()};
  aers::test::AllocScope scope;
  for (int i = 0; i < 100; ++i) (*proc)->Process(in, out, 256);
  EXPECT_EQ(scope.Finish(), 0u) << "allocations on the audio path of an LV2 node";
  EXPECT_FLOAT_EQ(oa[10], -0.125f);  // 0.25 * 0.5 * -1
  EXPECT_FLOAT_EQ(ob[10], 0.25f);

  // The worker: latch -> work on the service thread -> response in Process.
  (*proc)->SetParam(1, 0, 1.0);
  for (int i = 0; i < 500 && oa[10] != -0.0625f; ++i) {
    (*proc)->Process(in, out, 256);
    ::usleep(2000);
  }
  EXPECT_FLOAT_EQ(oa[10], -0.0625f);  // stored = 0.5
}

TEST_F(Lv2LoaderTest, FilesChangedAfterTheChecksAreNeverLoaded) {
  const std::string dir = AddStateful();
  auto registry = dsp::MakeBuiltinRegistry();
  PluginLoader loader(env_.Policy(false));
  // Between verification and load the bundle changes: a new default for
  // gain in the .ttl and bytes appended to the library.
  loader.SetAfterCheckHookForTesting([&](const std::string&) {
    const std::string ttl = dir + "/stateful.lv2/stateful.ttl";
    WriteText(ttl, absl::StrReplaceAll(ReadText(ttl), {{"lv2:default 1.0", "lv2:default 0.125"}}));
    WriteText(dir + "/stateful.lv2/stateful.so",
              ReadText(dir + "/stateful.lv2/stateful.so") + std::string(64, '\0'));
  });
  auto r = loader.Load("st", *registry);
  ASSERT_TRUE(r.ok()) << r.status();
  const model::NodeKind* kind = registry->Find("st/stateful");
  ASSERT_NE(kind, nullptr);
  EXPECT_EQ(std::get<double>(kind->params()[0].default_value), 1.0);  // the verified .ttl
  // The store copy is the verified bundle byte for byte.
  const std::string store_so = r->plugin->load_path() + "/stateful.so";
  EXPECT_EQ(ReadText(store_so), ReadText(AERS_LV2_STATEFUL_SO));
  // Loading again now refuses: the source no longer matches its hash.
  auto registry2 = dsp::MakeBuiltinRegistry();
  r = absl::CancelledError("dropped");
  auto again = PluginLoader(env_.Policy(false)).Load("st", *registry2);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(RefusalCodeOf(again.status()), RefusalCode::kHashMismatch);
}

TEST_F(Lv2LoaderTest, APresetReadingOutsideTheBundleIsRefused) {
  const std::string dir = AddStateful();
  WriteText(env_.base + "/outside.ttl",
            "@prefix lv2: <http://lv2plug.in/ns/lv2core#> .\n"
            "@prefix pset: <http://lv2plug.in/ns/ext/presets#> .\n"
            "<urn:x:p> lv2:port [ lv2:symbol \"gain\" ; pset:value 2.0 ] .\n");
  const std::string ttl = dir + "/stateful.lv2/manifest.ttl";
  WriteText(ttl, ReadText(ttl) +
                     "<urn:x:p> a <http://lv2plug.in/ns/ext/presets#Preset> ;\n"
                     "  <http://lv2plug.in/ns/lv2core#appliesTo> <urn:aers:lv2:stateful> ;\n"
                     "  <http://www.w3.org/2000/01/rdf-schema#seeAlso> <file://" +
                     env_.base + "/outside.ttl> .\n");
  ASSERT_TRUE(tool::Hash(dir, std::nullopt, true).ok());
  auto registry = dsp::MakeBuiltinRegistry();
  auto r = PluginLoader(env_.Policy(false)).Load("st", *registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kModuleOutsideAllowedDirs);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("outside.ttl"));
}

TEST_F(Lv2LoaderTest, APresetFileLinkingOutsideIsRefusedToo) {
  // The preset's own file is in the bundle; it links on to a file outside.
  const std::string dir = AddStateful();
  WriteText(env_.base + "/outside.ttl",
            "<urn:x:p> <http://lv2plug.in/ns/lv2core#port> [ "
            "<http://lv2plug.in/ns/lv2core#symbol> \"gain\" ; "
            "<http://lv2plug.in/ns/ext/presets#value> 0.125 ] .\n");
  WriteText(dir + "/stateful.lv2/p.ttl",
            "<urn:x:p> <http://www.w3.org/2000/01/rdf-schema#label> \"P\" ;\n"
            "  <http://www.w3.org/2000/01/rdf-schema#seeAlso> <file://" +
                env_.base + "/outside.ttl> .\n");
  const std::string ttl = dir + "/stateful.lv2/manifest.ttl";
  WriteText(ttl, ReadText(ttl) +
                     "<urn:x:p> a <http://lv2plug.in/ns/ext/presets#Preset> ;\n"
                     "  <http://lv2plug.in/ns/lv2core#appliesTo> <urn:aers:lv2:stateful> ;\n"
                     "  <http://www.w3.org/2000/01/rdf-schema#seeAlso> <p.ttl> .\n");
  ASSERT_TRUE(tool::Hash(dir, std::nullopt, true).ok());
  auto registry = dsp::MakeBuiltinRegistry();
  auto r = PluginLoader(env_.Policy(false)).Load("st", *registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kModuleOutsideAllowedDirs);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("outside.ttl"));
}

TEST_F(Lv2LoaderTest, AnOutsideDataFileIsRefusedBeforeItIsRead) {
  // A FIFO as a plugin data file: opening it would block the load forever.
  const std::string dir = AddStateful();
  ASSERT_EQ(::mkfifo((env_.base + "/fifo.ttl").c_str(), 0644), 0);
  const std::string ttl = dir + "/stateful.lv2/manifest.ttl";
  WriteText(ttl, absl::StrReplaceAll(ReadText(ttl), {{"rdfs:seeAlso <stateful.ttl>",
                                                      "rdfs:seeAlso <stateful.ttl> , <file://" +
                                                          env_.base + "/fifo.ttl>"}}));
  ASSERT_TRUE(tool::Hash(dir, std::nullopt, true).ok());
  auto registry = dsp::MakeBuiltinRegistry();
  auto r = PluginLoader(env_.Policy(false)).Load("st", *registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kModuleOutsideAllowedDirs);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("fifo.ttl"));
}

TEST_F(Lv2LoaderTest, AnExtremePortIndexIsRefusedBeforeLilvSizesItsPorts) {
  int n = 0;
  for (const char* index : {"4294967295", "-1", "2147483647", "512"}) {
    SCOPED_TRACE(index);
    const std::string name = absl::StrCat("st", n++);
    const std::string dir = AddStateful(name);
    const std::string ttl = dir + "/stateful.lv2/stateful.ttl";
    WriteText(ttl, absl::StrReplaceAll(ReadText(ttl),
                                       {{"lv2:index 7", std::string("lv2:index ") + index}}));
    ASSERT_TRUE(tool::Hash(dir, std::nullopt, true).ok());
    auto registry = dsp::MakeBuiltinRegistry();
    auto r = PluginLoader(env_.Policy(false)).Load(name, *registry);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kLv2Unsupported);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("lv2:index"));
  }
}

TEST_F(Lv2LoaderTest, AnInvalidPortDescriptionIsRefused) {
  const std::string dir = AddStateful();
  const std::string ttl = dir + "/stateful.lv2/stateful.ttl";
  // Two ports claim index 6; index 7 is missing.
  WriteText(ttl, absl::StrReplaceAll(ReadText(ttl), {{"lv2:index 7", "lv2:index 6"}}));
  ASSERT_TRUE(tool::Hash(dir, std::nullopt, true).ok());
  auto registry = dsp::MakeBuiltinRegistry();
  auto r = PluginLoader(env_.Policy(false)).Load("st", *registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kLv2Unsupported);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("port index"));
}

TEST_F(Lv2LoaderTest, StateFromADirectoryOthersCanWriteIsNeitherReadNorWritten) {
  AddStateful();
  auto registry = dsp::MakeBuiltinRegistry();
  ASSERT_TRUE(PluginLoader(env_.Policy(false)).Load("st", *registry).ok());
  const model::NodeKind* kind = registry->Find("st/stateful");
  model::NodeSpec spec{"s", "st/stateful", 1, {{"gain", 1.0}}};
  const rt::StreamFormat format{48000.0, 64};
  std::vector<float> a(64, 0.5f), o(64);
  const float* in[] = {a.data()};
  float* out[] = {o.data()};
  // Someone else's lv2-state (mode 0777) with a planted state (stored = 8):
  // not restored.
  const std::string base = env_.state + "/lv2-state";
  fs::create_directories(base + "/s");
  ::chmod(base.c_str(), 0777);
  WriteText(base + "/s/0.ttl",
            "<urn:aers:lv2-state> a <http://lv2plug.in/ns/ext/presets#Preset> ;"
            " <http://lv2plug.in/ns/lv2core#appliesTo> <urn:aers:lv2:stateful> ;"
            " <http://lv2plug.in/ns/ext/state#state> [ "
            "<urn:aers:lv2:stateful#stored> \"8.0\"^^"
            "<http://www.w3.org/2001/XMLSchema#float> ] .\n");
  {
    auto proc = kind->Instantiate(spec, kind->ResolveParams(spec, 48000.0), format);
    ASSERT_TRUE(proc.ok()) << proc.status();
    (*proc)->Process(in, out, 64);
    EXPECT_FLOAT_EQ(o[0], 0.5f);  // stored stayed 1
  }
  // A FIFO where the state file would be, in a private directory: the node
  // starts at once without it.
  fs::remove_all(base);
  fs::create_directories(base + "/s");
  ::chmod(base.c_str(), 0700);
  ::chmod((base + "/s").c_str(), 0700);
  ASSERT_EQ(::mkfifo((base + "/s/0.ttl").c_str(), 0600), 0);
  auto proc = kind->Instantiate(spec, kind->ResolveParams(spec, 48000.0), format);
  ASSERT_TRUE(proc.ok()) << proc.status();
  (*proc)->Process(in, out, 64);
  EXPECT_FLOAT_EQ(o[0], 0.5f);
}

TEST_F(Lv2LoaderTest, StoreThatOthersCanReadIsRefused) {
  AddStateful();
  fs::create_directories(env_.state + "/lv2-store");
  ::chmod((env_.state + "/lv2-store").c_str(), 0755);
  auto registry = dsp::MakeBuiltinRegistry();
  RecordingAudit audit;
  auto r = PluginLoader(env_.Policy(false), &audit).Load("st", *registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kLv2StoreError);
  ASSERT_FALSE(audit.records.empty());
  EXPECT_EQ(audit.records.back().code, RefusalCode::kLv2StoreError);
  EXPECT_EQ(KindNames(*registry), KindNames(*dsp::MakeBuiltinRegistry()));
}

}  // namespace
}  // namespace aers::plugin::test
