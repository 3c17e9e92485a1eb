// The plugin gate: the example plugin loads and processes audio through the
// real engine; every refusal names its reason and leaves the registry, the
// loaded libraries and the running graph exactly as they were.
#include <elf.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <set>

#include "dsp/kind_base.h"
#include "gmock/gmock.h"
#include "plugin/plugin_fixture.h"

namespace aers::plugin::test {
namespace {

using aers::test::Rms;
using aers::test::Sine;
using aers::test::ToDb;
using ::testing::HasSubstr;

constexpr size_t kFrames = 9600;

// A graph with a built-in gain: the "previous graph" every refusal must keep.
model::GraphSpec BaseGraph() {
  return GraphBuilder()
      .Input("in")
      .Output("out")
      .Node("trim", "gain", 1, {{"gain_db", -6.0}})
      .Chain({"in", "trim", "out"})
      .Build();
}

class GateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetOpenat2DisabledForTesting(false);
    registry_ = dsp::MakeBuiltinRegistry();
    rig_ = std::make_unique<Rig>(RigOptions{.kinds = registry_.get()});
    ASSERT_TRUE(rig_->engine().Apply(BaseGraph()).ok());
    tone_ = Sine(1000.0, 0.5, kFrames);
    rig_->Run({tone_}, kFrames);  // settle
  }
  void TearDown() override {
    SetOpenat2DisabledForTesting(false);
    rig_.reset();
    registry_.reset();
    EXPECT_EQ(MemfdLibraries(), 0) << "a plugin library stayed loaded";
  }

  PluginLoader Loader(bool require_signature = true) {
    return PluginLoader(env_.Policy(require_signature), &audit_);
  }

  // Loads `dir` expecting a refusal with `code`; checks the code, the
  // message and that nothing changed: registry, loaded libraries, the graph
  // and its audio.
  void ExpectRefused(PluginLoader& loader, const std::string& dir, RefusalCode code,
                     const std::vector<std::string>& substrings) {
    const std::string reason = RefusalCodeName(code);
    const auto kinds_before = KindNames(*registry_);
    const auto spec_before = rig_->engine().spec();
    const auto revision_before = rig_->engine().revision();
    const int libs_before = MemfdLibraries();
    const size_t audits_before = audit_.records.size();

    auto r = loader.Load(dir, *registry_);
    ASSERT_FALSE(r.ok()) << "plugin " << dir << " was loaded but should be refused (" << reason
                         << ")";
    const std::string msg(r.status().message());
    EXPECT_EQ(RefusalCodeOf(r.status()), code) << msg;
    EXPECT_THAT(msg, HasSubstr(absl::StrCat("(", reason, ")"))) << msg;
    for (const auto& s : substrings) EXPECT_THAT(msg, HasSubstr(s)) << msg;

    EXPECT_EQ(KindNames(*registry_), kinds_before);
    EXPECT_EQ(MemfdLibraries(), libs_before);
    EXPECT_TRUE(LoadedPlugin::LoadedNames().empty() || libs_before > 0);
    // One refusal; a refusal after the module was opened (its code ran)
    // follows the "loading" record written before that.
    ASSERT_GE(audit_.records.size(), audits_before + 1);
    ASSERT_LE(audit_.records.size(), audits_before + 2);
    if (audit_.records.size() == audits_before + 2) {
      EXPECT_EQ(audit_.records[audits_before].event, "loading");
    }
    EXPECT_EQ(audit_.records.back().event, "refused");
    EXPECT_EQ(audit_.records.back().code, code);
    EXPECT_THAT(audit_.json.back(), HasSubstr(absl::StrCat("\"reason\":\"", reason, "\"")));
    EXPECT_THAT(audit_.json.back(), HasSubstr(absl::StrCat("\"code\":\"", reason, "\"")));

    // The graph keeps running as it was; a graph naming the refused kind is
    // rejected as an unknown kind.
    EXPECT_EQ(rig_->engine().spec(), spec_before);
    EXPECT_EQ(rig_->engine().revision(), revision_before);
    auto with_plugin = GraphBuilder()
                           .Input("in")
                           .Output("out")
                           .Node("p", dir + "/gain")
                           .Chain({"in", "p", "out"})
                           .Build();
    EXPECT_FALSE(rig_->engine().Apply(with_plugin).ok());
    const auto out = rig_->Run({tone_}, kFrames);
    EXPECT_NEAR(ToDb(Rms(out[0], 4800) / Rms(tone_, 4800)), -6.0, 0.05);
  }

  PluginSpec Gain(const std::string& name = "example_gain") {
    PluginSpec s;
    s.name = name;
    s.so_path = AERS_EXAMPLE_GAIN_SO;
    s.module = "example_gain.so";
    s.allowed = {"gain"};
    return s;
  }
  PluginSpec Test(const std::string& name, const char* so) {
    PluginSpec s;
    s.name = name;
    s.so_path = so;
    s.allowed = {"pass"};
    return s;
  }

  PluginEnv env_;
  RecordingAudit audit_;
  std::unique_ptr<model::KindRegistry> registry_;
  std::unique_ptr<Rig> rig_;
  Signal tone_;
};

// --- what loads ---------------------------------------------------------------

