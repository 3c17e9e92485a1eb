// The control plane under attack: lock-out, secret files, the audit log
// (fail-closed, rotation, aggregation), request checks, UTF-8 on the way
// out, socket-path safety and revisions across restarts, through the real
// gRPC server over TCP and a Unix socket (no jackd needed).
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/net.h"
#include "common/rig.h"
#include "control.grpc.pb.h"
#include "control/audit.h"
#include "control/auth.h"
#include "control/grpc/server.h"
#include "control/grpc/tls.h"
#include "control/request_check.h"
#include "control/secret_file.h"
#include "control/service.h"
#include "control/utf8.h"
#include "reflection.grpc.pb.h"
#include "state/state_store.h"

// fdatasync as the code linked into this program calls it (a definition in
// the program comes before libc's): counts the calls and, while
// g_fail_syncs > 0, lets g_pass_syncs more through, then fails the next
// g_fail_syncs with EIO, as a disk that lost the written pages would. No
// file system here can be made to fail a flush on request.
namespace {
std::atomic<int> g_syncs{0};
std::atomic<int> g_pass_syncs{0};
std::atomic<int> g_fail_syncs{0};
}  // namespace

extern "C" int fdatasync(int fd) {
  static const auto real = reinterpret_cast<int (*)(int)>(::dlsym(RTLD_NEXT, "fdatasync"));
  if (g_fail_syncs > 0 && g_pass_syncs-- <= 0) {
    --g_fail_syncs;
    errno = EIO;
    return -1;
  }
  ++g_syncs;
  return real(fd);
}

namespace aers::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using control::Role;

constexpr char kViewer[] = "viewer-token-0123456789";
constexpr char kOperator[] = "operator-token-0123456789";

fs::path TempDir(const std::string& tag) {
  const fs::path d =
      fs::temp_directory_path() / ("aers-sec-" + tag + "-" + std::to_string(::getpid()) + "-" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::string> ReadLines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// --- lock-out -----------------------------------------------------------

TEST(Auth, SuccessNeverClearsFailuresOfItsAddress) {
  control::Authenticator auth({5, std::chrono::seconds(600), std::chrono::seconds(300), 16});
  ASSERT_TRUE(auth.AddToken(kViewer, Role::kViewer, "v").ok());
  ASSERT_TRUE(auth.AddToken(kOperator, Role::kOperator, "o").ok());
  const auto t0 = Clock::now();
  // The reported attack: a viewer login after every 4 guesses. The fifth
  // distinct guess locks the address out regardless.
  int guesses = 0;  // guesses the authenticator actually judged
  absl::Status last;
  for (int round = 0; round < 10 && !absl::IsResourceExhausted(last); ++round) {
    for (int g = 0; g < 4; ++g) {
      last = auth.Check("10.0.0.9", "guess-" + std::to_string(round * 4 + g) + "-xxxxxxxxxxxx", t0)
                 .status();
      if (absl::IsResourceExhausted(last)) break;
      ++guesses;
    }
    auto v = auth.Check("10.0.0.9", kViewer, t0);
    if (!v.ok()) last = v.status();
  }
  EXPECT_TRUE(absl::IsResourceExhausted(last)) << last;
  EXPECT_LE(guesses, 5);
  // Locked: even the right operator token is refused from there, not elsewhere.
  EXPECT_TRUE(absl::IsResourceExhausted(auth.Check("10.0.0.9", kOperator, t0).status()));
  EXPECT_EQ(auth.Check("10.0.0.10", kOperator, t0)->role, Role::kOperator);
  // After the lock-out the right token works again.
  EXPECT_TRUE(auth.Check("10.0.0.9", kOperator, t0 + std::chrono::seconds(301)).ok());
}

TEST(Auth, MissingOrRepeatedTokensDoNotLockOutTheOperator) {
  control::Authenticator auth({5, std::chrono::seconds(600), std::chrono::seconds(300), 16});
  ASSERT_TRUE(auth.AddToken(kOperator, Role::kOperator, "o").ok());
  const auto t0 = Clock::now();
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(absl::IsUnauthenticated(auth.Check("192.0.2.1", "", t0).status()));
    EXPECT_TRUE(
        absl::IsUnauthenticated(auth.Check("192.0.2.1", "stale-token-000000", t0).status()));
  }
  // Same NAT address: the operator still gets in.
  EXPECT_EQ(auth.Check("192.0.2.1", kOperator, t0)->name, "o");
}

TEST(Auth, AnIpv6HostCannotEscapeByRotatingItsInterfaceId) {
  control::Authenticator auth({3, std::chrono::seconds(600), std::chrono::seconds(300), 16});
  ASSERT_TRUE(auth.AddToken(kOperator, Role::kOperator, "o").ok());
  const auto t0 = Clock::now();
  for (int i = 1; i <= 3; ++i) {
    (void)auth.Check("2001:db8:1:2::" + std::to_string(i), "guess-xxxxxxxxxxxx" + std::to_string(i),
                     t0);
  }
  EXPECT_TRUE(absl::IsResourceExhausted(auth.Check("2001:db8:1:2::99", kOperator, t0).status()));
  EXPECT_TRUE(auth.Check("2001:db8:1:3::1", kOperator, t0).ok());
}

TEST(Auth, BehindMutualTlsFailuresCountPerCertificate) {
  control::Authenticator auth({3, std::chrono::seconds(600), std::chrono::seconds(300), 16});
  ASSERT_TRUE(auth.AddToken(kOperator, Role::kOperator, "o").ok());
  const auto t0 = Clock::now();
  for (int i = 0; i < 3; ++i) {
    (void)auth.Check("certificate:CN=mallory", "guess-xxxxxxxxxxxx" + std::to_string(i), t0);
  }
  EXPECT_TRUE(
      absl::IsResourceExhausted(auth.Check("certificate:CN=mallory", kOperator, t0).status()));
  // Another certificate from the same address is not affected.
  EXPECT_TRUE(auth.Check("certificate:CN=alice", kOperator, t0).ok());
}

TEST(Auth, TheFailureTableIsBounded) {
  control::Authenticator auth({5, std::chrono::seconds(600), std::chrono::seconds(300), 64});
  const auto t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) {
    (void)auth.Check("10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250),
                     "guess-xxxxxxxxxxxxxxxx", t0);
  }
  EXPECT_LE(auth.tracked_sources(), 64u);
}

