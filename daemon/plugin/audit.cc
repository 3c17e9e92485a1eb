#include "plugin/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "plugin/secure_open.h"
#include "spdlog/spdlog.h"

namespace aers::plugin {
namespace {

std::string UtcNow() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - secs).count();
  const std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return absl::StrFormat("%s.%03dZ", buf, static_cast<int>(ms));
}

}  // namespace

std::string AuditRecordToJson(const AuditRecord& r) {
  nlohmann::ordered_json j;
  j["time"] = UtcNow();
  j["event"] = r.event;
  j["plugin"] = r.plugin;
  j["directory"] = r.directory;
  // "reason" came first and stays for the readers that know it; "code" is
  // the same RefusalCode name under the name the rest of the gate uses.
  const std::string code(r.code ? RefusalCodeName(*r.code) : "");
  for (const auto& [key, value] : {std::pair<const char*, const std::string&>{"reason", code},
                                   {"code", code},
                                   {"file", r.file},
                                   {"message", r.message},
                                   {"seen", r.seen},
                                   {"expected", r.expected}}) {
    if (!value.empty()) j[key] = value;
  }
  if (r.serial != 0) j["serial"] = r.serial;
  // Bytes that are not UTF-8 (a file name) become U+FFFD: the line stays JSON.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

absl::StatusOr<std::unique_ptr<JsonLinesAuditLog>> JsonLinesAuditLog::Open(
    const std::string& path) {
  // Created 0600 so the log is never briefly world-readable; read as well
  // as written (its last byte tells whether it ends inside a line); O_NONBLOCK so
  // that a FIFO at the path is refused instead of waited on, and kept: a
  // character device that would block (a terminal stopped by XOFF) fails
  // the write instead of hanging the load; the file is written through
  // this descriptor (what was checked is what is written).
  const int fd =
      ::open(path.c_str(),
             O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0600);
  if (fd < 0) {
    const int err = errno;
    return absl::PermissionDeniedError(absl::StrCat("cannot open audit log ", path, ": ",
                                                    err == ELOOP   ? "a symbolic link"
                                                    : err == ENXIO ? "a FIFO"
                                                                   : ErrnoText(err)));
  }
  struct stat st {};
  // As the control plane's audit log: a regular file, or a character
  // device (/dev/full: every write fails, and says so).
  if (::fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open audit log ", path, ": not a regular file"));
  }
  // Memory devices that take every write and keep nothing (/dev/null,
  // /dev/zero, /dev/random, /dev/urandom; Linux's major 1; /dev/full,
  // minor 7, fails every write and is allowed) are no audit log.
  if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) != 7) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open audit log ", path, ": a device that discards what is written to it"));
  }
  std::unique_ptr<JsonLinesAuditLog> log(new JsonLinesAuditLog());
  log->fd_ = fd;
  log->path_ = path;
  log->regular_ = S_ISREG(st.st_mode);
  // A line an earlier process left unfinished (cut short by a full disk):
  // the first record starts on a line of its own.
  char last = '\n';
  log->torn_ =
      log->regular_ && st.st_size > 0 && ::pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n';
  return log;
}

JsonLinesAuditLog::~JsonLinesAuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status JsonLinesAuditLog::Record(const AuditRecord& record) {
  std::string line = AuditRecordToJson(record) + '\n';
  std::lock_guard lock(mutex_);
  if (fd_ < 0) {
    *out_ << line;
    out_->flush();
    if (!out_->good()) {
      spdlog::error("plugin audit log: cannot write to its stream (record: {})",
                    line.substr(0, line.size() - 1));
      return absl::UnavailableError("the plugin audit log's stream cannot be written");
    }
    return absl::OkStatus();
  }
  // After a torn line, the next record starts on a line of its own.
  if (torn_) line.insert(line.begin(), '\n');
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = ErrnoText(n < 0 ? errno : ENOSPC);
      if (done > 0) torn_ = true;
      spdlog::error("plugin audit log {}: cannot write: {} (record: {})", path_, why,
                    line.substr(0, line.size() - 1));
      return absl::UnavailableError(absl::StrCat("the plugin audit log ", path_,
                                                 " cannot be written: ", why,
                                                 done > 0 ? " (a partial line was written)" : ""));
    }
    done += static_cast<size_t>(n);
  }
  torn_ = false;
  // Durable before the load goes on (a record of plugin code that ran must
  // outlive a power cut); devices have nothing to flush.
  if (regular_ && ::fdatasync(fd_) != 0) {
    const std::string why = ErrnoText(errno);
    spdlog::error("plugin audit log {}: cannot flush: {} (record: {})", path_, why,
                  line.substr(0, line.size() - 1));
    return absl::UnavailableError(
        absl::StrCat("the plugin audit log ", path_, " cannot be flushed: ", why));
  }
  return absl::OkStatus();
}

}  // namespace aers::plugin
