#include "state/state_store.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "config/config.h"
#include "config/graph_yaml.h"

namespace aers::state {

namespace {

// WriteFileAtomically's temporaries: ".NAME" kTemporaryInfix "XXXXXX".
constexpr char kTemporaryInfix[] = ".aers-tmp-";

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(path, ": ", what, ": ", std::strerror(errno)));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

// What a file that is not a regular one is, for errors.
const char* KindOf(mode_t mode) {
  return S_ISLNK(mode)                    ? "a symbolic link"
         : S_ISDIR(mode)                  ? "a directory"
         : S_ISCHR(mode) || S_ISBLK(mode) ? "a device"
         : S_ISFIFO(mode)                 ? "a FIFO"
         : S_ISSOCK(mode)                 ? "a socket"
                                          : "not a regular file";
}

absl::Status CheckReplaceable(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoError("cannot inspect it", path);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": exists and is not a regular file (",
                                                      KindOf(st.st_mode),
                                                      "); refusing to replace it"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents,
                                 unsigned mode) {
  if (auto st = CheckReplaceable(path); !st.ok()) return st;
  const std::filesystem::path p(path);
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : ".";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(dir.string(), ": cannot create directory: ", ec.message()));
  }
  // ".NAME.aers-tmp-XXXXXX": a name no one gives a file of their own, so
  // that RemoveStaleTemporaries removes only these.
  std::string tmpl =
      (dir / absl::StrCat(".", p.filename().string(), kTemporaryInfix, "XXXXXX")).string();
  // Errors name the file being written, then the temporary one.
  const auto tmp_error = [&](const char* what) {
    return absl::InternalError(
        absl::StrCat(path, ": ", what, " (temporary file ", tmpl, "): ", std::strerror(errno)));
  };
  Fd fd(::mkstemp(tmpl.data()));
  if (fd.get() < 0) return tmp_error("cannot create a temporary file");
  bool ok = false;
  struct Cleanup {
    const std::string& name;
    const bool& done;
    ~Cleanup() {
      if (!done) ::unlink(name.c_str());
    }
  } cleanup{tmpl, ok};
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) return tmp_error("fchmod");
  size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd.get(), contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return tmp_error("write");
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return tmp_error("fsync");
  if (::close(fd.release()) != 0) return tmp_error("close");
  // Checked again right before: whatever appeared at the path meanwhile
  // (a device, a FIFO) is never replaced.
  if (auto st = CheckReplaceable(path); !st.ok()) return st;
  if (::rename(tmpl.c_str(), path.c_str()) != 0) return ErrnoError("rename", path);
  ok = true;
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0 || ::fsync(dfd.get()) != 0) return ErrnoError("fsync directory", dir.string());
  return absl::OkStatus();
}

namespace {
constexpr char kBaselinePrefix[] = "# baseline: ";
constexpr char kRevisionPrefix[] = "# revision: ";
constexpr char kLeasePrefix[] = "# lease: ";
constexpr char kRecordMagic[] = "AERSJ1";
constexpr uint64_t kCompactBytes = uint64_t{1} << 20;
// The journal grows in zero-filled steps of this size, written ahead of
// the records that will overwrite them: a record then changes neither the
// file's size nor its block map, so its fdatasync writes the data alone (a
// growing file makes every flush write the inode too: a second I/O).
constexpr uint64_t kJournalStep = uint64_t{256} << 10;
// No journal aersd writes comes near this (at most kCompactBytes of records
// and a step of room): a bigger file is not read.
constexpr uint64_t kMaxJournalBytes = uint64_t{64} << 20;

// The value of a "# key: value" header line among the first lines of
// `text`.
std::string HeaderValue(const std::string& text, std::string_view prefix) {
  std::istringstream in(text);
  std::string line;
  for (int i = 0; i < 4 && std::getline(in, line); ++i) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "";
}

std::optional<uint64_t> ParseRevision(const std::string& v) {
  uint64_t out = 0;
  if (v.empty() || v.size() > 19) return std::nullopt;
  for (char ch : v) {
    if (ch < '0' || ch > '9') return std::nullopt;
    out = out * 10 + static_cast<uint64_t>(ch - '0');
  }
  return out;
}

// Revisions beyond this are refused in a record (a corrupt header must not
// wrap the revision counter).
constexpr uint64_t kMaxRevision = uint64_t{1} << 62;

// BLAKE2b-128, hex, of a record's revision, lease and payload (a torn or
// zero-filled tail, or an edited header, fails it).
std::string RecordHash(uint64_t revision, uint64_t lease, absl::string_view payload) {
  unsigned char h[16];
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, sizeof h);
  const std::string head = absl::StrCat(revision, " ", lease, "\n");
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(head.data()), head.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(payload.data()),
                            payload.size());
  crypto_generichash_final(&st, h, sizeof h);
  char hex[sizeof h * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return hex;
}