TEST(Auth, AddressesAreAnonymised) {
  EXPECT_EQ(control::AnonymizeAddress("192.168.17.42"), "192.168.xxx.xxx");
  EXPECT_EQ(control::AnonymizeAddress("[2001:db8::1]"), "2001:xxxx");
  EXPECT_EQ(control::AnonymizeAddress("not an address"), "unknown");
  EXPECT_EQ(control::PeerHost("ipv4:10.1.2.3:5555"), "10.1.2.3");
  EXPECT_EQ(control::PeerHost("ipv6:[::1]:5555"), "::1");
  // As gRPC 1.51 writes IPv6 peers: percent-encoded brackets.
  EXPECT_EQ(control::PeerHost("ipv6:%5Bfd00::1%5D:7713"), "fd00::1");
  EXPECT_EQ(control::PeerHost("ipv6:%5Bfe80::1%25lo%5D:7713"), "fe80::1");
  EXPECT_EQ(control::AnonymizeAddress(control::PeerHost("ipv6:%5Bfd00::1%5D:7713")), "fd00:xxxx");
  EXPECT_EQ(control::PeerHost("unix:/run/aers/aersd.sock"), "");
  EXPECT_TRUE(control::IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(control::IsLoopbackHost("[::1]"));
  EXPECT_TRUE(control::IsLoopbackHost("localhost"));
  EXPECT_FALSE(control::IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(control::IsLoopbackHost("192.168.1.1"));
}

// --- secret files -------------------------------------------------------

TEST(SecretFile, ModeTypeAndDuplicatesAreChecked) {
  const fs::path d = TempDir("secret");
  const fs::path tokens = d / "tokens";
  std::ofstream(tokens) << "# comment\noperator " << kOperator << " alice\nviewer " << kViewer
                        << "\n";
  ::chmod(tokens.c_str(), 0640);
  control::Authenticator a;
  auto st = a.LoadTokenFile(tokens);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_NE(st.message().find("0640"), absl::string_view::npos) << st;
  ::chmod(tokens.c_str(), 0600);
  ASSERT_TRUE(a.LoadTokenFile(tokens).ok());
  EXPECT_EQ(a.Check("127.0.0.1", kOperator)->name, "alice");
  EXPECT_EQ(a.Check("127.0.0.1", kViewer)->name, "viewer-line3");

  std::ofstream(tokens) << "operator " << kOperator << "\nviewer " << kOperator << "\n";
  control::Authenticator dup;
  st = dup.LoadTokenFile(tokens);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find(":2: the same token as line 1"), absl::string_view::npos) << st;
  EXPECT_FALSE(dup.has_tokens());  // nothing half-loaded

  std::ofstream(tokens) << "admin " << kOperator << "\n";
  EXPECT_NE(control::Authenticator().LoadTokenFile(tokens).message().find(":1: unknown role"),
            absl::string_view::npos);

  // A directory, a FIFO (no hang), a missing file.
  EXPECT_EQ(control::ReadSecretFile(d.string(), "token file").status().code(),
            absl::StatusCode::kFailedPrecondition);
  const fs::path fifo = d / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(control::ReadSecretFile(fifo.string(), "token file").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(control::ReadSecretFile((d / "none").string(), "token file").status().code(),
            absl::StatusCode::kNotFound);
  fs::remove_all(d);
}

TEST(Tls, HalfConfiguredOrMismatchedMaterialIsAnErrorNamingTheFile) {
  const fs::path d = TempDir("tls");
  auto run = [](const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; };
  for (const char* n : {"a", "b"}) {
    run("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=aersd-test -keyout " +
        (d / (std::string(n) + ".key")).string() + " -out " +
        (d / (std::string(n) + ".crt")).string() + " 2>/dev/null");
    ::chmod((d / (std::string(n) + ".key")).c_str(), 0600);
  }
  const std::string a_crt = (d / "a.crt").string(), a_key = (d / "a.key").string(),
                    b_key = (d / "b.key").string();
  EXPECT_FALSE(control::LoadTlsMaterial("", "", "")->has_value());
  EXPECT_TRUE(control::LoadTlsMaterial(a_crt, a_key, "")->has_value());
  auto st = control::LoadTlsMaterial(a_crt, "", "").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  st = control::LoadTlsMaterial("", "", a_crt).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  st = control::LoadTlsMaterial(a_crt, b_key, "").status();
  EXPECT_NE(st.message().find("does not belong"), absl::string_view::npos) << st;
  st = control::LoadTlsMaterial(a_key, a_key, "").status();
  EXPECT_NE(st.message().find(a_key), absl::string_view::npos) << st;
  ::chmod(a_key.c_str(), 0644);
  st = control::LoadTlsMaterial(a_crt, a_key, "").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  fs::remove_all(d);
}

// --- audit log ----------------------------------------------------------

control::AuditRecord Record(const std::string& op) {
  control::AuditRecord r;
  r.operation = op;
  r.target = "node \xff\xfe";  // not UTF-8
  r.principal.kind = control::Principal::Kind::kToken;
  r.principal.role = Role::kOperator;
  r.principal.name = "alice";
  r.principal.address = control::AnonymizeAddress("10.20.30.40");
  r.revision_before = 3;
  r.revision_after = 4;
  return r;
}

// The file at `path` is full while this lives: RLIMIT_FSIZE at its size
// (writes past it fail with EFBIG, as a full disk fails with ENOSPC) and
// SIGXFSZ ignored. Lift() (or the destructor) ends it.
class FileFull {
 public:
  explicit FileFull(const fs::path& path) : saved_signal_(std::signal(SIGXFSZ, SIG_IGN)) {
    EXPECT_EQ(::getrlimit(RLIMIT_FSIZE, &old_), 0);
    rlimit tight = old_;
    tight.rlim_cur = fs::file_size(path);
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &tight), 0);
  }
  ~FileFull() { Lift(); }
  FileFull(const FileFull&) = delete;
  FileFull& operator=(const FileFull&) = delete;
  void Lift() {
    if (lifted_) return;
    lifted_ = true;
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &old_), 0);
    std::signal(SIGXFSZ, saved_signal_);
  }

 private:
  rlimit old_{};
  void (*saved_signal_)(int);
  bool lifted_ = false;
};

// An edit's OK record (call 7, revision 8 -> 9), written.
control::AuditRecord WriteAppliedEdit(control::AuditLog& log) {
  control::AuditRecord edit = Record("Edit");
  edit.call_id = 7;
  edit.revision_before = 8;
  edit.revision_after = 9;
  EXPECT_TRUE(log.Write(edit).ok());
  return edit;
}

TEST(Audit, RecordsAreValidJsonLinesInAPrivateFile) {
  const fs::path d = TempDir("audit");
  const fs::path p = d / "audit.jsonl";
  auto log = control::AuditLog::Open({p.string()});
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->Write(Record("Edit")).ok());
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto lines = ReadLines(p);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(control::IsValidUtf8(lines[0]));
  const auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["operation"], "Edit");
  EXPECT_EQ(j["principal"]["name"], "alice");
  EXPECT_EQ(j["principal"]["role"], "operator");
  EXPECT_EQ(j["principal"]["address"], "10.20.xxx.xxx");
  EXPECT_EQ(j["revision_before"], 3);
  EXPECT_EQ(j["revision_after"], 4);
  EXPECT_EQ(lines[0].find("10.20.30.40"), std::string::npos);
  fs::remove_all(d);
}

// A device that takes every record and keeps none is no audit log.
TEST(Audit, DevicesThatDiscardRecordsAreRefused) {
  for (const char* path : {"/dev/null", "/dev/zero", "/dev/urandom"}) {
    auto log = control::AuditLog::Open({path});
    ASSERT_FALSE(log.ok()) << path;
    EXPECT_NE(
        std::string(log.status().message()).find(": a device that discards what is written to it"),
        std::string::npos)
        << log.status();
  }
  EXPECT_TRUE(control::AuditLog::Open({"/dev/full"}).ok());
}

