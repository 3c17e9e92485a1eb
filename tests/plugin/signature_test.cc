// Signatures: minisign's own tool and ours agree in both directions, for the
// prehashed ("ED") and legacy ("Ed") variants; the aers-plugin command line
// takes a plugin from template to loaded.
#include <sys/wait.h>

#include <cstdlib>

#include "gmock/gmock.h"
#include "plugin/plugin_fixture.h"

namespace aers::plugin::test {
namespace {

using ::testing::HasSubstr;

bool HaveMinisign() {
  return std::system("command -v minisign >/dev/null 2>&1") == 0;
}

// Runs a shell command (stdin from /dev/null); returns its exit status and
// stdout+stderr.
std::pair<int, std::string> Sh(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " </dev/null 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, ""};
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

PluginSpec Gain(bool sign = false) {
  PluginSpec s;
  s.name = "example_gain";
  s.so_path = AERS_EXAMPLE_GAIN_SO;
  s.module = "example_gain.so";
  s.allowed = {"gain"};
  s.sign = sign;
  return s;
}

TEST(MinisignTest, SignAndVerifyBothVariants) {
  auto kp = minisign::GenerateKeyPair();
  ASSERT_TRUE(kp.ok());
  auto sk = minisign::ParseSecretKey(kp->secret_key);
  auto pk = minisign::ParsePublicKey(kp->public_key);
  ASSERT_TRUE(sk.ok()) << sk.status();
  ASSERT_TRUE(pk.ok()) << pk.status();
  EXPECT_EQ(sk->key_id, pk->key_id);
  for (bool prehashed : {true, false}) {
    auto text = minisign::Sign(*sk, "hello\n", "f", "", prehashed);
    ASSERT_TRUE(text.ok());
    auto sig = minisign::ParseSignature(*text);
    ASSERT_TRUE(sig.ok()) << sig.status();
    EXPECT_EQ(sig->prehashed, prehashed);
    EXPECT_THAT(sig->trusted_comment, HasSubstr("file:f"));
    EXPECT_TRUE(minisign::Verify(*sig, *pk, "hello\n").ok());
    EXPECT_THAT(std::string(minisign::Verify(*sig, *pk, "hello!\n").message()),
                HasSubstr("signature verification failed"));
    auto tampered = *sig;
    tampered.trusted_comment += " ";
    EXPECT_THAT(std::string(minisign::Verify(tampered, *pk, "hello\n").message()),
                HasSubstr("trusted comment signature verification failed"));
  }
  auto other = minisign::GenerateKeyPair();
  auto other_pk = minisign::ParsePublicKey(other->public_key);
  auto sig = minisign::ParseSignature(*minisign::Sign(*sk, "x", "f"));
  EXPECT_THAT(std::string(minisign::Verify(*sig, *other_pk, "x").message()),
              HasSubstr("is not the key id"));
}

TEST(MinisignTest, RejectsMalformedKeysAndSignatures) {
  EXPECT_FALSE(minisign::ParsePublicKey("untrusted comment: x\nAAAA\n").ok());
  EXPECT_FALSE(minisign::ParseSecretKey("untrusted comment: x\nAAAA\n").ok());
  EXPECT_FALSE(minisign::ParseSignature("").ok());
  EXPECT_FALSE(
      minisign::ParseSignature("untrusted comment: x\nAAAA\ntrusted comment: y\nAAAA\n").ok());
}

TEST(MinisignInteropTest, StockMinisignSignaturesAreAccepted) {
  if (!HaveMinisign()) GTEST_SKIP() << "minisign is not installed";
  PluginEnv env;
  env.AddPlugin(Gain());
  const std::string pub = env.keys + "/stock.pub", sec = env.base + "/stock.sec";
  auto [rc, out] = Sh(absl::StrCat("minisign -G -W -p ", pub, " -s ", sec));
  ASSERT_EQ(rc, 0) << out;
  auto pk = minisign::ParsePublicKey(ReadText(pub));
  ASSERT_TRUE(pk.ok()) << pk.status();
  const std::string manifest = env.Dir("example_gain") + "/manifest.yaml";
  for (const char* flags : {"", "-l"}) {
    SCOPED_TRACE(*flags ? "legacy signature" : "prehashed signature");
    std::tie(rc, out) =
        Sh(absl::StrCat("minisign -S ", flags, " -s ", sec, " -m ", manifest, " -t 'release 1.0'"));
    ASSERT_EQ(rc, 0) << out;
    auto registry = dsp::MakeBuiltinRegistry();
    PluginLoader loader(env.Policy(true));
    auto r = loader.Load("example_gain", *registry);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->plugin->signer_key_id(), minisign::KeyIdHex(pk->key_id));
  }
}

TEST(MinisignInteropTest, OurSignaturesVerifyWithMinisign) {
  if (!HaveMinisign()) GTEST_SKIP() << "minisign is not installed";
  PluginEnv env;
  env.AddPlugin(Gain());
  const std::string manifest = env.Dir("example_gain") + "/manifest.yaml";
  ASSERT_TRUE(tool::Sign(env.Dir("example_gain"), env.secret_key, "aers test").ok());
  auto [rc, out] = Sh(absl::StrCat("minisign -V -H -p ", env.public_key, " -m ", manifest));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("Trusted comment: aers test"));

