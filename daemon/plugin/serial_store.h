// Rollback protection: the highest manifest serial accepted per plugin,
// persisted in the state directory as "<plugin>.serial" (decimal).
//
// Thread: non-real-time; one writer per state directory (the loader).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace aers::plugin {

class SerialStore {
 public:
  /// `state_dir` must exist (it is created, mode 0700, if missing).
  explicit SerialStore(std::string state_dir) : dir_(std::move(state_dir)) {}

  /// The highest serial accepted for `plugin`, or nullopt if none yet.
  absl::StatusOr<std::optional<uint64_t>> Get(std::string_view plugin) const;

  /// Records `serial` for `plugin` atomically and durably: write a temp file,
  /// fsync it, rename over the old one, fsync the directory.
  absl::Status Put(std::string_view plugin, uint64_t serial) const;

  const std::string& dir() const { return dir_; }

 private:
  absl::StatusOr<int> OpenDir(bool create) const;
  std::string dir_;
};

}  // namespace aers::plugin