TEST_F(GateTest, ExamplePluginLoadsAndProcessesThroughTheEngine) {
  env_.AddPlugin(Gain());
  auto loader = Loader();
  auto r = loader.Load("example_gain", *registry_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kinds, std::vector<std::string>{"example_gain/gain"});
  EXPECT_EQ(r->plugin->signer_key_id(), env_.key_id);
  const model::NodeKind* kind = registry_->Find("example_gain/gain");
  ASSERT_NE(kind, nullptr);
  ASSERT_EQ(kind->params().size(), 1u);
  EXPECT_EQ(kind->params()[0].name, "gain_db");
  EXPECT_EQ(kind->params()[0].unit, "dB");
  // Before its code ran, then before its kinds were registered.
  ASSERT_EQ(audit_.records.size(), 2u);
  EXPECT_EQ(audit_.records[0].event, "loading");
  EXPECT_EQ(audit_.records[1].event, "loaded");
  EXPECT_THAT(audit_.json[1], HasSubstr("\"event\":\"loaded\""));

  // Stereo: the plugin's gain node between a 2-channel input and output.
  auto spec = GraphBuilder()
                  .Input("in", 2)
                  .Output("out", 2)
                  .Node("g", "example_gain/gain", 2, {{"gain_db", -12.0}})
                  .Chain({"in", "g", "out"})
                  .Build();
  ASSERT_TRUE(rig_->engine().Apply(spec).ok());
  const Signal left = Sine(440.0, 0.5, kFrames), right = Sine(1000.0, 0.25, kFrames);
  auto out = rig_->Run({left, right}, kFrames);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NEAR(ToDb(Rms(out[0], 4800) / Rms(left, 4800)), -12.0, 0.02);
  EXPECT_NEAR(ToDb(Rms(out[1], 4800) / Rms(right, 4800)), -12.0, 0.02);

  // A live parameter change reaches the plugin (set_parameter on the audio
  // thread) without a new plan, and glides.
  auto e = rig_->engine().SetParameter("g", "gain_db", 0.0);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->replanned);
  out = rig_->Run({left, right}, kFrames);
  EXPECT_NEAR(ToDb(Rms(out[0], 4800) / Rms(left, 4800)), 0.0, 0.02);
  EXPECT_LT(aers::test::MaxJump(out[0]), 0.05);  // no click
}

TEST_F(GateTest, Blake2bHashAndUnsignedPluginWhenPolicyAllows) {
  auto s = Gain();
  s.algorithm = "blake2b";
  s.sign = false;
  env_.AddPlugin(s);
  auto strict = Loader(true);
  ExpectRefused(strict, "example_gain", RefusalCode::kSignatureMissing, {"manifest.yaml.minisig"});
  auto lax = Loader(false);
  auto r = lax.Load("example_gain", *registry_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->plugin->signer_key_id(), "");
}

TEST_F(GateTest, LoadAllLoadsGoodPluginsAndReportsBadOnes) {
  env_.AddPlugin(Gain());
  auto bad = Test("tp_rpath", AERS_TP_RPATH_SO);
  env_.AddPlugin(bad);
  auto loader = Loader();
  auto results = loader.LoadAll(*registry_);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].dir, "example_gain");
  EXPECT_TRUE(results[0].loaded.ok()) << results[0].loaded.status();
  EXPECT_EQ(results[1].dir, "tp_rpath");
  EXPECT_EQ(RefusalCodeOf(results[1].loaded.status()), RefusalCode::kElfRpath);
  EXPECT_THAT(std::string(results[1].loaded.status().message()), HasSubstr("elf_rpath"));
  EXPECT_NE(registry_->Find("example_gain/gain"), nullptr);
  EXPECT_EQ(registry_->Find("tp_rpath/pass"), nullptr);
}

TEST_F(GateTest, AuditLogWritesJsonLines) {
  std::ostringstream out;
  JsonLinesAuditLog log(out);
  auto s = Gain();
  s.hash = std::string(64, 'a');
  env_.AddPlugin(s);
  PluginLoader loader(env_.Policy(), &log);
  ASSERT_FALSE(loader.Load("example_gain", *registry_).ok());
  const std::string line = out.str();
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  EXPECT_THAT(line, HasSubstr("\"event\":\"refused\",\"plugin\":\"example_gain\""));
  EXPECT_THAT(line, HasSubstr("\"reason\":\"hash_mismatch\",\"code\":\"hash_mismatch\""));
  EXPECT_THAT(line, HasSubstr(absl::StrCat("\"expected\":\"sha256:", std::string(64, 'a'), "\"")));
  EXPECT_THAT(line, HasSubstr("\"time\":\""));
}

// --- a load that cannot be audited --------------------------------------------