// A file that ends inside a line (an earlier process's record cut short
// by a full disk): the first record of the next process starts on a line of
// its own, so it reads as a record, and its call number follows the last
// whole record's.
TEST(Audit, AFileEndingInsideALineGetsTheNextRecordOnItsOwnLine) {
  const fs::path d = TempDir("torn");
  const fs::path p = d / "audit.jsonl";
  {
    auto log = control::AuditLog::Open({p.string()});
    ASSERT_TRUE(log.ok()) << log.status();
    control::AuditRecord r = Record("Edit");
    r.call_id = 41;
    ASSERT_TRUE((*log)->Write(r).ok());
  }
  {
    std::ofstream out(p, std::ios::app);
    out << "{\"time\":\"2026-";  // cut short
  }
  auto log = control::AuditLog::Open({p.string()});
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->Write(Record("Connect")).ok());
  const auto lines = ReadLines(p);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "{\"time\":\"2026-");
  const auto j = nlohmann::json::parse(lines[2]);
  EXPECT_EQ(j["operation"], "Connect");
  EXPECT_EQ(j["call"], 42);
  fs::remove_all(d);
}

TEST(Audit, TheHighestAppliedRevisionSkipsWhatWasNotApplied) {
  const fs::path d = TempDir("highest");
  const fs::path p = d / "audit.jsonl";
  auto log = control::AuditLog::Open({p.string()});
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)->HighestAppliedRevision(), std::nullopt) << "empty file";
  const auto rec = [](uint64_t call, std::string result, uint64_t after, bool dry = false) {
    control::AuditRecord r = Record("Edit");
    r.call_id = call;
    r.result = std::move(result);
    r.revision_after = after;
    r.dry_run = dry;
    return r;
  };
  ASSERT_TRUE((*log)->Write(rec(1, "OK", 5)).ok());
  ASSERT_TRUE((*log)->Write(rec(2, "OK", 9)).ok());
  ASSERT_TRUE((*log)->Write(rec(2, "UNAVAILABLE", 8)).ok());  // not applied after all
  ASSERT_TRUE((*log)->Write(rec(3, "OK", 12, /*dry=*/true)).ok());
  ASSERT_TRUE((*log)->Write(rec(4, "PERMISSION_DENIED", 14)).ok());
  EXPECT_EQ((*log)->HighestAppliedRevision(), std::optional<uint64_t>(5));
  // Lines of any other shape are skipped (a torn last line, garbage).
  {
    std::ofstream out(p, std::ios::app);
    out << "{\"call\": 7, \"result\": 42, \"revision_after\": 99}\n[1,2]\nnot json\n{\"call\":";
  }
  EXPECT_EQ((*log)->HighestAppliedRevision(), std::optional<uint64_t>(5));
  // The newest record is found past a tail of junk (only the last 256 KiB
  // are read).
  {
    std::ofstream out(p, std::ios::app);
    out << "\n";
    for (int i = 0; i < 5000; ++i) out << std::string(100, 'x') << "\n";
  }
  ASSERT_TRUE((*log)->Write(rec(8, "OK", 30)).ok());
  EXPECT_EQ((*log)->HighestAppliedRevision(), std::optional<uint64_t>(30));
  EXPECT_EQ(control::AuditLog::Open({""}).value()->HighestAppliedRevision(), std::nullopt);
  fs::remove_all(d);
}

TEST(Audit, DeferredRecordsShareOneFlush) {
  const fs::path d = TempDir("deferred");
  const fs::path p = d / "audit.jsonl";
  auto log = control::AuditLog::Open({p.string()});
  ASSERT_TRUE(log.ok());
  const int syncs = g_syncs;
  auto a = (*log)->WriteDeferred(Record("A"));
  auto b = (*log)->WriteDeferred(Record("B"));
  auto c = (*log)->WriteDeferred(Record("C"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(g_syncs, syncs);           // written, not yet flushed
  EXPECT_EQ(ReadLines(p).size(), 3u);  // but in the file at once
  ASSERT_TRUE((*log)->MakeDurable(*b).ok());
  EXPECT_EQ(g_syncs, syncs + 1);
  EXPECT_TRUE((*log)->MakeDurable(*a).ok());
  EXPECT_TRUE((*log)->MakeDurable(*c).ok());
  EXPECT_EQ(g_syncs, syncs + 1) << "covered by the first flush";
  // A flushed record's flush covers the deferred ones before it.
  auto e = (*log)->WriteDeferred(Record("E"));
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE((*log)->Write(Record("F")).ok());
  EXPECT_EQ(g_syncs, syncs + 2);
  EXPECT_TRUE((*log)->MakeDurable(*e).ok());
  EXPECT_EQ(g_syncs, syncs + 2);
  EXPECT_EQ((*log)->MakeDurable(*e + 100).code(), absl::StatusCode::kInternal);
  fs::remove_all(d);
  // Without a file (records to the daemon's log only) nothing waits.
  auto none = control::AuditLog::Open({""});
  ASSERT_TRUE(none.ok());
  auto n = (*none)->WriteDeferred(Record("G"));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE((*none)->MakeDurable(*n).ok());
}

TEST(Audit, AFailedFlushRefusesEveryDeferredRecordItCovered) {
  const fs::path d = TempDir("deferred-eio");
  const fs::path p = d / "audit.jsonl";
  auto log = control::AuditLog::Open({p.string()});
  ASSERT_TRUE(log.ok());
  auto a = (*log)->WriteDeferred(Record("A"));
  auto b = (*log)->WriteDeferred(Record("B"));
  ASSERT_TRUE(a.ok() && b.ok());
  g_fail_syncs = 1000;
  const absl::Status st = (*log)->MakeDurable(*a);
  g_fail_syncs = 0;
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_NE(st.message().find(p.string() + ": cannot sync"), absl::string_view::npos) << st;
  EXPECT_NE(st.message().find("never fails open"), absl::string_view::npos) << st;
  // The same flush covered B: refused too, now and later, though the
  // disk flushes again.
  EXPECT_EQ((*log)->MakeDurable(*b).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*log)->MakeDurable(*a).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE((*log)->writable());
  auto c = (*log)->WriteDeferred(Record("C"));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*log)->writable()) << "an outage ends with a flush, not a write";
  EXPECT_TRUE((*log)->MakeDurable(*c).ok());
  EXPECT_TRUE((*log)->writable());
  // Another record's flush that fails settles the deferred ones as failed.
  auto e = (*log)->WriteDeferred(Record("E"));
  ASSERT_TRUE(e.ok());
  g_fail_syncs = 1000;
  EXPECT_EQ((*log)->Write(Record("F")).code(), absl::StatusCode::kUnavailable);
  g_fail_syncs = 0;
  EXPECT_EQ((*log)->MakeDurable(*e).code(), absl::StatusCode::kUnavailable);
  fs::remove_all(d);
}

