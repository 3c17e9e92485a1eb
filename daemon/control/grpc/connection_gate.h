// Listeners that aersd accepts on itself and hands to gRPC
// (ExternalConnectionAcceptor), TCP and Unix alike, so that connections can
// be capped and an accept() that fails never stops a listener:
//  - gRPC 1.51 has no per-listener connection limit; a flood of idle
//    connections would otherwise take every descriptor.
//  - gRPC 1.51's own listener stops accepting for good after one accept4()
//    failure such as EMFILE, even once descriptors are free again. This
//    gate waits and retries instead.
//
// Each accepted connection is refused (closed at once) when the listener
// already holds `max_connections`, or `max_per_source` from its source (an
// address for TCP, see control/auth.h SourceKey; the peer's uid for Unix),
// or when the process is within `reserve_fds` descriptors of its
// RLIMIT_NOFILE. Live connections are counted exactly: the gate remembers
// the descriptor and inode of each connection it handed over and finds
// which gRPC has closed since.
//
// Thread: Listen*/Start/Stop from the owner; one accept thread of its own.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace grpc::experimental {
class ExternalConnectionAcceptor;
}

namespace aers::control {

class ConnectionGate {
 public:
  struct Options {
    size_t max_connections = 256;  ///< per listener
    size_t max_per_source = 32;    ///< per source
    size_t reserve_fds = 128;      ///< kept free for everything else
  };

  explicit ConnectionGate(Options options) : options_(options) {}
  ~ConnectionGate();
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  /// Binds and listens on "HOST:PORT" (IPv6 in brackets); the error names
  /// the address. Call before Start().
  absl::Status ListenTcp(const std::string& hostport);
  /// Binds and listens on the Unix socket `path`, created with `mode` (no
  /// window in which it has another). The path must be free
  /// (unix_socket.h ClaimSocketPath). Call before Start().
  absl::Status ListenUnix(const std::string& path, mode_t mode);
  /// Hands accepted connections to `acceptor` (one per listener, in the
  /// order of Listen*()).
  void Start(
      std::vector<std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor>> acceptors);
  /// Stops accepting and closes the listening sockets.
  void Stop();

  size_t listeners() const { return listeners_.size(); }
  /// Connections refused so far (all listeners).
  uint64_t refused() const { return refused_.load(); }

 private:
  struct Listener {
    std::string address;  // "tcp:HOST:PORT" or "unix:PATH", for messages
    bool unix_domain = false;
    int fd = -1;
    std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor;
    struct Live {
      int fd;
      ino_t ino;
      std::string source;
    };
    std::vector<Live> live;  // handed to gRPC, maybe closed since
  };
  void Loop();
  // "" when one more connection fits; otherwise which cap is full.
  std::string Admit(Listener& l, const std::string& source);

  const Options options_;
  std::vector<Listener> listeners_;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<uint64_t> refused_{0};
};

}  // namespace aers::control
