// One naming policy for every identifier AERS hands to a user or a backend:
// node, external port, plugin, kind, parameter and backend client names.
//
//   - Characters: letters, digits, '_' and '-' (kinds add one '/' between
//     plugin and kind; parameters are lower case, see plugin/manifest).
//   - Length: 1..kMaxNameBytes bytes.
//   - Backend names: every channel of an external port becomes a backend
//     port named by BackendPortName() ("main" when mono, "main_1".. else);
//     these must be unique across all inputs and outputs, and
//     "<client>:<port>" must fit the backend's limit (JACK:
//     jack_port_name_size() - 1); the client name must fit
//     jack_client_name_size() - 1.
// Whole-graph validation (model/validate.h) applies it, so a config fails at
// start and an RPC gets INVALID_ARGUMENT before anything runs or is saved.
//
// Thread: any (plain functions over values).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/graph.h"

namespace aers::model {

/// Longest node, port, plugin, kind or parameter name, in bytes.
inline constexpr size_t kMaxNameBytes = 64;

/// Name limits of the backend the graph will run on.
struct NamingLimits {
  /// The backend client's name ("aersd"): the prefix of every full port
  /// name. Empty: no backend port names to check (offline render).
  std::string client_name;
  /// Longest client name in bytes (JACK 2: jack_client_name_size() - 1 = 64).
  size_t max_client_name_bytes = 64;
  /// Longest full port name "client:port" in bytes (JACK 2:
  /// jack_port_name_size() - 1 = 320); 0: no limit.
  size_t max_port_name_bytes = 0;
};

/// True for the characters a name may hold: [A-Za-z0-9_-].
inline bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

/// Backend port name of channel `index` (0-based) of an external port:
/// "<name>" when the port is mono, "<name>_<index + 1>" otherwise.
std::string BackendPortName(const ExternalPort& port, int index);

/// Why `name` is not a valid identifier (empty, too long, a character
/// outside [A-Za-z0-9_-]), or nullopt when it is fine. `what` names it in
/// the message ("name", "client_name").
std::optional<std::string> CheckIdentifier(std::string_view name, std::string_view what,
                                           size_t max_bytes = kMaxNameBytes);

/// Identity of a graph's external port layout: a 64-bit FNV-1a hash of the
/// backend port names of every input and output channel, in order. Equal
/// when a backend can serve two graphs with the same ports (different
/// layouts collide with probability about 2^-64); never 0.
uint64_t IoLayoutId(const GraphSpec& spec);

}  // namespace aers::model
