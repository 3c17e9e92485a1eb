#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "logging.h"
#include "spdlog/spdlog.h"

namespace aers::logging {

namespace {

// Libraries' own log lines (protobuf's "invalid UTF-8 when parsing", gRPC's
// "Handshake failed") come once per bad request: a client could flood the
// log with them. Each source line is let through once per 10 s, with a
// count of what was held back.
class LibraryLogThrottle {
 public:
  void Log(spdlog::level::level_enum level, const char* lib, const char* file, int line,
           const char* message) {
    const std::string key = absl::StrCat(file ? file : "?", ":", line);
    const auto now = std::chrono::steady_clock::now();
    uint64_t held = 0;
    {
      std::lock_guard lock(mu_);
      if (sources_.size() > 256) sources_.clear();  // bounded; at worst a few more lines
      Source& s = sources_[key];
      if (s.seen && now - s.last < std::chrono::seconds(10)) {
        ++s.held;
        return;
      }
      held = s.held;
      s = Source{true, now, 0};
    }
    spdlog::log(level, "{}: {}{}", lib, message ? message : "",
                held ? absl::StrCat(" (", held, " more like this held back)") : "");
  }

 private:
  struct Source {
    bool seen = false;
    std::chrono::steady_clock::time_point last;
    uint64_t held = 0;
  };
  std::mutex mu_;
  std::map<std::string, Source> sources_;
};

LibraryLogThrottle& Throttle() {
  static auto* throttle = new LibraryLogThrottle();  // used until exit
  return *throttle;
}

void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  const auto lvl = level >= google::protobuf::LOGLEVEL_ERROR     ? spdlog::level::warn
                   : level == google::protobuf::LOGLEVEL_WARNING ? spdlog::level::info
                                                                 : spdlog::level::debug;
  Throttle().Log(lvl, "protobuf", file, line, message.c_str());
}

void GrpcLog(gpr_log_func_args* args) {
  const auto lvl = args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::warn
                   : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                             : spdlog::level::debug;
  Throttle().Log(lvl, "grpc", args->file, args->line, args->message);
}

}  // namespace

void RouteLibraryLogs() {
  google::protobuf::SetLogHandler(&ProtobufLog);
  gpr_set_log_function(&GrpcLog);
}

}  // namespace aers::logging