// Writes `data` at `offset`; `*written` says how far it got.
absl::Status PWriteAll(int fd, std::string_view data, uint64_t offset, const std::string& path,
                       size_t* written) {
  *written = 0;
  while (*written < data.size()) {
    const ssize_t n = ::pwrite(fd, data.data() + *written, data.size() - *written,
                               static_cast<off_t>(offset + *written));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path);
    }
    if (n == 0) {
      errno = ENOSPC;
      return ErrnoError("write", path);
    }
    *written += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Zeros over [offset, offset + bytes).
absl::Status WriteZeros(int fd, uint64_t offset, uint64_t bytes, const std::string& path) {
  static const std::string kZeros(64 << 10, '\0');
  while (bytes > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(bytes, kZeros.size()));
    size_t written = 0;
    if (auto st = PWriteAll(fd, std::string_view(kZeros.data(), n), offset, path, &written);
        !st.ok()) {
      return st;
    }
    offset += n;
    bytes -= n;
  }
  return absl::OkStatus();
}

std::optional<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Record {
  uint64_t revision = 0;
  uint64_t lease = 0;
  std::string payload;
  size_t offset = 0;  // byte offset in the journal, for messages
};

// Every intact record of a journal, in order. A damaged stretch (a flipped
// byte, a torn write) is skipped up to the next intact record, and its
// byte offsets are reported in `damage` ("" when none). Runs of zero bytes
// are room not yet written (kJournalStep), or records a checkpoint was
// clearing: skipped, never damage.
std::vector<Record> ReadRecords(const std::string& journal, std::string* damage) {
  std::vector<Record> out;
  std::vector<std::string> bad;
  size_t pos = 0;
  size_t bad_from = std::string::npos;
  const auto record_at = [&](size_t at, size_t* next) -> std::optional<Record> {
    const size_t eol = journal.find('\n', at);
    if (eol == std::string::npos) return std::nullopt;
    const std::vector<absl::string_view> f =
        absl::StrSplit(absl::string_view(journal).substr(at, eol - at), ' ');
    uint64_t revision = 0, lease = 0, bytes = 0;
    if (f.size() != 5 || f[0] != kRecordMagic || !absl::SimpleAtoi(f[1], &revision) ||
        !absl::SimpleAtoi(f[2], &lease) || !absl::SimpleAtoi(f[3], &bytes) ||
        revision > kMaxRevision || lease != revision + StateStore::kRevisionLease ||
        bytes > journal.size() - eol - 1 || eol + 1 + bytes >= journal.size() ||
        journal[eol + 1 + bytes] != '\n') {
      return std::nullopt;
    }
    const absl::string_view payload = absl::string_view(journal).substr(eol + 1, bytes);
    if (RecordHash(revision, lease, payload) != f[4]) return std::nullopt;
    *next = eol + 1 + bytes + 1;
    return Record{revision, lease, std::string(payload), at};
  };
  const std::string magic = absl::StrCat(kRecordMagic, " ");
  // A damaged stretch [bad_from, end) is reported unless it is what a crash
  // leaves without losing anything acknowledged: a record cut short at the
  // end (its header says it runs on into the zero-filled room or past the
  // end: its write was interrupted, and it was never flushed, so never
  // acknowledged), or the rest of a record whose start a checkpoint had
  // already zeroed (the state file holds newer).
  const auto close_bad = [&](size_t end) {
    if (bad_from == std::string::npos) return;
    const absl::string_view stretch = absl::string_view(journal).substr(bad_from, end - bad_from);
    const bool only_zeros_after = journal.find_first_not_of('\0', end) == std::string::npos;
    bool torn = false;
    if (only_zeros_after && absl::StartsWith(stretch, magic)) {
      const size_t eol = stretch.find('\n');
      const std::vector<absl::string_view> f = absl::StrSplit(stretch.substr(0, eol), ' ');
      uint64_t bytes = 0;
      torn = eol == absl::string_view::npos || (f.size() == 5 && absl::SimpleAtoi(f[3], &bytes) &&
                                                eol + 1 + bytes + 1 > stretch.size());
    }
    const bool cleared_rest =
        bad_from > 0 && journal[bad_from - 1] == '\0' && !absl::StartsWith(stretch, magic);
    if (!torn && !cleared_rest) {
      bad.push_back(end == journal.size()
                        ? absl::StrCat("bytes ", bad_from, " to ", end - 1, " (the end)")
                        : absl::StrCat("bytes ", bad_from, " to ", end - 1));
    }
    bad_from = std::string::npos;
  };
  while (pos < journal.size()) {
    if (journal[pos] == '\0') {
      close_bad(pos);
      pos = journal.find_first_not_of('\0', pos);
      if (pos == std::string::npos) break;
      continue;
    }
    size_t next = 0;
    if (auto r = record_at(pos, &next)) {
      close_bad(pos);
      out.push_back(std::move(*r));
      pos = next;
      continue;
    }
    // Damaged here: look for the next record header (anywhere: garbage may
    // run into it without a line break), or the room after the last record.
    if (bad_from == std::string::npos) bad_from = pos;
    const size_t header = journal.find(magic, pos + 1);
    const size_t zero = journal.find('\0', pos);
    pos = std::min(header, zero);
    if (pos == std::string::npos) break;
  }
  close_bad(journal.size());
  if (damage != nullptr) *damage = absl::StrJoin(bad, ", ");
  return out;
}
}  // namespace

