// Crash-safe persistence of the live graph.
//
// Save() writes a temporary file in the same directory, fsyncs it, renames
// it over the state file and fsyncs the directory: after a crash at any
// moment the file holds either the old or the new graph, never a mix.
//
// Thread: non-real-time; one writer at a time (the control service's lock).
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "model/graph.h"
#include "model/kind.h"

namespace aers::state {

class StateStore {
 public:
  explicit StateStore(std::string path) : path_(std::move(path)) {}

  /// Atomically replaces the state with `graph` at `revision`, tagged with
  /// the current baseline. The revision is kept so that it never goes back
  /// across restarts (a client's --expect-revision from before a restart
  /// cannot match a different graph after it).
  absl::Status Save(const model::GraphSpec& graph, uint64_t revision) const;
  /// The revision recorded in the state file, read even when the graph
  /// itself is not used: 0 when there is no state file, nullopt when there
  /// is one but its revision cannot be read (corrupt or truncated).
  std::optional<uint64_t> SavedRevision() const;
  /// What the state was derived from (the daemon uses a hash of the config
  /// file): a state whose baseline differs from the current one is stale
  /// (the operator edited the config since) and loses to the config.
  void set_baseline(std::string baseline);
  /// The baseline recorded in the state file ("" if none or no file).
  std::string SavedBaseline() const;
  /// nullopt when there is no state file; an error naming the file and the
  /// problem when it is unreadable, corrupt or no longer valid.
  absl::StatusOr<std::optional<model::GraphSpec>> Load(const model::KindRegistry& kinds) const;
  /// Removes the state file (absent is fine; anything but a regular file
  /// is left alone and an error).
  absl::Status Remove() const;
  /// FAILED_PRECONDITION naming the path if something other than a regular
  /// file (a device, a FIFO, a directory, a symbolic link) is at it: the
  /// state would replace it. Checked at start and before every write.
  absl::Status CheckPath() const;
  /// Removes temporaries a crash left beside the state file; returns how
  /// many.
  int RemoveStaleTemporaries() const;

  const std::string& path() const { return path_; }

  /// Default location: $STATE_DIRECTORY (systemd), else /var/lib/aers as
  /// root, else $XDG_STATE_HOME/aers or ~/.local/state/aers; file graph.yaml.
  static std::string DefaultPath();

 private:
  std::string path_;
  mutable std::mutex mu_;
  std::string baseline_;
};

/// Writes `contents` to `path` atomically (tmp + fsync + rename + fsync dir),
/// creating the directory if needed. Mode of the new file: `mode`. Refuses
/// (FAILED_PRECONDITION) to replace anything but a regular file.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents,
                                 unsigned mode = 0640);

}  // namespace aers::state
