#include "control/audit.h"

#include <fcntl.h>
#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <nlohmann/json.hpp>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "control/utf8.h"

namespace aers::control {

namespace {

using Clock = std::chrono::steady_clock;

int64_t UnixNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string IsoTime(int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

std::string ErrnoText(int err) {
  return std::generic_category().message(err);
}

constexpr size_t kMaxChanges = 100;
constexpr size_t kMaxMessageBytes = 4096;

}  // namespace

std::string AuditRecordToJson(const AuditRecord& r, int64_t unix_time_ms) {
  // ordered_json keeps the insertion order: records read the same way.
  nlohmann::ordered_json j;
  j["time"] = IsoTime(unix_time_ms);
  j["call"] = r.call_id;
  j["operation"] = r.operation;
  j["target"] = r.target;
  nlohmann::ordered_json p;
  p["kind"] = std::string(PrincipalKindName(r.principal.kind));
  p["name"] = r.principal.name;
  if (r.principal.kind != Principal::Kind::kInternal &&
      r.principal.kind != Principal::Kind::kAnonymous) {
    p["role"] = std::string(RoleName(r.principal.role));
  }
  if (!r.principal.address.empty()) p["address"] = r.principal.address;
  if (r.principal.uid) p["uid"] = *r.principal.uid;
  j["principal"] = std::move(p);
  j["result"] = r.result;
  if (!r.message.empty()) j["message"] = Truncate(r.message, kMaxMessageBytes);
  if (r.dry_run) j["dry_run"] = true;
  if (r.revision_before) j["revision_before"] = *r.revision_before;
  if (r.revision_after) j["revision_after"] = *r.revision_after;
  if (!r.changes.empty()) {
    auto& c = j["changes"] = nlohmann::ordered_json::array();
    for (size_t i = 0; i < r.changes.size() && i < kMaxChanges; ++i) c.push_back(r.changes[i]);
    if (r.changes.size() > kMaxChanges) j["changes_omitted"] = r.changes.size() - kMaxChanges;
  }
  for (const auto& [k, v] : r.details) j["details"][k] = v;
  if (r.count > 1) {
    j["count"] = r.count;
    j["since"] = IsoTime(r.since_ms);
  }
  // Invalid UTF-8 in any field becomes U+FFFD: the line is always valid.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

// The records of the file's last 256 KiB (the first, maybe cut, line
// skipped), each as parsed JSON; lines of another shape are passed as
// whatever they parse to (discarded JSON when they do not).
std::vector<nlohmann::json> ReadTailRecords(const std::string& path) {
  std::vector<nlohmann::json> out;
  if (path.empty()) return out;
  constexpr off_t kTail = 256 * 1024;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return out;
  std::string text;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    const off_t from = st.st_size > kTail ? st.st_size - kTail : 0;
    text.resize(static_cast<size_t>(st.st_size - from));
    const ssize_t n = ::pread(fd, text.data(), text.size(), from);
    text.resize(n > 0 ? static_cast<size_t>(n) : 0);
    // The first line of a tail may be cut: start after it.
    if (from > 0) text.erase(0, std::min(text.size(), text.find('\n') + 1));
  }
  ::close(fd);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    out.push_back(nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(pos),
                                        text.begin() + static_cast<std::ptrdiff_t>(end), nullptr,
                                        /*allow_exceptions=*/false));
    pos = end + 1;
  }
  return out;
}

// A record's call id, if it has one.
std::optional<uint64_t> CallOf(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("call") || !j["call"].is_number_unsigned()) return std::nullopt;
  return j["call"].get<uint64_t>();
}

}  // namespace