StateStore::~StateStore() {
  if (journal_fd_ >= 0) ::close(journal_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

absl::Status StateStore::Lock() {
  if (lock_fd_ >= 0) return absl::OkStatus();
  const std::filesystem::path p(path_);
  std::error_code ec;
  std::filesystem::create_directories(p.has_parent_path() ? p.parent_path() : ".", ec);
  const std::string lock = path_ + ".lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    // Something is at the lock's path that is not a lock file we can open
    // (a symbolic link, a directory): refused, as a held lock is.
    if (struct stat st{}; ::lstat(lock.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_, ": its lock file ", lock, " is ", KindOf(st.st_mode), "; remove it"));
    }
    errno = err;
    return ErrnoError("cannot open its lock file " + lock, path_);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": its lock file ", lock, " is not a regular file"));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    errno = err;
    if (err != EWOULDBLOCK) return ErrnoError("cannot lock " + lock, path_);
    std::string pid(buf, n > 0 ? static_cast<size_t>(n) : 0);
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return absl::FailedPreconditionError(absl::StrCat(
        path_, ": in use by another aersd", pid.empty() ? "" : absl::StrCat(" (pid ", pid, ")"),
        ", which holds ", lock,
        "; two daemons on one state file would overwrite each other's edits (use --state_file "
        "to run a second daemon)"));
  }
  const std::string pid = absl::StrCat(::getpid(), "\n");
  // Without the pid the lock still holds; only a second daemon's message
  // is poorer.
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, pid.data(), pid.size(), 0);
  lock_fd_ = fd;
  return absl::OkStatus();
}