  ASSERT_TRUE(tool::Sign(env.Dir("example_gain"), env.secret_key, "", /*legacy=*/true).ok());
  std::tie(rc, out) = Sh(absl::StrCat("minisign -V -p ", env.public_key, " -m ", manifest));
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = Sh(absl::StrCat("minisign -V -H -p ", env.public_key, " -m ", manifest));
  EXPECT_NE(rc, 0) << "a legacy signature passed minisign -H: " << out;

  // minisign refuses what we refuse.
  WriteText(manifest, ReadText(manifest) + "# edited\n");
  std::tie(rc, out) = Sh(absl::StrCat("minisign -V -p ", env.public_key, " -m ", manifest));
  EXPECT_NE(rc, 0) << out;
}

TEST(MinisignInteropTest, OurKeysWorkWithMinisign) {
  if (!HaveMinisign()) GTEST_SKIP() << "minisign is not installed";
  PluginEnv env;
  env.AddPlugin(Gain());
  const std::string pub = env.keys + "/ours.pub", sec = env.base + "/ours.sec";
  auto id = tool::KeyGen(pub, sec);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_FALSE(tool::KeyGen(pub, sec).ok()) << "overwrote an existing key without -f";
  const std::string manifest = env.Dir("example_gain") + "/manifest.yaml";
  auto [rc, out] = Sh(absl::StrCat("minisign -S -s ", sec, " -m ", manifest));
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Sh(absl::StrCat("minisign -V -p ", pub, " -m ", manifest));
  ASSERT_EQ(rc, 0) << out;
  auto registry = dsp::MakeBuiltinRegistry();
  PluginLoader loader(env.Policy(true));
  auto r = loader.Load("example_gain", *registry);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->plugin->signer_key_id(), *id);
}

TEST(AersPluginToolTest, TemplateToLoadedPlugin) {
  PluginEnv env;
  const std::string dir = env.Dir("example_gain");
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  fs::copy_file(AERS_EXAMPLE_GAIN_SO, dir + "/example_gain.so");
  fs::copy_file(std::string(AERS_SOURCE_ROOT) + "/plugins/example_gain/manifest.yaml.in",
                dir + "/manifest.yaml");
  ::chmod((dir + "/manifest.yaml").c_str(), 0644);
  const std::string bin = AERS_PLUGIN_TOOL;
  const std::string pub = env.keys + "/cli.pub", sec = env.base + "/cli.sec";

  auto [rc, out] = Sh(absl::StrCat(bin, " hash ", dir));
  EXPECT_EQ(rc, 1) << out;  // the template's zero hash does not match
  EXPECT_THAT(out, HasSubstr("sha256:" + FileHash(dir + "/example_gain.so")));
  std::tie(rc, out) = Sh(absl::StrCat(bin, " hash ", dir, " --write"));
  ASSERT_EQ(rc, 0) << out;
  EXPECT_THAT(ReadText(dir + "/manifest.yaml"), HasSubstr(FileHash(dir + "/example_gain.so")));
  EXPECT_THAT(ReadText(dir + "/manifest.yaml"), HasSubstr("# Raise `serial`"));  // comments kept
  std::tie(rc, out) = Sh(absl::StrCat(bin, " hash ", dir, " --algorithm blake2b"));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out,
              HasSubstr("blake2b:" + FileHash(dir + "/example_gain.so", HashAlgorithm::kBlake2b)));

  std::tie(rc, out) = Sh(absl::StrCat(bin, " keygen -p ", pub, " -s ", sec));
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Sh(absl::StrCat(bin, " sign ", dir, " -s ", sec));
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Sh(absl::StrCat(bin, " verify ", dir, " -p ", pub));
  ASSERT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("plugin 'example_gain' 1.0.0 (serial 1): OK"));
  std::tie(rc, out) = Sh(absl::StrCat(bin, " verify ", dir, " -p ", env.public_key));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr("untrusted_key"));
  auto untrusted = tool::Verify(dir, env.public_key);  // the same, in process: the code
  ASSERT_FALSE(untrusted.ok());
  EXPECT_EQ(RefusalCodeOf(untrusted.status()), RefusalCode::kUntrustedKey);
  std::tie(rc, out) = Sh(absl::StrCat(bin, " frobnicate"));
  EXPECT_EQ(rc, 2) << out;

  auto registry = dsp::MakeBuiltinRegistry();
  PluginLoader loader(env.Policy(true));
  auto r = loader.Load("example_gain", *registry);
  ASSERT_TRUE(r.ok()) << r.status();
}

}  // namespace
}  // namespace aers::plugin::test