AuditRecord FollowUpRecord(AuditRecord r, const absl::Status& status, bool recorded,
                           std::optional<uint64_t> runs_at, uint64_t before, uint64_t now) {
  r.result = absl::StatusCodeToString(status.code());
  r.revision_before = before;
  if (runs_at) {
    r.message = std::string(status.message());
    r.revision_after = *runs_at;
    r.details["applied"] = "true";
  } else {
    r.message = recorded ? absl::StrCat("not applied after all: ", status.message())
                         : std::string(status.message());
    r.revision_after = now;
  }
  return r;
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(Options options) {
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options)));
  if (!log->options_.group.empty()) {
    struct group* g = ::getgrnam(log->options_.group.c_str());
    if (g == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("audit log group '", log->options_.group, "': no such group"));
    }
    log->gid_ = g->gr_gid;
  }
  if (!log->options_.path.empty()) {
    std::lock_guard lock(log->mu_);
    if (auto st = log->OpenLocked(); !st.ok()) return st;
    // Call ids go on from the file's last ones: a log kept across restarts
    // never gives two calls the same id in its recent records.
    for (const nlohmann::json& j : ReadTailRecords(log->options_.path)) {
      if (const auto call = CallOf(j)) log->next_call_id_ = std::max(log->next_call_id_, *call + 1);
    }
  }
  return log;
}

AuditLog::~AuditLog() {
  Flush(Clock::time_point::max());
  if (!follow_ups_.empty()) {
    spdlog::error("audit log {}: {} follow-up records could not be written before it closed",
                  options_.path, follow_ups_.size());
  }
  if (fd_ >= 0) ::close(fd_);
}

absl::Status AuditLog::OpenLocked() {
  if (fd_ >= 0) {
    SettleDeferredLocked();  // their flush is on this file
    ::close(fd_);
    fd_ = -1;
  }
  const mode_t mode = options_.group.empty() ? 0600 : 0640;
  const int fd =
      ::open(options_.path.c_str(),
             O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, mode);
  if (fd < 0) {
    const int err = errno;
    return absl::UnavailableError(absl::StrCat("audit log ", options_.path, ": cannot open: ",
                                               err == ELOOP   ? "a symbolic link"
                                               : err == ENXIO ? "a FIFO"
                                                              : ErrnoText(err)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    // Not a regular file (a FIFO, a device like /dev/full is allowed only
    // in the sense that writing to it fails): refuse anything but files and
    // character devices so a path cannot redirect records into a pipe.
    if (!S_ISCHR(st.st_mode)) {
      ::close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat("audit log ", options_.path, ": not a regular file"));
    }
    // Memory devices that take every write and keep nothing (/dev/null,
    // /dev/zero, /dev/random, /dev/urandom; Linux's major 1; /dev/full,
    // minor 7, fails every write and is allowed).
    if (major(st.st_rdev) == 1 && minor(st.st_rdev) != 7) {
      ::close(fd);
      return absl::FailedPreconditionError(absl::StrCat(
          "audit log ", options_.path, ": a device that discards what is written to it"));
    }
  }
  if (S_ISREG(st.st_mode)) {
    if (gid_ != static_cast<gid_t>(-1) && st.st_gid != gid_ &&
        ::fchown(fd, static_cast<uid_t>(-1), gid_) != 0) {
      const int err = errno;
      ::close(fd);
      return absl::PermissionDeniedError(absl::StrCat("audit log ", options_.path,
                                                      ": cannot give it to group '", options_.group,
                                                      "': ", ErrnoText(err)));
    }
    if ((st.st_mode & 0777 & ~mode) != 0 && ::fchmod(fd, mode) != 0) {
      const int err = errno;
      ::close(fd);
      return absl::PermissionDeniedError(absl::StrCat(
          "audit log ", options_.path, ": cannot restrict its mode: ", ErrnoText(err)));
    }
  }
  // O_NONBLOCK stays: it guarded the open against a FIFO, and a character
  // device that would block (a terminal stopped by XOFF) fails a write
  // (refusing the change) instead of hanging the service; regular files
  // ignore it.
  fd_ = fd;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  // A line an earlier process (or file) left unfinished: the first record
  // starts on a line of its own.
  char last = '\n';
  partial_line_ = S_ISREG(st.st_mode) && st.st_size > 0 &&
                  ::pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n';
  return absl::OkStatus();
}

void AuditLog::CheckRotationLocked() {
  if (options_.path.empty()) return;
  struct stat st {};
  const bool gone = ::stat(options_.path.c_str(), &st) != 0;
  if (fd_ >= 0 && !gone && st.st_dev == dev_ && st.st_ino == ino_) return;
  // Rotated away (renamed or deleted) or never opened: start a new file.
  if (auto s = OpenLocked(); !s.ok() && !outage_) {
    spdlog::error("{}", std::string(s.message()));
  }
}

namespace {

// fdatasync, with what a file that cannot be synced (a character device:
// EINVAL; read-only file system: EROFS) counts as: nothing to wait for.
bool SyncFile(int fd, int* err) {
  if (::fdatasync(fd) == 0 || errno == EINVAL || errno == EROFS) return true;
  *err = errno;
  return false;
}

}  // namespace

void AuditLog::SettleDeferredLocked() {
  if (deferred_settled_ == deferred_written_) return;
  const uint64_t first = deferred_settled_ + 1;
  deferred_settled_ = deferred_written_;
  int err = 0;
  if (options_.path.empty() || (fd_ >= 0 && SyncFile(fd_, &err))) return;  // no file: the log only
  absl::Status st = absl::UnavailableError(
      fd_ < 0
          ? absl::StrCat("audit log ", options_.path, ": closed before its records were flushed")
          : absl::StrCat("audit log ", options_.path, ": cannot sync: ", ErrnoText(err)));
  failed_ranges_.push_back({first, deferred_written_, std::move(st)});
  if (failed_ranges_.size() > kFailedRangesKept) {
    forgotten_through_ = failed_ranges_.front().last;
    failed_ranges_.erase(failed_ranges_.begin());
  }
}

absl::Status AuditLog::WriteLineLocked(const std::string& line, bool sync) {
  if (options_.path.empty()) return absl::OkStatus();
  CheckRotationLocked();
  if (fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("audit log ", options_.path, ": not open"));
  }
  std::string buf;
  if (partial_line_) buf += '\n';  // end what a failed write left behind
  buf += line;
  buf += '\n';
  size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::write(fd_, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      partial_line_ = partial_line_ || done > 0;
      return absl::UnavailableError(
          absl::StrCat("audit log ", options_.path, ": cannot write: ", ErrnoText(err)));
    }
    done += static_cast<size_t>(n);
    if (done > 0) partial_line_ = true;
  }
  partial_line_ = false;
  if (!sync) return absl::OkStatus();
  // On disk before the change it records is acknowledged. The flush also
  // covers the deferred records written before this one.
  const uint64_t pending = deferred_written_;
  int err = 0;
  if (SyncFile(fd_, &err)) {
    deferred_settled_ = pending;
    return absl::OkStatus();
  }
  absl::Status st = absl::UnavailableError(
      absl::StrCat("audit log ", options_.path, ": cannot sync: ", ErrnoText(err)));
  if (deferred_settled_ != pending) {
    failed_ranges_.push_back({deferred_settled_ + 1, pending, st});
    deferred_settled_ = pending;
    if (failed_ranges_.size() > kFailedRangesKept) {
      forgotten_through_ = failed_ranges_.front().last;
      failed_ranges_.erase(failed_ranges_.begin());
    }
  }
  return st;
}