TEST(Audit, AnOutageEndsWithTheFlushOfARecordWrittenSinceItBegan) {
  const fs::path d = TempDir("deferred-outage");
  const fs::path p = d / "audit.jsonl";
  auto log = control::AuditLog::Open({p.string()});
  ASSERT_TRUE(log.ok());
  auto a = (*log)->WriteDeferred(Record("A"));
  ASSERT_TRUE(a.ok());
  // The file is full (RLIMIT_FSIZE): B cannot be written, an outage.
  FileFull full(p);
  EXPECT_EQ((*log)->WriteDeferred(Record("B")).status().code(), absl::StatusCode::kUnavailable);
  full.Lift();
  EXPECT_FALSE((*log)->writable());
  // A, written before, flushes fine: that shows nothing about the outage.
  EXPECT_TRUE((*log)->MakeDurable(*a).ok());
  EXPECT_FALSE((*log)->writable());
  auto c = (*log)->WriteDeferred(Record("C"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE((*log)->MakeDurable(*c).ok());
  EXPECT_TRUE((*log)->writable());
  fs::remove_all(d);
}

// An edit audited as applied (call 7, revision 8 -> 9) then fails at its
// last step (its journal record) while the log's file is full (FileFull):
// its follow-up cannot be written and waits.
class AuditFollowUp : public ::testing::Test {
 protected:
  void SetUp() override {
    d_ = TempDir("follow-up");
    p_ = d_ / "audit.jsonl";
    auto log = control::AuditLog::Open({p_.string()});
    ASSERT_TRUE(log.ok());
    log_ = std::move(*log);
    const control::AuditRecord edit = WriteAppliedEdit(*log_);
    full_.emplace(p_);
    EXPECT_FALSE(
        log_->WriteFollowUp(control::FollowUpRecord(edit, kFailed, true, std::nullopt, 8, 8)).ok());
    EXPECT_EQ(log_->follow_ups_waiting(), 1u);
  }
  void TearDown() override {
    full_.reset();
    log_.reset();
    fs::remove_all(d_);
  }

  const absl::Status kFailed = absl::UnavailableError("state journal: cannot write");
  fs::path d_, p_;
  std::unique_ptr<control::AuditLog> log_;
  std::optional<FileFull> full_;
};

TEST_F(AuditFollowUp, WaitsUntilTheLogTakesRecordsAndTheOldestGoesPastTheLimit) {
  // Tried again by the housekeeping loop, in vain while the file is full.
  log_->Flush(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  EXPECT_EQ(log_->follow_ups_waiting(), 1u);
  EXPECT_EQ(ReadLines(p_).size(), 1u);
  EXPECT_EQ(log_->HighestAppliedRevision(), std::optional<uint64_t>(9)) << "alone so far";
  // Past the limit of what waits, the oldest goes.
  control::AuditRecord other = Record("Edit");
  for (size_t i = 0; i < control::AuditLog::kFollowUpsKept; ++i) {
    other.call_id = 100 + i;
    (void)log_->WriteFollowUp(control::FollowUpRecord(other, kFailed, false, std::nullopt, 9, 9));
  }
  EXPECT_EQ(log_->follow_ups_waiting(), control::AuditLog::kFollowUpsKept);
  full_->Lift();
  // Room again: the next tick writes them all, in order, before anything
  // else.
  log_->Flush(std::chrono::steady_clock::now() + std::chrono::seconds(4));
  EXPECT_EQ(log_->follow_ups_waiting(), 0u);
  const auto lines = ReadLines(p_);
  ASSERT_EQ(lines.size(), 1u + control::AuditLog::kFollowUpsKept);
  const auto first = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(first["call"], 100) << "call 7's follow-up, the oldest, was dropped";
  EXPECT_TRUE(first["details"].contains("ended"));
  EXPECT_EQ(nlohmann::json::parse(lines.back())["call"],
            100 + control::AuditLog::kFollowUpsKept - 1);
}

TEST_F(AuditFollowUp, IsWrittenBeforeTheRecordsAfterIt) {
  full_->Lift();
  // The next record, before the loop's next try: the follow-up goes first.
  control::AuditRecord next = Record("Edit");
  next.call_id = 8;
  ASSERT_TRUE(log_->Write(next).ok());
  const auto lines = ReadLines(p_);
  ASSERT_EQ(lines.size(), 3u);
  const auto follow_up = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(follow_up["call"], 7);
  EXPECT_EQ(follow_up["result"], "UNAVAILABLE");
  EXPECT_NE(follow_up["message"].get<std::string>().find("not applied after all"),
            std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(lines[2])["call"], 8);
  EXPECT_EQ(log_->HighestAppliedRevision(), std::optional<uint64_t>(4))
      << "call 7 is not counted once its follow-up is written";
}

TEST(Audit, DeferredRecordsAreFlushedBeforeTheirFileIsLeft) {
  const fs::path d = TempDir("deferred-rotate");
  const fs::path p = d / "audit.jsonl";
  auto log = control::AuditLog::Open({p.string()});
  ASSERT_TRUE(log.ok());
  const int syncs = g_syncs;
  auto a = (*log)->WriteDeferred(Record("A"));
  ASSERT_TRUE(a.ok());
  fs::rename(p, d / "audit.jsonl.1");  // logrotate
  auto b = (*log)->WriteDeferred(Record("B"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(g_syncs, syncs + 1) << "A flushed on its file before B went to the new one";
  EXPECT_EQ(ReadLines(d / "audit.jsonl.1").size(), 1u);
  EXPECT_EQ(ReadLines(p).size(), 1u);
  EXPECT_TRUE((*log)->MakeDurable(*a).ok());
  EXPECT_EQ(g_syncs, syncs + 1);
  EXPECT_TRUE((*log)->MakeDurable(*b).ok());
  EXPECT_EQ(g_syncs, syncs + 2);
  // Reopen (SIGHUP) with a flush that fails: the record is refused.
  auto c = (*log)->WriteDeferred(Record("C"));
  ASSERT_TRUE(c.ok());
  g_fail_syncs = 1000;
  EXPECT_TRUE((*log)->Reopen().ok());
  g_fail_syncs = 0;
  EXPECT_EQ((*log)->MakeDurable(*c).code(), absl::StatusCode::kUnavailable);
  fs::remove_all(d);
}

TEST(Audit, CallIdsGoOnAcrossRestarts) {
  const fs::path d = TempDir("call-ids");
  const fs::path p = d / "audit.jsonl";
  {
    auto log = control::AuditLog::Open({p.string()});
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*log)->Write(Record("A")).ok());
    EXPECT_EQ((*log)->NextCallId(), 4u);
  }
  std::ofstream(p, std::ios::app) << "not a record\n{\"call\": \"x\"}\n";
  auto again = control::AuditLog::Open({p.string()});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->NextCallId(), 4u);  // 4 was handed out, never written
  ASSERT_TRUE((*again)->Write(Record("B")).ok());
  EXPECT_EQ(nlohmann::json::parse(ReadLines(p).back())["call"], 5);
  fs::remove_all(d);
}

TEST(Audit, AnUnwritableLogRefuses) {
  // /dev/full: every write fails with ENOSPC, like a full disk.
  auto log = control::AuditLog::Open({"/dev/full"});
  ASSERT_TRUE(log.ok()) << log.status();
  const absl::Status st = (*log)->Write(Record("Edit"));
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("/dev/full"), absl::string_view::npos) << st;
  EXPECT_FALSE((*log)->writable());
}

TEST(Audit, AFullFileRecoversOnItsOwnWhenSpaceReturns) {
  // RLIMIT_FSIZE stands in for a full disk: writes past it fail (EFBIG).
  const fs::path d = TempDir("full");
  const fs::path p = d / "audit.jsonl";
  auto log = control::AuditLog::Open({p.string()});
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Write(Record("A")).ok());
  FileFull full(p);
  EXPECT_EQ((*log)->Write(Record("B")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*log)->Write(Record("C")).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE((*log)->writable());
  full.Lift();
  EXPECT_TRUE((*log)->Write(Record("D")).ok());
  EXPECT_TRUE((*log)->writable());
  const auto lines = ReadLines(p);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(lines[1])["operation"], "D");
  fs::remove_all(d);
}