// Nothing loads without its audit record: a log that cannot be written
// refuses the load (audit_error, UNAVAILABLE), registers no kind and keeps
// no library; once the log takes records again, the same plugin loads.
TEST_F(GateTest, ALoadThatCannotBeAuditedIsRefused) {
  env_.AddPlugin(Gain());
  auto loader = Loader();
  audit_.fail = true;
  auto r = loader.Load("example_gain", *registry_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kAuditError);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("its load cannot be audited: the test's audit log is full"));
  EXPECT_EQ(audit_.failed, 2);  // the "loading" record, then the refusal's
  EXPECT_EQ(registry_->Find("example_gain/gain"), nullptr);
  EXPECT_EQ(MemfdLibraries(), 0);
  EXPECT_FALSE(fs::exists(env_.state + "/example_gain.serial"));  // no serial recorded

  audit_.fail = false;
  auto again = loader.Load("example_gain", *registry_);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(audit_.records.size(), 2u);
  EXPECT_EQ(audit_.records[0].event, "loading");
  EXPECT_EQ(audit_.records[1].event, "loaded");
  EXPECT_NE(registry_->Find("example_gain/gain"), nullptr);
}

// The "loading" record is written before the module is mapped (before any
// of its code, constructors included, can run), "loaded" after.
class LibrariesAtEachRecord final : public PluginAuditLog {
 public:
  absl::Status Record(const AuditRecord& r) override {
    seen.emplace_back(r.event, MemfdLibraries());
    return absl::OkStatus();
  }
  std::vector<std::pair<std::string, int>> seen;
};

TEST_F(GateTest, TheLoadingRecordComesBeforeThePluginsCode) {
  env_.AddPlugin(Gain());
  LibrariesAtEachRecord audit;
  PluginLoader loader(env_.Policy(), &audit);
  auto r = loader.Load("example_gain", *registry_);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::vector<std::pair<std::string, int>> expected = {{"loading", 0}, {"loaded", 1}};
  EXPECT_EQ(audit.seen, expected);
}

// The same with the file log on a device that takes nothing (/dev/full:
// every write fails with ENOSPC): the refusal names the file and the cause.
TEST_F(GateTest, AFullAuditLogFileRefusesTheLoad) {
  env_.AddPlugin(Gain());
  auto log = JsonLinesAuditLog::Open("/dev/full");
  ASSERT_TRUE(log.ok()) << log.status();
  PluginLoader loader(env_.Policy(), log->get());
  auto r = loader.Load("example_gain", *registry_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kAuditError);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("the plugin audit log /dev/full cannot be written: "));
  EXPECT_EQ(registry_->Find("example_gain/gain"), nullptr);
}

// A device that takes every record and keeps none is no audit log; one
// that fails every write is (the load is then refused, above).
TEST(PluginAuditLogTest, DevicesThatDiscardRecordsAreRefused) {
  for (const char* path : {"/dev/null", "/dev/zero", "/dev/urandom"}) {
    auto log = JsonLinesAuditLog::Open(path);
    ASSERT_FALSE(log.ok()) << path;
    EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(log.status().message()),
                HasSubstr(absl::StrCat("cannot open audit log ", path,
                                       ": a device that discards what is written to it")));
  }
  EXPECT_TRUE(JsonLinesAuditLog::Open("/dev/full").ok());
}

// A record cut short (the file hit its size limit mid-line) refuses the
// load; the next record starts on a line of its own, so every whole line of
// the log still reads as one record, also in the next process (a log opened
// on a file that ends inside a line). The limit (RLIMIT_FSIZE) is set around
// the load's own record only (the gate writes the module's sealed copy to a
// memfd, which the limit would stop too).
class FileLimitedOnce final : public PluginAuditLog {
 public:
  FileLimitedOnce(PluginAuditLog& inner, rlim_t limit) : inner_(inner), limit_(limit) {}
  absl::Status Record(const AuditRecord& r) override {
    if (!armed_) return inner_.Record(r);
    armed_ = false;
    struct rlimit old {};
    if (::getrlimit(RLIMIT_FSIZE, &old) != 0) return absl::InternalError("getrlimit");
    void (*old_handler)(int) = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = limit_;
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) return absl::InternalError("setrlimit");
    absl::Status st = inner_.Record(r);
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::signal(SIGXFSZ, old_handler);
    return st;
  }

 private:
  PluginAuditLog& inner_;
  rlim_t limit_;
  bool armed_ = true;
};

TEST_F(GateTest, ARecordCutShortLeavesTheNextOnItsOwnLine) {
  env_.AddPlugin(Gain());
  const std::string path = env_.base + "/plugin-audit.jsonl";
  auto log = JsonLinesAuditLog::Open(path);
  ASSERT_TRUE(log.ok()) << log.status();
  FileLimitedOnce limited(**log, 20);  // the "loading" record is cut after 20 bytes
  PluginLoader loader(env_.Policy(), &limited);
  auto r = loader.Load("example_gain", *registry_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kAuditError);
  EXPECT_EQ(registry_->Find("example_gain/gain"), nullptr);
  auto again = loader.Load("example_gain", *registry_);
  ASSERT_TRUE(again.ok()) << again.status();
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].size(), 20u);  // the torn fragment, alone on its line
  EXPECT_THAT(lines[1], HasSubstr("\"event\":\"refused\",\"plugin\":\"example_gain\""));
  EXPECT_THAT(lines[1], HasSubstr("\"code\":\"audit_error\""));
  EXPECT_THAT(lines[2], HasSubstr("\"event\":\"loading\",\"plugin\":\"example_gain\""));
  EXPECT_THAT(lines[3], HasSubstr("\"event\":\"loaded\",\"plugin\":\"example_gain\""));
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].front(), '{');
    EXPECT_EQ(lines[i].back(), '}');
  }

  // A file that ends inside a line, opened again (a restart, a render).
  {
    std::ofstream torn(path, std::ios::app);
    torn << "{\"time\":\"2026-";
  }
  auto reopened = JsonLinesAuditLog::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  AuditRecord rec;
  rec.event = "refused";
  rec.plugin = "other";
  ASSERT_TRUE((*reopened)->Record(rec).ok());
  std::ifstream in2(path);
  std::string line, last;
  size_t count = 0;
  while (std::getline(in2, line)) {
    ++count;
    last = line;
  }
  EXPECT_EQ(count, 6u);
  EXPECT_EQ(last.front(), '{');
  EXPECT_THAT(last, HasSubstr("\"plugin\":\"other\""));
}

