// The gRPC adapter: aers.v1.Control plus grpc.health.v1 and reflection.
// Handlers translate proto -> domain call -> proto and never touch the audio
// thread themselves (the engine's API is wait-free for it).
//
// Thread: Start/Shutdown from the daemon's main thread; handlers run on
// gRPC's threads.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backend/backend.h"
#include "control/auth.h"
#include "control/service.h"

namespace grpc {
class Server;
}

namespace aers::control {

struct ListenerOptions {
  /// Unix socket path (mode 0660); empty: none.
  std::string unix_socket;
  /// Extra listeners: "unix:/path" or "tcp:HOST:PORT". TCP needs TLS
  /// (cert+key) or a token file.
  std::vector<std::string> listen;
  std::string token_file;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;  ///< set: require client certificates (mTLS)
  std::string audit_log;      ///< JSON lines of every mutation; empty: log only
};

/// A plugin the gate admitted (for ListPlugins).
struct PluginSummary {
  std::string name, version, format, hash_algorithm, hash, signer_key_id, module_path;
  uint64_t serial = 0;
  std::vector<std::string> kinds;
};

class ControlServer {
 public:
  using StatusFn = std::function<backend::BackendStatus()>;
  using PluginsFn = std::function<std::vector<PluginSummary>()>;

  ControlServer(GraphService& service, StatusFn status, std::string version, std::string state_file,
                PluginsFn plugins = nullptr);
  ~ControlServer();

  /// Binds every listener and starts serving. Fails with a clear message if
  /// a listener cannot be bound or TCP has no protection configured.
  absl::Status Start(const ListenerOptions& options);
  /// Health: SERVING while audio runs, NOT_SERVING otherwise.
  void SetServing(bool serving);
  /// Ends streams, refuses new calls, waits for handlers (bounded).
  void Shutdown();

  /// Default socket: $RUNTIME_DIRECTORY/aersd.sock, else /run/aers/aersd.sock
  /// as root, else $XDG_RUNTIME_DIR/aers/aersd.sock.
  static std::string DefaultSocketPath();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aers::control