TEST(Audit, ReopensAfterRotationAndOnRequest) {
  const fs::path d = TempDir("rotate");
  const fs::path p = d / "audit.jsonl";
  auto log = control::AuditLog::Open({p.string()});
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Write(Record("A")).ok());
  fs::rename(p, d / "audit.jsonl.1");  // logrotate
  ASSERT_TRUE((*log)->Write(Record("B")).ok());
  EXPECT_EQ(ReadLines(d / "audit.jsonl.1").size(), 1u);
  EXPECT_EQ(ReadLines(p).size(), 1u);
  fs::remove(p);
  ASSERT_TRUE((*log)->Reopen().ok());
  ASSERT_TRUE((*log)->Write(Record("C")).ok());
  EXPECT_EQ(ReadLines(p).size(), 1u);
  fs::remove_all(d);
}

TEST(Audit, FailedAuthenticationIsAggregatedPerAddress) {
  const fs::path d = TempDir("aggregate");
  const fs::path p = d / "audit.jsonl";
  control::AuditLog::Options o;
  o.path = p.string();
  o.aggregate_interval = std::chrono::seconds(1);
  auto log = control::AuditLog::Open(o);
  ASSERT_TRUE(log.ok());
  control::Principal who;
  who.address = control::AnonymizeAddress("203.0.113.5");
  for (int i = 0; i < 10000; ++i) {
    (*log)->RecordAuthFailure(who, "GetGraph", absl::UnauthenticatedError("unknown bearer token"));
  }
  EXPECT_EQ(ReadLines(p).size(), 1u);  // the first at once
  (*log)->Flush(Clock::now() + std::chrono::seconds(2));
  const auto lines = ReadLines(p);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(lines[1])["count"], 9999);
  fs::remove_all(d);
}

// Many gRPC threads at once (TSan checks the locking).
TEST(Concurrency, AuthenticatorAndAuditLogUnderManyThreads) {
  const fs::path d = TempDir("threads");
  control::Authenticator auth({5, std::chrono::seconds(600), std::chrono::seconds(300), 64});
  ASSERT_TRUE(auth.AddToken(kOperator, Role::kOperator, "o").ok());
  control::AuditLog::Options o;
  o.path = (d / "audit.jsonl").string();
  o.aggregate_interval = std::chrono::seconds(0);
  auto log = control::AuditLog::Open(o);
  ASSERT_TRUE(log.ok());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      control::Principal who;
      who.address = control::AnonymizeAddress("10.9." + std::to_string(t) + ".1");
      for (int i = 0; i < 200; ++i) {
        const std::string host = "10.9." + std::to_string(t) + "." + std::to_string(i % 50);
        if (auth.Check(host, i % 3 ? kOperator : "guess-" + std::to_string(i) + "-xxxxxxxxxx")
                .ok()) {
          ++ok;
        }
        (*log)->RecordAuthFailure(who, "GetGraph", absl::UnauthenticatedError("x"));
        if (i % 20 == 0) (void)(*log)->Write(Record("Edit"));
        if (t == 0 && i % 50 == 0) (void)(*log)->Reopen();
        (*log)->Flush();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(ok.load(), 0);
  for (const auto& line : ReadLines(d / "audit.jsonl")) {
    EXPECT_TRUE(nlohmann::json::accept(line)) << line;  // no torn lines
  }
  fs::remove_all(d);
}

// --- request checks and UTF-8 -------------------------------------------

TEST(RequestCheck, EveryFieldIsBoundedFiniteAndSet) {
  const control::RequestLimits limits;
  aers::v1::StreamMetersRequest meters;
  meters.set_rate_hz(std::nan(""));
  auto st = control::CheckRequest(meters, limits);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("rate_hz: NaN"), absl::string_view::npos) << st;
  meters.set_rate_hz(std::numeric_limits<double>::infinity());
  EXPECT_NE(control::CheckRequest(meters, limits).message().find("+Inf"), absl::string_view::npos);

  aers::v1::AddNodeRequest add;
  add.mutable_node()->set_name(std::string(1 << 20, 'x'));
  st = control::CheckRequest(add, limits);
  EXPECT_NE(st.message().find("node.name: 1048576 bytes"), absl::string_view::npos) << st;

  aers::v1::EditRequest edit;
  auto* op = edit.add_ops()->mutable_add_node();
  op->set_name("g");
  (*op->mutable_params())["gain_db"].set_number(-std::numeric_limits<double>::infinity());
  st = control::CheckRequest(edit, limits);
  EXPECT_NE(st.message().find("ops[0].add_node.params[\"gain_db\"].number: -Inf"),
            absl::string_view::npos)
      << st;
  (*op->mutable_params())["gain_db"].Clear();
  st = control::CheckRequest(edit, limits);
  EXPECT_NE(st.message().find("params[\"gain_db\"].value: not set"), absl::string_view::npos) << st;
  edit.add_ops();
  (*op->mutable_params())["gain_db"].set_number(1);
  st = control::CheckRequest(edit, limits);
  EXPECT_NE(st.message().find("ops[1].op: not set"), absl::string_view::npos) << st;

  aers::v1::ApplyGraphRequest apply;
  st = control::CheckRequest(apply, limits);
  EXPECT_NE(st.message().find("source: not set"), absl::string_view::npos) << st;
  apply.set_yaml(std::string(64 << 10, '#'));  // long text is allowed up to 1 MiB
  EXPECT_TRUE(control::CheckRequest(apply, limits).ok());

  aers::v1::StreamMetersRequest many;
  for (int i = 0; i < 5000; ++i) many.add_nodes("m");
  EXPECT_NE(control::CheckRequest(many, limits).message().find("nodes: 5000 entries"),
            absl::string_view::npos);
}