// The names are an interface (audit readers, scripts, docs/plugins.md):
// pinned here, each once, and the code travels with the Status, not its text.
TEST(RefusalCodeTest, NamesAreStableAndTheCodeTravelsWithTheStatus) {
  const std::vector<std::pair<RefusalCode, std::string>> pinned = {
      {RefusalCode::kPathEscape, "path_escape"},
      {RefusalCode::kSymlink, "symlink"},
      {RefusalCode::kNotFound, "not_found"},
      {RefusalCode::kInvalidName, "invalid_name"},
      {RefusalCode::kDirectoryUnreadable, "directory_unreadable"},
      {RefusalCode::kDirectoryType, "directory_type"},
      {RefusalCode::kDirectoryOwner, "directory_owner"},
      {RefusalCode::kDirectoryPermissions, "directory_permissions"},
      {RefusalCode::kManifestUnreadable, "manifest_unreadable"},
      {RefusalCode::kManifestType, "manifest_type"},
      {RefusalCode::kManifestOwner, "manifest_owner"},
      {RefusalCode::kManifestPermissions, "manifest_permissions"},
      {RefusalCode::kManifestInvalid, "manifest_invalid"},
      {RefusalCode::kNameMismatch, "name_mismatch"},
      {RefusalCode::kAbiMismatch, "abi_mismatch"},
      {RefusalCode::kModuleOutsideAllowedDirs, "module_outside_allowed_dirs"},
      {RefusalCode::kModuleUnreadable, "module_unreadable"},
      {RefusalCode::kModuleType, "module_type"},
      {RefusalCode::kModuleOwner, "module_owner"},
      {RefusalCode::kModulePermissions, "module_permissions"},
      {RefusalCode::kModuleTooLarge, "module_too_large"},
      {RefusalCode::kBundleEntry, "bundle_entry"},
      {RefusalCode::kHashMismatch, "hash_mismatch"},
      {RefusalCode::kSignatureMissing, "signature_missing"},
      {RefusalCode::kSignatureInvalid, "signature_invalid"},
      {RefusalCode::kSignatureType, "signature_type"},
      {RefusalCode::kSignatureOwner, "signature_owner"},
      {RefusalCode::kSignaturePermissions, "signature_permissions"},
      {RefusalCode::kUntrustedKey, "untrusted_key"},
      {RefusalCode::kRollback, "rollback"},
      {RefusalCode::kStateError, "state_error"},
      {RefusalCode::kElfInvalid, "elf_invalid"},
      {RefusalCode::kElfRpath, "elf_rpath"},
      {RefusalCode::kElfTextrel, "elf_textrel"},
      {RefusalCode::kElfExecstack, "elf_execstack"},
      {RefusalCode::kElfDependency, "elf_dependency"},
      {RefusalCode::kAlreadyLoaded, "already_loaded"},
      {RefusalCode::kDlopenFailed, "dlopen_failed"},
      {RefusalCode::kEntryMissing, "entry_missing"},
      {RefusalCode::kDescriptorInvalid, "descriptor_invalid"},
      {RefusalCode::kKindNotAllowed, "kind_not_allowed"},
      {RefusalCode::kKindExists, "kind_exists"},
      {RefusalCode::kLadspaLabelMissing, "ladspa_label_missing"},
      {RefusalCode::kLadspaUnsupported, "ladspa_unsupported"},
      {RefusalCode::kLv2UriMissing, "lv2_uri_missing"},
      {RefusalCode::kLv2Unsupported, "lv2_unsupported"},
      {RefusalCode::kLv2StoreError, "lv2_store_error"},
      {RefusalCode::kAuditError, "audit_error"},
      {RefusalCode::kInternal, "internal"},
  };
  ASSERT_EQ(pinned.size(), static_cast<size_t>(RefusalCode::kInternal) + 1);
  std::set<std::string> names;
  for (const auto& [code, name] : pinned) {
    EXPECT_EQ(RefusalCodeName(code), name);
    EXPECT_TRUE(names.insert(name).second) << name << " twice";
    const absl::Status status = RefusalStatus(code, "detail");
    EXPECT_EQ(RefusalCodeOf(status), code) << name;
    EXPECT_EQ(status.code(), StatusCodeFor(code)) << name;
    EXPECT_EQ(status.message(), "detail");
  }
  EXPECT_EQ(StatusCodeFor(RefusalCode::kManifestInvalid), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeFor(RefusalCode::kNotFound), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusCodeFor(RefusalCode::kAuditError), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusCodeFor(RefusalCode::kKindExists), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusCodeFor(RefusalCode::kStateError), absl::StatusCode::kInternal);
  EXPECT_EQ(StatusCodeFor(RefusalCode::kHashMismatch), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(RefusalCodeOf(absl::OkStatus()), std::nullopt);
  // A message that reads like a refusal is not one.
  EXPECT_EQ(RefusalCodeOf(absl::PermissionDeniedError("plugin 'x' refused (hash_mismatch): y")),
            std::nullopt);
}

// --- refusals: the module's bytes -------------------------------------------------

TEST_F(GateTest, RefusesWrongHash) {
  auto s = Gain();
  s.hash = std::string(64, '0');
  env_.AddPlugin(s);
  const std::string real = FileHash(env_.Dir("example_gain") + "/example_gain.so");
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kHashMismatch,
                {"plugin 'example_gain'", "example_gain.so", "seen sha256:" + real,
                 "expected sha256:" + std::string(64, '0')});
}

