// Log sinks of the daemon (spdlog). Never used on the audio thread: what the
// audio side reports travels through rings to a normal thread that logs it.
//
// Thread: Setup() once at start, before other threads exist.
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace aers::logging {

/// Makes spdlog's default logger write to stderr:
/// - under systemd (JOURNAL_STREAM names stderr): plain lines with the
///   sd-daemon priority prefix ("<6>message"), no timestamps (the journal
///   adds them);
/// - otherwise "[time] [level] message", in colour when stderr is a TTY.
/// `level`: trace, debug, info, warn (warning), error, critical or off.
/// INVALID_ARGUMENT for any other word (the logger is still set up, at info).
absl::Status Setup(std::string_view level);

/// Sends protobuf's and gRPC's own log lines to spdlog's default logger,
/// each source line at most once per 10 s with a count of what was held
/// back. The daemon calls it after Setup(); the `aersd` command (render)
/// links neither library (daemon/meson.build).
void RouteLibraryLogs();

/// True if stderr is connected to the journal (JOURNAL_STREAM's device and
/// inode match stderr's).
bool StderrIsJournal();

}  // namespace aers::logging
