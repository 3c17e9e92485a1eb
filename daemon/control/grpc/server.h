// The gRPC adapter: aers.v1.Control plus grpc.health.v1 and reflection, on
// a Unix socket and optional TCP listeners.
//
// Every call goes through one gate before its handler (handlers.h):
// authenticate (Unix socket: operator; TCP: bearer token and/or client
// certificate, with lock-out), authorise the role, check the request
// (request_check.h), then the handler; replies are made valid UTF-8. The
// local Unix socket and the TCP listeners are separate gRPC servers with
// their own threads, so a TCP flood cannot take the local way in.
//
// Thread: Start/Shutdown from the daemon's main thread; handlers run on
// gRPC's threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backend/backend.h"
#include "control/audit.h"
#include "control/auth.h"
#include "control/grpc/handlers.h"
#include "control/request_check.h"
#include "control/service.h"

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
  /// Bearer tokens over plaintext TCP on a non-loopback address: refused
  /// unless this is set.
  bool allow_plaintext_tokens = false;
  RequestLimits limits;
  /// gRPC threads per server (Unix, TCP): calls beyond them are refused
  /// with RESOURCE_EXHAUSTED.
  int max_threads = 32;
  /// Open streams (watch, top) per server.
  int max_streams = 16;
  /// Memory gRPC may use for buffers per server (its resource quota).
  size_t memory_quota_bytes = size_t{32} << 20;
  /// Open connections per TCP listener; more are closed at once. TCP keeps
  /// 128 descriptors free, Unix sockets 32 (connection_gate.h).
  int max_connections = 256;
  /// Of those, from one source (an IPv4 address, an IPv6 /64).
  int max_connections_per_source = 32;
  /// Open connections per Unix socket; more are closed at once.
  int max_unix_connections = 256;
};

class ControlServer {
 public:
  using StatusFn = ControlHandlers::StatusFn;
  using PluginsFn = ControlHandlers::PluginsFn;

  /// `audit` (may be null: no audit) must outlive the server.
  ControlServer(GraphService& service, StatusFn status, std::string version, std::string state_file,
                PluginsFn plugins = nullptr, AuditLog* audit = nullptr);
  ~ControlServer();

  /// Binds every listener and starts serving. Fails with a message naming
  /// the listener or file: a socket path that is not a socket or where a
  /// live daemon answers, unreadable or unsafe token/key files, incomplete
  /// or mismatched TLS material, TCP without protection, plaintext tokens
  /// on a non-loopback address without allow_plaintext_tokens.
  absl::Status Start(const ListenerOptions& options);
  /// Health: SERVING while audio runs, NOT_SERVING otherwise.
  void SetServing(bool serving);
  /// Ends streams, refuses new calls, waits for handlers (bounded), removes
  /// the sockets this process created (and only those).
  void Shutdown();

  /// Default socket: $RUNTIME_DIRECTORY/aersd.sock, else /run/aers/aersd.sock
  /// as root, else $XDG_RUNTIME_DIR/aers/aersd.sock.
  static std::string DefaultSocketPath();

  class Impl;  // shared by the per-listener services (server.cc)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace aers::control
