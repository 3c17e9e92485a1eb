// Crash-safe persistence of the live graph: the state file (PATH) and its
// journal (PATH.journal).
//
// An edit appends the whole new state as one record to the journal
// (Append: one write(), no fsync; the graph as one line of JSON, which
// encodes about ten times faster than YAML and reads back through the same
// YAML parser) and makes it durable with Sync(): one
// fdatasync, shared by every edit appended meanwhile (group commit), so
// concurrent clients share their flushes. The journal grows in zero-filled
// steps ahead of its records (256 KiB), so that a record overwrites room
// already allocated: its flush writes the data alone, not the file's size
// and block map too (one I/O instead of two). Runs of zeros are room, not
// damage, on reading. Each record carries a hash of its
// bytes; a torn tail after a power cut is ignored on reading. Checkpoint()
// writes the latest state to the state file itself (temporary file, fsync,
// rename, fsync of the directory: after a crash the file holds the old or
// the new graph, never a mix) and clears the journal (zeros, in place);
// the daemon does it when edits pause, and Append does it when the journal
// grows past 1 MiB. Reading takes the state file, then the journal's
// newest intact record if it is newer.
//
// Revisions: each record also carries a lease, its revision + 1024: a
// restart goes on from the highest lease, so a revision handed out whose
// record a power cut lost is never handed out again. Append waits for a
// Sync when a revision would pass the durable lease.
//
// Thread: non-real-time. Append, Save and Checkpoint from one writer at a
// time (the control service's lock, the daemon's housekeeping); Sync from
// any thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "config/graph_yaml.h"
#include "model/graph.h"
#include "model/kind.h"

namespace aers::state {

class StateStore {
 public:
  explicit StateStore(std::string path) : path_(std::move(path)) {}
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  /// Durably replaces the state with `graph` at `revision`, tagged with the
  /// current baseline: Append, then Sync. The revision is kept so that it
  /// never goes back across restarts (a client's --expect-revision from
  /// before a restart cannot match a different graph after it).
  absl::Status Save(const model::GraphSpec& graph, uint64_t revision) const;
  /// Appends the state `graph` at `revision` to the journal: survives the
  /// process being killed once this returns, survives a power cut once
  /// Sync(ticket) returns. Returns the ticket. Errors name the file (disk
  /// full, not a regular file).
  absl::StatusOr<uint64_t> Append(const model::GraphSpec& graph, uint64_t revision) const;
  /// Makes everything appended up to `ticket` durable (fdatasync). Callers
  /// that arrive while a flush runs wait for it and share the next one.
  absl::Status Sync(uint64_t ticket) const;
  /// Writes the latest appended state into the state file and empties the
  /// journal (no-op when the journal is empty).
  absl::Status Checkpoint() const;
  /// What the last read of the journal found damaged and skipped ("FILE:
  /// damaged records skipped at bytes A to B, ..."; "" when nothing). The
  /// newest intact record still wins.
  std::string journal_damage() const;
  /// Keeps a damaged journal for inspection: renames it to FILE.damaged
  /// (replacing an older one). The next edit starts a fresh journal.
  absl::Status SetAsideJournal() const;
  /// Records appended to the journal since the last checkpoint.
  uint64_t journal_records() const;
  /// Flushes so far (fdatasync calls of Sync), for benchmarks and tests.
  uint64_t flushes() const;
  /// The revision to go on from: the highest of the state file's revision
  /// and the journal's leases, read even when the graph itself is not used:
  /// 0 when there is no state at all, nullopt when the state file exists but
  /// its revision cannot be read (corrupt or truncated).
  ///
  /// `graph_revision` (if given) receives the revision of the newest saved
  /// graph itself (the state file's or the journal's newest intact record),
  /// without the lease: what a restart restores; nullopt when there is no
  /// state or its revision is unreadable. (Read in the same pass.)
  std::optional<uint64_t> SavedRevision(std::optional<uint64_t>* graph_revision = nullptr) const;
  /// What the state was derived from (the daemon uses a hash of the config
  /// file): a state whose baseline differs from the current one is stale
  /// (the operator edited the config since) and loses to the config.
  void set_baseline(std::string baseline);
  /// The baseline recorded in the state file ("" if none or no file).
  std::string SavedBaseline() const;
  /// nullopt when there is no state file; an error naming the file and the
  /// problem when it is unreadable, corrupt or no longer valid.
  /// `source` (if given) receives where the graph came from: the state
  /// file, or "FILE.journal (the record at byte N)".
  absl::StatusOr<std::optional<model::GraphSpec>> Load(const model::KindRegistry& kinds,
                                                       std::string* source = nullptr) const;
  /// Removes the state file and its journal (absent is fine; anything but a
  /// regular file is left alone and an error).
  absl::Status Remove() const;
  /// FAILED_PRECONDITION naming the path if something other than a regular
  /// file (a device, a FIFO, a directory, a symbolic link) is at it: the
  /// state would replace it. Checked at start and before every write.
  absl::Status CheckPath() const;
  /// Takes the state file for this process for as long as the store
  /// lives: an flock on PATH.lock (kept; it holds the holder's pid). A
  /// second daemon on the same state would overwrite the first one's
  /// edits: FAILED_PRECONDITION naming the file and the pid that holds
  /// it. Other errors (the directory cannot be created or written) are
  /// returned as they are: the state cannot be written there either, which
  /// its writes report.
  absl::Status Lock();
  /// Removes temporaries a crash left beside the state file; returns how
  /// many.
  int RemoveStaleTemporaries() const;

