// The control-plane audit log: one JSON line per attempted mutation
// (applied, denied, invalid, conflicting, dry run), per SIGHUP reload, per
// plugin admission or refusal, and, aggregated, per source of failed
// authentication.
//
// Auditing never fails open: Write() reports UNAVAILABLE when a record
// cannot be written or flushed (disk full, file gone and not
// re-creatable, I/O error) and callers refuse the mutation. An edit's
// record may be written first and flushed later (WriteDeferred, then
// MakeDurable before the edit is applied), so that concurrent edits share
// one flush; a flush that fails refuses every record it covered. The outage is logged once, and the
// next record that can be written ends it. The file is reopened on Reopen() (SIGHUP) and whenever
// the path no longer names the open file (rotation by rename or delete); copytruncate works too
// (O_APPEND).
//
// Records carry the principal (token name and role, certificate subject,
// "unix", or an internal actor), an anonymised address (AnonymizeAddress),
// the operation and target, the revision before and after, the result code
// and message. Failed authentication is aggregated per address and result:
// the first failure of an interval is written at once, the rest as one
// record with a count when the interval ends (Flush), so a flood cannot
// fill the disk.
//
// Thread: any; internally locked. Write() may block on disk I/O: never call
// it from the audio thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/auth.h"

namespace aers::control {

struct AuditRecord {
  /// RPC method ("Edit", "ApplyGraph", "ResetToConfig", ...), "reload",
  /// "plugin", "authenticate".
  std::string operation;
  /// What it acts on: "graph", "node eq", "route a -> b", a file, a plugin.
  std::string target;
  Principal principal;
  /// Canonical status code name: "OK", "PERMISSION_DENIED", "ABORTED", ...
  std::string result = "OK";
  std::string message;  ///< error text or detail; "" when OK
  bool dry_run = false;
  std::optional<uint64_t> revision_before;
  std::optional<uint64_t> revision_after;
  /// The diff of an applied edit (at most 100 lines kept).
  std::vector<std::string> changes;
  /// Extra key/value facts (plugin hash, reason code, ...).
  std::map<std::string, std::string> details;
  /// > 1: an aggregate of this many identical failures since `since_ms`.
  uint64_t count = 1;
  int64_t since_ms = 0;
  /// Ties together the records of one call (a commit and its undo).
  uint64_t call_id = 0;
};

/// The record that tells how a call whose record is `base` ended, when it
/// did not succeed: result and message from `status`. `recorded`: an OK
/// record of the call was written, so the message says "not applied after
/// all". `runs_at`: the change runs at that revision although the call
/// failed (applied, not made durable): details.applied, and no "not
/// applied". Revisions: `before`, and `now` (or `runs_at`).
AuditRecord FollowUpRecord(AuditRecord base, const absl::Status& status, bool recorded,
                           std::optional<uint64_t> runs_at, uint64_t before, uint64_t now);

/// One JSON object on one line (no newline), keys in a fixed order, valid
/// UTF-8 whatever the fields held.
std::string AuditRecordToJson(const AuditRecord& record, int64_t unix_time_ms);

class AuditLog {
 public:
  struct Options {
    /// JSON-lines file; empty: records go to the daemon log only.
    std::string path;
    /// Set: the file is created 0640 and owned by this group; else 0600.
    std::string group;
    /// Aggregation interval of failed authentication.
    std::chrono::seconds aggregate_interval{60};
    /// Distinct sources aggregated at once; beyond it they share one entry.
    size_t max_aggregated_sources = 4096;
  };

  /// Opens (creates) the file. Errors name the path: not a regular file,
  /// unknown group, cannot open.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(Options options);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  /// Writes one record, flushes it (fdatasync) and logs it. UNAVAILABLE
  /// (naming the file and the error) if it could not be written in full or
  /// flushed.
  absl::Status Write(AuditRecord record);

  /// Writes one record and logs it, without waiting for the disk: the
  /// first half of a record that concurrent changes share a flush for.
  /// Returns the record's number for MakeDurable; UNAVAILABLE as Write
  /// when it could not be written (nothing to flush then).
  absl::StatusOr<uint64_t> WriteDeferred(AuditRecord record);
  /// Makes the record `number` (from WriteDeferred) durable: one fdatasync
  /// for every record written meanwhile, by whoever calls first (later
  /// calls for records it covered return at once). UNAVAILABLE when the
  /// flush that covered it failed (the record may be lost: the change it
  /// records must be refused), also to every later call about the same
  /// record.
  absl::Status MakeDurable(uint64_t number);