TEST(Utf8, IllFormedSequencesAreReplaced) {
  EXPECT_TRUE(control::IsValidUtf8("gain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xb5"));
  EXPECT_FALSE(control::IsValidUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(control::IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(control::IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_EQ(control::SanitizeUtf8("a\xffz"), "a\xef\xbf\xbdz");
  EXPECT_EQ(control::SanitizeUtf8("\xe2\x82"), "\xef\xbf\xbd");  // truncated: one U+FFFD
  aers::v1::Event e;
  e.mutable_config_reloaded()->set_error("bad key '\xff'");
  EXPECT_EQ(control::SanitizeUtf8Fields(e), 1);
  EXPECT_TRUE(control::IsValidUtf8(e.config_reloaded().error()));
}

// --- state --------------------------------------------------------------

TEST(StateStore, TheRevisionSurvivesARestart) {
  const fs::path d = TempDir("revision");
  state::StateStore store((d / "graph.yaml").string());
  EXPECT_EQ(store.SavedRevision(), std::optional<uint64_t>(0));
  Rig rig;
  rig.Apply(GraphBuilder().Input("in").Output("out").Route("in", "out").Build());
  ASSERT_TRUE(store.Save(rig.engine().spec(), 41).ok());
  // Past the lease the record reserves (state_store.h): a revision handed
  // out whose record a power cut lost is never handed out again.
  constexpr uint64_t kFloor = 41 + state::StateStore::kRevisionLease;
  EXPECT_EQ(store.SavedRevision(), std::optional<uint64_t>(kFloor));
  engine::EngineOptions o;
  o.initial_revision = *store.SavedRevision();
  auto kinds = dsp::MakeBuiltinRegistry();
  engine::Engine restarted(*kinds, o);
  ASSERT_TRUE(restarted.Apply(rig.engine().spec()).ok());
  EXPECT_EQ(restarted.revision(), kFloor + 1);
  fs::remove_all(d);
}

TEST(StateStore, NothingButARegularFileIsEverReplaced) {
  const fs::path d = TempDir("replace");
  const fs::path fifo = d / "graph.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  state::StateStore store(fifo.string());
  EXPECT_EQ(store.CheckPath().code(), absl::StatusCode::kFailedPrecondition);
  Rig rig;
  auto st = store.Save(rig.engine().spec(), 1);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("a FIFO"), absl::string_view::npos) << st;
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_FALSE(store.Remove().ok());
  EXPECT_TRUE(fs::is_fifo(fifo));
  // A device node (a copy of /dev/null's numbers, in the test's own
  // directory) is left alone too.
  const fs::path dev = d / "null";
  if (::mknod(dev.c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0) {
    EXPECT_FALSE(state::WriteFileAtomically(dev.string(), "x").ok());
    EXPECT_TRUE(fs::is_character_file(dev));
  }
  fs::remove_all(d);
}

TEST(StateStore, CrashLeftoversAreRemovedAndAnUnreadableRevisionIsNotZero) {
  const fs::path d = TempDir("leftovers");
  const fs::path p = d / "graph.yaml";
  std::ofstream(d / ".graph.yaml.aers-tmp-AbC123") << "half";
  std::ofstream(d / "unrelated.yaml") << "mine";
  // Files of someone's own beside the state, named like a temporary of
  // mkstemp's ".NAME.XXXXXX": never removed (one was the running config).
  std::ofstream(d / ".graph.yaml.backup") << "mine";
  std::ofstream(d / ".graph.yaml.notes1") << "mine";
  state::StateStore store(p.string());
  EXPECT_EQ(store.RemoveStaleTemporaries(), 1);
  EXPECT_FALSE(fs::exists(d / ".graph.yaml.aers-tmp-AbC123"));
  EXPECT_TRUE(fs::exists(d / "unrelated.yaml"));
  EXPECT_TRUE(fs::exists(d / ".graph.yaml.backup"));
  EXPECT_TRUE(fs::exists(d / ".graph.yaml.notes1"));
  // A temporary of a write that is done is gone (the writer renamed it).
  ASSERT_TRUE(state::WriteFileAtomically((d / "other.yaml").string(), "x").ok());
  for (const auto& e : fs::directory_iterator(d)) {
    EXPECT_EQ(e.path().filename().string().find("aers-tmp"), std::string::npos) << e.path();
  }
  std::ofstream(p) << "# aersd live graph state\n# baseline: x\n# revis";  // truncated
  EXPECT_EQ(store.SavedRevision(), std::nullopt);
  fs::remove_all(d);
}

// --- the gRPC server ----------------------------------------------------

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("server");
    rig_.Apply(GraphBuilder()
                   .Input("in")
                   .Node("g", "gain", 1, {{"gain_db", -6.0}})
                   .Node("m", "meter", 1)
                   .Output("out")
                   .Chain({"in", "g", "m", "out"})
                   .Build());
    store_ = std::make_unique<state::StateStore>((dir_ / "graph.yaml").string());
    service_ = std::make_unique<control::GraphService>(rig_.engine(), store_.get(), bus_, nullptr);
    std::ofstream(dir_ / "tokens")
        << "viewer " << kViewer << " viewer1\noperator " << kOperator << " op1\n";
    ::chmod((dir_ / "tokens").c_str(), 0600);
    port_ = FreeTcpPort();
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    audit_.reset();
    fs::remove_all(dir_);
  }
  absl::Status Start(const std::string& audit_path, bool tcp = true) {
    auto audit = control::AuditLog::Open({audit_path});
    if (!audit.ok()) return audit.status();
    audit_ = std::move(*audit);
    server_ = std::make_unique<control::ControlServer>(*service_, nullptr, "test", "", nullptr,
                                                       audit_.get());
    control::ListenerOptions o;
    o.unix_socket = (dir_ / "run" / "aersd.sock").string();
    if (tcp) o.listen = {"tcp:127.0.0.1:" + std::to_string(port_)};
    o.token_file = (dir_ / "tokens").string();
    return server_->Start(o);
  }
  std::unique_ptr<aers::v1::Control::Stub> Tcp() {
    return aers::v1::Control::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                                          grpc::InsecureChannelCredentials()));
  }
  std::unique_ptr<aers::v1::Control::Stub> Unix() {
    return aers::v1::Control::NewStub(grpc::CreateChannel(
        "unix:" + (dir_ / "run" / "aersd.sock").string(), grpc::InsecureChannelCredentials()));
  }
  static void Auth(grpc::ClientContext& ctx, const std::string& token) {
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }
  // SetParameter g.gain_db over the Unix socket.
  grpc::Status SetGain(double db) {
    grpc::ClientContext c;
    Auth(c, "");
    aers::v1::SetParameterRequest req;
    req.set_node("g");
    req.set_param("gain_db");
    req.mutable_value()->set_number(db);
    aers::v1::EditResponse resp;
    return Unix()->SetParameter(&c, req, &resp);
  }
  static std::string Reason(const grpc::ClientContext& ctx) {
    const auto& md = ctx.GetServerTrailingMetadata();
    auto it = md.find("aers-error-reason");
    return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
  }

  fs::path dir_;
  Rig rig_;
  control::EventBus bus_;
  std::unique_ptr<state::StateStore> store_;
  std::unique_ptr<control::GraphService> service_;
  std::unique_ptr<control::AuditLog> audit_;
  std::unique_ptr<control::ControlServer> server_;
  int port_ = 0;
};