  const std::string& path() const { return path_; }
  std::string journal_path() const { return path_ + ".journal"; }

  /// Revisions a journal record reserves beyond its own (see above).
  static constexpr uint64_t kRevisionLease = 1024;

  /// Default location: $STATE_DIRECTORY (systemd), else /var/lib/aers as
  /// root, else $XDG_STATE_HOME/aers or ~/.local/state/aers; file graph.yaml.
  static std::string DefaultPath();

 private:
  // The newest state: the journal's last valid record if newer than the
  // state file. `source` names where it came from, for messages.
  struct Latest {
    std::string text;
    std::string source;
    uint64_t revision = 0;
    uint64_t lease = 0;
    bool file_revision_unreadable = false;
  };
  std::optional<Latest> ReadLatest() const;
  // A state's text: the header lines (baseline, revision, lease), then the
  // graph: YAML for the state file, JSON for a journal record (`journal`;
  // YAML if JSON cannot hold it). Both read back through ParseGraphYaml.
  std::string Contents(const model::GraphSpec& graph, uint64_t revision,
                       const std::string& baseline, bool journal) const;
  std::string baseline() const;
  absl::Status CheckpointLocked() const;  // journal_mu_ held
  absl::Status OpenJournalLocked() const;

  std::string path_;
  mutable std::mutex mu_;  // baseline_
  // The JSON text of the nodes and routes of the last record: an edit
  // changes one or two, the rest is not encoded again.
  mutable std::mutex json_mu_;
  mutable config::GraphJsonCache json_cache_;
  std::string baseline_;

  // The journal (writer side): journal_mu_ guards everything below but the
  // flush itself, which runs with sync_mu_ only.
  mutable std::mutex journal_mu_;
  mutable int journal_fd_ = -1;
  int lock_fd_ = -1;                    // Lock()
  mutable uint64_t appended_ = 0;       // tickets handed out
  mutable uint64_t records_ = 0;        // in the journal now
  mutable uint64_t journal_bytes_ = 0;  // records (the rest is zero-filled room)
  mutable uint64_t journal_room_ = 0;   // the file's size
  struct Newest {
    model::GraphSpec graph;
    uint64_t revision = 0;
    std::string baseline;  // as when it was appended (a reload changes it next)
  };
  mutable std::optional<Newest> last_;  // the newest appended state
  mutable uint64_t appended_lease_ = 0;
  mutable std::mutex sync_mu_;         // one flush at a time; taken before journal_mu_
  mutable uint64_t synced_ = 0;        // tickets durable (journal_mu_)
  mutable uint64_t synced_lease_ = 0;  // (journal_mu_)
  mutable uint64_t flushes_ = 0;       // (journal_mu_)
  mutable std::string damage_;         // (journal_mu_)
};

/// Writes `contents` to `path` atomically (tmp + fsync + rename + fsync dir),
/// creating the directory if needed. Mode of the new file: `mode`. Refuses
/// (FAILED_PRECONDITION) to replace anything but a regular file.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents,
                                 unsigned mode = 0640);

}  // namespace aers::state