  /// Writes a record that tells how a call ended (FollowUpRecord), as
  /// Write does. If it cannot be written now it is kept and Flush() (the
  /// housekeeping loop) tries again, at most once a second, until it is:
  /// a record that says an edit was applied must not stay alone because
  /// the log was full for a moment. A kept record is written before any
  /// later record, with the time it was first tried in details.ended (its
  /// own time says when it was written). At most kFollowUpsKept wait; past
  /// that the oldest is dropped and the daemon log says so. Returns the
  /// first attempt's status.
  absl::Status WriteFollowUp(AuditRecord record);
  static constexpr size_t kFollowUpsKept = 4096;
  /// Follow-up records waiting to be written (WriteFollowUp).
  size_t follow_ups_waiting() const;

  /// A call that failed authentication (or was refused while locked out):
  /// aggregated per (address, result).
  void RecordAuthFailure(const Principal& who, const std::string& operation,
                         const absl::Status& result);

  /// Writes the follow-up records that wait (WriteFollowUp; at most once a
  /// second while they fail) and the aggregates whose interval has ended.
  /// Cheap when there are none; the daemon calls it from its housekeeping
  /// loop.
  void Flush(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

  /// Closes and reopens the file (SIGHUP). The error names the path.
  absl::Status Reopen();

  /// A fresh id for AuditRecord::call_id: one above the highest id in the
  /// file's recent records (its last 256 KiB) when it was opened, so ids
  /// go on across restarts.
  uint64_t NextCallId();

  /// The highest revision the file's recent records (its last 256 KiB)
  /// show applied: `revision_after` of records with result OK, not dry
  /// runs, whose call has no later record saying it was not applied after
  /// all. At start the daemon compares it with the state it restores: an
  /// edit audited and then lost (the daemon killed between its audit
  /// record and its journal record) gets a follow-up record. nullopt with
  /// no file or no such record.
  std::optional<uint64_t> HighestAppliedRevision() const;

  /// False during an outage (the last write failed).
  bool writable() const;
  const std::string& path() const { return options_.path; }

 private:
  explicit AuditLog(Options options) : options_(std::move(options)) {}
  absl::Status OpenLocked();
  absl::Status WriteLineLocked(const std::string& line, bool sync);
  void CheckRotationLocked();
  // `sync`: flush the file once written (which also settles deferred
  // records written before).
  absl::Status WriteLocked(AuditRecord& record, int64_t now_ms, bool sync = true);
  // The fdatasync of deferred records not yet settled (all written up to
  // deferred_written_), on the open file; a failure is kept for every
  // record it covered. Called before the file is closed or replaced too.
  void SettleDeferredLocked();
  // The outage bookkeeping of a record that could not be written or
  // flushed.
  void RefusedLocked(const AuditRecord* record, const absl::Status& st);
  // A record written and flushed: logs the end of an outage, if any.
  void EndOutageLocked();
  // Writes the waiting follow-ups in order, until one fails.
  void WriteFollowUpsLocked(std::chrono::steady_clock::time_point now);

  struct Aggregate {
    AuditRecord first;
    uint64_t suppressed = 0;
    std::chrono::steady_clock::time_point window_end;
    int64_t since_ms = 0;
  };

  const Options options_;
  mutable std::mutex mu_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  gid_t gid_ = static_cast<gid_t>(-1);
  bool outage_ = false;
  bool partial_line_ = false;  // a failed write may have left half a line
  uint64_t refused_in_outage_ = 0;
  uint64_t next_call_id_ = 1;
  std::map<std::string, Aggregate> aggregates_;
  struct FollowUp {
    AuditRecord record;
    int64_t ended_ms = 0;  // when it was first tried
  };
  std::deque<FollowUp> follow_ups_;
  std::chrono::steady_clock::time_point next_follow_up_try_{};
  uint64_t follow_ups_dropped_ = 0;
  // Deferred records (WriteDeferred), numbered from 1: written so far, and
  // settled (their flush done or failed). A failed flush keeps the range
  // of records it covered (first, last) with its error; the oldest ranges
  // are forgotten past kFailedRangesKept, and a record older than what is
  // remembered counts as failed (never as durable by default).
  static constexpr size_t kFailedRangesKept = 1024;
  struct FailedRange {
    uint64_t first = 0;
    uint64_t last = 0;
    absl::Status error;
  };
  uint64_t deferred_written_ = 0;
  uint64_t outage_began_after_ = 0;  // deferred_written_ when the outage began
  uint64_t deferred_settled_ = 0;
  std::vector<FailedRange> failed_ranges_;
  uint64_t forgotten_through_ = 0;
  std::chrono::steady_clock::time_point next_flush_{};
};

}  // namespace aers::control
