// Audit trail of plugin decisions: one record per refusal and per load, so an
// operator can answer "what tried to load, and why was it refused" later.
//
// Thread: Record() may be called from any non-real-time thread.
#pragma once

#include <cstdint>
#include <fstream>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "plugin/refusal.h"

namespace aers::plugin {

struct AuditRecord {
  /// "loading" (checks passed; the module's code runs next), "loaded"
  /// (kinds about to be registered) or "refused"
  std::string event;
  std::string plugin;     ///< manifest name, or the directory name before it is known
  std::string directory;  ///< plugin directory beneath the root
  /// Why it was refused (nullopt unless refused). JSON: "reason" and "code",
  /// both RefusalCodeName ("hash_mismatch", ...).
  std::optional<RefusalCode> code;
  std::string file;      ///< the file the decision is about
  std::string message;   ///< human-readable detail
  std::string seen;      ///< what was found (hash, serial, owner ...), if any
  std::string expected;  ///< what was required, if any
  uint64_t serial = 0;   ///< manifest serial (0 if unknown)
};

/// One JSON object on one line, keys in a fixed order, with a UTC "time".
std::string AuditRecordToJson(const AuditRecord& record);

class PluginAuditLog {
 public:
  virtual ~PluginAuditLog() = default;
  /// Writes one record. An error (naming the log and the cause) when it
  /// could not be written: a load is then refused (audit_error), so no
  /// plugin runs without its record; a refusal stays a refusal.
  virtual absl::Status Record(const AuditRecord& record) = 0;
};

/// Writes JSON lines to a stream (not owned) or to a file it opens for
/// appending. Each record is flushed as it is written.
class JsonLinesAuditLog final : public PluginAuditLog {
 public:
  explicit JsonLinesAuditLog(std::ostream& out) : out_(&out) {}
  /// Opens `path` for appending (created with mode 0600): a regular file
  /// or a character device (written without blocking), never a FIFO,
  /// socket, directory or symbolic link (FAILED_PRECONDITION or
  /// PERMISSION_DENIED naming the path).
  static absl::StatusOr<std::unique_ptr<JsonLinesAuditLog>> Open(const std::string& path);

  ~JsonLinesAuditLog() override;
  JsonLinesAuditLog(const JsonLinesAuditLog&) = delete;
  JsonLinesAuditLog& operator=(const JsonLinesAuditLog&) = delete;

  /// Appends one line and, to a regular file, makes it durable
  /// (fdatasync). A write or flush that fails (disk full, a device that
  /// takes nothing or would block) is logged (error) with the record and
  /// returned as UNAVAILABLE naming the file; a stream that fails, the
  /// same.
  absl::Status Record(const AuditRecord& record) override;

 private:
  JsonLinesAuditLog() = default;
  std::mutex mutex_;
  int fd_ = -1;           // Open(): the file
  bool torn_ = false;     // the file ends inside a line (a write cut short)
  bool regular_ = false;  // a regular file (flushed), not a device
  std::string path_;
  std::ostream* out_ = nullptr;  // the stream constructor
};

}  // namespace aers::plugin