void StateStore::set_baseline(std::string baseline) {
  std::lock_guard lock(mu_);
  baseline_ = std::move(baseline);
}

std::string StateStore::baseline() const {
  std::lock_guard lock(mu_);
  return baseline_;
}

std::string StateStore::Contents(const model::GraphSpec& graph, uint64_t revision,
                                 const std::string& baseline, bool journal) const {
  std::optional<std::string> body;
  if (journal) {
    std::lock_guard lock(json_mu_);
    if ((body = config::EmitGraphJson(graph, &json_cache_))) body->push_back('\n');
  }
  if (!body) body = config::EmitGraphYaml(graph);
  return absl::StrCat("# aersd live graph state: written on every accepted edit; delete to reset\n",
                      kBaselinePrefix, baseline, "\n", kRevisionPrefix, revision, "\n",
                      kLeasePrefix, revision + kRevisionLease, "\n", *body);
}

absl::Status StateStore::OpenJournalLocked() const {
  if (journal_fd_ >= 0) return absl::OkStatus();
  const std::string jp = journal_path();
  if (auto st = CheckReplaceable(jp); !st.ok()) return st;
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::path(path_).has_parent_path()
                                        ? std::filesystem::path(path_).parent_path()
                                        : std::filesystem::path(".");
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(dir.string(), ": cannot create directory: ", ec.message()));
  }
  // Records go after what a previous run left (read at start-up), before
  // the zero-filled room; the next checkpoint clears them.
  const int fd = ::open(jp.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return ErrnoError("cannot open the journal", jp);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(jp, ": the journal is not a regular file"));
  }
  // One writer: records go where this store thinks the journal ends, so a
  // second daemon on the same state file would overwrite them.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return err == EWOULDBLOCK ? absl::FailedPreconditionError(absl::StrCat(
                                    jp,
                                    ": in use by another process (another aersd with the "
                                    "same --state_file?)"))
                              : ErrnoError("cannot lock the journal", jp);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxJournalBytes) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(jp, ": ", st.st_size, " bytes, more than a journal ever holds; move it away"));
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  const ssize_t n = ::pread(fd, text.data(), text.size(), 0);
  if (n < 0) {
    const absl::Status error = ErrnoError("read", jp);
    ::close(fd);
    return error;
  }
  text.resize(static_cast<size_t>(n));
  const size_t used = text.find_last_not_of('\0');
  journal_fd_ = fd;
  journal_bytes_ = used == std::string::npos ? 0 : used + 1;
  journal_room_ = static_cast<uint64_t>(st.st_size);
  // More zero-filled room than the records need (a file extended by hand):
  // cut back to the step after the records.
  const uint64_t room =
      std::max(kJournalStep, (journal_bytes_ + kJournalStep - 1) / kJournalStep * kJournalStep);
  if (journal_room_ > room && ::ftruncate(fd, static_cast<off_t>(room)) == 0) journal_room_ = room;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StateStore::Append(const model::GraphSpec& graph,
                                            uint64_t revision) const {
  const std::string base = baseline();
  const std::string contents = Contents(graph, revision, base, /*journal=*/true);
  bool compact = false;
  {
    std::lock_guard lock(journal_mu_);
    if (auto st = CheckReplaceable(path_); !st.ok()) return st;
    if (auto st = OpenJournalLocked(); !st.ok()) return st;
    compact = journal_bytes_ + contents.size() > kCompactBytes;
  }
  if (!compact) {
    // Never hand out a revision a power cut could make repeat: past the
    // durable lease, flush first (in practice the lease is far ahead).
    uint64_t wait_for = 0;
    {
      std::lock_guard lock(journal_mu_);
      if (revision > synced_lease_ && appended_ > synced_) wait_for = appended_;
    }
    if (wait_for != 0) {
      if (auto st = Sync(wait_for); !st.ok()) return st;
    }
  }
  std::unique_lock slock(sync_mu_, std::defer_lock);
  if (compact) slock.lock();  // a checkpoint replaces the file a flush may be using
  std::lock_guard lock(journal_mu_);
  const std::string header = absl::StrCat(
      kRecordMagic, " ", revision, " ", revision + kRevisionLease, " ", contents.size(), " ",
      RecordHash(revision, revision + kRevisionLease, contents), "\n");
  if (compact) {
    // The record goes straight into the state file: durable at once. A
    // state that could not be written is never kept for a later
    // checkpoint: the edit it holds is refused.
    std::optional<Newest> previous = std::exchange(last_, Newest{graph, revision, base});
    if (auto st = CheckpointLocked(); !st.ok()) {
      last_ = std::move(previous);
      return st;
    }
    return appended_;
  }
  const std::string record = header + contents + "\n";
  if (journal_bytes_ + record.size() > journal_room_) {
    // Room for it (and more) first, zero-filled, flushed by the record's
    // own Sync. A full disk fails here, before the record is written.
    const uint64_t room =
        (journal_bytes_ + record.size() + kJournalStep - 1) / kJournalStep * kJournalStep;
    if (auto st = WriteZeros(journal_fd_, journal_room_, room - journal_room_, journal_path());
        !st.ok()) {
      // What the failed write added is zeros: room for later, or cut off.
      struct stat sb {};
      if (::fstat(journal_fd_, &sb) == 0) journal_room_ = static_cast<uint64_t>(sb.st_size);
      return st;
    }
    journal_room_ = room;
  }
  size_t written = 0;
  if (auto st = PWriteAll(journal_fd_, record, journal_bytes_, journal_path(), &written);
      !st.ok()) {
    // A partial record is skipped on reading (its hash fails); zero it
    // anyway, so that the journal stays clean.
    if (written > 0) (void)WriteZeros(journal_fd_, journal_bytes_, written, journal_path());
    return st;
  }
  journal_bytes_ += record.size();
  ++records_;
  last_ = Newest{graph, revision, base};
  appended_lease_ = revision + kRevisionLease;
  return ++appended_;
}

