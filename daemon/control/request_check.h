// The checks every control-plane request passes before any handler reads
// it, walked generically over the message (protobuf reflection), so a new
// field is covered the day it is added:
//
//   - every string field (and map key) at most `max_string_bytes`, except
//     the long-text fields (config YAML) at most `max_text_bytes`;
//   - every repeated field and map at most `max_repeated` entries;
//   - every double/float finite (NaN and infinities are refused);
//   - every oneof of a present message set (an unset oneof is never read
//     as a default);
//   - every string valid UTF-8.
//
// Errors are INVALID_ARGUMENT naming the field path
// ("ops[2].add_node.params[\"gain_db\"].number: NaN is not a number").
// The size of a whole message is bounded by gRPC itself
// (max_message_bytes -> RESOURCE_EXHAUSTED).
//
// Thread: any; pure functions.
#pragma once

#include <cstddef>

#include "absl/status/status.h"

namespace google::protobuf {
class Message;
}

namespace aers::control {

struct RequestLimits {
  size_t max_string_bytes = 256;
  size_t max_text_bytes = size_t{1} << 20;  ///< ApplyGraphRequest.yaml
  size_t max_repeated = 4096;
  /// Whole request, gRPC's limit: the longest text plus framing. Memory
  /// for requests is bounded by this times the server's threads.
  size_t max_message_bytes = size_t{2} << 20;
};

absl::Status CheckRequest(const google::protobuf::Message& request, const RequestLimits& limits);

}  // namespace aers::control