TEST_F(GateTest, RefusesModuleChangedAfterManifestWasWritten) {
  env_.AddPlugin(Gain());
  const std::string module = env_.Dir("example_gain") + "/example_gain.so";
  const std::string before = FileHash(module);
  {
    std::ofstream f(module, std::ios::app | std::ios::binary);
    f << '\0';
  }
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kHashMismatch,
                {"expected sha256:" + before, "seen sha256:" + FileHash(module)});
}

TEST_F(GateTest, RefusesModuleSwappedForSymlink) {
  for (bool fallback : {false, true}) {
    SCOPED_TRACE(fallback ? "component-wise O_NOFOLLOW walk" : "openat2");
    SetOpenat2DisabledForTesting(fallback);
    env_.AddPlugin(Gain());
    const std::string module = env_.Dir("example_gain") + "/example_gain.so";
    // Same bytes elsewhere; the manifest's hash would even match.
    const std::string elsewhere = env_.base + "/elsewhere.so";
    fs::copy_file(module, elsewhere, fs::copy_options::overwrite_existing);
    fs::remove(module);
    fs::create_symlink(elsewhere, module);
    auto loader = Loader();
    ExpectRefused(loader, "example_gain", RefusalCode::kSymlink, {"symlink", "example_gain.so"});
    EXPECT_EQ(LastOpenUsedOpenat2(), !fallback);
    fs::remove_all(env_.Dir("example_gain"));
  }
}

TEST_F(GateTest, RefusesOversizedAndEmptyModule) {
  env_.AddPlugin(Gain());
  auto policy = env_.Policy();
  policy.max_module_bytes = 4096;
  PluginLoader small(policy, &audit_);
  ExpectRefused(small, "example_gain", RefusalCode::kModuleTooLarge, {"the limit is 4096"});

  auto s = Gain();
  s.hash = std::string(64, 'e');
  env_.AddPlugin(s);
  WriteText(env_.Dir("example_gain") + "/example_gain.so", "");
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kElfInvalid, {"module is empty"});
}

// --- refusals: paths --------------------------------------------------------------

TEST_F(GateTest, RefusesModulePathEscapingThePluginDirectory) {
  auto s = Gain();
  s.module = "../other/example_gain.so";
  env_.AddPlugin(Gain());  // a real module in place
  // (unsigned: aers-plugin refuses to sign an invalid manifest; the parser
  // refuses it before the signature is looked at anyway)
  WriteText(env_.Dir("example_gain") + "/manifest.yaml",
            PluginEnv::ManifestText(s, FileHash(AERS_EXAMPLE_GAIN_SO)));
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kManifestInvalid,
                {"manifest.yaml:4:9: module:", "'..'"});

  s.module = "/tmp/example_gain.so";  // absolute, format aers
  WriteText(env_.Dir("example_gain") + "/manifest.yaml",
            PluginEnv::ManifestText(s, FileHash(AERS_EXAMPLE_GAIN_SO)));
  ExpectRefused(loader, "example_gain", RefusalCode::kManifestInvalid,
                {"manifest.yaml:4:9: module:", "must be a relative path"});
}

TEST_F(GateTest, RefusesDirectoryNameEscapingTheRoot) {
  auto loader = Loader();
  ExpectRefused(loader, "..", RefusalCode::kPathEscape, {"one directory beneath the plugin root"});
  ExpectRefused(loader, "a/../../etc", RefusalCode::kPathEscape, {});
  ExpectRefused(loader, "/etc", RefusalCode::kPathEscape, {});
}

TEST_F(GateTest, RefusesSymlinkedPluginDirectory) {
  for (bool fallback : {false, true}) {
    SCOPED_TRACE(fallback ? "component-wise O_NOFOLLOW walk" : "openat2");
    SetOpenat2DisabledForTesting(fallback);
    // A complete, correctly signed plugin outside the root, linked in.
    PluginEnv outside;
    outside.AddPlugin(Gain("linked"));
    fs::copy_file(outside.public_key, env_.keys + "/outside.pub",
                  fs::copy_options::overwrite_existing);
    fs::create_symlink(outside.Dir("linked"), env_.Dir("linked"));
    auto loader = Loader();
    ExpectRefused(loader, "linked", RefusalCode::kSymlink, {"symlink"});
    fs::remove(env_.Dir("linked"));
    fs::remove(env_.keys + "/outside.pub");
  }
}

