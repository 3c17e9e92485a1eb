#include "plugin/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "plugin/secure_open.h"

namespace aers::plugin {
namespace {

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through
        }
    }
  }
  out += '"';
}

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
  std::string out = "{\"time\":";
  AppendJsonString(out, UtcNow());
  auto field = [&](const char* key, const std::string& value, bool always) {
    if (value.empty() && !always) return;
    out += ",\"";
    out += key;
    out += "\":";
    AppendJsonString(out, value);
  };
  field("event", r.event, true);
  field("plugin", r.plugin, true);
  field("directory", r.directory, true);
  field("reason", r.reason, false);
  field("file", r.file, false);
  field("message", r.message, false);
  field("seen", r.seen, false);
  field("expected", r.expected, false);
  if (r.serial != 0) absl::StrAppend(&out, ",\"serial\":", r.serial);
  out += "}";
  return out;
}

absl::StatusOr<std::unique_ptr<JsonLinesAuditLog>> JsonLinesAuditLog::Open(
    const std::string& path) {
  // Create with 0600 first so the log is never briefly world-readable.
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open audit log ", path, ": ", ErrnoText(errno)));
  }
  ::close(fd);
  std::unique_ptr<JsonLinesAuditLog> log(new JsonLinesAuditLog());
  log->file_.open(path, std::ios::app);
  if (!log->file_) return absl::PermissionDeniedError(absl::StrCat("cannot open audit log ", path));
  log->out_ = &log->file_;
  return log;
}

void JsonLinesAuditLog::Record(const AuditRecord& record) {
  const std::string line = AuditRecordToJson(record);
  std::lock_guard lock(mutex_);
  *out_ << line << '\n';
  out_->flush();
}

}  // namespace aers::plugin