absl::Status StateStore::Sync(uint64_t ticket) const {
  {
    std::lock_guard lock(journal_mu_);
    if (synced_ >= ticket) return absl::OkStatus();
  }
  // Group commit: one flush at a time. Whoever waits here while a flush
  // runs finds its record flushed by it, or flushes everything appended so
  // far, for all who wait behind it.
  std::lock_guard sync(sync_mu_);
  uint64_t target = 0, lease = 0;
  int fd = -1;
  {
    std::lock_guard lock(journal_mu_);
    if (synced_ >= ticket) return absl::OkStatus();
    target = appended_;
    lease = appended_lease_;
    fd = journal_fd_;
  }
  if (fd >= 0 && ::fdatasync(fd) != 0) return ErrnoError("fdatasync", journal_path());
  std::lock_guard lock(journal_mu_);
  synced_ = std::max(synced_, target);
  synced_lease_ = std::max(synced_lease_, lease);
  ++flushes_;
  return absl::OkStatus();
}

absl::Status StateStore::CheckpointLocked() const {
  if (!last_) return absl::OkStatus();
  // The state file is YAML for people, whatever the journal's records are.
  const std::string contents =
      Contents(last_->graph, last_->revision, last_->baseline, /*journal=*/false);
  if (auto st = WriteFileAtomically(path_, contents); !st.ok()) return st;
  if (journal_fd_ >= 0) {
    // Cleared in place: the room stays allocated and zero-filled for the
    // next records. A crash halfway leaves zeros and records older than
    // the state file: skipped on reading.
    if (auto st = WriteZeros(journal_fd_, 0, journal_bytes_, journal_path()); !st.ok()) return st;
    (void)::fdatasync(journal_fd_);  // a stale journal would be older anyway
  }
  journal_bytes_ = 0;
  records_ = 0;
  synced_ = appended_;
  synced_lease_ = std::max(synced_lease_, appended_lease_);
  // The checkpointed state reserves its lease too (written in the file).
  synced_lease_ = std::max(synced_lease_, last_->revision + kRevisionLease);
  last_.reset();
  return absl::OkStatus();
}