TEST_F(GateTest, RefusesManifestAndSignatureSymlinks) {
  env_.AddPlugin(Gain());
  const std::string dir = env_.Dir("example_gain");
  // A manifest symlinked to a copy outside the root.
  fs::copy_file(dir + "/manifest.yaml", env_.base + "/manifest.yaml");
  fs::remove(dir + "/manifest.yaml");
  fs::create_symlink(env_.base + "/manifest.yaml", dir + "/manifest.yaml");
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kSymlink, {"'manifest.yaml' has a symlink"});
  fs::remove(dir + "/manifest.yaml");
  fs::copy_file(env_.base + "/manifest.yaml", dir + "/manifest.yaml");
  // The same for the signature.
  fs::copy_file(dir + "/manifest.yaml.minisig", env_.base + "/manifest.yaml.minisig");
  fs::remove(dir + "/manifest.yaml.minisig");
  fs::create_symlink(env_.base + "/manifest.yaml.minisig", dir + "/manifest.yaml.minisig");
  ExpectRefused(loader, "example_gain", RefusalCode::kSymlink,
                {"'manifest.yaml.minisig' has a symlink"});
}

TEST_F(GateTest, RefusesSymlinkedDirectoryOnTheModulePath) {
  for (bool fallback : {false, true}) {
    SCOPED_TRACE(fallback ? "component-wise O_NOFOLLOW walk" : "openat2");
    SetOpenat2DisabledForTesting(fallback);
    auto s = Gain();
    s.module = "lib/example_gain.so";
    env_.AddPlugin(s);
    const std::string lib = env_.Dir("example_gain") + "/lib";
    const std::string outside = env_.base + "/outside-lib";
    fs::remove_all(outside);
    fs::rename(lib, outside);
    fs::create_directory_symlink(outside, lib);
    auto loader = Loader();
    ExpectRefused(loader, "example_gain", RefusalCode::kSymlink, {"lib/example_gain.so"});
    fs::remove_all(env_.Dir("example_gain"));
  }
}

TEST_F(GateTest, LadspaModuleOutsideAllowedSystemDirectoriesIsRefused) {
  PluginSpec s;
  s.name = "amp";
  s.format = "ladspa";
  s.module = AERS_EXAMPLE_GAIN_SO;  // absolute, not under an allowed dir
  s.allowed = {"amp_mono"};
  s.extra = "labels: [amp_mono]\n";
  s.hash = FileHash(AERS_EXAMPLE_GAIN_SO);
  env_.AddPlugin(s);
  auto loader = Loader();
  ExpectRefused(loader, "amp", RefusalCode::kModuleOutsideAllowedDirs, {"allowed: none"});
}

// --- refusals: ownership and mode ---------------------------------------------------

TEST_F(GateTest, RefusesGroupWritableModule) {
  env_.AddPlugin(Gain());
  ::chmod((env_.Dir("example_gain") + "/example_gain.so").c_str(), 0664);
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kModulePermissions,
                {"group-writable", "0664"});
}

TEST_F(GateTest, RefusesWorldWritableModule) {
  env_.AddPlugin(Gain());
  ::chmod((env_.Dir("example_gain") + "/example_gain.so").c_str(), 0646);
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kModulePermissions,
                {"world-writable", "0646"});
}

TEST_F(GateTest, RefusesWritableManifestAndDirectory) {
  env_.AddPlugin(Gain());
  ::chmod((env_.Dir("example_gain") + "/manifest.yaml").c_str(), 0666);
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kManifestPermissions, {"world-writable"});
  ::chmod((env_.Dir("example_gain") + "/manifest.yaml").c_str(), 0644);
  ::chmod(env_.Dir("example_gain").c_str(), 0775);
  ExpectRefused(loader, "example_gain", RefusalCode::kDirectoryPermissions, {"group-writable"});
}

TEST_F(GateTest, RefusesFifoInPlaceOfTheModuleWithoutHanging) {
  env_.AddPlugin(Gain());
  const std::string module = env_.Dir("example_gain") + "/example_gain.so";
  fs::remove(module);
  ASSERT_EQ(::mkfifo(module.c_str(), 0644), 0);
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kModuleType, {"is not a regular file"});
}

TEST_F(GateTest, RefusesModuleOwnedBySomeoneElse) {
  if (!IsRoot()) GTEST_SKIP() << "chown needs root";
  env_.AddPlugin(Gain());
  ASSERT_EQ(::chown((env_.Dir("example_gain") + "/example_gain.so").c_str(), 65534, 65534), 0);
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kModuleOwner, {"owned by uid 65534"});
}

// --- refusals: signatures and serials ----------------------------------------------

TEST_F(GateTest, RefusesMissingSignatureWhenRequired) {
  auto s = Gain();
  s.sign = false;
  env_.AddPlugin(s);
  auto loader = Loader(true);
  ExpectRefused(loader, "example_gain", RefusalCode::kSignatureMissing,
                {"policy requires a signature"});
}

