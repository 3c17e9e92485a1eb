// `aersctl plugin hash|keygen|sign|verify`, run as the built binary on a copy
// of the example plugin: the documented workflow (keygen -> hash --write ->
// sign -> verify) succeeds, minisign itself accepts the signature, and
// failures exit non-zero with a message that names the problem.
//
// Programs are started with posix_spawn (no shell); AERSCTL_PATH,
// AERS_EXAMPLE_GAIN_SO and AERS_SOURCE_ROOT come from tests/meson.build.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

struct Result {
  int rc = -1;  // exit status, or -1 if it did not exit normally
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] looked up in PATH when it has no '/'), capturing
// stdout and stderr.
Result RunProgram(const std::vector<std::string>& args) {
  Result r;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawn_err = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (spawn_err != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ADD_FAILURE() << "cannot run " << args[0] << ": " << std::strerror(spawn_err);
    return r;
  }
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds, 2, 30000) <= 0) break;  // a hung child: give up reading
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ::chmod(path.c_str(), 0644);
}

bool HaveMinisign() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/minisign").c_str(), X_OK) == 0) return true;
  }
  return false;
}

// A copy of the example plugin in <base>/root/example_gain, with the
// manifest template (hash still zero, unsigned), and where keys go.
class AersctlPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/aersctl-plugin-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    dir_ = base_ + "/root/example_gain";
    fs::create_directories(dir_);
    // The gate refuses group/world-writable directories and files.
    for (const auto& d : {base_, base_ + "/root", dir_}) ::chmod(d.c_str(), 0755);
    fs::copy_file(AERS_EXAMPLE_GAIN_SO, dir_ + "/example_gain.so");
    ::chmod((dir_ + "/example_gain.so").c_str(), 0644);
    WriteText(dir_ + "/manifest.yaml",
              ReadText(std::string(AERS_SOURCE_ROOT) + "/plugins/example_gain/manifest.yaml.in"));
    pub_ = base_ + "/test.pub";
    sec_ = base_ + "/test.sec";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  static Result Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), AERSCTL_PATH);
    return RunProgram(args);
  }

  // keygen -> hash --write -> sign, each checked.
  void SignedPlugin() {
    const Result keygen = Ctl({"plugin", "keygen", "-p", pub_, "-s", sec_});
    ASSERT_EQ(keygen.rc, 0) << keygen.err;
    EXPECT_NE(keygen.out.find("key "), std::string::npos) << keygen.out;
    struct stat st {};
    ASSERT_EQ(::stat(sec_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "the secret key must be private";

    const Result stale = Ctl({"plugin", "hash", dir_});
    EXPECT_EQ(stale.rc, 1) << "the template's zero hash must not match";
    EXPECT_NE(stale.err.find("--write"), std::string::npos) << stale.err;

    const Result hash = Ctl({"plugin", "hash", dir_, "--write"});
    ASSERT_EQ(hash.rc, 0) << hash.err;
    ASSERT_EQ(hash.out.rfind("sha256:", 0), 0u) << hash.out;
    const std::string hex = hash.out.substr(7, 64);
    EXPECT_NE(ReadText(dir_ + "/manifest.yaml").find(hex), std::string::npos);
    EXPECT_EQ(Ctl({"plugin", "hash", dir_}).rc, 0) << "the manifest now matches";

    const Result sign =
        Ctl({"plugin", "sign", dir_, "-s", sec_, "--trusted-comment", "aersctl test"});
    ASSERT_EQ(sign.rc, 0) << sign.err;
    EXPECT_TRUE(fs::exists(dir_ + "/manifest.yaml.minisig"));
  }

  std::string base_, dir_, pub_, sec_;
};

TEST_F(AersctlPluginTest, KeygenHashSignVerify) {
  ASSERT_NO_FATAL_FAILURE(SignedPlugin());
  const Result verify = Ctl({"plugin", "verify", dir_, "-p", pub_});
  ASSERT_EQ(verify.rc, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("plugin 'example_gain'"), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find("OK"), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find("signed by key"), std::string::npos) << verify.out;
  EXPECT_TRUE(verify.err.empty()) << verify.err;

  if (!HaveMinisign()) GTEST_SKIP() << "minisign is not installed; its check was skipped";
  const Result theirs = RunProgram({"minisign", "-V", "-p", pub_, "-m", dir_ + "/manifest.yaml"});
  EXPECT_EQ(theirs.rc, 0) << theirs.out << theirs.err;
  EXPECT_NE((theirs.out + theirs.err).find("aersctl test"), std::string::npos)
      << "minisign shows the trusted comment: " << theirs.out << theirs.err;
}

TEST_F(AersctlPluginTest, TamperedManifestFailsVerify) {
  ASSERT_NO_FATAL_FAILURE(SignedPlugin());
  std::string manifest = ReadText(dir_ + "/manifest.yaml");
  const auto at = manifest.find("allowed_node_kinds: [gain]");
  ASSERT_NE(at, std::string::npos) << manifest;
  manifest.replace(at, 26, "allowed_node_kinds: [gain, evil]");
  WriteText(dir_ + "/manifest.yaml", manifest);

  const Result verify = Ctl({"plugin", "verify", dir_, "-p", pub_});
  EXPECT_NE(verify.rc, 0);
  EXPECT_EQ(verify.rc, 1) << "a refusal by the gate";
  EXPECT_NE(verify.err.find("aersctl: plugin verify: refused:"), std::string::npos) << verify.err;
  EXPECT_NE(verify.err.find("signature"), std::string::npos)
      << "the message names the problem: " << verify.err;
  EXPECT_EQ(verify.out.find("OK"), std::string::npos) << verify.out;

  if (HaveMinisign()) {
    EXPECT_NE(RunProgram({"minisign", "-V", "-p", pub_, "-m", dir_ + "/manifest.yaml"}).rc, 0);
  }
}

TEST_F(AersctlPluginTest, ErrorsAndUsage) {
  ASSERT_NO_FATAL_FAILURE(SignedPlugin());

  // A changed module: the hash no longer matches.
  {
    std::ofstream(dir_ + "/example_gain.so", std::ios::binary | std::ios::app) << '\0';
    const Result verify = Ctl({"plugin", "verify", dir_, "-p", pub_});
    EXPECT_EQ(verify.rc, 1);
    EXPECT_NE(verify.err.find("hash"), std::string::npos) << verify.err;
    const Result hash = Ctl({"plugin", "hash", dir_});
    EXPECT_EQ(hash.rc, 1);
    EXPECT_NE(hash.err.find("mismatch"), std::string::npos) << hash.err;
  }
  // Not found: 4.
  {
    const Result r = Ctl({"plugin", "verify", base_ + "/root/nope", "-p", pub_});
    EXPECT_EQ(r.rc, 4) << r.err;
    EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
    EXPECT_EQ(Ctl({"plugin", "hash", base_ + "/root/nope"}).rc, 4);
  }
  // A manifest that is not valid: 3.
  {
    WriteText(dir_ + "/manifest.yaml", "name: [\n");
    const Result r = Ctl({"plugin", "hash", dir_});
    EXPECT_EQ(r.rc, 3) << r.err;
    EXPECT_NE(r.err.find("manifest.yaml"), std::string::npos) << r.err;
  }
  // keygen never replaces a key unless told to.
  {
    const Result again = Ctl({"plugin", "keygen", "-p", pub_, "-s", sec_});
    EXPECT_EQ(again.rc, 5);
    EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
    EXPECT_EQ(Ctl({"plugin", "keygen", "-p", pub_, "-s", sec_, "--force"}).rc, 0);
  }
  // Usage errors: 2.
  EXPECT_EQ(Ctl({"plugin"}).rc, 2);
  EXPECT_EQ(Ctl({"plugin", "frobnicate", dir_}).rc, 2);
  EXPECT_EQ(Ctl({"plugin", "verify", dir_}).rc, 2) << "-p is required";
  EXPECT_EQ(Ctl({"plugin", "sign", dir_}).rc, 2) << "-s is required";
  EXPECT_EQ(Ctl({"plugin", "hash", dir_, "--algorithm", "md5"}).rc, 2);
  EXPECT_EQ(Ctl({"plugin", "verify", dir_, "-p", pub_, "--write"}).rc, 2);
  const Result elsewhere = Ctl({"status", "-p", pub_});
  EXPECT_EQ(elsewhere.rc, 2);
  EXPECT_NE(elsewhere.err.find("only for 'aersctl plugin'"), std::string::npos) << elsewhere.err;
}

TEST_F(AersctlPluginTest, FilesThatAreNotRegularAreNeitherReadNorReplaced) {
  ASSERT_NO_FATAL_FAILURE(SignedPlugin());
  // A device node, a FIFO and a symbolic link where a key would go: kept
  // as they are even with --force (a key written over /dev/null replaced
  // the device for the whole machine).
  const std::string fifo = base_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string link = base_ + "/link";
  fs::create_symlink(sec_, link);
  const std::string device = base_ + "/null";
  const bool have_device = ::mknod(device.c_str(), S_IFCHR | 0666, ::makedev(1, 3)) == 0;
  std::vector<std::string> kept = {fifo, link};
  if (have_device) kept.push_back(device);
  const std::string secret_before = ReadText(sec_);
  for (const std::string& p : kept) {
    struct stat before {};
    ASSERT_EQ(::lstat(p.c_str(), &before), 0);
    const Result pub = Ctl({"plugin", "keygen", "-p", p, "-s", base_ + "/new.sec", "--force"});
    EXPECT_EQ(pub.rc, 1) << p << ": " << pub.err;
    EXPECT_NE(pub.err.find(p + ": a "), std::string::npos) << pub.err;
    EXPECT_NE(pub.err.find("not replaced"), std::string::npos) << pub.err;
    EXPECT_FALSE(fs::exists(base_ + "/new.sec")) << "nothing written when one path is refused";
    const Result sec = Ctl({"plugin", "keygen", "-p", base_ + "/new.pub", "-s", p, "--force"});
    EXPECT_EQ(sec.rc, 1) << p << ": " << sec.err;
    struct stat after {};
    ASSERT_EQ(::lstat(p.c_str(), &after), 0);
    EXPECT_EQ(after.st_mode & S_IFMT, before.st_mode & S_IFMT) << p;
    EXPECT_EQ(after.st_ino, before.st_ino) << p;
  }
  EXPECT_EQ(ReadText(sec_), secret_before) << "the link's target is untouched";
  // One path for both keys.
  const Result same = Ctl({"plugin", "keygen", "-p", base_ + "/k", "-s", base_ + "/k", "--force"});
  EXPECT_EQ(same.rc, 3) << same.err;
  EXPECT_NE(same.err.find("-p and -s name the same file"), std::string::npos) << same.err;
  EXPECT_FALSE(fs::exists(base_ + "/k"));
  // Reading: a FIFO secret key or manifest is refused at once, not waited on.
  const Result sign = Ctl({"plugin", "sign", dir_, "-s", fifo});
  EXPECT_EQ(sign.rc, 1) << sign.err;
  EXPECT_NE(sign.err.find(fifo + ": a FIFO, not a regular file"), std::string::npos) << sign.err;
  const Result verify = Ctl({"plugin", "verify", dir_, "-p", base_});
  EXPECT_NE(verify.rc, 0);
  EXPECT_NE(
      verify.err.find("trusted key " + base_ + " skipped: " + base_ + " is not a regular file"),
      std::string::npos)
      << "the refusal says why the key was not used: " << verify.err;
  // A link put at the name of keygen's temporary file (its pid is the
  // shell's, which execs it) is not written through.
  const std::string victim = base_ + "/victim.txt";
  WriteText(victim, "victim\n");
  const std::string sec = base_ + "/w.sec";
  const std::string cmd = "sh -c 'ln -s " + victim + " " + sec + ".tmp.$$ && exec " + AERSCTL_PATH +
                          " plugin keygen -p " + base_ + "/w.pub -s " + sec +
                          " --force' 2>/dev/null";
  EXPECT_NE(std::system(cmd.c_str()), 0);
  EXPECT_EQ(ReadText(victim), "victim\n");
  EXPECT_FALSE(fs::exists(sec));
  // A FIFO as the module is refused at once by hash, not waited on.
  fs::remove(dir_ + "/example_gain.so");
  ASSERT_EQ(::mkfifo((dir_ + "/example_gain.so").c_str(), 0600), 0);
  const Result hash = Ctl({"plugin", "hash", dir_});
  EXPECT_NE(hash.rc, 0);
  EXPECT_NE(hash.err.find("a FIFO, not a regular file"), std::string::npos) << hash.err;
}

TEST_F(AersctlPluginTest, Blake2bAndLegacySignatures) {
  ASSERT_EQ(Ctl({"plugin", "keygen", "-p", pub_, "-s", sec_}).rc, 0);
  const Result hash = Ctl({"plugin", "hash", dir_, "--algorithm", "blake2b", "--write"});
  ASSERT_EQ(hash.rc, 0) << hash.err;
  EXPECT_EQ(hash.out.rfind("blake2b:", 0), 0u) << hash.out;
  EXPECT_NE(ReadText(dir_ + "/manifest.yaml").find("algorithm: blake2b"), std::string::npos);
  ASSERT_EQ(Ctl({"plugin", "sign", dir_, "-s", sec_, "--legacy"}).rc, 0);
  const Result verify = Ctl({"plugin", "verify", dir_, "-p", pub_});
  EXPECT_EQ(verify.rc, 0) << verify.err;
  EXPECT_NE(verify.out.find("blake2b"), std::string::npos) << verify.out;
}

}  // namespace