absl::Status StateStore::Checkpoint() const {
  std::lock_guard sync(sync_mu_);
  std::lock_guard lock(journal_mu_);
  if (records_ == 0) return absl::OkStatus();
  return CheckpointLocked();
}

absl::Status StateStore::Save(const model::GraphSpec& graph, uint64_t revision) const {
  auto ticket = Append(graph, revision);
  if (!ticket.ok()) return ticket.status();
  return Sync(*ticket);
}

std::string StateStore::journal_damage() const {
  std::lock_guard lock(journal_mu_);
  return damage_;
}

absl::Status StateStore::SetAsideJournal() const {
  std::lock_guard sync(sync_mu_);
  std::lock_guard lock(journal_mu_);
  const std::string jp = journal_path();
  if (auto st = CheckReplaceable(jp); !st.ok()) return st;
  if (journal_fd_ >= 0) ::close(journal_fd_);
  journal_fd_ = -1;
  journal_bytes_ = 0;
  journal_room_ = 0;
  records_ = 0;
  if (::rename(jp.c_str(), (jp + ".damaged").c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("rename", jp);
  }
  damage_.clear();
  return absl::OkStatus();
}

uint64_t StateStore::journal_records() const {
  std::lock_guard lock(journal_mu_);
  return records_;
}

uint64_t StateStore::flushes() const {
  std::lock_guard lock(journal_mu_);
  return flushes_;
}

std::optional<StateStore::Latest> StateStore::ReadLatest() const {
  std::optional<Latest> out;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path_, ec)) {
    Latest l;
    l.text = ReadWholeFile(path_).value_or("");
    l.source = path_;
    const auto rev = ParseRevision(HeaderValue(l.text, kRevisionPrefix));
    l.file_revision_unreadable = !rev.has_value();
    l.revision = rev.value_or(0);
    l.lease = ParseRevision(HeaderValue(l.text, kLeasePrefix)).value_or(l.revision);
    out = std::move(l);
  }
  const std::string jp = journal_path();
  // Not followed through a link, and not read when no journal aersd writes
  // could be that big (the start-up sets it aside as damaged).
  const auto type = std::filesystem::symlink_status(jp, ec).type();
  const uint64_t size = type == std::filesystem::file_type::regular
                            ? static_cast<uint64_t>(std::filesystem::file_size(jp, ec))
                            : 0;
  if (type != std::filesystem::file_type::not_found && type != std::filesystem::file_type::none &&
      (type != std::filesystem::file_type::regular || size > kMaxJournalBytes)) {
    std::lock_guard lock(journal_mu_);
    damage_ =
        type != std::filesystem::file_type::regular
            ? absl::StrCat(jp, ": not a regular file: not read")
            : absl::StrCat(jp, ": ", size, " bytes, more than a journal ever holds: not read");
  } else if (type == std::filesystem::file_type::regular) {
    const auto journal = ReadWholeFile(jp);
    std::string damage;
    const std::vector<Record> records =
        journal ? ReadRecords(*journal, &damage) : std::vector<Record>{};
    if (!damage.empty()) {
      std::lock_guard lock(journal_mu_);
      damage_ = absl::StrCat(jp, ": damaged records skipped at ", damage);
    }
    uint64_t lease = out ? out->lease : 0;
    for (const auto& r : records) lease = std::max(lease, r.lease);
    if (!records.empty() &&
        (!out || out->file_revision_unreadable || records.back().revision >= out->revision)) {
      Latest l;
      l.text = records.back().payload;
      l.source = absl::StrCat(jp, " (the record at byte ", records.back().offset, ")");
      l.revision = records.back().revision;
      out = std::move(l);
    }
    if (out) out->lease = std::max(out->lease, lease);
  }
  return out;
}