TEST_F(GateTest, RefusesBadSignature) {
  env_.AddPlugin(Gain());
  // The manifest changes after signing (a widened allow-list, say).
  const std::string path = env_.Dir("example_gain") + "/manifest.yaml";
  std::string text = ReadText(path);
  text.replace(text.find("[gain]"), 6, "[gain, evil]");
  WriteText(path, text);
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kSignatureInvalid,
                {"signature verification failed", env_.key_id});

  // The trusted comment is edited: its own signature fails.
  env_.SignDir("example_gain");
  const std::string sig_path = path + ".minisig";
  std::string sig = ReadText(sig_path);
  const size_t tc = sig.find("\ntrusted comment: ");
  ASSERT_NE(tc, std::string::npos);
  sig.insert(tc + std::strlen("\ntrusted comment: "), "X");
  WriteText(sig_path, sig);
  ExpectRefused(loader, "example_gain", RefusalCode::kSignatureInvalid,
                {"trusted comment signature"});

  WriteText(sig_path, "untrusted comment: x\nnot base64\n");
  ExpectRefused(loader, "example_gain", RefusalCode::kSignatureInvalid, {"fewer than 4 lines"});
}

TEST_F(GateTest, RefusesSignatureByUntrustedKey) {
  auto s = Gain();
  s.sign = false;
  env_.AddPlugin(s);
  const std::string other_pub = env_.base + "/other.pub", other_sec = env_.base + "/other.sec";
  auto id = tool::KeyGen(other_pub, other_sec);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(tool::Sign(env_.Dir("example_gain"), other_sec).ok());
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kUntrustedKey,
                {"signed by key " + *id, "not a trusted key"});
}

TEST_F(GateTest, RefusesRolledBackSerial) {
  auto s = Gain();
  s.serial = 5;
  env_.AddPlugin(s);
  {
    auto registry = dsp::MakeBuiltinRegistry();
    auto loader = Loader();
    auto r = loader.Load("example_gain", *registry);
    ASSERT_TRUE(r.ok()) << r.status();
  }  // unloaded again
  EXPECT_EQ(ReadText(env_.state + "/example_gain.serial"), "5\n");
  struct stat st {};
  ASSERT_EQ(::stat(env_.state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  s.serial = 4;  // an older, correctly signed release
  env_.AddPlugin(s);
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kRollback,
                {"serial 4 is lower than the highest accepted serial 5", "seen 4, expected >= 5"});
  EXPECT_EQ(ReadText(env_.state + "/example_gain.serial"), "5\n");

  s.serial = 5;  // the same serial again is fine; a newer one raises the mark
  env_.AddPlugin(s);
  {
    auto registry = dsp::MakeBuiltinRegistry();
    ASSERT_TRUE(Loader().Load("example_gain", *registry).ok());
  }
  s.serial = 7;
  env_.AddPlugin(s);
  {
    auto registry = dsp::MakeBuiltinRegistry();
    ASSERT_TRUE(Loader().Load("example_gain", *registry).ok());
  }
  EXPECT_EQ(ReadText(env_.state + "/example_gain.serial"), "7\n");
}

// --- refusals: what the plugin declares ---------------------------------------------

TEST_F(GateTest, RefusesKindNotInAllowList) {
  env_.AddPlugin(Test("sneaky", AERS_TP_EXTRA_KIND_SO));
  auto loader = Loader();
  ExpectRefused(loader, "sneaky", RefusalCode::kKindNotAllowed,
                {"declares kind 'sneaky'", "seen sneaky, expected one of [pass]"});
  EXPECT_EQ(registry_->Find("sneaky/pass"), nullptr);
}

TEST_F(GateTest, RefusesAbiMismatch) {
  env_.AddPlugin(Test("oldabi", AERS_TP_ABI_SO));
  auto loader = Loader();
  ExpectRefused(loader, "oldabi", RefusalCode::kAbiMismatch,
                {"built for ABI 999, this host has ABI 1"});

  auto s = Test("oldabi", AERS_TP_ABI_SO);
  s.abi = 2;  // the manifest itself names another ABI: refused before loading
  env_.AddPlugin(s);
  ExpectRefused(loader, "oldabi", RefusalCode::kAbiMismatch,
                {"manifest's abi_version", "seen 2, expected 1"});
}

TEST_F(GateTest, RefusesKindNameAlreadyRegistered) {
  auto taken = std::make_shared<dsp::TableKind>(
      "example_gain/gain", "placeholder", std::vector<model::ParamDesc>{}, dsp::InOutLayout,
      [](const model::NodeSpec&, const std::map<std::string, model::ParamValue>&,
         const rt::StreamFormat&) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
        return absl::UnimplementedError("placeholder");
      });
  ASSERT_TRUE(registry_->Add(taken).ok());
  env_.AddPlugin(Gain());
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kKindExists,
                {"'example_gain/gain' is already registered"});
}

// --- refusals: the ELF file -------------------------------------------------------------