absl::Status AuditLog::WriteLocked(AuditRecord& record, int64_t now_ms, bool sync) {
  const std::string line = AuditRecordToJson(record, now_ms);
  absl::Status st = WriteLineLocked(line, sync);
  if (st.ok()) {
    // Logged once written: the log never shows a record the file lacks.
    spdlog::info("audit: {}", line);
    if (sync) EndOutageLocked();  // a deferred record ends an outage once flushed
    return st;
  }
  RefusedLocked(&record, st);
  return absl::UnavailableError(
      absl::StrCat(st.message(), "; the change was refused (auditing never fails open)"));
}

void AuditLog::EndOutageLocked() {
  if (!outage_) return;
  spdlog::warn("audit log {} is writable again ({} records refused meanwhile)", options_.path,
               refused_in_outage_);
  outage_ = false;
  refused_in_outage_ = 0;
}

void AuditLog::RefusedLocked(const AuditRecord* record, const absl::Status& st) {
  ++refused_in_outage_;
  if (record != nullptr) {
    spdlog::warn("audit: not written, so refused: {} on {} by {}", record->operation,
                 record->target, record->principal.name);
  }
  if (!outage_) {
    outage_ = true;
    outage_began_after_ = deferred_written_;
    spdlog::error("{}; control-plane changes are refused until it can be written",
                  std::string(st.message()));
  }
}