std::string StateStore::SavedBaseline() const {
  const auto latest = ReadLatest();
  return latest ? HeaderValue(latest->text, kBaselinePrefix) : "";
}

std::optional<uint64_t> StateStore::SavedRevision(std::optional<uint64_t>* graph_revision) const {
  if (graph_revision != nullptr) graph_revision->reset();
  std::error_code ec;
  if (std::filesystem::exists(path_, ec) && !std::filesystem::is_regular_file(path_, ec)) {
    return std::nullopt;
  }
  const auto latest = ReadLatest();
  if (!latest) return 0;
  if (latest->file_revision_unreadable) return std::nullopt;
  if (graph_revision != nullptr) *graph_revision = latest->revision;
  return std::max(latest->revision, latest->lease);
}

absl::StatusOr<std::optional<model::GraphSpec>> StateStore::Load(const model::KindRegistry& kinds,
                                                                 std::string* source) const {
  std::error_code ec;
  if (std::filesystem::exists(path_, ec) && !std::filesystem::is_regular_file(path_, ec)) {
    return absl::DataLossError(
        absl::StrCat("state file ", path_, " is unusable: not a regular file"));
  }
  const auto latest = ReadLatest();
  if (!latest) return std::optional<model::GraphSpec>();
  if (source != nullptr) *source = latest->source;
  auto loaded = config::ParseGraphYaml(latest->text, latest->source, kinds);
  if (!loaded.ok()) {
    return absl::DataLossError(absl::StrCat(
        "state file ", latest->source, " is unusable: ", std::string(loaded.status().message())));
  }
  return std::optional<model::GraphSpec>(std::move(*loaded));
}

absl::Status StateStore::Remove() const {
  std::lock_guard sync(sync_mu_);
  std::lock_guard lock(journal_mu_);
  for (const std::string& p : {path_, journal_path()}) {
    if (auto st = CheckReplaceable(p); !st.ok()) return st;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink", p);
  }
  if (journal_fd_ >= 0) ::close(journal_fd_);
  journal_fd_ = -1;
  journal_bytes_ = 0;
  journal_room_ = 0;
  records_ = 0;
  last_.reset();
  return absl::OkStatus();
}

absl::Status StateStore::CheckPath() const {
  return CheckReplaceable(path_);
}

int StateStore::RemoveStaleTemporaries() const {
  // WriteFileAtomically's temporaries: ".<name>.aers-tmp-XXXXXX" beside
  // the file, left behind only by a crash between mkstemp and rename.
  const std::filesystem::path p(path_);
  const std::string prefix = "." + p.filename().string() + kTemporaryInfix;
  std::error_code ec;
  int removed = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(p.has_parent_path() ? p.parent_path() : ".", ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() == prefix.size() + 6 && name.rfind(prefix, 0) == 0 && e.is_regular_file(ec) &&
        !e.is_symlink(ec) && std::filesystem::remove(e.path(), ec)) {
      ++removed;
    }
  }
  return removed;
}

std::string StateStore::DefaultPath() {
  if (const char* d = std::getenv("STATE_DIRECTORY"); d && *d) {
    // systemd may pass several, colon-separated: take the first.
    std::string dir(d);
    if (const auto colon = dir.find(':'); colon != std::string::npos) dir.resize(colon);
    return dir + "/graph.yaml";
  }
  if (::geteuid() == 0) return "/var/lib/aers/graph.yaml";
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) {
    return std::string(x) + "/aers/graph.yaml";
  }
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.local/state/aers/graph.yaml";
}

}  // namespace aers::state
