// Text that leaves the daemon (RPC replies, errors, events, logs, audit) is
// valid UTF-8 whatever bytes an input held: a config with a stray Latin-1
// byte must not break every watcher's stream (protobuf string fields and
// JSON require UTF-8).
//
// Thread: any; pure functions.
#pragma once

#include <string>
#include <string_view>

namespace google::protobuf {
class Message;
}

namespace aers::control {

/// True if `text` is well-formed UTF-8 (RFC 3629: no overlongs, no
/// surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view text);

/// `text` with every ill-formed sequence replaced by U+FFFD (one per
/// maximal ill-formed subpart, as the Unicode standard recommends, §3.9).
std::string SanitizeUtf8(std::string_view text);

/// `text` cut to at most about `max_bytes` at a character boundary, with
/// " ... (N more bytes)" appended when cut. For messages that must fit in
/// gRPC metadata, a log line or an audit record.
std::string Truncate(std::string_view text, size_t max_bytes);

/// Sanitizes every string field (and map key/value) of `message`, in place,
/// recursively. Returns how many fields were changed.
int SanitizeUtf8Fields(google::protobuf::Message& message);

}  // namespace aers::control