absl::Status AuditLog::Write(AuditRecord record) {
  Flush();
  std::lock_guard lock(mu_);
  if (!follow_ups_.empty()) WriteFollowUpsLocked(Clock::now());  // in order
  if (record.call_id == 0) record.call_id = next_call_id_++;
  return WriteLocked(record, UnixNowMs());
}

absl::Status AuditLog::WriteFollowUp(AuditRecord record) {
  Flush();
  std::lock_guard lock(mu_);
  if (record.call_id == 0) record.call_id = next_call_id_++;
  const int64_t now_ms = UnixNowMs();
  if (!follow_ups_.empty()) WriteFollowUpsLocked(Clock::now());
  absl::Status st;
  if (follow_ups_.empty()) {
    st = WriteLocked(record, now_ms);
    if (st.ok()) return st;
  } else {
    // Behind the ones that wait: written in order or not at all.
    st = absl::UnavailableError(
        absl::StrCat("audit log ", options_.path, ": earlier follow-up records still wait"));
  }
  if (follow_ups_.size() >= kFollowUpsKept) {
    const AuditRecord& old = follow_ups_.front().record;
    spdlog::error("audit: follow-up record dropped (over {} wait): call {}, {} on {}: {}",
                  kFollowUpsKept, old.call_id, old.operation, old.target, old.message);
    follow_ups_.pop_front();
    ++follow_ups_dropped_;
  }
  if (follow_ups_.empty()) next_follow_up_try_ = Clock::now() + std::chrono::seconds(1);
  follow_ups_.push_back({std::move(record), now_ms});
  return st;
}

void AuditLog::WriteFollowUpsLocked(Clock::time_point now) {
  size_t written = 0;
  while (!follow_ups_.empty()) {
    FollowUp& f = follow_ups_.front();
    AuditRecord r = f.record;
    r.details["ended"] = IsoTime(f.ended_ms);
    // Not WriteLocked: a retry that fails again is not a new refusal.
    const std::string line = AuditRecordToJson(r, UnixNowMs());
    if (!WriteLineLocked(line, /*sync=*/true).ok()) break;
    spdlog::info("audit: {}", line);
    EndOutageLocked();
    follow_ups_.pop_front();
    ++written;
  }
  if (written > 0) {
    spdlog::warn("audit: {} follow-up record{} written late{}", written, written == 1 ? "" : "s",
                 follow_ups_.empty() ? "" : absl::StrCat(", ", follow_ups_.size(), " still wait"));
  }
  next_follow_up_try_ = now + std::chrono::seconds(1);
}

size_t AuditLog::follow_ups_waiting() const {
  std::lock_guard lock(mu_);
  return follow_ups_.size();
}

absl::StatusOr<uint64_t> AuditLog::WriteDeferred(AuditRecord record) {
  Flush();
  std::lock_guard lock(mu_);
  if (!follow_ups_.empty()) WriteFollowUpsLocked(Clock::now());  // in order
  if (record.call_id == 0) record.call_id = next_call_id_++;
  if (auto st = WriteLocked(record, UnixNowMs(), /*sync=*/false); !st.ok()) return st;
  return ++deferred_written_;
}

absl::Status AuditLog::MakeDurable(uint64_t number) {
  std::lock_guard lock(mu_);
  if (number == 0 || number > deferred_written_) {
    return absl::InternalError(
        absl::StrCat("audit log ", options_.path, ": no deferred record ", number, " was written"));
  }
  if (number > deferred_settled_) SettleDeferredLocked();
  absl::Status st;
  if (number <= forgotten_through_) {
    // Its flush is too long ago to tell: refused, never taken as durable.
    st = absl::UnavailableError(absl::StrCat("audit log ", options_.path, ": whether record ",
                                             number, " was flushed is not known"));
  }
  for (const FailedRange& f : failed_ranges_) {
    if (number >= f.first && number <= f.last) st = f.error;
  }
  if (st.ok()) {
    // Only a record written since the outage began shows it over.
    if (number > outage_began_after_) EndOutageLocked();
    return st;
  }
  RefusedLocked(nullptr, st);
  return absl::UnavailableError(
      absl::StrCat(st.message(), "; the change was refused (auditing never fails open)"));
}

