#include "logging.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "control/utf8.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace aers::logging {

namespace {

/// "%*": the sd-daemon priority prefix of a record ("<3>" for errors).
class PriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    int prio = 6;
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug:
        prio = 7;
        break;
      case spdlog::level::info:
        prio = 6;
        break;
      case spdlog::level::warn:
        prio = 4;
        break;
      case spdlog::level::err:
        prio = 3;
        break;
      case spdlog::level::critical:
        prio = 2;
        break;
      default:
        break;
    }
    const char text[4] = {'<', static_cast<char>('0' + prio), '>', '\0'};
    dest.append(text, text + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PriorityFlag>();
  }
};

/// "%~": the message, made safe to print: valid UTF-8 (ill-formed bytes
/// become U+FFFD) and no control characters (a name holding "\n" cannot
/// forge a log line; they are written as \xNN).
class SafeMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string text =
        control::SanitizeUtf8(std::string_view(msg.payload.data(), msg.payload.size()));
    for (const char c : text) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 && c != '\t') {
        char esc[5];
        std::snprintf(esc, sizeof esc, "\\x%02x", u);
        dest.append(esc, esc + 4);
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SafeMessageFlag>();
  }
};

}  // namespace

bool StderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr || *env == '\0') return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(2, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

absl::Status Setup(std::string_view level) {
  std::shared_ptr<spdlog::logger> logger;
  if (StderrIsJournal()) {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<PriorityFlag>('*').add_flag<SafeMessageFlag>('~').set_pattern("%*%~");
    sink->set_formatter(std::move(formatter));
    logger = std::make_shared<spdlog::logger>("aersd", sink);
  } else {
    // Colour only on a TTY (the sink checks isatty itself).
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SafeMessageFlag>('~').set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %~");
    sink->set_formatter(std::move(formatter));
    logger = std::make_shared<spdlog::logger>("aersd", sink);
  }
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);

  std::string word = absl::AsciiStrToLower(std::string(level));
  if (word == "warning") word = "warn";
  if (word == "err") word = "error";
  const auto lvl = spdlog::level::from_str(word);
  // from_str maps unknown words to "off": tell them apart.
  if (lvl == spdlog::level::off && word != "off") {
    spdlog::set_level(spdlog::level::info);
    return absl::InvalidArgumentError(
        absl::StrCat("unknown log level '", std::string(level),
                     "' (expected trace, debug, info, warn, error, critical or off)"));
  }
  spdlog::set_level(lvl);
  return absl::OkStatus();
}

}  // namespace aers::logging