TEST_F(GateTest, RefusesRpathAndRunpath) {
  env_.AddPlugin(Test("tp_rpath", AERS_TP_RPATH_SO));
  env_.AddPlugin(Test("tp_runpath", AERS_TP_RUNPATH_SO));
  auto loader = Loader();
  ExpectRefused(loader, "tp_rpath", RefusalCode::kElfRpath, {"DT_RPATH=/tmp/aers-evil"});
  ExpectRefused(loader, "tp_runpath", RefusalCode::kElfRpath, {"DT_RUNPATH=/tmp/aers-evil"});
}

TEST_F(GateTest, RefusesExecutableStack) {
  env_.AddPlugin(Test("tp_execstack", AERS_TP_EXECSTACK_SO));
  auto loader = Loader();
  ExpectRefused(loader, "tp_execstack", RefusalCode::kElfExecstack,
                {"executable stack", "seen PT_GNU_STACK RWE"});
}

TEST_F(GateTest, RefusesMissingGnuStackHeader) {
  // Patch the good plugin's PT_GNU_STACK into PT_NULL: the loader would then
  // default to an executable stack.
  std::string bytes = ReadText(AERS_TP_GOOD_SO);
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof eh);
  bool patched = false;
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    const size_t off = eh.e_phoff + i * sizeof ph;
    std::memcpy(&ph, bytes.data() + off, sizeof ph);
    if (ph.p_type == PT_GNU_STACK) {
      ph.p_type = PT_NULL;
      std::memcpy(bytes.data() + off, &ph, sizeof ph);
      patched = true;
    }
  }
  ASSERT_TRUE(patched);
  const std::string patched_so = env_.base + "/nostack.so";
  WriteText(patched_so, bytes);
  env_.AddPlugin(Test("nostack", patched_so.c_str()));
  auto loader = Loader();
  ExpectRefused(loader, "nostack", RefusalCode::kElfExecstack, {"no PT_GNU_STACK"});
}

TEST_F(GateTest, RefusesDependencyNotOnTheList) {
  env_.AddPlugin(Test("needs_sodium", AERS_TP_SODIUM_SO));
  auto loader = Loader();
  ExpectRefused(
      loader, "needs_sodium", RefusalCode::kElfDependency,
      {"depends on 'libsodium.so.23'", "one of ld-linux-x86-64.so.2, libc.so.6, libm.so.6"});

  // Listed in the manifest, it loads.
  auto s = Test("needs_sodium", AERS_TP_SODIUM_SO);
  s.deps = {"libsodium.so.23"};
  env_.AddPlugin(s);
  auto r = loader.Load("needs_sodium", *registry_);
  ASSERT_TRUE(r.ok()) << r.status();
}

TEST_F(GateTest, RefusesMalformedElf) {
  const std::string junk = env_.base + "/junk.so";
  WriteText(junk,
            "\x7f"
            "ELF but not really an ELF file at all, just text........................");
  env_.AddPlugin(Test("junk", junk.c_str()));
  auto loader = Loader();
  ExpectRefused(loader, "junk", RefusalCode::kElfInvalid, {"malformed ELF"});
}

TEST_F(GateTest, RefusesLibraryNameAlreadyLoaded) {
  env_.AddPlugin(Gain());
  auto loader = Loader();
  auto first = loader.Load("example_gain", *registry_);
  ASSERT_TRUE(first.ok()) << first.status();

  // The same module under another plugin name: its soname is taken.
  auto copy = Gain("gain_copy");
  env_.AddPlugin(copy);
  ExpectRefused(loader, "gain_copy", RefusalCode::kAlreadyLoaded,
                {"'libaers_example_gain.so' is already loaded"});

  // A module whose file name is that of a library the daemon already uses.
  auto clash = Test("clash", AERS_TP_GOOD_SO);
  clash.module = "libsodium.so.23";
  env_.AddPlugin(clash);
  ExpectRefused(loader, "clash", RefusalCode::kAlreadyLoaded,
                {"'libsodium.so.23' is already loaded"});
}

TEST_F(GateTest, RefusesManifestWhoseNameIsNotItsDirectory) {
  auto s = Gain();
  env_.AddPlugin(s);
  fs::rename(env_.Dir("example_gain"), env_.Dir("renamed"));
  auto loader = Loader();
  ExpectRefused(loader, "renamed", RefusalCode::kNameMismatch,
                {"'example_gain' differs from its directory name 'renamed'"});
}

TEST_F(GateTest, RefusesMalformedManifestWithPosition) {
  env_.AddPlugin(Gain());
  const std::string path = env_.Dir("example_gain") + "/manifest.yaml";
  WriteText(path, ReadText(path) + "debug: true\n");
  auto loader = Loader();
  ExpectRefused(loader, "example_gain", RefusalCode::kManifestInvalid,
                {"manifest.yaml:11:1: debug: unknown key"});
}

TEST_F(GateTest, VerifyChecksWithoutLoading) {
  env_.AddPlugin(Gain());
  auto loader = Loader();
  auto v = loader.Verify("example_gain");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->signer_key_id, env_.key_id);
  EXPECT_EQ(v->elf.soname, "libaers_example_gain.so");
  EXPECT_EQ(MemfdLibraries(), 0);
  EXPECT_FALSE(fs::exists(env_.state + "/example_gain.serial"));
}

}  // namespace
}  // namespace aers::plugin::test