void AuditLog::RecordAuthFailure(const Principal& who, const std::string& operation,
                                 const absl::Status& result) {
  const auto now = Clock::now();
  Flush(now);
  std::lock_guard lock(mu_);
  std::string key = absl::StrCat(who.address, "|", absl::StatusCodeToString(result.code()));
  if (aggregates_.count(key) == 0 && aggregates_.size() >= options_.max_aggregated_sources) {
    key = absl::StrCat("(many sources)|", absl::StatusCodeToString(result.code()));
  }
  auto it = aggregates_.find(key);
  if (it != aggregates_.end()) {
    ++it->second.suppressed;
    return;
  }
  Aggregate a;
  a.first.operation = operation;
  a.first.target = "control plane";
  a.first.principal = who;
  a.first.result = absl::StatusCodeToString(result.code());
  a.first.message = std::string(result.message());
  a.first.call_id = next_call_id_++;
  a.window_end = now + options_.aggregate_interval;
  a.since_ms = UnixNowMs();
  // The first failure of an interval is written at once; its write error
  // changes nothing (the call is refused anyway).
  (void)WriteLocked(a.first, a.since_ms);
  if (next_flush_ == Clock::time_point{} || a.window_end < next_flush_) next_flush_ = a.window_end;
  aggregates_.emplace(std::move(key), std::move(a));
}

void AuditLog::Flush(Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (!follow_ups_.empty() && now >= next_follow_up_try_) WriteFollowUpsLocked(now);
  if (aggregates_.empty() || now < next_flush_) return;
  next_flush_ = Clock::time_point{};
  for (auto it = aggregates_.begin(); it != aggregates_.end();) {
    Aggregate& a = it->second;
    if (now < a.window_end) {
      if (next_flush_ == Clock::time_point{} || a.window_end < next_flush_) {
        next_flush_ = a.window_end;
      }
      ++it;
      continue;
    }
    if (a.suppressed > 0) {
      AuditRecord r = a.first;
      r.count = a.suppressed;
      r.since_ms = a.since_ms;
      r.operation = "authenticate";
      r.message = absl::StrCat(a.suppressed, " more calls refused like this: ", r.message);
      r.call_id = next_call_id_++;
      (void)WriteLocked(r, UnixNowMs());
    }
    it = aggregates_.erase(it);
  }
}

absl::Status AuditLog::Reopen() {
  std::lock_guard lock(mu_);
  if (options_.path.empty()) return absl::OkStatus();
  return OpenLocked();
}

uint64_t AuditLog::NextCallId() {
  std::lock_guard lock(mu_);
  return next_call_id_++;
}

std::optional<uint64_t> AuditLog::HighestAppliedRevision() const {
  if (options_.path.empty()) return std::nullopt;
  // Per call: the revision an OK record applied, dropped when a later
  // record of the same call says otherwise ("not applied after all").
  std::map<uint64_t, uint64_t> applied;
  for (const nlohmann::json& j : ReadTailRecords(options_.path)) {
    const std::optional<uint64_t> call_id = CallOf(j);
    if (!call_id) continue;
    try {  // a line of another shape is skipped, whatever its fields hold
      const uint64_t call = *call_id;
      // An error that says the change runs anyway (applied, not durable).
      const bool runs = j.contains("details") && j["details"].is_object() &&
                        j["details"].value("applied", "") == "true";
      const bool ok = (j.value("result", "") == "OK" || runs) && !j.value("dry_run", false);
      if (ok && j.contains("revision_after") && j["revision_after"].is_number_unsigned()) {
        applied[call] = j["revision_after"].get<uint64_t>();
      } else if (!ok) {
        applied.erase(call);
      }
    } catch (const nlohmann::json::exception&) {
      continue;
    }
  }
  std::optional<uint64_t> out;
  for (const auto& [call, rev] : applied) out = std::max(out.value_or(0), rev);
  return out;
}

bool AuditLog::writable() const {
  std::lock_guard lock(mu_);
  return !outage_;
}

}  // namespace aers::control