TEST_F(ServerTest, AuthenticationComesBeforeArgumentChecks) {
  ASSERT_TRUE(Start((dir_ / "audit.jsonl").string()).ok());
  auto stub = Tcp();
  // A malformed Connect from nobody: UNAUTHENTICATED, not INVALID_ARGUMENT.
  grpc::ClientContext c1;
  Auth(c1, "");
  aers::v1::ConnectRequest bad;
  bad.set_from("..");
  aers::v1::EditResponse resp;
  EXPECT_EQ(stub->Connect(&c1, bad, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A viewer: PERMISSION_DENIED, audited.
  grpc::ClientContext c2;
  Auth(c2, kViewer);
  EXPECT_EQ(stub->Connect(&c2, bad, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // A NaN meter rate from nobody: UNAUTHENTICATED; from a viewer: INVALID_ARGUMENT.
  for (const auto& [token, code] : {std::pair{std::string(), grpc::StatusCode::UNAUTHENTICATED},
                                    {std::string(kViewer), grpc::StatusCode::INVALID_ARGUMENT}}) {
    grpc::ClientContext c;
    Auth(c, token);
    aers::v1::StreamMetersRequest req;
    req.set_rate_hz(std::nan(""));
    auto reader = stub->StreamMeters(&c, req);
    aers::v1::MeterFrame f;
    while (reader->Read(&f)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), code);
  }
  const auto lines = ReadLines(dir_ / "audit.jsonl");
  bool denied = false;
  for (const auto& l : lines) {
    const auto j = nlohmann::json::parse(l);
    if (j["operation"] == "Connect" && j["result"] == "PERMISSION_DENIED") {
      denied = true;
      EXPECT_EQ(j["principal"]["name"], "viewer1");
      EXPECT_EQ(j["principal"]["address"], "127.0.xxx.xxx");
    }
  }
  EXPECT_TRUE(denied) << lines.size();
}

TEST_F(ServerTest, LockOutAndSizeErrorsAreToldApart) {
  ASSERT_TRUE(Start((dir_ / "audit.jsonl").string()).ok());
  auto stub = Tcp();
  aers::v1::GetGraphResponse g;
  std::string reason;
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext c;
    Auth(c, "wrong-token-000000000" + std::to_string(i));
    (void)stub->GetGraph(&c, {}, &g);
    reason = Reason(c);
  }
  EXPECT_EQ(reason, "unauthenticated");
  grpc::ClientContext locked;
  Auth(locked, kOperator);
  EXPECT_EQ(stub->GetGraph(&locked, {}, &g).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Reason(locked), "locked-out");
  // The Unix socket is never locked out.
  grpc::ClientContext local;
  Auth(local, "");
  EXPECT_TRUE(Unix()->GetGraph(&local, {}, &g).ok());
  // A message over the size limit: RESOURCE_EXHAUSTED without the lock-out reason.
  grpc::ClientContext big;
  Auth(big, "");
  aers::v1::ApplyGraphRequest req;
  req.set_yaml(std::string(5 << 20, '#'));
  aers::v1::EditResponse resp;
  const auto st = Unix()->ApplyGraph(&big, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_EQ(Reason(big), "");
}

TEST_F(ServerTest, AnUnwritableAuditLogRefusesEditsAndChangesNothing) {
  ASSERT_TRUE(Start("/dev/full", false).ok());
  const auto before = rig_.engine().spec();
  const uint64_t rev = rig_.engine().revision();
  const auto st = SetGain(-3);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("audit"), std::string::npos);
  EXPECT_EQ(rig_.engine().spec(), before);
  EXPECT_EQ(rig_.engine().revision(), rev);
  EXPECT_EQ(store_->SavedRevision(), std::optional<uint64_t>(0));  // nothing persisted
}

TEST_F(ServerTest, EveryOutcomeOfAMutationIsAudited) {
  ASSERT_TRUE(Start((dir_ / "audit.jsonl").string(), false).ok());
  auto stub = Unix();
  auto set = [&](double v, bool dry, std::optional<uint64_t> expect) {
    grpc::ClientContext c;
    Auth(c, "");
    aers::v1::EditRequest req;
    auto* sp = req.add_ops()->mutable_set_parameter();
    sp->set_node("g");
    sp->set_param("gain_db");
    sp->mutable_value()->set_number(v);
    req.set_dry_run(dry);
    if (expect) req.set_expected_revision(*expect);
    aers::v1::EditResponse resp;
    return stub->Edit(&c, req, &resp).error_code();
  };
  const uint64_t rev = rig_.engine().revision();
  EXPECT_EQ(set(-3, false, std::nullopt), grpc::StatusCode::OK);
  EXPECT_EQ(set(-4, true, std::nullopt), grpc::StatusCode::OK);
  EXPECT_EQ(set(-5, false, rev), grpc::StatusCode::ABORTED);
  EXPECT_EQ(set(1000, false, std::nullopt), grpc::StatusCode::INVALID_ARGUMENT);
  std::vector<std::string> results;
  for (const auto& l : ReadLines(dir_ / "audit.jsonl")) {
    const auto j = nlohmann::json::parse(l);
    results.push_back(j["result"].get<std::string>() + (j.contains("dry_run") ? "+dry" : ""));
    EXPECT_EQ(j["principal"]["kind"], "unix");
  }
  EXPECT_EQ(results, (std::vector<std::string>{"OK", "OK+dry", "ABORTED", "INVALID_ARGUMENT"}));
  EXPECT_EQ(store_->SavedRevision(),
            std::optional<uint64_t>(rev + 1 + state::StateStore::kRevisionLease));
}

// Clients editing at once (their edits committed in batches that share
// one flush of the audit log): every applied edit has one OK record naming
// its own revision, in the order applied.
TEST_F(ServerTest, ConcurrentEditsAreEachAuditedWithTheirOwnRevision) {
  ASSERT_TRUE(Start((dir_ / "audit.jsonl").string(), false).ok());
  constexpr int kClients = 8;
  constexpr int kEdits = 25;
  const uint64_t rev = rig_.engine().revision();
  const int syncs = g_syncs;
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", c);  // a connection of its own
      auto stub = aers::v1::Control::NewStub(
          grpc::CreateCustomChannel("unix:" + (dir_ / "run" / "aersd.sock").string(),
                                    grpc::InsecureChannelCredentials(), args));
      for (int i = 0; i < kEdits; ++i) {
        grpc::ClientContext ctx;
        Auth(ctx, "");
        aers::v1::SetParameterRequest req;
        req.set_node("g");
        req.set_param("gain_db");
        req.mutable_value()->set_number(-static_cast<double>(c * kEdits + i) / 10.0);
        aers::v1::EditResponse resp;
        if (!stub->SetParameter(&ctx, req, &resp).ok()) ++failed;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed, 0);
  const uint64_t last = rig_.engine().revision();
  EXPECT_EQ(last, rev + kClients * kEdits);
  std::vector<uint64_t> applied;
  for (const auto& l : ReadLines(dir_ / "audit.jsonl")) {
    const auto j = nlohmann::json::parse(l);
    ASSERT_EQ(j["result"], "OK") << l;
    EXPECT_EQ(j["revision_before"].get<uint64_t>() + 1, j["revision_after"].get<uint64_t>()) << l;
    applied.push_back(j["revision_after"].get<uint64_t>());
  }
  std::vector<uint64_t> want;
  for (uint64_t r = rev + 1; r <= last; ++r) want.push_back(r);
  EXPECT_EQ(applied, want);
  EXPECT_EQ(audit_->HighestAppliedRevision(), std::optional<uint64_t>(last));
  EXPECT_EQ(store_->SavedRevision(),
            std::optional<uint64_t>(last + state::StateStore::kRevisionLease));
  RecordProperty("flushes", g_syncs - syncs);  // audit log and journal, shared by batches
}

// An edit whose audit record was written but could not be flushed is
// refused, and a follow-up record (once the log flushes again) says so: the
// file never shows an edit applied that was not.
TEST_F(ServerTest, AnEditWhoseRecordCannotBeFlushedIsRefusedAndSaidToBe) {
  ASSERT_TRUE(Start((dir_ / "audit.jsonl").string(), false).ok());
  const auto before = rig_.engine().spec();
  const uint64_t rev = rig_.engine().revision();
  g_fail_syncs = 1;  // the batch's flush of the record
  const auto st = SetGain(-3);
  g_fail_syncs = 0;
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("cannot sync"), std::string::npos) << st.error_message();
  EXPECT_EQ(rig_.engine().spec(), before);
  EXPECT_EQ(rig_.engine().revision(), rev);
  const auto lines = ReadLines(dir_ / "audit.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  const auto first = nlohmann::json::parse(lines[0]);
  const auto second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(first["result"], "OK");
  EXPECT_EQ(second["result"], "UNAVAILABLE");
  EXPECT_EQ(second["call"], first["call"]);
  EXPECT_NE(second["message"].get<std::string>().find("not applied after all"), std::string::npos)
      << lines[1];
  EXPECT_EQ(audit_->HighestAppliedRevision(), std::nullopt);
}

// Applied, then its journal record could not be flushed: the call fails,
// but the edit runs, and the audit log says so (not "not applied").
TEST_F(ServerTest, AnEditAppliedButNotMadeDurableIsAuditedAsRunning) {
  ASSERT_TRUE(Start((dir_ / "audit.jsonl").string(), false).ok());
  const uint64_t rev = rig_.engine().revision();
  g_pass_syncs = 1;  // the audit record's flush
  g_fail_syncs = 1;  // the journal's
  const auto st = SetGain(-3);
  g_fail_syncs = 0;
  g_pass_syncs = 0;
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("applied (revision " + std::to_string(rev + 1)),
            std::string::npos)
      << st.error_message();
  EXPECT_EQ(rig_.engine().revision(), rev + 1);
  EXPECT_TRUE(service_->state_diverged());
  const auto lines = ReadLines(dir_ / "audit.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  const auto second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["result"], "UNAVAILABLE");
  EXPECT_EQ(second["revision_after"], rev + 1);
  EXPECT_EQ(second["details"]["applied"], "true");
  EXPECT_EQ(second["message"].get<std::string>().find("not applied"), std::string::npos);
  EXPECT_EQ(audit_->HighestAppliedRevision(), std::optional<uint64_t>(rev + 1));
}

TEST_F(ServerTest, Ipv6PeersAreKeyedAndMaskedFromGrpcsOwnPeerText) {
  auto audit = control::AuditLog::Open({(dir_ / "audit6.jsonl").string()});
  ASSERT_TRUE(audit.ok());
  control::ControlServer s(*service_, nullptr, "test", "", nullptr, audit->get());
  control::ListenerOptions o;
  o.listen = {"tcp:[::1]:" + std::to_string(port_)};
  o.token_file = (dir_ / "tokens").string();
  if (!s.Start(o).ok()) GTEST_SKIP() << "no IPv6 loopback here";
  auto stub = aers::v1::Control::NewStub(grpc::CreateChannel("ipv6:[::1]:" + std::to_string(port_),
                                                             grpc::InsecureChannelCredentials()));
  aers::v1::GetGraphResponse g;
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext c;
    Auth(c, "wrong-token-000000000" + std::to_string(i));
    (void)stub->GetGraph(&c, {}, &g);
  }
  grpc::ClientContext c;
  Auth(c, kOperator);
  EXPECT_EQ(stub->GetGraph(&c, {}, &g).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  s.Shutdown();
  const auto lines = ReadLines(dir_ / "audit6.jsonl");
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(nlohmann::json::parse(lines[0])["principal"]["address"], "0:xxxx");
}

TEST_F(ServerTest, ErrorsStaySmallWhateverTheInput) {
  ASSERT_TRUE(Start((dir_ / "audit.jsonl").string(), false).ok());
  std::string yaml = "version: 1\nroutes:\n";
  for (int i = 0; i < 3000; ++i) yaml += "  - {from: a" + std::to_string(i) + ", to: b}\n";
  grpc::ClientContext c;
  Auth(c, "");
  aers::v1::ApplyGraphRequest req;
  req.set_yaml(yaml);
  req.set_dry_run(true);
  aers::v1::EditResponse resp;
  const auto st = Unix()->ApplyGraph(&c, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_LE(st.error_message().size(), 4200u);
  EXPECT_NE(st.error_message().find("more problems"), std::string::npos);
  for (const auto& line : ReadLines(dir_ / "audit.jsonl")) EXPECT_LE(line.size(), 6000u);
}

TEST_F(ServerTest, ReflectionNeedsAViewerOnTcp) {
  ASSERT_TRUE(Start((dir_ / "audit.jsonl").string()).ok());
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials());
  auto refl = grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
  for (const auto& [token, ok] : {std::pair{std::string(), false}, {std::string(kViewer), true}}) {
    grpc::ClientContext c;
    Auth(c, token);
    auto s = refl->ServerReflectionInfo(&c);
    grpc::reflection::v1alpha::ServerReflectionRequest req;
    req.set_file_containing_symbol("aers.v1.Control");
    s->Write(req);
    s->WritesDone();
    grpc::reflection::v1alpha::ServerReflectionResponse resp;
    int files = 0;
    while (s->Read(&resp)) files += resp.file_descriptor_response().file_descriptor_proto_size();
    const auto st = s->Finish();
    EXPECT_EQ(st.ok(), ok) << st.error_message();
    EXPECT_EQ(files > 0, ok);
  }
}

TEST_F(ServerTest, PlaintextTokensOnANonLoopbackAddressNeedTheFlag) {
  auto audit = control::AuditLog::Open({});
  control::ControlServer s(*service_, nullptr, "test", "", nullptr, audit->get());
  control::ListenerOptions o;
  o.listen = {"tcp:0.0.0.0:" + std::to_string(port_)};
  o.token_file = (dir_ / "tokens").string();
  const auto st = s.Start(o);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("--allow_plaintext_tokens"), absl::string_view::npos) << st;
}

TEST_F(ServerTest, TheSocketPathIsNeverStolenOrReplaced) {
  const fs::path run = dir_ / "run";
  fs::create_directories(run);
  ::chmod(run.c_str(), 0750);
  // A regular file at the path is neither used nor deleted.
  std::ofstream(run / "aersd.sock") << "mine";
  auto st = Start((dir_ / "audit.jsonl").string(), false);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_TRUE(fs::is_regular_file(run / "aersd.sock"));
  fs::remove(run / "aersd.sock");
  // A live daemon's socket is not taken over, and survives the second one.
  ASSERT_TRUE(Start((dir_ / "audit.jsonl").string(), false).ok());
  {
    auto audit = control::AuditLog::Open({});
    control::ControlServer second(*service_, nullptr, "test", "", nullptr, audit->get());
    control::ListenerOptions o;
    o.unix_socket = (run / "aersd.sock").string();
    st = second.Start(o);
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
    EXPECT_NE(st.message().find("another aersd runs on this socket"), absl::string_view::npos)
        << st;
    // Even with the first one's socket file deleted, the path stays its.
    fs::rename(run / "aersd.sock", run / "moved.sock");
    control::ControlServer third(*service_, nullptr, "test", "", nullptr, audit->get());
    st = third.Start(o);
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
    EXPECT_FALSE(fs::exists(run / "aersd.sock"));
    fs::rename(run / "moved.sock", run / "aersd.sock");
  }
  grpc::ClientContext c;
  Auth(c, "");
  aers::v1::GetGraphResponse g;
  EXPECT_TRUE(Unix()->GetGraph(&c, {}, &g).ok());
  server_->Shutdown();
  EXPECT_FALSE(fs::exists(run / "aersd.sock"));
}

}  // namespace
}  // namespace aers::test
